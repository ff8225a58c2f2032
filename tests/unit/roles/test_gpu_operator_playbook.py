"""Run roles/gpu_operator with ansible-playbook against the fake API server.

A reconciler plays RKE2's helm-controller and the GPU Operator: once the HelmChart exists, the
ClusterPolicy (built from the chart's values) appears with ``status.state: ready`` and the labelled
GPU node gets allocatable ``nvidia.com/gpu``. Checks the values that reach the cluster, idempotence,
check mode, the ServiceMonitor auto switch and the bounded wait's message.
"""


import pytest
import yaml

from tests.support.fakeapi import FakeKubeAPI
from tests.support.gpu_cluster import RESOURCE, recorded_node
from tests.support.playbook import run_role

HELMCHART = ("helm.cattle.io/v1", "helmcharts")


class Operator:
    """helm-controller + GPU Operator: the ClusterPolicy from the chart values, the node's GPUs."""

    def __init__(self, fake, ready=True, gpus="2"):
        self.fake = fake
        self.ready = ready
        self.gpus = gpus
        fake.add_reconciler(self.reconcile)

    def reconcile(self, fake):
        chart = fake.get_object(HELMCHART[0], HELMCHART[1], "gpu-operator", "kube-system")
        if chart is None or fake.get_object("nvidia.com/v1", "clusterpolicies", "cluster-policy") is not None:
            return
        values = yaml.safe_load(chart["spec"]["valuesContent"])
        spec = dict((k, values[k]) for k in ("driver", "toolkit", "devicePlugin", "dcgmExporter", "cdi"))
        fake.put_object({"apiVersion": "nvidia.com/v1", "kind": "ClusterPolicy", "metadata": {"name": "cluster-policy"},
                         "spec": spec, "status": {"state": "ready" if self.ready else "notReady", "namespace": "gpu-operator"}})
        if self.gpus:
            node = fake.get_object("v1", "nodes", "gpu-node-1")
            for section in ("capacity", "allocatable"):
                node["status"][section][RESOURCE] = self.gpus
            fake.put_object(node)


@pytest.fixture()
def fake():
    with FakeKubeAPI() as server:
        recorded_node(server, "node-gpu-node-1.final.json", gpus=0)
        yield server


def playbook(fake, tmp_path, extra_vars=None, check=False):
    variables = {"gpu_operator_kubeconfig": fake.write_kubeconfig(str(tmp_path / "kubeconfig")), "gpu_operator_enabled": True,
                 "gpu_operator_expected_gpu_nodes": 1, "gpu_operator_wait_delay": 1, "gpu_operator_wait_timeout": 3}
    variables.update(extra_vars or {})
    return run_role("gpu_operator", tmp_path, variables, check=check)


def chart_values(fake):
    chart = fake.get_object(HELMCHART[0], HELMCHART[1], "gpu-operator", "kube-system")
    return yaml.safe_load(chart["spec"]["valuesContent"]) if chart else None


def test_installs_waits_and_is_idempotent(fake, tmp_path):
    Operator(fake)
    first = playbook(fake, tmp_path)
    assert first["rc"] == 0 and first["changed"] == 2, first["out"]
    values = chart_values(fake)
    assert {"name": "CONTAINERD_SOCKET", "value": "/run/k3s/containerd/containerd.sock"} in values["toolkit"]["env"]
    assert values["devicePlugin"]["env"] == [{"name": "DEVICE_LIST_STRATEGY", "value": "volume-mounts"}]
    # the fake serves monitoring.coreos.com/v1 (recorded discovery): auto turns the ServiceMonitor on
    assert values["dcgmExporter"]["serviceMonitor"] == {"enabled": True}
    namespace = fake.get_object("v1", "namespaces", "gpu-operator")
    assert namespace["metadata"]["labels"]["pod-security.kubernetes.io/enforce"] == "privileged"
    assert namespace["metadata"]["labels"]["app.kubernetes.io/managed-by"] == "ai-conformance-rke2-installer"
    second = playbook(fake, tmp_path)
    assert second["rc"] == 0 and second["changed"] == 0, second["out"]


def test_service_monitor_off_without_prometheus_operator(fake, tmp_path):
    fake.remove_group_version("monitoring.coreos.com/v1")
    Operator(fake)
    assert playbook(fake, tmp_path)["rc"] == 0
    assert chart_values(fake)["dcgmExporter"]["serviceMonitor"] == {"enabled": False}


def test_check_mode_changes_nothing(fake, tmp_path):
    Operator(fake)
    result = playbook(fake, tmp_path, check=True)
    assert result["rc"] == 0 and result["failed"] == 0, result["out"]
    assert chart_values(fake) is None and fake.get_object("v1", "namespaces", "gpu-operator") is None
    assert not [r for r in fake.requests if r.method in ("POST", "PUT", "DELETE")
                or (r.method == "PATCH" and "dryRun" not in r.query)]


def test_disabled_by_default_without_gpu_nodes(fake, tmp_path):
    result = playbook(fake, tmp_path, {"gpu_operator_enabled": "{{ groups['gpu_nodes'] | default([]) | length > 0 }}"})
    assert result["rc"] == 0 and result["changed"] == 0
    assert chart_values(fake) is None


def test_node_without_gpus_fails_within_the_timeout_naming_it(fake, tmp_path):
    Operator(fake, gpus=None)
    fake.patch_object("v1", "nodes", "gpu-node-1", {"metadata": {"labels": {"nvidia.com/gpu.present": "true"}}})
    result = playbook(fake, tmp_path)
    assert result["rc"] != 0
    text = " ".join(result["out"].split())
    assert "The GPU Operator did not become ready within 3s: ClusterPolicy state ready" in text
    assert "without allocatable nvidia.com/gpu: gpu-node-1" in text


def test_cluster_policy_not_ready_fails_with_its_state(fake, tmp_path):
    Operator(fake, ready=False)
    result = playbook(fake, tmp_path)
    assert result["rc"] != 0
    assert "ClusterPolicy state notReady" in " ".join(result["out"].split())
