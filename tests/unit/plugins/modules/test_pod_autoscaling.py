"""The pod_autoscaling module over HTTP against the fake API server.

tests/support/monitoring_cluster.py plays Prometheus, prometheus-adapter (APIService + custom metrics API),
the HPA controller (on its own clock), the Deployment controller and the kubelet; without an adapter the HPA
reports the condition a real v1.34 controller reported (objects/hpa-load-pods.json).
"""

import time

import pytest

from ansible_collections.ai_conformance.rke2.plugins.modules import pod_autoscaling
from tests.support.fakeapi import FakeKubeAPI
from tests.support.modrun import checks, run_module
from tests.support.monitoring_cluster import MonitoringCluster, leftovers


@pytest.fixture()
def fake():
    with FakeKubeAPI() as server:
        yield server


@pytest.fixture()
def cluster_factory(fake):
    made = []

    def make(**options):
        made.append(MonitoringCluster(fake, **options))
        return made[-1]

    yield make
    for cluster in made:
        cluster.close()


def run(fake, tmp_path, capsys, check_mode=False, **options):
    args = {"kubeconfig": fake.write_kubeconfig(str(tmp_path / "kubeconfig")), "timeout": 6, "run_id": "t1"}
    args.update(options)
    out = run_module(pod_autoscaling, args, capsys, check_mode=check_mode)
    assert out["changed"] is False
    return out["result"]


def evidence(result, name):
    for item in result["evidence"]:
        if item["name"] == name:
            return item["content"]
    raise AssertionError("no evidence %s in %s" % (name, [e["name"] for e in result["evidence"]]))


def test_hpa_scales_up_on_the_custom_metric(fake, cluster_factory, tmp_path, capsys):
    cluster = cluster_factory()
    result = run(fake, tmp_path, capsys)
    found = checks(result)
    assert result["status"] == "passed", [(c["name"], c["status"], c["message"]) for c in result["checks"]]
    assert found["custom_metrics_apiservice"]["message"].startswith(
        "APIService v1beta1.custom.metrics.k8s.io (service monitoring/prometheus-adapter) is Available: all checks passed")
    assert found["custom_metric_listed"]["kind"] == "exercise"
    assert found["hpa_scales_up"]["kind"] == "exercise" and found["hpa_scales_up"]["status"] == "passed"
    assert "scaled the Deployment from 1 to 3 replicas" in found["hpa_scales_up"]["message"]
    assert "ScalingActive=True (ValidMetricFound" in found["hpa_scales_up"]["message"]
    assert found["hpa_scales_down"]["status"] == "skipped"
    assert evidence(result, "custom-metrics-apiservice")["conditions"][0]["reason"] == "Passed"
    hpa = evidence(result, "hpa")
    assert hpa["currentMetrics"][0]["pods"]["current"]["averageValue"]
    # the gauge was set once, through the service proxy, to the high value
    sets = fake.requests_to("GET", "/services/aic-metrics-app.*/proxy/cgi-bin/set$")
    assert [r.query for r in sets] == [{"value": "50"}]
    # the HPA the module created: autoscaling/v2, Pods metric, target AverageValue 10, 1..3
    posted = list(fake.requests_to("POST", "/horizontalpodautoscalers$"))
    assert len(posted) == 1
    assert max(cluster.max_replicas_seen.values()) == 3
    assert found["gpu_metric_served"]["status"] == "skipped"  # no GPU node: advisory
    assert found["gpu_metric_served"]["message"].startswith("advisory: no node has allocatable nvidia.com/gpu")
    assert leftovers(fake) == []


def test_gpu_pod_gets_gpu_utilization_served(fake, cluster_factory, tmp_path, capsys):
    cluster = cluster_factory(gpu_series=2, gpu_node=True)
    result = run(fake, tmp_path, capsys)
    check = checks(result)["gpu_metric_served"]
    assert result["status"] == "passed", [(c["name"], c["status"], c["message"]) for c in result["checks"]]
    assert check["kind"] == "exercise" and check["message"].startswith("the custom metrics API serves gpu_utilization=37.0 for GPU pod ")
    assert evidence(result, "gpu-metric")["request"].endswith("/pods/aic-gpu-pod/gpu_utilization")
    pod = cluster.gpu_pods[0]
    container = pod["spec"]["containers"][0]
    assert container["resources"]["limits"]["nvidia.com/gpu"] == "1"
    assert {"key": "nvidia.com/gpu", "operator": "Exists", "effect": "NoSchedule"} in pod["spec"]["tolerations"]
    assert leftovers(fake) == []


def test_gpu_node_without_the_gpu_metric_fails(fake, cluster_factory, tmp_path, capsys):
    cluster_factory(gpu_node=True)
    result = run(fake, tmp_path, capsys, timeout=3)
    check = checks(result)["gpu_metric_served"]
    assert result["status"] == "failed" and check["status"] == "failed"
    assert "did not serve gpu_utilization for GPU pod" in check["message"]
    assert "the server could not find the metric gpu_utilization for pods" in check["message"]
    assert checks(result)["hpa_scales_up"]["status"] == "passed"
    assert leftovers(fake) == []


def test_scale_down_when_asked(fake, cluster_factory, tmp_path, capsys):
    cluster_factory()
    result = run(fake, tmp_path, capsys, check_scale_down=True)
    found = checks(result)
    assert result["status"] == "passed", [(c["name"], c["status"], c["message"]) for c in result["checks"]]
    assert found["hpa_scales_down"]["message"] == "the HPA scaled the Deployment back from 3 to 1 replicas"
    sets = fake.requests_to("GET", "/pods/aic-metrics-app-.*/proxy/cgi-bin/set$")
    assert len(sets) == 3 and all(r.query == {"value": "0"} for r in sets)
    assert leftovers(fake) == []


def test_no_adapter_fails_quoting_the_hpa_condition_and_leaves_nothing(fake, cluster_factory, tmp_path, capsys):
    """The issue's definition of done: no custom metrics adapter."""
    cluster_factory(prometheus=False, adapter=False)
    recorded = fake.recorded("objects/hpa-load-pods.json")["response"]["status"]["conditions"][1]
    started = time.monotonic()
    result = run(fake, tmp_path, capsys, timeout=60)
    found = checks(result)
    assert time.monotonic() - started < 30  # stops at the HPA's first sync, not at the timeout
    assert result["status"] == "failed"
    assert found["custom_metrics_apiservice"]["cause"] == "not_installed"
    assert found["custom_metrics_apiservice"]["message"] == (
        "APIService v1beta1.custom.metrics.k8s.io does not exist: no custom metrics adapter is registered")
    check = found["hpa_scales_up"]
    assert check["status"] == "failed" and check["kind"] == "exercise"
    assert check["message"] == "the HPA cannot read its metric aic_test_load: %s: %s" % (recorded["reason"], recorded["message"])
    assert evidence(result, "hpa")["conditions"][1]["reason"] == "FailedGetPodsMetric"
    assert "Warning FailedGetPodsMetric: unable to get metric aic_test_load" in evidence(result, "hpa-events")
    assert found["custom_metric_listed"]["status"] == "skipped"
    assert leftovers(fake) == []


def test_adapter_without_the_metric_fails_after_the_timeout_quoting_the_condition(fake, cluster_factory, tmp_path, capsys):
    cluster_factory(target_health="down")  # Prometheus never scrapes the app: the adapter has no series
    result = run(fake, tmp_path, capsys, timeout=3)
    found = checks(result)
    assert result["status"] == "failed"
    assert "did not list pods/aic_test_load within 3s" in found["custom_metric_listed"]["message"]
    message = found["hpa_scales_up"]["message"]
    assert message.startswith("the HPA cannot read its metric aic_test_load after 3s: FailedGetPodsMetric: ")
    assert "the server could not find the metric aic_test_load for pods" in message
    assert leftovers(fake) == []


def test_apiservice_not_available_is_reported_with_its_conditions(fake, cluster_factory, tmp_path, capsys):
    cluster_factory(adapter_available=False)
    result = run(fake, tmp_path, capsys, timeout=2)
    check = checks(result)["custom_metrics_apiservice"]
    assert result["status"] == "failed" and check["cause"] == "capability"
    assert "is not Available: [Available=False (MissingEndpoints: endpoints for service/prometheus-adapter" in check["message"]
    assert leftovers(fake) == []


def test_hpa_api_not_served(fake, tmp_path, capsys):
    fake.remove_group_version("autoscaling/v2")
    result = run(fake, tmp_path, capsys)
    assert result["status"] == "failed"
    assert checks(result)["autoscaling_v2_served"]["cause"] == "not_installed"
    assert not fake.requests_to("POST")


def test_invalid_options_are_an_error_before_anything_is_created(fake, tmp_path, capsys):
    result = run(fake, tmp_path, capsys, target_value=60, high_value=50)
    assert result["status"] == "error"
    assert "need 1 <= target_value < high_value" in checks(result)["pod_autoscaling_options"]["message"]
    assert not fake.requests_to("POST")


def test_check_mode_only_inspects(fake, cluster_factory, tmp_path, capsys):
    cluster_factory()
    result = run(fake, tmp_path, capsys, check_mode=True)
    assert result["status"] == "skipped"
    assert checks(result)["custom_metrics_apiservice"]["status"] == "passed"
    assert not fake.requests_to("POST")
