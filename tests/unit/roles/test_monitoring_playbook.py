"""Run roles/monitoring with ansible-playbook against the fake API server.

A reconciler plays RKE2's helm-controller installing the charts: kube-prometheus-stack brings the
ServiceMonitor CRD (the real v0.93.0 one, Established) and an Available Prometheus; prometheus-adapter
registers the APIService v1beta1.custom.metrics.k8s.io. Checks idempotence, check mode and the bounded waits.
"""


import pytest
import yaml

from tests.support.fakeapi import FakeKubeAPI
from tests.support.monitoring_cluster import prometheus_object
from tests.support.playbook import run_role
from tests.support.shared import shared_path

HELMCHART = ("helm.cattle.io/v1", "helmcharts")


def servicemonitor_crd():
    with open(shared_path("crds", "prometheus-operator", "monitoring.coreos.com_servicemonitors.yaml")) as handle:
        crd = yaml.safe_load(handle)
    crd["status"] = {"conditions": [{"type": "Established", "status": "True", "reason": "InitialNamesAccepted"}]}
    return crd


class HelmController:
    def __init__(self, fake, prometheus_ready=True, adapter_ready=True):
        self.fake, self.prometheus_ready, self.adapter_ready = fake, prometheus_ready, adapter_ready
        fake.add_reconciler(self.reconcile)

    def reconcile(self, fake):
        if fake.get_object(HELMCHART[0], HELMCHART[1], "kube-prometheus-stack", "kube-system") is not None:
            if fake.get_object("apiextensions.k8s.io/v1", "customresourcedefinitions", "servicemonitors.monitoring.coreos.com") is None:
                fake.put_object(servicemonitor_crd())
                fake.put_object(prometheus_object(available=self.prometheus_ready))
        if self.adapter_ready and fake.get_object(HELMCHART[0], HELMCHART[1], "prometheus-adapter", "kube-system") is not None:
            if fake.get_object("apiregistration.k8s.io/v1", "apiservices", "v1beta1.custom.metrics.k8s.io") is None:
                fake.put_object({"apiVersion": "apiregistration.k8s.io/v1", "kind": "APIService",
                                 "metadata": {"name": "v1beta1.custom.metrics.k8s.io"},
                                 "spec": {"service": {"namespace": "monitoring", "name": "prometheus-adapter", "port": 443},
                                          "group": "custom.metrics.k8s.io", "version": "v1beta1", "groupPriorityMinimum": 100,
                                          "versionPriority": 100, "insecureSkipTLSVerify": True},
                                 "status": {"conditions": [{"type": "Available", "status": "True", "reason": "Passed",
                                                            "message": "all checks passed"}]}})


@pytest.fixture()
def fake():
    with FakeKubeAPI() as server:
        yield server


def playbook(fake, tmp_path, extra_vars=None, check=False):
    variables = {"monitoring_kubeconfig": fake.write_kubeconfig(str(tmp_path / "kubeconfig")), "monitoring_wait_timeout": 3,
                 "monitoring_wait_delay": 1}
    variables.update(extra_vars or {})
    return run_role("monitoring", tmp_path, variables, check=check)


def test_installs_waits_and_is_idempotent(fake, tmp_path):
    HelmController(fake)
    first = playbook(fake, tmp_path)
    assert first["rc"] == 0, first["out"][-3000:]
    assert first["changed"] == 4, first["out"][-3000:]  # namespace, two HelmCharts, the dcgm ServiceMonitor
    charts = sorted(c["metadata"]["name"] for c in fake.objects(*HELMCHART))
    assert charts == ["kube-prometheus-stack", "prometheus-adapter"]
    adapter = yaml.safe_load(fake.get_object(HELMCHART[0], HELMCHART[1], "prometheus-adapter", "kube-system")["spec"]["valuesContent"])
    assert adapter["rules"]["custom"][0]["name"]["as"] == "gpu_utilization"
    monitor = fake.get_object("monitoring.coreos.com/v1", "servicemonitors", "nvidia-dcgm-exporter", "monitoring")
    assert monitor["spec"]["namespaceSelector"] == {"matchNames": ["gpu-operator"]}
    namespace = fake.get_object("v1", "namespaces", "monitoring")
    assert namespace["metadata"]["labels"]["pod-security.kubernetes.io/enforce"] == "privileged"
    second = playbook(fake, tmp_path)
    assert second["rc"] == 0 and second["changed"] == 0, second["out"][-3000:]


def test_check_mode_changes_nothing(fake, tmp_path):
    HelmController(fake)
    result = playbook(fake, tmp_path, check=True)
    assert result["rc"] == 0 and result["failed"] == 0, result["out"][-3000:]
    assert result["changed"] == 3  # namespace and the two HelmCharts; no ServiceMonitor CRD yet
    assert fake.objects(*HELMCHART) == []
    assert not [r for r in fake.requests if r.method in ("POST", "PUT", "DELETE")
                or (r.method == "PATCH" and "dryRun" not in r.query)]


def test_prometheus_never_available_fails_within_the_timeout_with_its_conditions(fake, tmp_path):
    HelmController(fake, prometheus_ready=False)
    result = playbook(fake, tmp_path)
    assert result["rc"] != 0
    assert "did not become ready within 3s" in result["out"]
    assert "kube-prometheus-stack-prometheus: Available=False (NoPodReady), Reconciled=True" in result["out"]


def test_adapter_never_registered_fails_naming_the_apiservice(fake, tmp_path):
    HelmController(fake, adapter_ready=False)
    result = playbook(fake, tmp_path)
    assert result["rc"] != 0
    assert "APIService v1beta1.custom.metrics.k8s.io) did not become Available within 3s" in result["out"]
    assert "the APIService does not exist" in result["out"]


def test_disabled_does_nothing(fake, tmp_path):
    result = playbook(fake, tmp_path, {"monitoring_enabled": False})
    assert result["rc"] == 0 and result["changed"] == 0
    assert not [r for r in fake.requests if r.method != "GET"]
