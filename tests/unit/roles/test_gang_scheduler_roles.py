"""The volcano and kueue roles: rendered HelmCharts (validated against the helm-controller CRD),
values merging, version pins, selection by gang_scheduler and the deployment wait expression.

The role variables are rendered with Ansible's own Templar, as a play would.
"""

import json
import os
import re

import pytest
from ansible.parsing.dataloader import DataLoader
from ansible.template import Templar

from tests.support import crdschema
from tests.support.shared import shared_path

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))
ROLES = {"volcano": {"crds": "volcano", "version": "1.15.1", "deployments": ["volcano-admission", "volcano-controllers", "volcano-scheduler"]},
         "kueue": {"crds": "kueue", "version": "0.19.2", "deployments": ["kueue-controller-manager"]}}


def role_vars(role, **overrides):
    loader = DataLoader()
    variables = {}
    for part in ("defaults", "vars"):
        variables.update(loader.load_from_file(os.path.join(ROOT, "roles", role, part, "main.yml"), trusted_as_template=True))
    variables.update(overrides)
    return loader, variables


def render(role, name, **overrides):
    loader, variables = role_vars(role, **overrides)
    return json.loads(json.dumps(Templar(loader=loader, variables=variables).template(variables[name])))


@pytest.mark.parametrize("role", sorted(ROLES))
def test_helmchart_is_valid_for_the_helm_controller(role):
    chart = render(role, "%s_helmchart" % role)
    crdschema.validate("helm-controller", chart)
    assert chart["apiVersion"] == "helm.cattle.io/v1" and chart["kind"] == "HelmChart"
    assert chart["metadata"]["namespace"] == "kube-system"
    assert chart["metadata"]["labels"]["app.kubernetes.io/managed-by"] == "ai-conformance-rke2-installer"
    spec = chart["spec"]
    assert spec["targetNamespace"] == "%s-system" % role
    assert spec["createNamespace"] is True
    assert spec["version"] == ROLES[role]["version"]
    assert spec["valuesContent"].strip() == "{}"


def test_volcano_chart_source():
    spec = render("volcano", "volcano_helmchart")["spec"]
    assert (spec["repo"], spec["chart"]) == ("https://volcano-sh.github.io/helm-charts", "volcano")


def test_kueue_chart_is_the_oci_chart_without_repo():
    spec = render("kueue", "kueue_helmchart")["spec"]
    assert spec["chart"] == "oci://registry.k8s.io/kueue/charts/kueue"
    assert spec["repo"] == ""  # the helm-controller treats an empty repo as none (chart.go: if Spec.Repo != "")


@pytest.mark.parametrize("role", sorted(ROLES))
def test_pinned_chart_matches_the_crds_the_tests_use(role):
    with open(shared_path("crds", "MANIFEST.md")) as handle:
        manifest = handle.read()
    tags = set(re.findall(r"^\| %s/[^|]+\|[^|]+\|[^|]+\|[^|]+\| v([0-9.]+) \|" % ROLES[role]["crds"], manifest, re.MULTILINE))
    assert tags == {ROLES[role]["version"]}
    assert str(render(role, "%s_chart_version" % role)) == ROLES[role]["version"]


@pytest.mark.parametrize("role", sorted(ROLES))
def test_values_are_merged_recursively_into_values_content(role):
    import yaml

    base = {"a": {"keep": 1, "replace": "base"}, "list": [1]}
    user = {"a": {"replace": "user", "new": True}, "b": "x"}
    chart = render(role, "%s_helmchart" % role, **{"%s_base_values" % role: base, "%s_values" % role: user})
    assert yaml.safe_load(chart["spec"]["valuesContent"]) == {"a": {"keep": 1, "replace": "user", "new": True}, "list": [1], "b": "x"}
    crdschema.validate("helm-controller", chart)


@pytest.mark.parametrize("scheduler,volcano,kueue", [("volcano", True, False), ("kueue", False, True)])
def test_gang_scheduler_selects_the_role(scheduler, volcano, kueue):
    assert render("volcano", "volcano_enabled", gang_scheduler=scheduler) is volcano
    assert render("kueue", "kueue_enabled", gang_scheduler=scheduler) is kueue


def test_volcano_is_the_default_gang_scheduler():
    assert render("volcano", "volcano_enabled") is True
    assert render("kueue", "kueue_enabled") is False


def deployment(name, available, replicas=1, condition=True):
    return {"metadata": {"name": name}, "spec": {"replicas": replicas},
            "status": {"availableReplicas": available,
                       "conditions": [{"type": "Available", "status": "True" if condition else "False", "reason": "MinimumReplicasAvailable"}]}}


@pytest.mark.parametrize("role", sorted(ROLES))
def test_deployment_wait_expression(role):
    wanted = ROLES[role]["deployments"]
    look = {"resources": [deployment(n, 1) for n in wanted]}
    available = render(role, "_%s_available" % role, **{"_%s_deployments" % role: look})
    assert set(available.split(",")) == set(wanted)
    # one replica short, or the condition False, is not available
    look["resources"][0] = deployment(wanted[0], 1, replicas=2)
    if len(wanted) > 1:
        look["resources"][1] = deployment(wanted[1], 1, condition=False)
    available = render(role, "_%s_available" % role, **{"_%s_deployments" % role: look})
    assert set(filter(None, available.split(","))) == set(wanted[2:])
    state = render(role, "_%s_state" % role, **{"_%s_deployments" % role: look})
    assert "%s 1/2 available" % wanted[0] in state
    # before the first look (rescue after an error) the expressions still render
    assert render(role, "_%s_available" % role) == ""


@pytest.mark.parametrize("role", sorted(ROLES))
def test_argument_specs_match_the_defaults(role):
    import yaml

    with open(os.path.join(ROOT, "roles", role, "meta", "argument_specs.yml")) as handle:
        options = yaml.safe_load(handle)["argument_specs"]["main"]["options"]
    with open(os.path.join(ROOT, "roles", role, "defaults", "main.yml")) as handle:
        defaults = yaml.safe_load(handle)
    assert set(options) == set(defaults)
    for name, spec in options.items():
        assert spec.get("default") == defaults[name], name
        assert spec.get("description"), name


def test_gang_scheduling_role_passes_every_module_option():
    """The verifier role exposes each module option as gang_scheduling_<option>, documented with its default."""
    import yaml

    from ansible_collections.ai_conformance.rke2.plugins.modules import gang_scheduling

    documented = yaml.safe_load(gang_scheduling.DOCUMENTATION)["options"]
    with open(os.path.join(ROOT, "roles", "gang_scheduling", "tasks", "main.yml")) as handle:
        task = yaml.safe_load(handle)[0]["ai_conformance.rke2.gang_scheduling"]
    with open(os.path.join(ROOT, "roles", "gang_scheduling", "defaults", "main.yml")) as handle:
        defaults = yaml.safe_load(handle)
    with open(os.path.join(ROOT, "roles", "gang_scheduling", "meta", "argument_specs.yml")) as handle:
        options = yaml.safe_load(handle)["argument_specs"]["main"]["options"]
    assert set(documented) | {"timeout", "run_id"} == set(task)
    assert set(options) == set(defaults) == set("gang_scheduling_%s" % o for o in task)
    for name in documented:
        assert defaults["gang_scheduling_%s" % name] == documented[name]["default"], name
        assert options["gang_scheduling_%s" % name]["default"] == documented[name]["default"], name
