"""The ai_service_metrics module over HTTP against the fake API server.

tests/support/monitoring_cluster.py plays the Prometheus Operator, Prometheus' HTTP API behind the service
proxy, the metrics app, the Deployment controller and the kubelet.
"""

import pytest

from ansible_collections.ai_conformance.rke2.plugins.modules import ai_service_metrics
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
    args = {"kubeconfig": fake.write_kubeconfig(str(tmp_path / "kubeconfig")), "timeout": 4, "run_id": "Run_42", "requests": 7}
    args.update(options)
    out = run_module(ai_service_metrics, args, capsys, check_mode=check_mode)
    assert out["changed"] is False
    return out["result"]


def evidence(result, name):
    for item in result["evidence"]:
        if item["name"] == name:
            return item["content"]
    raise AssertionError("no evidence %s in %s" % (name, [e["name"] for e in result["evidence"]]))


def test_workload_metrics_are_discovered_and_collected_exactly(fake, cluster_factory, tmp_path, capsys):
    cluster = cluster_factory(scrape_delay=1)
    result = run(fake, tmp_path, capsys)
    found = checks(result)
    assert result["status"] == "passed", [(c["name"], c["status"], c["message"]) for c in result["checks"]]
    assert found["target_discovered"]["kind"] == "exercise" and found["metrics_collected"]["kind"] == "exercise"
    assert found["metrics_collected"]["message"] == "the scraped counter is 7, exactly the 7 requests sent"
    assert "Prometheus 3.7.3 answers through services/prometheus-operated:web in monitoring" in found["prometheus_reachable"]["message"]
    target = evidence(result, "target")
    assert target["health"] == "up" and target["scrapePool"].startswith("serviceMonitor/aic-ai-service-metrics-")
    query = evidence(result, "query")
    assert query["query"].startswith('aic_test_requests_total{namespace="aic-ai-service-metrics-') and query["query"].endswith(',run="run-42"}')
    assert query["result"]["result"][0]["value"][1] == "7"
    assert 'aic_test_requests_total{run="run-42"} 7' in evidence(result, "workload-metrics")
    # exactly N requests went through the service proxy, and Prometheus was polled until the lagging scrape caught up
    hits = fake.requests_to("GET", r"/services/aic-metrics-app(%3A|:)http-metrics/proxy/cgi-bin/hit$")
    assert len(hits) == 7 and all(r.query == {"run": "run-42"} for r in hits)
    assert len([q for q in cluster.queries if q.startswith("aic_test_requests_total")]) >= 2
    assert found["gpu_metrics_collected"]["status"] == "skipped"
    # the test pods are restricted and pinned; the ServiceMonitor targets the app's port
    monitors = list(fake.requests_to("POST", "/servicemonitors$"))
    assert len(monitors) == 1
    assert leftovers(fake) == []


def test_gpu_metrics_are_reported_when_collected(fake, cluster_factory, tmp_path, capsys):
    cluster_factory(gpu_series=8)
    result = run(fake, tmp_path, capsys)
    assert checks(result)["gpu_metrics_collected"]["status"] == "passed"
    assert "8 DCGM_FI_DEV_GPU_UTIL series" in checks(result)["gpu_metrics_collected"]["message"]


def test_no_prometheus_fails_saying_so_and_leaves_nothing(fake, tmp_path, capsys):
    """The issue's definition of done (the recorded cluster serves the operator CRDs but runs no Prometheus)."""
    result = run(fake, tmp_path, capsys)
    found = checks(result)
    assert result["status"] == "failed"
    assert found["prometheus_operator_api"]["status"] == "passed"
    assert found["prometheus_found"]["status"] == "failed" and found["prometheus_found"]["cause"] == "not_installed"
    assert found["prometheus_found"]["message"].startswith("no Prometheus was found")
    assert all(found[name]["status"] == "skipped" for name in ai_service_metrics.ACTIVE_CHECKS)
    assert not fake.requests_to("POST")
    assert leftovers(fake) == []


def test_no_prometheus_operator_is_its_own_failure(fake, tmp_path, capsys):
    fake.remove_group_version("monitoring.coreos.com/v1")
    result = run(fake, tmp_path, capsys)
    check = checks(result)["prometheus_operator_api"]
    assert result["status"] == "failed" and check["cause"] == "not_installed"
    assert check["message"].startswith("no Prometheus Operator: monitoring.coreos.com/v1 does not serve Prometheus, ServiceMonitor, PodMonitor")
    assert "prometheus_found" not in checks(result)


def test_target_down_fails_with_its_last_error(fake, cluster_factory, tmp_path, capsys):
    cluster_factory(target_health="down")
    result = run(fake, tmp_path, capsys, timeout=2)
    check = checks(result)["target_discovered"]
    assert result["status"] == "failed" and check["status"] == "failed"
    assert "discovered the workload's target but it is down" in check["message"]
    assert "connect: connection refused" in check["message"]
    assert evidence(result, "target")["health"] == "down"
    assert checks(result)["metrics_collected"]["status"] == "skipped"
    assert leftovers(fake) == []


def test_selector_the_monitor_cannot_meet_fails_naming_the_selector(fake, cluster_factory, tmp_path, capsys):
    cluster_factory(monitor_selector={"matchExpressions": [{"key": "team", "operator": "In", "values": ["ml"]}]})
    result = run(fake, tmp_path, capsys)
    check = checks(result)["metrics_workload"]
    assert result["status"] == "failed"
    assert "would never be discovered" in check["message"]
    assert "serviceMonitorSelector team In ml" in check["message"]
    assert not fake.requests_to("POST", "/servicemonitors$")
    assert leftovers(fake) == []


def test_selector_labels_are_adopted_like_a_user_would(fake, cluster_factory, tmp_path, capsys):
    cluster_factory(monitor_selector={"matchLabels": {"release": "kube-prometheus-stack"}})
    result = run(fake, tmp_path, capsys)
    assert result["status"] == "passed", checks(result)
    assert evidence(result, "selection")["service_monitor_labels"]["release"] == "kube-prometheus-stack"


def test_selector_not_adopted_means_never_discovered(fake, cluster_factory, tmp_path, capsys):
    cluster_factory(monitor_selector={"matchLabels": {"release": "kube-prometheus-stack"}})
    result = run(fake, tmp_path, capsys, adopt_prometheus_selector=False)
    message = checks(result)["metrics_workload"]["message"]
    assert result["status"] == "failed"
    assert "uses serviceMonitorSelector release=kube-prometheus-stack" in message


def test_prometheus_not_available_fails(fake, cluster_factory, tmp_path, capsys):
    cluster_factory()
    from tests.support.monitoring_cluster import prometheus_object
    fake.put_object(prometheus_object(available=False))
    result = run(fake, tmp_path, capsys)
    check = checks(result)["prometheus_ready"]
    assert result["status"] == "failed" and "is not available: [Available=False (NoPodReady" in check["message"]
    assert not fake.requests_to("POST")


def test_prometheus_service_without_endpoints_is_an_error(fake, cluster_factory, tmp_path, capsys):
    cluster_factory()
    service = fake.get_object("v1", "services", "prometheus-operated", "monitoring")
    fake.put_object(fake.endpoints_for(service, []))  # no Prometheus pod ready: Endpoints without subsets
    result = run(fake, tmp_path, capsys)
    check = checks(result)["prometheus_reachable"]
    assert result["status"] == "error" and check["cause"] == "api_unavailable"
    assert 'no endpoints available for service "prometheus-operated"' in check["message"]


def test_check_mode_creates_nothing(fake, cluster_factory, tmp_path, capsys):
    cluster_factory()
    result = run(fake, tmp_path, capsys, check_mode=True)
    assert result["status"] == "skipped"
    assert checks(result)["metrics_collected"]["message"] == "not run: check mode creates nothing"
    assert not fake.requests_to("POST")


def test_api_failure_mid_check_is_an_error_and_cleans_up(fake, cluster_factory, tmp_path, capsys):
    cluster_factory()
    fake.fail("POST", "/servicemonitors$", 500)
    result = run(fake, tmp_path, capsys)
    assert result["status"] == "error"
    check = checks(result)["ai_service_metrics_run"]
    assert check["cause"] == "api_unavailable" and "/servicemonitors" in check["message"]
    assert leftovers(fake) == []
    assert fake.requests_to("DELETE", "/api/v1/namespaces/aic-ai-service-metrics-")


def test_counter_above_the_requests_sent_fails(fake, cluster_factory, tmp_path, capsys):
    cluster = cluster_factory()
    real = cluster.instant_query

    def double_counting(promql):  # a Prometheus that scrapes the target twice (e.g. two monitors on one Service)
        answer = real(promql)
        if promql.startswith("aic_test_requests_total") and isinstance(answer, dict):
            answer["data"]["result"] = answer["data"]["result"] * 2
        return answer

    cluster.instant_query = double_counting
    result = run(fake, tmp_path, capsys)
    check = checks(result)["metrics_collected"]
    assert result["status"] == "failed" and check["status"] == "failed"
    assert "2 series match, expected one" in check["message"]
    assert leftovers(fake) == []


def test_target_never_discovered_although_selected_says_so(fake, cluster_factory, tmp_path, capsys):
    cluster = cluster_factory()
    cluster.targets = lambda fake_: []  # the operator never turns the ServiceMonitor into scrape config
    result = run(fake, tmp_path, capsys, timeout=2)
    check = checks(result)["target_discovered"]
    assert result["status"] == "failed" and check["kind"] == "exercise"
    assert check["message"].startswith("Prometheus never discovered the workload's target within 2s: ")
    assert "uses serviceMonitorSelector {} (selects everything) and serviceMonitorNamespaceSelector {} (selects everything)" in check["message"]
    assert "is the Prometheus Operator running" in check["message"]
    assert leftovers(fake) == []


def test_prometheus_service_option_is_used_and_validated(fake, cluster_factory, tmp_path, capsys):
    cluster_factory()
    result = run(fake, tmp_path, capsys, prometheus_service="monitoring/prometheus-operated:web")
    assert result["status"] == "passed", [(c["name"], c["status"], c["message"]) for c in result["checks"]]
    assert "prometheus_found" not in checks(result)  # no Prometheus object needed when the Service is given
    bad = run(fake, tmp_path, capsys, prometheus_service="prometheus-operated")
    assert bad["status"] == "error"
    assert "prometheus_service must be namespace/name:port" in checks(bad)["ai_service_metrics_options"]["message"]


def test_app_not_reachable_through_the_proxy_is_an_error(fake, cluster_factory, tmp_path, capsys):
    cluster_factory()
    fake.fail("GET", "/services/aic-metrics-app.*/proxy/", fixture="503-proxy-service-no-endpoints")
    result = run(fake, tmp_path, capsys, timeout=2)
    check = checks(result)["metrics_workload"]
    assert result["status"] == "error" and check["cause"] == "network_policy"
    assert "does not answer through the API server's service proxy" in check["message"]
    assert "no endpoints available for service" in check["message"]
    assert leftovers(fake) == []
