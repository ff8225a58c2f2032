"""roles/gateway_api: the HelmChartConfig it applies, its rollout wait condition, its documented variables.

The template and the task expressions are rendered with Ansible's own Templar, with the role's
defaults and vars loaded the way Ansible loads them.
"""

import copy
import os

import pytest
import yaml
from ansible.parsing.dataloader import DataLoader
from ansible.template import Templar, trust_as_template

from tests.support import crdschema
from tests.support.shared import REPO_ROOT

ROLE = os.path.join(REPO_ROOT, "roles", "gateway_api")


def role_vars(**overrides):
    loader = DataLoader()
    variables = dict(loader.load_from_file(os.path.join(ROLE, "defaults", "main.yml"), trusted_as_template=True))
    variables.update(overrides)
    variables.update(loader.load_from_file(os.path.join(ROLE, "vars", "main.yml"), trusted_as_template=True))
    return loader, variables


def render(expression, **overrides):
    loader, variables = role_vars(**overrides)
    return Templar(loader=loader, variables=variables).template(trust_as_template(expression))


def helmchartconfig(**overrides):
    with open(os.path.join(ROLE, "templates", "helmchartconfig.yaml.j2")) as handle:
        return yaml.safe_load(render(handle.read(), **overrides))


def test_default_helmchartconfig_validates_and_enables_the_provider():
    hcc = helmchartconfig()
    crdschema.validate("helm-controller", hcc)
    assert (hcc["metadata"]["name"], hcc["metadata"]["namespace"]) == ("rke2-traefik", "kube-system")
    assert hcc["metadata"]["labels"]["app.kubernetes.io/managed-by"] == "ai-conformance-rke2-installer"
    assert yaml.safe_load(hcc["spec"]["valuesContent"]) == {"providers": {"kubernetesGateway": {"enabled": True}}}


def test_user_values_merge_recursively_with_the_provider():
    user = {"providers": {"kubernetesGateway": {"experimentalChannel": True}, "kubernetesCRD": {"allowCrossNamespace": True}},
            "deployment": {"kind": "Deployment"}, "logs": {"general": {"level": "DEBUG"}}}
    hcc = helmchartconfig(gateway_api_traefik_values=user)
    crdschema.validate("helm-controller", hcc)
    values = yaml.safe_load(hcc["spec"]["valuesContent"])
    assert values["providers"]["kubernetesGateway"] == {"enabled": True, "experimentalChannel": True}
    assert values["providers"]["kubernetesCRD"] == {"allowCrossNamespace": True}
    assert values["deployment"] == {"kind": "Deployment"} and values["logs"]["general"]["level"] == "DEBUG"


def test_values_content_is_stable_for_the_same_input():
    """Same values in another key order render byte-identically, so a re-run changes nothing."""
    a = {"b": {"y": 1, "x": [1, 2]}, "a": "text: with colon"}
    b = {"a": "text: with colon", "b": {"x": [1, 2], "y": 1}}
    assert helmchartconfig(gateway_api_traefik_values=a) == helmchartconfig(gateway_api_traefik_values=b)
    assert yaml.safe_load(helmchartconfig(gateway_api_traefik_values=a)["spec"]["valuesContent"])["a"] == "text: with colon"


def test_workload_kind_follows_the_values():
    assert render("{{ gateway_api_traefik_workload_kind }}") == "DaemonSet"
    assert render("{{ gateway_api_traefik_workload_kind }}",
                  gateway_api_traefik_values={"deployment": {"kind": "Deployment"}}) == "Deployment"


def test_crd_source_defaults_to_the_pinned_release_and_can_be_local():
    assert render("{{ gateway_api_crds_url }}") == (
        "https://github.com/kubernetes-sigs/gateway-api/releases/download/v1.4.1/standard-install.yaml")
    crds = load_tasks("crds.yml")
    apply = [t for t in crds if "kubernetes.core.k8s" in t][0]["kubernetes.core.k8s"]
    assert render(apply["src"]) == render("{{ gateway_api_crds_url }}")
    assert render(apply["src"], gateway_api_crds_src="/srv/airgap/standard-install.yaml") == "/srv/airgap/standard-install.yaml"


def load_tasks(name):
    return DataLoader().load_from_file(os.path.join(ROLE, "tasks", name), trusted_as_template=True)


def wait_task():
    for task in load_tasks("traefik.yml"):
        for sub in task.get("block", []):
            if "until" in sub:
                return sub
    raise AssertionError("no wait task with until in tasks/traefik.yml")


def daemonset(args, generation=2, observed=2, desired=3, updated=3, available=3):
    return {"metadata": {"name": "rke2-traefik", "generation": generation},
            "spec": {"template": {"spec": {"containers": [{"name": "rke2-traefik", "args": args}]}}},
            "status": {"observedGeneration": observed, "desiredNumberScheduled": desired,
                       "updatedNumberScheduled": updated, "numberAvailable": available}}


ARGS_OLD = ["--entryPoints.web.address=:8000/tcp", "--providers.kubernetescrd", "--providers.kubernetesingress"]
ARGS_NEW = ARGS_OLD + ["--providers.kubernetesgateway", "--providers.kubernetesgateway.statusaddress.service.name=rke2-traefik"]


def wait_done(resources, **overrides):
    task = wait_task()
    loader, variables = role_vars(**overrides)
    variables = dict(variables)
    variables.update(task["vars"])
    variables["_gateway_api_traefik"] = {"resources": resources}
    templar = Templar(loader=loader, variables=variables)
    return all(templar.template(trust_as_template("{{ %s }}" % cond)) for cond in task["until"])


@pytest.mark.parametrize("resources,done", [
    ([], False),                                                     # workload not there (yet)
    ([daemonset(ARGS_OLD)], False),                                  # old values still running
    ([daemonset(ARGS_NEW, generation=3, observed=2)], False),        # controller has not seen the new spec
    ([daemonset(ARGS_NEW, updated=1)], False),                       # rollout in progress
    ([daemonset(ARGS_NEW, available=2)], False),                     # a new pod not available yet
    ([daemonset(ARGS_NEW, desired=0, updated=0, available=0)], False),  # scheduled nowhere
    ([daemonset(ARGS_NEW)], True),
    ([daemonset(ARGS_OLD + ["--providers.kubernetesgateway=true"])], True),
])
def test_rollout_wait_condition(resources, done):
    assert wait_done(resources) is done


def test_rollout_wait_for_a_deployment():
    dep = daemonset(ARGS_NEW)
    dep["spec"]["replicas"] = 2
    dep["status"] = {"observedGeneration": 2, "updatedReplicas": 2, "availableReplicas": 2}
    values = {"deployment": {"kind": "Deployment"}}
    assert wait_done([dep], gateway_api_traefik_values=values) is True
    rolling = copy.deepcopy(dep)
    rolling["status"]["updatedReplicas"] = 1
    assert wait_done([rolling], gateway_api_traefik_values=values) is False


def test_rollout_wait_is_bounded_by_the_timeout():
    task = wait_task()
    assert int(render(task["retries"])) * int(render(task["delay"])) == 300
    assert int(render(task["retries"], gateway_api_traefik_rollout_timeout=61, gateway_api_traefik_rollout_delay=5)) == 13


def test_every_default_is_documented_with_the_same_value():
    with open(os.path.join(ROLE, "meta", "argument_specs.yml")) as handle:
        options = yaml.safe_load(handle)["argument_specs"]["main"]["options"]
    with open(os.path.join(ROLE, "defaults", "main.yml")) as handle:
        defaults = yaml.safe_load(handle)
    assert sorted(options) == sorted(defaults)
    for name, value in defaults.items():
        documented = options[name].get("default")
        if isinstance(value, str):
            value = value.strip()
        assert documented == value, name
        assert options[name]["description"], name


def test_check_mode_skips_the_rollout_wait():
    blocks = [t for t in load_tasks("traefik.yml") if "block" in t]
    assert blocks and all(b["when"] == "not ansible_check_mode" for b in blocks)
    assert "rescue" in blocks[0]
