"""Pure evaluation of ai_service_metrics and pod_autoscaling on real shapes: recorded APIServices and HPAs
(../shared/k8s-fixtures), Prometheus HTTP API answers in the documented format, rendered manifests
validated against the real CRDs, and the test app's metrics text through prometheus_client's parser."""

import pytest

from ansible_collections.ai_conformance.rke2.plugins.module_utils import metrics_app as app
from ansible_collections.ai_conformance.rke2.plugins.module_utils import monitoring as mon
from ansible_collections.ai_conformance.rke2.plugins.module_utils.testpods import hardening_problems
from tests.support import crdschema
from tests.support.monitoring_cluster import prometheus_object
from tests.support.shared import fixture_response, load_json

# /api/v1/targets and /api/v1/query answers as the Prometheus HTTP API documents them
TARGETS = {"status": "success", "data": {"activeTargets": [
    {"discoveredLabels": {"__address__": "10.42.0.20:8080", "__metrics_path__": "/cgi-bin/metrics", "__scheme__": "http",
                          "job": "serviceMonitor/aic-x/aic-metrics-app/0"},
     "labels": {"container": "app", "endpoint": "http-metrics", "instance": "10.42.0.20:8080", "job": "aic-metrics-app",
                "namespace": "aic-x", "pod": "aic-metrics-app-7c9d8b6f5-abcde", "service": "aic-metrics-app"},
     "scrapePool": "serviceMonitor/aic-x/aic-metrics-app/0", "scrapeUrl": "http://10.42.0.20:8080/cgi-bin/metrics",
     "globalUrl": "http://10.42.0.20:8080/cgi-bin/metrics", "lastError": "", "lastScrape": "2026-12-01T18:00:01.123456789Z",
     "lastScrapeDuration": 0.0043, "health": "up", "scrapeInterval": "5s", "scrapeTimeout": "5s"}],
    "droppedTargets": []}}
QUERY = {"status": "success", "data": {"resultType": "vector", "result": [
    {"metric": {"__name__": "aic_test_requests_total", "namespace": "aic-x", "pod": "p", "run": "r1"},
     "value": [1764612005.123, "20"]}]}}


def apiservices():
    return fixture_response("k8s-fixtures", "objects", "apiservices.list.json")["items"]


def test_recorded_apiservices_have_no_custom_metrics_adapter():
    items = apiservices()
    assert mon.find_apiservice(items) is None
    ok, message = mon.apiservice_available(None)
    assert not ok and message == "APIService v1beta1.custom.metrics.k8s.io does not exist: no custom metrics adapter is registered"


def test_available_and_unavailable_apiservice_conditions():
    local = apiservices()[0]
    ok, message = mon.apiservice_available(local, name=local["metadata"]["name"])
    assert ok and message.endswith("is Available: Local APIServices are always available")
    broken = {"metadata": {"name": mon.CUSTOM_METRICS_APISERVICE},
              "spec": {"service": {"namespace": "monitoring", "name": "prometheus-adapter"}},
              "status": {"conditions": [{"type": "Available", "status": "False", "reason": "FailedDiscoveryCheck",
                                         "message": "failing or missing response from https://10.43.1.2:443/apis/custom.metrics.k8s.io/v1beta1"}]}}
    ok, message = mon.apiservice_available(broken)
    assert not ok
    assert "(service monitoring/prometheus-adapter) is not Available: [Available=False (FailedDiscoveryCheck: failing" in message


@pytest.mark.parametrize("name,reason", [("hpa-load-pods", "FailedGetPodsMetric"), ("hpa-load-object", "FailedGetObjectMetric"),
                                         ("hpa-load-external", "FailedGetExternalMetric"),
                                         ("hpa-gpu-inference.reconciled", "FailedGetObjectMetric")])
def test_recorded_hpa_without_adapter_reports_its_metric_failure(name, reason):
    hpa = fixture_response("k8s-fixtures", "objects", "%s.json" % name)
    failure = mon.hpa_metric_failure(hpa)
    assert failure[0] == reason
    assert failure[1].startswith("the HPA was unable to compute the replica count: unable to get ")
    assert (mon.NO_CUSTOM_METRICS_API in failure[1]) is (reason != "FailedGetExternalMetric")
    ok, message = mon.evaluate_scale_up(hpa, 1)
    assert not ok and "currentReplicas 1, desiredReplicas 0" in message and "ScalingActive=False (%s" % reason in message
    assert mon.hpa_summary(hpa)["currentMetrics"] == [{"type": ""}]


def test_hpa_create_answer_has_no_conditions_yet():
    hpa = fixture_response("k8s-fixtures", "objects", "hpa-load-pods.create.json")
    assert mon.hpa_metric_failure(hpa) is None
    assert mon.evaluate_scale_up(hpa, 1)[0] is False


def test_scaled_hpa_passes_and_scale_down_is_judged():
    hpa = fixture_response("k8s-fixtures", "objects", "hpa-load-pods.json")
    hpa["status"] = {"currentReplicas": 3, "desiredReplicas": 3, "currentMetrics": [
        {"type": "Pods", "pods": {"metric": {"name": "aic_test_load"}, "current": {"averageValue": "16666m"}}}],
        "conditions": [{"type": "AbleToScale", "status": "True", "reason": "SucceededRescale",
                        "message": "the HPA controller was able to update the target scale to 3"},
                       {"type": "ScalingActive", "status": "True", "reason": "ValidMetricFound",
                        "message": "the HPA was able to successfully calculate a replica count from pods metric aic_test_load"}]}
    ok, message = mon.evaluate_scale_up(hpa, 1)
    assert ok and message.startswith("the HPA scaled the Deployment from 1 to 3 replicas (desired 3)")
    assert mon.evaluate_scale_down(hpa, 3, 1)[0] is False
    hpa["status"]["currentReplicas"] = 1
    assert mon.evaluate_scale_down(hpa, 3, 1) == (True, "the HPA scaled the Deployment back from 3 to 1 replicas")


def test_rendered_hpa_matches_the_recorded_request():
    recorded = load_json("k8s-fixtures", "objects", "hpa-load-pods.create.json")["request"]["body"]
    hpa = mon.render_hpa("load-pods", "hpa-fixtures", "load-pods", "aic_test_load", "Pods", 10, 1, 3, {})
    assert hpa["spec"]["metrics"] == recorded["spec"]["metrics"]
    assert hpa["spec"]["scaleTargetRef"] == recorded["spec"]["scaleTargetRef"]
    obj = mon.render_hpa("h", "ns", "app", "m", "Object", 100, 1, 3, {}, service="svc")
    assert obj["spec"]["metrics"][0]["object"]["describedObject"] == {"apiVersion": "v1", "kind": "Service", "name": "svc"}
    with pytest.raises(ValueError):
        mon.render_hpa("h", "ns", "app", "m", "External", 1, 1, 3, {})


def test_targets_and_query_answers():
    data = mon.api_data(TARGETS)
    target = mon.find_target(data, "serviceMonitor/aic-x/aic-metrics-app/0")
    assert mon.evaluate_target(target) == ("up", "target http://10.42.0.20:8080/cgi-bin/metrics is up (last scrape 2026-12-01T18:00:01.123456789Z)")
    assert mon.find_target(data, "serviceMonitor/other/x/0") is None
    down = dict(target, health="down", lastError='Get "http://10.42.0.20:8080/cgi-bin/metrics": context deadline exceeded')
    assert mon.evaluate_target(down)[1].endswith("is down: Get \"http://10.42.0.20:8080/cgi-bin/metrics\": context deadline exceeded")
    assert mon.evaluate_target(dict(target, health="unknown"))[0] == "unknown"
    samples = mon.vector_samples(mon.api_data(QUERY))
    assert mon.evaluate_count(samples, 20) == ("exact", 20.0, "the scraped counter is 20, exactly the 20 requests sent")
    assert mon.evaluate_count(samples, 21)[0] == "below"
    assert mon.evaluate_count(samples, 19)[0] == "above"
    assert mon.evaluate_count([], 1)[0] == "below"
    assert mon.evaluate_count(samples * 2, 20)[0] == "many"


def test_prometheus_api_errors():
    with pytest.raises(mon.PrometheusAPIError, match="bad_data"):
        mon.api_data({"status": "error", "errorType": "bad_data", "error": "invalid parameter \"query\""})
    with pytest.raises(mon.PrometheusAPIError, match="not a Prometheus API answer"):
        mon.api_data("<html>Grafana</html>")
    with pytest.raises(mon.PrometheusAPIError, match="expected a vector"):
        mon.vector_samples({"resultType": "matrix", "result": []})


def test_prometheus_readiness_and_choice():
    ready, unready = prometheus_object(), prometheus_object(available=False)
    unready["metadata"]["name"] = "a-broken"
    assert mon.prometheus_ready(ready)[0] is True
    ok, message = mon.prometheus_ready(unready)
    assert not ok and "is not available: [Available=False (NoPodReady" in message
    assert mon.pick_prometheus([unready, ready])[0] is ready
    assert mon.pick_prometheus([], None)[1].startswith("no Prometheus was found")
    assert "monitoring/nope (option prometheus) was not found" in mon.pick_prometheus([ready], "monitoring/nope")[1]
    assert mon.route_prefix(ready) == "" and mon.route_prefix({"spec": {"routePrefix": "/prom/"}}) == "/prom"
    crdschema.validate("prometheus-operator", dict((k, v) for k, v in ready.items() if k != "status"))


@pytest.mark.parametrize("selector,ns_selector,labels,ns_labels,namespace,selected", [
    ({}, {}, {}, {}, "aic-x", True),
    (None, {}, {"a": "b"}, {}, "aic-x", False),                          # null selects nothing
    ({"matchLabels": {"release": "kps"}}, {}, {"release": "kps"}, {}, "aic-x", True),
    ({"matchLabels": {"release": "kps"}}, {}, {}, {}, "aic-x", False),
    ({}, None, {}, {}, "aic-x", False),                                  # null namespace selector: own namespace only
    ({}, None, {}, {}, "monitoring", True),
    ({}, {"matchExpressions": [{"key": "team", "operator": "Exists"}]}, {}, {"team": "x"}, "aic-x", True),
    ({"matchExpressions": [{"key": "tier", "operator": "NotIn", "values": ["infra"]}]}, {}, {"tier": "infra"}, {}, "aic-x", False),
])
def test_monitor_selection(selector, ns_selector, labels, ns_labels, namespace, selected):
    prometheus = prometheus_object()
    prometheus["spec"]["serviceMonitorSelector"] = selector
    prometheus["spec"]["serviceMonitorNamespaceSelector"] = ns_selector
    ok, message = mon.monitor_selection(prometheus, namespace, labels, ns_labels)
    assert ok is selected
    assert message.startswith("Prometheus monitoring/kube-prometheus-stack-prometheus uses serviceMonitorSelector ")


def test_adopted_labels_come_from_match_labels_only():
    prometheus = prometheus_object({"matchLabels": {"release": "kps"}, "matchExpressions": [{"key": "x", "operator": "Exists"}]},
                                   {"matchLabels": {"monitoring": "on"}})
    labels, ns_labels = app.monitor_labels(prometheus, {"base": "1"}, {"extra": "2"})
    assert labels == {"base": "1", "release": "kps", "extra": "2"} and ns_labels == {"monitoring": "on"}
    assert app.monitor_labels(prometheus, {"base": "1"}, adopt=False) == ({"base": "1"}, {})


def test_custom_metrics_discovery_and_values():
    doc = {"kind": "APIResourceList", "apiVersion": "v1", "groupVersion": "custom.metrics.k8s.io/v1beta1", "resources": [
        {"name": "pods/aic_test_load", "singularName": "", "namespaced": True, "kind": "MetricValueList", "verbs": ["get"]},
        {"name": "namespaces/gpu_utilization", "singularName": "", "namespaced": False, "kind": "MetricValueList", "verbs": ["get"]}]}
    assert mon.metric_listed(doc, "aic_test_load") and not mon.metric_listed(doc, "gpu_utilization")
    assert mon.metric_listed(doc, "gpu_utilization", "namespaces")
    assert mon.custom_metrics_listed(None) == []
    values = mon.metric_values({"items": [{"describedObject": {"kind": "Pod", "name": "p1"}, "value": "16666m"},
                                          {"describedObject": {"kind": "Pod", "name": "p2"}, "value": "50"}]})
    assert values == {"p1": pytest.approx(16.666), "p2": 50.0}
    assert mon.parse_quantity("2Ki") == 2048.0 and mon.parse_quantity("x") is None


def test_operator_kinds_from_recorded_discovery():
    served = load_json("k8s-fixtures", "discovery", "apis__monitoring.coreos.com__v1.json")
    assert mon.operator_kinds_missing(served) == []
    assert mon.operator_kinds_missing(None) == list(mon.OPERATOR_KINDS)


def test_exposed_value_parses_the_apps_metrics_text():
    text = ('# HELP aic_test_requests_total Requests received on /cgi-bin/hit, by run id.\n# TYPE aic_test_requests_total counter\n'
            'aic_test_requests_total{run="r1"} 20\naic_test_requests_total{run="r2"} 3\n'
            '# HELP aic_test_load Load gauge.\n# TYPE aic_test_load gauge\naic_test_load 12.5\n')
    assert mon.exposed_value(text, "aic_test_requests_total", {"run": "r1"}) == 20
    assert mon.exposed_value(text, "aic_test_requests_total", {"run": "r9"}) is None
    assert mon.exposed_value(text, "aic_test_load") == 12.5


def test_app_manifests_are_restricted_pinned_and_valid():
    objects = app.render_all({"image_registry": "mirror.local:5000"}, "aic-x", {"l": "v"}, {"release": "kps"})
    configmap, deployment, service, monitor = objects
    assert sorted(configmap["data"]) == ["hit", "metrics", "set"]
    pod = deployment["spec"]["template"]["spec"]
    assert hardening_problems(pod) == []
    assert pod["containers"][0]["image"] == "mirror.local:5000/e2e-test-images/busybox:1.36.1-1"
    assert pod["containers"][0]["command"][:1] == ["httpd"]
    assert pod["volumes"][0]["configMap"]["defaultMode"] == 0o555
    assert service["spec"]["ports"][0]["name"] == monitor["spec"]["endpoints"][0]["port"] == app.PORT_NAME
    assert monitor["metadata"]["labels"] == {"l": "v", "release": "kps"}
    crdschema.validate("prometheus-operator", monitor)
    assert app.render_all({}, "aic-x", {}, with_monitor=False)[-1]["kind"] == "Service"


def test_app_answers_and_run_labels():
    assert app.run_label("Run_42") == "run-42" and app.run_label("___") == "run"
    assert app.hit_path("Run_42") == "/cgi-bin/hit?run=run-42"
    assert app.hit_ok("ok run-42 3\n", "Run_42") == 3 and app.hit_ok("error: x", "run-42") is None
    assert app.set_path(50) == "/cgi-bin/set?value=50" and app.set_path(0.5) == "/cgi-bin/set?value=0.5"
    assert app.set_ok("ok load 50\n", 50) and not app.set_ok("error", 50)
    with pytest.raises(ValueError):
        app.format_value(-1)


def test_accelerator_nodes_from_recorded_nodes():
    nodes = fixture_response("k8s-fixtures", "objects", "nodes.list.final.json")["items"]
    assert mon.accelerator_nodes(nodes, "nvidia.com/gpu") == sorted(
        n["metadata"]["name"] for n in nodes if n["status"].get("allocatable", {}).get("nvidia.com/gpu") not in (None, "0"))
    assert "gpu-node-2" in mon.accelerator_nodes(nodes, "nvidia.com/gpu")
    assert mon.accelerator_nodes(nodes, "amd.com/gpu") == []
