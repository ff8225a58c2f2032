"""accelerator_metrics over HTTP against the fake API server.

The fake routes the service and pod proxies as the apiserver does (Service, then its v1
Endpoints; recorded 503/404/400 answers) and plays the dcgm-exporter pods behind them
with text in the exporter's format (tests/support/dcgm.py).
"""

import threading
import time

import pytest

from ansible_collections.ai_conformance.rke2.plugins.modules import accelerator_metrics
from tests.support import dcgm
from tests.support.fakeapi import FakeKubeAPI
from tests.support.modrun import checks, run_module

NS = "gpu-operator"
SERVICE = "nvidia-dcgm-exporter"


@pytest.fixture
def fake(tmp_path):
    with FakeKubeAPI() as server:
        server.kubeconfig = server.write_kubeconfig(str(tmp_path / "kubeconfig"))
        yield server
        assert server.internal_errors == []


@pytest.fixture(autouse=True)
def fast_retries(monkeypatch):
    monkeypatch.setattr(accelerator_metrics, "RETRY_INTERVAL", 0.2)


def run(fake, capsys, **args):
    args.setdefault("kubeconfig", fake.kubeconfig)
    args.setdefault("timeout", 5)
    return run_module(accelerator_metrics, args, capsys)


def gpu_node(fake, name, gpus=2, labelled=True):
    labels = {"kubernetes.io/hostname": name}
    if labelled:
        labels.update({"nvidia.com/gpu.present": "true", "nvidia.com/gpu.count": str(gpus)})
    capacity = {"cpu": "16", "memory": "64Gi", "pods": "110", "nvidia.com/gpu": str(gpus)}
    fake.put_object({"apiVersion": "v1", "kind": "Node", "metadata": {"name": name, "labels": labels},
                     "status": {"capacity": capacity, "allocatable": dict(capacity)}})


def exporter_service(fake):
    """The GPU Operator's dcgm-exporter Service (port gpu-metrics 9400)."""
    if fake.get_object("v1", "namespaces", NS) is None:
        fake.create_namespace(NS)
    return fake.put_object({"apiVersion": "v1", "kind": "Service",
                            "metadata": {"name": SERVICE, "namespace": NS, "labels": {"app": SERVICE}},
                            "spec": {"selector": {"app": SERVICE}, "type": "ClusterIP",
                                     "ports": [{"name": "gpu-metrics", "port": 9400, "targetPort": 9400, "protocol": "TCP"}]}})


def exporter_pod(fake, node, ip="10.42.1.5"):
    status = {"phase": "Running"}
    if ip:
        status["podIP"] = ip
    return fake.put_object({"apiVersion": "v1", "kind": "Pod",
                            "metadata": {"name": "nvidia-dcgm-exporter-%s" % node[-1], "namespace": NS, "labels": {"app": SERVICE}},
                            "spec": {"nodeName": node, "containers": [{"name": "nvidia-dcgm-exporter",
                                                                       "image": "nvcr.io/nvidia/k8s/dcgm-exporter:4.4.1-4.6.0-ubuntu22.04"}]},
                            "status": status})


def gpu_operator(fake, exposition, nodes=("gpu-node-1",), ready=True):
    """GPU nodes, the exporter Service, one exporter pod per node behind it, answering ``exposition``."""
    service = exporter_service(fake)
    pods = []
    for index, name in enumerate(nodes):
        gpu_node(fake, name)
        pods.append(exporter_pod(fake, name, "10.42.%d.5" % (index + 1)))
    fake.put_object(fake.endpoints_for(service, pods, ready=ready))
    fake.set_service_proxy(NS, SERVICE, None, exposition)
    return pods


def two_gpus(hostname="gpu-node-1", drop=()):
    return dcgm.exposition(hostname, [dcgm.gpu(0, uuid=dcgm.H100_UUID, pod="ml/train-0/main", values={"DCGM_FI_DEV_GPU_UTIL": 97}),
                                      dcgm.gpu(1)], drop=drop)


def writes(fake):
    return [r for r in fake.requests if r.method != "GET"]


def test_every_gpu_publishes_its_series_through_the_service_proxy(fake, capsys):
    gpu_operator(fake, two_gpus())
    result = run(fake, capsys)["result"]
    found = checks(result)
    assert result["status"] == "passed", found
    assert found["per_gpu_metrics"]["kind"] == "exercise" and found["per_gpu_metrics"]["status"] == "passed"
    assert found["per_gpu_metrics"]["message"].startswith("2 GPU(s) on 1 node(s) publish DCGM_FI_DEV_GPU_UTIL")
    assert found["exporter_service"]["kind"] == "inspect"
    assert [found["advisory_%s" % c]["status"] for c in ("temperature", "power", "interconnect")] == ["passed", "passed", "passed"]
    table = [e for e in result["evidence"] if e["name"] == "gpu-metrics"][0]
    assert table["format"] == "markdown"
    assert "| gpu-node-1 | 0 | %s | NVIDIA H100 80GB HBM3 | 97 | 0 | 81004 |" % dcgm.H100_UUID in table["content"]
    # bounded and read-only: one list of GPU nodes by label, the Service, its Endpoints, one proxy GET
    assert [r.path for r in fake.requests_to("GET", r"^/api/v1/(nodes|namespaces/gpu-operator)")] == [
        "/api/v1/nodes", "/api/v1/namespaces/gpu-operator/services/nvidia-dcgm-exporter",
        "/api/v1/namespaces/gpu-operator/endpoints/nvidia-dcgm-exporter",
        "/api/v1/namespaces/gpu-operator/services/nvidia-dcgm-exporter:gpu-metrics/proxy/metrics"]
    assert fake.requests_to("GET", r"^/api/v1/nodes$")[0].query.get("labelSelector") == "nvidia.com/gpu.present"
    assert writes(fake) == []


def test_gpu_missing_its_memory_series_fails_naming_it(fake, capsys):
    gpu_operator(fake, two_gpus(drop=[("DCGM_FI_DEV_FB_USED", 1), ("DCGM_FI_DEV_FB_FREE", 1)]))
    result = run(fake, capsys)["result"]
    check = checks(result)["per_gpu_metrics"]
    assert result["status"] == "failed"
    assert check["status"] == "failed" and check["cause"] == "capability" and check["kind"] == "exercise"
    uuid = dcgm.gpu(1)["uuid"]
    assert check["message"] == "per-GPU metrics incomplete: node gpu-node-1 GPU 1 (%s) lacks DCGM_FI_DEV_FB_USED, DCGM_FI_DEV_FB_FREE" % uuid
    table = [e for e in result["evidence"] if e["name"] == "gpu-metrics"][0]["content"]
    assert "| gpu-node-1 | 1 | %s | NVIDIA H100 80GB HBM3 | 0 | **missing** | **missing** |" % uuid in table


def test_cluster_without_gpu_operator_fails_with_specific_messages_and_writes_nothing(fake, capsys):
    gpu_node(fake, "node-1", gpus=0, labelled=False)  # a CPU node: no GPU Operator, no NFD labels
    result = run(fake, capsys)["result"]
    found = checks(result)
    assert result["status"] == "failed"
    assert found["exporter_service"]["status"] == "failed" and found["exporter_service"]["cause"] == "not_installed"
    assert found["exporter_service"]["message"] == (
        "the metrics exporter Service gpu-operator/nvidia-dcgm-exporter does not exist: is the GPU Operator (dcgm-exporter) "
        "installed, or set exporter_namespace/exporter_service?")
    assert found["gpu_nodes"]["status"] == "error" and found["gpu_nodes"]["cause"] == "no_test_target"
    assert found["gpu_nodes"]["message"] == "no accelerator node to check: no node selected by 'nvidia.com/gpu.present' advertises nvidia.com/gpu capacity"
    assert found["per_gpu_metrics"]["status"] == "skipped"
    assert writes(fake) == [] and fake.requests_to("GET", "/proxy/") == []


def test_recorded_gpu_node_without_exporter_fails_not_installed(fake, capsys):
    fake.put_recorded("objects/node-gpu-node-1.final.json")  # labelled nvidia.com/gpu.present, capacity 2
    result = run(fake, capsys)["result"]
    found = checks(result)
    assert result["status"] == "failed"
    assert found["gpu_nodes"]["status"] == "passed" and found["gpu_nodes"]["message"] == "1 node(s) advertise nvidia.com/gpu: gpu-node-1 (2)"
    assert found["exporter_service"]["cause"] == "not_installed"


def test_no_gpu_node_is_an_error_never_a_pass(fake, capsys):
    exporter_service(fake)
    fake.put_object(fake.endpoints_for(fake.get_object("v1", "services", SERVICE, NS), []))
    gpu_node(fake, "gpu-node-1", gpus=0)
    result = run(fake, capsys)["result"]
    assert result["status"] == "error"
    assert checks(result)["gpu_nodes"]["message"] == ("no accelerator node to check: no node selected by 'nvidia.com/gpu.present' "
                                                      "advertises nvidia.com/gpu capacity (labelled but without capacity: gpu-node-1)")


def test_service_without_ready_endpoints_fails_with_the_proxy_answer(fake, capsys):
    gpu_node(fake, "gpu-node-1")
    exporter_service(fake)
    fake.put_object(fake.endpoints_for(fake.get_object("v1", "services", SERVICE, NS), []))
    started = time.monotonic()
    result = run(fake, capsys, timeout=30)["result"]
    check = checks(result)["per_gpu_metrics"]
    assert result["status"] == "failed" and check["cause"] == "capability"
    assert check["message"] == (
        "the exporter Service has no ready endpoints: the API server's service proxy answered ServiceUnavailable (503) on GET "
        "/api/v1/namespaces/gpu-operator/services/nvidia-dcgm-exporter:gpu-metrics/proxy/metrics: "
        'no endpoints available for service "nvidia-dcgm-exporter"')
    # no exporter pod at all: nothing to wait for
    assert time.monotonic() - started < 10
    assert len(fake.requests_to("GET", "/proxy/")) == 1


def test_service_without_endpoints_object_fails_the_same_way(fake, capsys):
    gpu_node(fake, "gpu-node-1")
    exporter_service(fake)  # no Endpoints object at all (a Service without selector nobody filled)
    check = checks(run(fake, capsys)["result"])["per_gpu_metrics"]
    assert check["status"] == "failed" and check["cause"] == "capability"
    assert check["message"].startswith("the exporter Service has no ready endpoints: the API server's service proxy answered NotFound (404)")
    assert check["message"].endswith('endpoints "nvidia-dcgm-exporter" not found')


def test_exporter_warming_up_is_retried_until_it_answers(fake, capsys):
    pods = gpu_operator(fake, None, ready=False)
    answers = []

    def exporter(method, path, query, body):
        answers.append(path)
        return "" if len(answers) == 1 else two_gpus()  # started, no field collected yet

    fake.set_service_proxy(NS, SERVICE, "gpu-metrics", exporter)
    service = fake.get_object("v1", "services", SERVICE, NS)

    def becomes_ready():
        time.sleep(0.5)
        fake.put_object(fake.endpoints_for(service, pods, ready=True))

    thread = threading.Thread(target=becomes_ready)
    thread.start()
    try:
        result = run(fake, capsys, timeout=20)["result"]
    finally:
        thread.join()
    assert result["status"] == "passed", checks(result)
    assert len(answers) == 2
    assert len(fake.requests_to("GET", "/proxy/")) >= 3  # 503 while not ready, an empty answer, the metrics


def test_warming_up_is_bounded_by_the_timeout(fake, capsys):
    gpu_operator(fake, "", ready=True)
    started = time.monotonic()
    result = run(fake, capsys, timeout=1)["result"]
    check = checks(result)["per_gpu_metrics"]
    assert time.monotonic() - started < 8
    assert check["status"] == "failed"
    assert check["message"] == "the exporter answered but published no DCGM_FI_DEV_GPU_UTIL series: 0 samples, none of DCGM_FI_DEV_GPU_UTIL (still so after 1s)"


def test_port_the_service_does_not_declare(fake, capsys):
    gpu_operator(fake, two_gpus())
    result = run(fake, capsys, exporter_port="9401")["result"]
    check = checks(result)["exporter_service"]
    assert check["status"] == "failed" and check["cause"] == "not_installed"
    assert check["message"] == "Service gpu-operator/nvidia-dcgm-exporter declares no port '9401' (its ports: gpu-metrics:9400->9400); set exporter_port"
    assert fake.requests_to("GET", "/proxy/") == []


def test_exporter_not_listening_fails_with_the_dial_error(fake, capsys):
    gpu_operator(fake, None)
    result = run(fake, capsys, timeout=1)["result"]
    check = checks(result)["per_gpu_metrics"]
    assert check["status"] == "failed"
    assert check["message"].startswith("the API server could not reach the exporter pod: ServiceUnavailable (503) on GET ")
    assert "error trying to reach service: dial tcp 10.42.1.5:9400: connect: connection refused (still so after 1s)" in check["message"]


def test_answer_that_is_not_metrics_fails(fake, capsys):
    gpu_operator(fake, (200, "<html><body>Welcome to nginx!</body></html>", "text/html"))
    check = checks(run(fake, capsys)["result"])["per_gpu_metrics"]
    assert check["status"] == "failed"
    assert check["message"].startswith("the exporter's answer is not machine-readable metrics: the answer is not in the Prometheus text format")


def test_each_node_is_read_through_its_own_exporter_pod(fake, capsys):
    """The Service answers from one pod: other nodes are read through the pod proxy; a node whose exporter
    pod has no IP (stale Endpoints) fails naming the node."""
    nodes = ("gpu-node-1", "gpu-node-2", "gpu-node-3")
    pods = gpu_operator(fake, two_gpus("gpu-node-1"), nodes=nodes)
    fake.set_pod_proxy(NS, pods[1]["metadata"]["name"], 9400, two_gpus("gpu-node-2"))
    fake.patch_object("v1", "pods", pods[2]["metadata"]["name"], {"status": {"podIP": None}}, NS)
    result = run(fake, capsys)["result"]
    check = checks(result)["per_gpu_metrics"]
    assert result["status"] == "failed"
    assert check["message"] == (
        "per-GPU metrics incomplete: node gpu-node-3: no metrics for its 2 GPU(s): its exporter pod nvidia-dcgm-exporter-3 did not "
        "answer through the pod proxy: BadRequest (400) on GET /api/v1/namespaces/gpu-operator/pods/nvidia-dcgm-exporter-3:9400/proxy/metrics: "
        "address not allowed")
    assert [r.path for r in fake.requests_to("GET", "/proxy/")] == [
        "/api/v1/namespaces/gpu-operator/services/nvidia-dcgm-exporter:gpu-metrics/proxy/metrics",
        "/api/v1/namespaces/gpu-operator/pods/nvidia-dcgm-exporter-2:9400/proxy/metrics",
        "/api/v1/namespaces/gpu-operator/pods/nvidia-dcgm-exporter-3:9400/proxy/metrics"]
    rows = [line for line in [e for e in result["evidence"] if e["name"] == "gpu-metrics"][0]["content"].splitlines() if line.startswith("| gpu-node")]
    assert [row.split(" | ")[0:2] for row in rows] == [["| gpu-node-1", "0"], ["| gpu-node-1", "1"], ["| gpu-node-2", "0"], ["| gpu-node-2", "1"]]


def test_node_without_exporter_endpoint_fails_naming_it(fake, capsys):
    pods = gpu_operator(fake, two_gpus("gpu-node-1"), nodes=("gpu-node-1",))
    gpu_node(fake, "gpu-node-2")
    result = run(fake, capsys)["result"]
    assert pods and checks(result)["per_gpu_metrics"]["message"] == (
        "per-GPU metrics incomplete: node gpu-node-2: no metrics for its 2 GPU(s): no ready exporter endpoint on this node")


def test_forbidden_proxy_is_an_error_not_a_failure(fake, capsys):
    gpu_operator(fake, two_gpus())
    fake.forbid("GET", r"/services/.*/proxy/")
    result = run(fake, capsys)["result"]
    check = checks(result)["per_gpu_metrics"]
    assert result["status"] == "error"
    assert check["cause"] == "rbac" and check["message"].startswith("reading metrics through the service proxy: Forbidden (403)")


def test_options_override_the_profile(fake, capsys):
    fake.create_namespace("monitoring")
    service = fake.put_object({"apiVersion": "v1", "kind": "Service", "metadata": {"name": "dcgm-exporter", "namespace": "monitoring"},
                               "spec": {"ports": [{"name": "metrics", "port": 9400, "targetPort": 9400}]}})
    gpu_node(fake, "gpu-node-1", labelled=False)
    fake.put_object(fake.endpoints_for(service, [exporter_pod(fake, "gpu-node-1")]))
    fake.set_service_proxy("monitoring", "dcgm-exporter", None, two_gpus())
    result = run(fake, capsys, exporter_namespace="monitoring", exporter_service="dcgm-exporter", exporter_port="metrics",
                 node_selector="kubernetes.io/hostname")["result"]
    assert result["status"] == "passed", checks(result)


def test_unknown_profile_is_a_clear_module_failure(fake, capsys):
    out = run(fake, capsys, accelerator_profile="tpu")
    assert out["failed"] and out["msg"] == "accelerator_profile: unknown accelerator profile 'tpu'; known: nvidia (or pass a profile dict)"


def test_missing_prometheus_client_is_a_clear_module_failure(fake, capsys, monkeypatch):
    monkeypatch.setattr(accelerator_metrics.am, "HAS_PROMETHEUS_CLIENT", False)
    monkeypatch.setattr(accelerator_metrics.am, "PROMETHEUS_CLIENT_IMPORT_ERROR", "ModuleNotFoundError: No module named 'prometheus_client'")
    out = run(fake, capsys)
    assert out["failed"] and out["msg"].startswith("Failed to import the required Python library (prometheus-client)")
    assert fake.requests_to("GET", "^/api/v1/nodes") == []


def test_forbidden_pod_proxy_makes_that_node_untested_not_failed(fake, capsys):
    pods = gpu_operator(fake, two_gpus("gpu-node-1"), nodes=("gpu-node-1", "gpu-node-2"))
    fake.set_pod_proxy(NS, pods[1]["metadata"]["name"], 9400, two_gpus("gpu-node-2"))
    fake.forbid("GET", r"/pods/.*/proxy/")
    result = run(fake, capsys)["result"]
    found = checks(result)
    assert result["status"] == "error"
    assert found["exporter_pod_proxy_gpu-node-2"]["cause"] == "rbac"
    assert found["exporter_pod_proxy_gpu-node-2"]["message"].startswith(
        "reading the metrics of exporter pod nvidia-dcgm-exporter-2 on node gpu-node-2: Forbidden (403)")
    # the node that could be read passed; the other is not judged
    assert found["per_gpu_metrics"]["status"] == "passed"
    assert found["per_gpu_metrics"]["message"].startswith("2 GPU(s) on 1 node(s) publish")
