"""Certify accelerator_metrics with playbooks/certify.yml against the fake API server (the issue's definition of done).

Without the GPU Operator the requirement fails with specific messages and nothing is written to the
cluster; an exporter lacking one GPU's memory series fails naming that GPU. The runs also prove that
the module imports prometheus_client where Ansible runs it.
"""

import json

import pytest

from tests.support import dcgm, playbook
from tests.support.fakeapi import FakeKubeAPI
from tests.support.modrun import requirement_result


def certify(fake, tmp_path):
    kubeconfig = fake.write_kubeconfig(str(tmp_path / "kubeconfig"), context="lab")
    extra_vars = {"conformance_report_dir": str(tmp_path / "report"), "conformance_kubeconfig": kubeconfig,
                  "conformance_requirements": ["accelerator_metrics"], "accelerator_metrics_timeout": 3}
    rc, out, dummy = playbook.certify(tmp_path, extra_vars)
    results_file = tmp_path / "report" / "results.json"
    return rc, out, json.loads(results_file.read_text()) if results_file.exists() else None


@pytest.fixture()
def fake():
    with FakeKubeAPI() as server:
        yield server


def checks_of(results):
    return dict((c["name"], c) for c in requirement_result(results, "accelerator_metrics")["checks"])


def test_cluster_without_gpu_operator_fails_and_writes_nothing(fake, tmp_path):
    fake.put_recorded("objects/node-gpu-node-1.final.json")  # GPU node labelled by NFD, no exporter
    rc, out, results = certify(fake, tmp_path)
    assert rc != 0, out
    assert requirement_result(results, "accelerator_metrics")["status"] == "failed"
    found = checks_of(results)
    assert found["exporter_service"]["message"].startswith("the metrics exporter Service gpu-operator/nvidia-dcgm-exporter does not exist")
    assert found["per_gpu_metrics"]["status"] == "skipped"
    # the only writes of the whole run are the preflight's access reviews and the run lock (released at the end)
    lease = "/apis/coordination.k8s.io/v1/namespaces/kube-system/leases"
    writes = set((r.method, r.path) for r in fake.requests if r.method != "GET")
    assert writes <= {("POST", "/apis/authentication.k8s.io/v1/selfsubjectreviews"),
                      ("POST", "/apis/authorization.k8s.io/v1/selfsubjectaccessreviews"),
                      ("POST", lease), ("PUT", lease + "/ai-conformance-rke2"), ("DELETE", lease + "/ai-conformance-rke2")}, writes
    assert fake.get_object("coordination.k8s.io/v1", "leases", "ai-conformance-rke2", "kube-system") is None


def test_exporter_lacking_one_gpus_memory_series_fails_naming_it(fake, tmp_path):
    fake.put_recorded("objects/node-gpu-node-1.final.json")
    fake.create_namespace("gpu-operator")
    service = fake.put_object({"apiVersion": "v1", "kind": "Service", "metadata": {"name": "nvidia-dcgm-exporter", "namespace": "gpu-operator"},
                               "spec": {"selector": {"app": "nvidia-dcgm-exporter"},
                                        "ports": [{"name": "gpu-metrics", "port": 9400, "targetPort": 9400, "protocol": "TCP"}]}})
    pod = fake.put_object({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "nvidia-dcgm-exporter-x7k2p", "namespace": "gpu-operator"},
                           "spec": {"nodeName": "gpu-node-1", "containers": [{"name": "exporter", "image": "dcgm-exporter"}]},
                           "status": {"phase": "Running", "podIP": "10.42.1.5"}})
    fake.put_object(fake.endpoints_for(service, [pod]))
    gpus = [dcgm.gpu(0, uuid=dcgm.H100_UUID), dcgm.gpu(1)]
    fake.set_service_proxy("gpu-operator", "nvidia-dcgm-exporter", None,
                           dcgm.exposition("gpu-node-1", gpus, drop=[("DCGM_FI_DEV_FB_USED", 1), ("DCGM_FI_DEV_FB_FREE", 1)]))
    rc, out, results = certify(fake, tmp_path)
    assert rc != 0, out
    check = checks_of(results)["per_gpu_metrics"]
    assert check["status"] == "failed"
    assert check["message"] == ("per-GPU metrics incomplete: node gpu-node-1 GPU 1 (%s) lacks DCGM_FI_DEV_FB_USED, DCGM_FI_DEV_FB_FREE"
                                % gpus[1]["uuid"])
    table = (tmp_path / "report" / "evidence" / "accelerator_metrics" / "gpu-metrics.md").read_text()
    assert "| gpu-node-1 | 0 | %s |" % dcgm.H100_UUID in table and "**missing**" in table
