"""roles/gpu_operator: the rendered HelmChart (helm-controller CRD), its values (RKE2 containerd, isolation
profiles, driver, dcgm-exporter ServiceMonitor), a ClusterPolicy built from those values (GPU Operator CRD),
the wait expressions and the documented variables.

The role variables are rendered with Ansible's own Templar, as a play would.
"""

import json
import os

import pytest
import yaml
from ansible.parsing.dataloader import DataLoader
from ansible.template import Templar

from tests.support import crdschema
from tests.support.shared import REPO_ROOT

ROLE = os.path.join(REPO_ROOT, "roles", "gpu_operator")


def render(name, **overrides):
    loader = DataLoader()
    variables = {"groups": {}}
    for part in ("defaults", "vars"):
        variables.update(loader.load_from_file(os.path.join(ROLE, part, "main.yml"), trusted_as_template=True))
    variables.update(overrides)
    return json.loads(json.dumps(Templar(loader=loader, variables=variables).template(variables[name])))


def values(**overrides):
    return yaml.safe_load(render("gpu_operator_helmchart", **overrides)["spec"]["valuesContent"])


def env(items):
    return dict((e["name"], e["value"]) for e in items)


def cluster_policy(chart_values):
    """The ClusterPolicy the chart renders from these values (spec sections named as the values' keys)."""
    spec = {"operator": {}, "daemonsets": {}, "dcgm": {"enabled": True}, "gfd": {"enabled": True},
            "nodeStatusExporter": {"enabled": False}}
    for key in ("driver", "toolkit", "devicePlugin", "dcgmExporter", "cdi"):
        spec[key] = chart_values[key]
    return {"apiVersion": "nvidia.com/v1", "kind": "ClusterPolicy", "metadata": {"name": "cluster-policy"}, "spec": spec}


def test_helmchart_is_valid_for_the_helm_controller():
    chart = render("gpu_operator_helmchart")
    crdschema.validate("helm-controller", chart)
    assert (chart["metadata"]["name"], chart["metadata"]["namespace"]) == ("gpu-operator", "kube-system")
    assert chart["metadata"]["labels"]["app.kubernetes.io/managed-by"] == "ai-conformance-rke2-installer"
    spec = chart["spec"]
    assert (spec["repo"], spec["chart"], spec["version"]) == ("https://helm.ngc.nvidia.com/nvidia", "gpu-operator", "v26.7.1")
    assert spec["targetNamespace"] == "gpu-operator"


def test_namespace_is_privileged():
    namespace = render("gpu_operator_namespace_object")
    assert namespace["metadata"]["labels"]["pod-security.kubernetes.io/enforce"] == "privileged"
    assert namespace["metadata"]["name"] == "gpu-operator"


def test_default_values_volume_mounts_on_rke2():
    chart_values = values()
    assert env(chart_values["toolkit"]["env"]) == {
        "ACCEPT_NVIDIA_VISIBLE_DEVICES_AS_VOLUME_MOUNTS": "true",
        "ACCEPT_NVIDIA_VISIBLE_DEVICES_ENVVAR_WHEN_UNPRIVILEGED": "false",
        "CONTAINERD_SOCKET": "/run/k3s/containerd/containerd.sock",
    }
    assert env(chart_values["devicePlugin"]["env"]) == {"DEVICE_LIST_STRATEGY": "volume-mounts"}
    assert chart_values["cdi"] == {"enabled": False}
    assert chart_values["driver"] == {"enabled": True}
    assert chart_values["dcgmExporter"] == {"enabled": True, "serviceMonitor": {"enabled": False}}
    crdschema.validate("nvidia-gpu-operator", cluster_policy(chart_values))


def test_cdi_profile_and_preinstalled_driver():
    chart_values = values(gpu_operator_isolation="cdi", gpu_operator_driver_enabled=False)
    assert env(chart_values["toolkit"]["env"]) == {"CONTAINERD_SOCKET": "/run/k3s/containerd/containerd.sock"}
    assert chart_values["devicePlugin"]["env"] == []
    assert chart_values["cdi"] == {"enabled": True} and chart_values["driver"] == {"enabled": False}
    crdschema.validate("nvidia-gpu-operator", cluster_policy(chart_values))


@pytest.mark.parametrize("version,config", [
    ("v26.7.1", None), ("v25.10.1", None),
    ("v25.3.4", "/var/lib/rancher/rke2/agent/etc/containerd/config.toml.tmpl")])
def test_containerd_config_only_for_operators_that_need_it(version, config):
    assert env(values(gpu_operator_chart_version=version)["toolkit"]["env"]).get("CONTAINERD_CONFIG") == config
    forced = values(gpu_operator_containerd_config="/etc/containerd/config.toml")
    assert env(forced["toolkit"]["env"])["CONTAINERD_CONFIG"] == "/etc/containerd/config.toml"


@pytest.mark.parametrize("switch,lookup,enabled", [
    ("auto", {"api_found": True}, True), ("auto", {"api_found": False}, False), ("auto", None, False),
    ("true", None, True), ("false", {"api_found": True}, False)])
def test_service_monitor_switch(switch, lookup, enabled):
    overrides = {"gpu_operator_dcgm_service_monitor": switch}
    if lookup is not None:
        overrides["_gpu_operator_sm_lookup"] = lookup
    assert values(**overrides)["dcgmExporter"]["serviceMonitor"]["enabled"] is enabled


def test_user_values_and_env_merge():
    chart_values = values(gpu_operator_values={"driver": {"version": "580.159.04"}, "validator": {"repository": "mirror/nvidia"}},
                          gpu_operator_toolkit_env={"CONTAINERD_RUNTIME_CLASS": "nvidia"},
                          gpu_operator_device_plugin_env={"DEVICE_LIST_STRATEGY": "envvar"})
    assert chart_values["driver"] == {"enabled": True, "version": "580.159.04"}
    assert chart_values["validator"] == {"repository": "mirror/nvidia"}
    assert env(chart_values["toolkit"]["env"])["CONTAINERD_RUNTIME_CLASS"] == "nvidia"
    assert env(chart_values["devicePlugin"]["env"]) == {"DEVICE_LIST_STRATEGY": "envvar"}
    crdschema.validate("nvidia-gpu-operator", cluster_policy(chart_values))


def test_values_content_is_stable():
    assert render("gpu_operator_helmchart") == render("gpu_operator_helmchart")
    a = render("gpu_operator_helmchart", gpu_operator_toolkit_env={"B": "1", "A": "2"})
    b = render("gpu_operator_helmchart", gpu_operator_toolkit_env={"A": "2", "B": "1"})
    assert a == b


def test_enabled_only_with_gpu_nodes():
    assert render("gpu_operator_enabled") is False
    assert render("gpu_operator_enabled", groups={"gpu_nodes": ["agent-1"]}) is True
    assert int(render("gpu_operator_expected_gpu_nodes", groups={"gpu_nodes": ["a", "b"]})) == 2


def node(name, gpus):
    return {"metadata": {"name": name}, "status": {"allocatable": dict({"cpu": "16"}, **({"nvidia.com/gpu": gpus} if gpus else {}))}}


def test_wait_expressions():
    assert render("_gpu_operator_policy_state") == "not created yet"
    assert render("_gpu_operator_policy_state", _gpu_operator_policies={"resources": [{"metadata": {"name": "p"}}]}) == "no status"
    ready = {"resources": [{"status": {"state": "ready"}}]}
    assert render("_gpu_operator_policy_state", _gpu_operator_policies=ready) == "ready"
    nodes = {"resources": [node("a", "2"), node("b", None), node("c", "0")]}
    assert render("_gpu_operator_nodes_without_gpus", _gpu_operator_nodes=nodes) == ["b", "c"]
    assert int(render("_gpu_operator_labelled_count", _gpu_operator_nodes=nodes)) == 3
    assert render("_gpu_operator_nodes_without_gpus") == []


def test_argument_specs_match_the_defaults():
    with open(os.path.join(ROLE, "meta", "argument_specs.yml")) as handle:
        options = yaml.safe_load(handle)["argument_specs"]["main"]["options"]
    with open(os.path.join(ROLE, "defaults", "main.yml")) as handle:
        defaults = yaml.safe_load(handle)
    assert set(options) == set(defaults)
    for name, spec in options.items():
        assert spec.get("default") == defaults[name], name
        assert spec.get("description"), name


def test_addons_playbook_includes_the_role():
    with open(os.path.join(REPO_ROOT, "playbooks", "addons.yml")) as handle:
        tasks = yaml.safe_load(handle)[0]["tasks"]
    found = [t for t in tasks if (t.get("ansible.builtin.include_role") or {}).get("name") == "ai_conformance.rke2.gpu_operator"]
    assert len(found) == 1 and found[0]["tags"] == ["gpu_operator"]
    assert found[0]["vars"]["gpu_operator_kubeconfig"] == "{{ addons_kubeconfig }}"
