"""The catalogue is data; the role's argument spec must accept exactly its ids and versions."""

import os

import yaml

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))))


def load(*parts):
    with open(os.path.join(ROOT, *parts)) as handle:
        return yaml.safe_load(handle)


def test_catalogue_shape():
    versions = load("roles", "conformance", "vars", "catalogue.yml")["conformance_catalogue"]["versions"]
    assert set(versions) == {"1.33", "1.34", "1.35", "1.36", "1.37"}
    categories = {"accelerators", "networking", "schedulingOrchestration", "observability", "security", "operator"}
    for version, data in versions.items():
        ids = [r["id"] for r in data["requirements"]]
        assert len(ids) == len(set(ids)), version
        for req in data["requirements"]:
            assert req["category"] in categories
            assert req["level"] in ("MUST", "SHOULD")
            assert req["description"].strip() and req["title"].strip()
    v134 = versions["1.34"]["requirements"]
    assert [r["id"] for r in v134] == [
        "dra_support", "ai_inference", "gang_scheduling", "cluster_autoscaling", "pod_autoscaling",
        "accelerator_metrics", "ai_service_metrics", "secure_accelerator_access", "robust_controller",
    ]
    assert all(r["level"] == "MUST" for r in v134)
    v137 = versions["1.37"]["requirements"]
    v136 = versions["1.36"]["requirements"]
    sandboxing = [r for r in v137 if r["id"] == "workload_sandboxing"]
    assert sandboxing and sandboxing[0]["level"] == "SHOULD" and sandboxing[0]["category"] == "security"
    assert [r for r in v137 if r["id"] != "workload_sandboxing"] == v136


def test_argument_spec_choices_follow_the_catalogue():
    versions = load("roles", "conformance", "vars", "catalogue.yml")["conformance_catalogue"]["versions"]
    specs = load("roles", "conformance", "meta", "argument_specs.yml")["argument_specs"]
    options = specs["main"]["options"]
    assert set(options["conformance_version"]["choices"]) == set(versions)
    all_ids = {r["id"] for v in versions.values() for r in v["requirements"]}
    assert set(options["conformance_requirements"]["choices"]) == all_ids
    defaults = load("roles", "conformance", "defaults", "main.yml")
    for name, option in options.items():
        assert name in defaults, "option %s has no default in defaults/main.yml" % name
        if "default" in option:
            assert option["default"] == defaults[name], name


def test_every_verification_role_has_a_module_and_an_argument_spec():
    versions = load("roles", "conformance", "vars", "catalogue.yml")["conformance_catalogue"]["versions"]
    all_ids = {r["id"] for v in versions.values() for r in v["requirements"]}
    roles = {name for name in os.listdir(os.path.join(ROOT, "roles")) if name in all_ids}
    assert "dra_support" in roles
    for req_id in roles:
        assert os.path.exists(os.path.join(ROOT, "plugins", "modules", req_id + ".py")), req_id
        spec = load("roles", req_id, "meta", "argument_specs.yml")["argument_specs"]["main"]["options"]
        assert all(name.startswith(req_id + "_") for name in spec), req_id
        tasks = load("roles", req_id, "tasks", "main.yml")
        assert any(t.get("ansible.builtin.set_fact", {}).get(req_id + "_result") for t in tasks), req_id
