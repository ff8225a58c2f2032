"""Pure evaluation of accelerator_metrics on dcgm-exporter text in the exporter's real format and recorded objects."""

import os

import pytest

from ansible_collections.ai_conformance.rke2.plugins.module_utils import accelerator_metrics as am
from ansible_collections.ai_conformance.rke2.plugins.module_utils import accelerator_profiles
from ansible_collections.ai_conformance.rke2.plugins.module_utils.kube import error_from_status
from tests.support import dcgm
from tests.support.shared import load_json

NVIDIA = accelerator_profiles.resolve("nvidia")
CONFIG = NVIDIA["metrics"]

# What dcgm-exporter (GPU Operator, Kubernetes pod mapping on) serves for a node with two H100s,
# GPU 0 used by pod ml/train-0: HELP/TYPE per counter, label order of the exporter's template.
with open(os.path.join(os.path.dirname(os.path.abspath(__file__)), "data", "dcgm-exporter-two-h100.txt")) as handle:
    TWO_H100 = handle.read()

# The exporter's README sample (older releases): no Hostname, empty pod labels, a space after a comma.
README_FORMAT = """\
# HELP DCGM_FI_DEV_GPU_UTIL GPU utilization (in %).
# TYPE DCGM_FI_DEV_GPU_UTIL gauge
DCGM_FI_DEV_GPU_UTIL{gpu="0", UUID="GPU-604ac76c-d9cf-fef3-62e9-d92044ab6e52",container="",namespace="",pod=""} 0
# HELP DCGM_FI_DEV_FB_FREE Framebuffer memory free (in MiB).
# TYPE DCGM_FI_DEV_FB_FREE gauge
DCGM_FI_DEV_FB_FREE{gpu="0", UUID="GPU-604ac76c-d9cf-fef3-62e9-d92044ab6e52",container="",namespace="",pod=""} 15109
# HELP DCGM_FI_DEV_FB_USED Framebuffer memory used (in MiB).
# TYPE DCGM_FI_DEV_FB_USED gauge
DCGM_FI_DEV_FB_USED{gpu="0", UUID="GPU-604ac76c-d9cf-fef3-62e9-d92044ab6e52",container="",namespace="",pod=""} 0
"""


def node(name, gpus=None, labels=None):
    capacity = {"cpu": "16", "memory": "64Gi", "pods": "110"}
    if gpus is not None:
        capacity["nvidia.com/gpu"] = str(gpus)
    return {"apiVersion": "v1", "kind": "Node", "metadata": {"name": name, "labels": labels or {}},
            "status": {"capacity": capacity, "allocatable": dict(capacity)}}


def without_lines(text, metric, gpu_index):
    """The text without one GPU's series of ``metric`` (as an exporter that lacks them)."""
    return "\n".join(line for line in text.splitlines()
                     if not (line.startswith(metric + "{") and 'gpu="%s"' % gpu_index in line)) + "\n"


def judge(text, gpus=2, name="gpu-node-1", config=CONFIG):
    nodes, dummy = am.gpu_nodes([node(name, gpus)], "nvidia.com/gpu", config.get("replicas_label"))
    samples = am.parse_metrics(text)
    return am.evaluate(nodes, am.by_host(samples, config["host_label"], [name]), config)


# -- parsing ---------------------------------------------------------------


def test_parse_keeps_labels_and_counter_names():
    samples = am.parse_metrics(TWO_H100)
    assert len(samples) == 12
    util = [s for s in samples if s["metric"] == "DCGM_FI_DEV_GPU_UTIL"]
    assert util[0]["labels"]["UUID"] == "GPU-1d4aa5ce-c219-9f97-a29b-d4298760dab3"
    assert util[0]["labels"]["pod"] == "train-0" and util[0]["value"] == 97
    assert "pod" not in util[1]["labels"]
    # prometheus_client names counter samples <family>_total; the family keeps the exporter's name
    nvlink = [s for s in samples if s["family"] == "DCGM_FI_DEV_NVLINK_BANDWIDTH_TOTAL"]
    assert len(nvlink) == 2 and nvlink[0]["metric"] == "DCGM_FI_DEV_NVLINK_BANDWIDTH_TOTAL_total"


@pytest.mark.parametrize("text", ["<html><body>503 Service Temporarily Unavailable</body></html>\n",
                                  'DCGM_FI_DEV_GPU_UTIL{gpu="0" 5\n'])
def test_not_metrics_text_is_a_format_error(text):
    with pytest.raises(am.MetricsFormatError) as error:
        am.parse_metrics(text)
    assert "not in the Prometheus text format" in str(error.value)


def test_generated_exposition_parses_like_the_literal_one():
    text = dcgm.exposition("gpu-node-1", [dcgm.gpu(0, pod="ml/train-0/main"), dcgm.gpu(1)])
    assert text.startswith("# HELP DCGM_FI_DEV_SM_CLOCK SM clock frequency (in MHz).\n# TYPE DCGM_FI_DEV_SM_CLOCK gauge\n")
    outcome = judge(text)
    assert outcome["ok"], outcome["problems"]
    assert [r["pods"] for r in outcome["devices"]] == [["ml/train-0"], []]


# -- evaluation ------------------------------------------------------------


def test_every_gpu_with_utilization_and_memory_passes():
    outcome = judge(TWO_H100)
    assert outcome["ok"] and outcome["problems"] == []
    assert outcome["message"] == ("2 GPU(s) on 1 node(s) publish DCGM_FI_DEV_GPU_UTIL, DCGM_FI_DEV_FB_USED, DCGM_FI_DEV_FB_FREE "
                                  "with device identity (gpu, UUID, Hostname)")
    first = outcome["devices"][0]
    assert first["uuid"] == "GPU-1d4aa5ce-c219-9f97-a29b-d4298760dab3" and first["model"] == "NVIDIA H100 80GB HBM3"
    assert first["values"]["DCGM_FI_DEV_GPU_UTIL"] == 97 and first["values"]["DCGM_FI_DEV_FB_USED"] == 40000
    assert first["pods"] == ["ml/train-0"]
    assert all(info["ok"] for info in outcome["advisory"].values())


def test_gpu_missing_its_memory_series_fails_naming_it():
    text = without_lines(without_lines(TWO_H100, "DCGM_FI_DEV_FB_USED", 1), "DCGM_FI_DEV_FB_FREE", 1)
    outcome = judge(text)
    assert not outcome["ok"]
    assert outcome["problems"] == [
        "node gpu-node-1 GPU 1 (GPU-8f2c1d90-3e5a-4b17-9c2e-5da9abb51763) lacks DCGM_FI_DEV_FB_USED, DCGM_FI_DEV_FB_FREE"]
    assert outcome["message"].startswith("per-GPU metrics incomplete: node gpu-node-1 GPU 1 (GPU-8f2c1d90")
    assert outcome["devices"][1]["missing"] == ["DCGM_FI_DEV_FB_USED", "DCGM_FI_DEV_FB_FREE"]
    assert outcome["devices"][0]["missing"] == []


def test_one_memory_series_missing_is_enough_to_fail():
    outcome = judge(without_lines(TWO_H100, "DCGM_FI_DEV_FB_FREE", 0))
    assert outcome["problems"] == ["node gpu-node-1 GPU 0 (GPU-1d4aa5ce-c219-9f97-a29b-d4298760dab3) lacks DCGM_FI_DEV_FB_FREE"]


def test_gpu_without_any_series_fails_naming_its_index():
    one_gpu = "\n".join(line for line in TWO_H100.splitlines() if 'gpu="1"' not in line) + "\n"
    outcome = judge(one_gpu, gpus=2)
    assert not outcome["ok"]
    assert outcome["problems"] == ["node gpu-node-1: 2 GPU(s) expected from capacity nvidia.com/gpu=2, series for 1 GPU(s) (0); "
                                   "no series at all for GPU index 1"]


def test_node_without_exporter_answer_fails_naming_the_node_and_why():
    nodes, dummy = am.gpu_nodes([node("gpu-node-1", 2), node("gpu-node-2", 1)], "nvidia.com/gpu")
    samples = am.by_host(am.parse_metrics(TWO_H100), "Hostname", ["gpu-node-1", "gpu-node-2"])
    outcome = am.evaluate(nodes, samples, CONFIG, {"gpu-node-2": "no ready exporter endpoint on this node"})
    assert not outcome["ok"]
    assert outcome["problems"] == ["node gpu-node-2: no metrics for its 1 GPU(s): no ready exporter endpoint on this node"]


def test_series_without_hostname_fail_the_identity():
    # without the host label nothing is attributed to a node by label ...
    assert am.by_host(am.parse_metrics(README_FORMAT), "Hostname", ["gpu-node-1"]) == {}
    # ... and read as the node's own exporter answer (pod proxy) the identity is incomplete
    nodes, dummy = am.gpu_nodes([node("gpu-node-1", 1)], "nvidia.com/gpu")
    outcome = am.evaluate(nodes, {"gpu-node-1": am.parse_metrics(README_FORMAT)}, CONFIG)
    assert not outcome["ok"]
    assert outcome["problems"] == ["node gpu-node-1 GPU 0 (GPU-604ac76c-d9cf-fef3-62e9-d92044ab6e52): series without device "
                                   "identity (DCGM_FI_DEV_GPU_UTIL lacks Hostname; DCGM_FI_DEV_FB_FREE lacks Hostname; "
                                   "DCGM_FI_DEV_FB_USED lacks Hostname)"]


def test_advisory_metrics_never_fail():
    text = without_lines(without_lines(TWO_H100, "DCGM_FI_DEV_POWER_USAGE", 0), "DCGM_FI_DEV_POWER_USAGE", 1)
    outcome = judge(text)
    assert outcome["ok"]
    assert outcome["advisory"]["power"]["ok"] is False
    assert outcome["advisory"]["power"]["missing"] == [
        "node gpu-node-1 GPU 0 (GPU-1d4aa5ce-c219-9f97-a29b-d4298760dab3)", "node gpu-node-1 GPU 1 (GPU-8f2c1d90-3e5a-4b17-9c2e-5da9abb51763)"]
    assert outcome["advisory"]["temperature"]["ok"] and outcome["advisory"]["interconnect"]["ok"]


def test_no_node_is_never_ok():
    outcome = am.evaluate([], {}, CONFIG)
    assert outcome["ok"] is False


def test_metric_names_of_another_vendor_come_from_the_profile():
    # a whole profile dict (overrides would deep-merge into NVIDIA's advisory names)
    profile = accelerator_profiles.resolve(dict(NVIDIA, resource="amd.com/gpu", metrics={
        "namespace": "kube-amd-gpu", "service": "amd-metrics-exporter", "port": "http", "path": "/metrics",
        "utilization": ["amd_gpu_gfx_activity"], "memory": ["amd_gpu_used_vram"],
        "identity_labels": ["gpu_id", "serial_number", "hostname"], "index_label": "gpu_id", "uuid_label": "serial_number",
        "host_label": "hostname", "advisory": {"power": ["amd_gpu_power_usage"]}}))
    text = ("# HELP amd_gpu_gfx_activity Graphics engine usage (%)\n# TYPE amd_gpu_gfx_activity gauge\n"
            'amd_gpu_gfx_activity{gpu_id="0",serial_number="692251001124",hostname="mi300-1"} 12\n'
            "# HELP amd_gpu_used_vram Used VRAM\n# TYPE amd_gpu_used_vram gauge\n"
            'amd_gpu_used_vram{gpu_id="0",serial_number="692251001124",hostname="mi300-1"} 1024\n')
    outcome = judge(text, gpus=1, name="mi300-1", config=profile["metrics"])
    assert outcome["ok"], outcome["problems"]
    assert outcome["devices"][0]["uuid"] == "692251001124"
    assert outcome["advisory"] == {"power": {"names": ["amd_gpu_power_usage"], "ok": False,
                                             "missing": ["node mi300-1 GPU 0 (692251001124)"]}}


def test_metrics_table_has_a_row_per_gpu_and_a_column_per_metric():
    text = without_lines(TWO_H100, "DCGM_FI_DEV_FB_USED", 1)
    table = am.metrics_table(judge(text)["devices"], CONFIG)
    lines = table.splitlines()
    assert lines[0] == ("| node | GPU | UUID | model | DCGM_FI_DEV_GPU_UTIL | DCGM_FI_DEV_FB_USED | DCGM_FI_DEV_FB_FREE | "
                        "DCGM_FI_DEV_GPU_TEMP | DCGM_FI_DEV_POWER_USAGE | DCGM_FI_PROF_NVLINK_TX_BYTES | "
                        "DCGM_FI_DEV_NVLINK_BANDWIDTH_TOTAL | pods |")
    assert lines[2] == ("| gpu-node-1 | 0 | GPU-1d4aa5ce-c219-9f97-a29b-d4298760dab3 | NVIDIA H100 80GB HBM3 | 97 | 40000 | 41004 | "
                        "61 | 512.847 | — | 8127354 | ml/train-0 |")
    assert lines[3].split(" | ")[5] == "**missing**"
    assert len(lines) == 4


# -- nodes, Service, Endpoints, proxy answers -------------------------------


def test_gpu_nodes_from_the_recorded_node_and_time_slicing():
    recorded = load_json("k8s-fixtures/objects/node-gpu-node-1.final.json")["response"]
    shared = node("ts-node", 8, labels={"nvidia.com/gpu.replicas": "4"})
    found, without = am.gpu_nodes([recorded, node("cpu-node"), shared], "nvidia.com/gpu", CONFIG["replicas_label"])
    assert found == [{"node": "gpu-node-1", "resource": "nvidia.com/gpu", "capacity": 2, "replicas": 1, "expected": 2},
                     {"node": "ts-node", "resource": "nvidia.com/gpu", "capacity": 8, "replicas": 4, "expected": 2}]
    assert without == ["cpu-node"]


def test_service_port_by_name_or_number_on_the_recorded_service():
    service = load_json("k8s-fixtures/objects/service-exporter.create.json")["response"]
    assert am.service_port(service, "metrics")["port"] == 9400
    assert am.service_port(service, "9400")["name"] == "metrics"
    assert am.service_port(service, "gpu-metrics") is None
    assert am.describe_ports(service) == "metrics:9400->9400"


def test_endpoint_addresses_of_the_recorded_endpoints_and_a_ready_one():
    for name in ("endpoints-exporter.no-pods", "endpoints-exporter.pod-pending"):
        assert am.endpoint_addresses(load_json("k8s-fixtures/objects/%s.json" % name)["response"], "metrics") == {"ready": [], "not_ready": []}
    endpoints = {"subsets": [{"addresses": [{"ip": "10.42.1.5", "nodeName": "gpu-node-1", "targetRef": {"kind": "Pod", "name": "dcgm-a"}}],
                              "notReadyAddresses": [{"ip": "10.42.2.5", "nodeName": "gpu-node-2", "targetRef": {"kind": "Pod", "name": "dcgm-b"}}],
                              "ports": [{"name": "gpu-metrics", "port": 9400, "protocol": "TCP"}]}]}
    assert am.endpoint_addresses(endpoints, "gpu-metrics") == {
        "ready": [{"ip": "10.42.1.5", "node": "gpu-node-1", "pod": "dcgm-a", "port": 9400}],
        "not_ready": [{"ip": "10.42.2.5", "node": "gpu-node-2", "pod": "dcgm-b", "port": 9400}]}
    assert am.endpoint_addresses(endpoints, "other") == {"ready": [], "not_ready": []}


@pytest.mark.parametrize("name, kind", [
    ("503-proxy-service-no-endpoints", "no_endpoints"),
    ("503-proxy-service-unknown-port-name", "no_endpoints"),
    ("503-proxy-service-no-endpoints-pod-pending", "no_endpoints"),
    ("503-proxy-service-unknown-port-number", "no_port"),
    ("404-proxy-service-missing", "missing_service"),
    ("404-proxy-pod-missing", "missing_pod"),
    ("400-proxy-pod-pending-no-ip", "no_address"),
    ("403-nobody-cert-list-pods", None),
])
def test_proxy_answers_from_the_recorded_bodies(name, kind):
    fixture = load_json("k8s-fixtures/errors/%s.json" % name)
    exc = error_from_status(fixture["status_code"], fixture["response"], "GET", fixture["request"]["path"])
    assert am.proxy_answer(exc) == kind


def test_dial_error_is_an_unreachable_backend():
    body = {"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure", "reason": "ServiceUnavailable", "code": 503,
            "message": "error trying to reach service: dial tcp 10.42.0.5:9400: connect: connection refused"}
    assert am.proxy_answer(error_from_status(503, body, "GET", "/x")) == "unreachable_backend"
