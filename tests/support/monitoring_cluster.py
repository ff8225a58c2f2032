"""A fake monitoring cluster for ai_service_metrics and pod_autoscaling: plays the Prometheus Operator and
Prometheus (HTTP API through the service proxy), the metrics app, prometheus-adapter (custom metrics API,
APIService), the HPA controller, the Deployment controller and the kubelet on ``tests.support.fakeapi``.

Independent of the collection's code on purpose: selectors are matched with the fake's own
``selector_matches``, the PromQL the verifier sends is parsed here, and the HPA without an adapter reports
the condition recorded from a real v1.34 controller (``objects/hpa-load-pods.json``).
"""

import math
import re
import threading
import time
import traceback

from tests.support.fakeapi import PRESET_NAMESPACES, selector_matches

MONITORING_NS = "monitoring"
PROMETHEUS = "kube-prometheus-stack-prometheus"
T0 = "2026-12-01T18:00:00Z"
APP_PORT = 8080
ADAPTER_GV = "custom.metrics.k8s.io/v1beta1"


def prometheus_object(monitor_selector=None, namespace_selector=None, available=True):
    """A Prometheus CR as kube-prometheus-stack renders it (selectors {} with *NilUsesHelmValues=false)."""
    cond = {"type": "Available", "status": "True" if available else "False", "lastTransitionTime": T0,
            "reason": "" if available else "NoPodReady", "message": "" if available else "shard 0: pod prometheus-0: 0/2 nodes are available",
            "observedGeneration": 1}
    return {"apiVersion": "monitoring.coreos.com/v1", "kind": "Prometheus",
            "metadata": {"name": PROMETHEUS, "namespace": MONITORING_NS, "generation": 1},
            "spec": {"replicas": 1, "serviceMonitorSelector": {} if monitor_selector is None else monitor_selector,
                     "serviceMonitorNamespaceSelector": {} if namespace_selector is None else namespace_selector,
                     "podMonitorSelector": {}, "podMonitorNamespaceSelector": {}},
            "status": {"availableReplicas": 1 if available else 0, "replicas": 1, "paused": False,
                       "conditions": [cond, {"type": "Reconciled", "status": "True", "lastTransitionTime": T0,
                                             "reason": "", "message": "", "observedGeneration": 1}]}}


class MonitoringCluster:
    """Plays the controllers; ``prometheus``: install a Prometheus; ``adapter``: serve custom metrics."""

    def __init__(self, fake, prometheus=True, adapter=True, target_health="up", scrape_delay=0.5,
                 monitor_selector=None, gpu_series=0, adapter_available=True, app_broken=False, gpu_node=False, tick=0.05):
        self.fake = fake
        self.target_health = target_health
        self.scrape_delay = scrape_delay
        self.gpu_series = gpu_series
        self.app_broken = app_broken
        self.adapter = adapter
        self.apps = {}          # (namespace, pod) -> {"hits": {run: n}, "load": float, "history": [(time, hits, load)]}
        self.queries = []
        self.hpa_syncs = 0
        self.max_replicas_seen = {}
        self._lock = fake._lock  # one lock with the fake: reconcilers run under it
        fake.put_recorded("objects/apiservices.list")
        if gpu_node:
            fake.put_recorded("objects/node-gpu-node-2")  # allocatable nvidia.com/gpu: "2"
        self.gpu_pods = []
        if prometheus:
            fake.create_namespace(MONITORING_NS)
            fake.put_object(prometheus_object(monitor_selector))
            service = fake.put_object({"apiVersion": "v1", "kind": "Service",
                                       "metadata": {"name": "prometheus-operated", "namespace": MONITORING_NS},
                                       "spec": {"clusterIP": "None", "ports": [{"name": "web", "port": 9090, "targetPort": 9090}],
                                                "selector": {"app.kubernetes.io/name": "prometheus"}}})
            prometheus_pod = {"metadata": {"name": "prometheus-%s-0" % PROMETHEUS, "namespace": MONITORING_NS},
                              "spec": {"nodeName": "node-1"}, "status": {"podIP": "10.42.0.5"}}
            fake.put_object(fake.endpoints_for(service, [prometheus_pod]))
            fake.set_service_proxy(MONITORING_NS, "prometheus-operated", None, self.prometheus_api)
        if adapter:
            self.install_adapter(adapter_available)
        fake.add_reconciler(self.reconcile)
        self.errors = []
        self._stop = threading.Event()
        self._ticker = threading.Thread(target=self._tick, args=(tick,), daemon=True)
        self._ticker.start()

    def close(self):
        """Stop the HPA controller's clock; a bug it hit is raised here instead of passing unnoticed."""
        self._stop.set()
        self._ticker.join(2)
        if self.errors:
            raise AssertionError("the played HPA controller failed:\n%s" % self.errors[0])

    def _tick(self, interval):
        """The HPA controller syncs on its own clock, not only after API writes."""
        while not self._stop.wait(interval):
            try:
                with self._lock:
                    self.hpa_controller(self.fake)
            except Exception:
                self.errors.append(traceback.format_exc())
                return

    # ------------------------------------------------------------ adapter
    def install_adapter(self, available=True):
        if available:
            cond = {"type": "Available", "status": "True", "lastTransitionTime": T0, "reason": "Passed", "message": "all checks passed"}
        else:
            cond = {"type": "Available", "status": "False", "lastTransitionTime": T0, "reason": "MissingEndpoints",
                    "message": 'endpoints for service/prometheus-adapter in "monitoring" have no addresses with port name "https"'}
        self.fake.put_object({"apiVersion": "apiregistration.k8s.io/v1", "kind": "APIService",
                              "metadata": {"name": "v1beta1.custom.metrics.k8s.io"},
                              "spec": {"service": {"namespace": MONITORING_NS, "name": "prometheus-adapter", "port": 443},
                                       "group": "custom.metrics.k8s.io", "version": "v1beta1", "insecureSkipTLSVerify": True,
                                       "groupPriorityMinimum": 100, "versionPriority": 100},
                              "status": {"conditions": [cond]}})
        if not available:
            return
        self.fake.set_aggregated_api(ADAPTER_GV, self.custom_metrics_api, self.discovery())

    def discovery(self):
        """The adapter's discovery: a metric is listed once Prometheus holds series of it (relist)."""
        metrics = set()
        with self._lock:
            for state in self.scraped.values():
                metrics.add("aic_test_load")
                if state["hits"]:
                    metrics.add("aic_test_requests_total")
        if self.gpu_series:
            metrics.add("gpu_utilization")
        resources = []
        for metric in sorted(metrics):
            resources.append({"name": "pods/%s" % metric, "singularName": "", "namespaced": True, "kind": "MetricValueList", "verbs": ["get"]})
            resources.append({"name": "namespaces/%s" % metric, "singularName": "", "namespaced": False, "kind": "MetricValueList",
                              "verbs": ["get"]})
        return {"kind": "APIResourceList", "apiVersion": "v1", "groupVersion": ADAPTER_GV, "resources": resources}

    def custom_metrics_api(self, method, path, query):
        if path in ("", "/"):
            return self.discovery()
        match = re.match(r"^/namespaces/([^/]+)/pods/([^/]+)/([^/]+)$", path)
        if not match:
            return 404, {"kind": "Status", "apiVersion": "v1", "status": "Failure", "message": "the server could not find the requested resource",
                         "reason": "NotFound", "code": 404}
        namespace, pod_name, metric = match.groups()
        items = []
        if metric == "gpu_utilization":
            pod = self.fake.get_object("v1", "pods", pod_name, namespace)
            limits = ((pod or {}).get("spec", {}).get("containers") or [{}])[0].get("resources", {}).get("limits", {})
            if self.gpu_series and pod and (pod.get("status") or {}).get("phase") == "Running" and "nvidia.com/gpu" in limits:
                return {"kind": "MetricValueList", "apiVersion": ADAPTER_GV, "metadata": {}, "items": [
                    {"describedObject": {"kind": "Pod", "namespace": namespace, "name": pod_name, "apiVersion": "/v1"},
                     "metricName": metric, "timestamp": T0, "value": "37", "selector": None}]}
        with self._lock:
            for (ns, pod), state in sorted(self.scraped.items()):
                if ns != namespace or (pod_name != "*" and pod != pod_name) or metric != "aic_test_load":
                    continue
                items.append({"describedObject": {"kind": "Pod", "namespace": ns, "name": pod, "apiVersion": "/v1"},
                              "metricName": metric, "timestamp": T0, "value": _quantity(state["load"]), "selector": None})
        if not items:
            return 404, {"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
                         "message": 'the server could not find the metric %s for pods' % metric, "reason": "NotFound", "code": 404}
        return {"kind": "MetricValueList", "apiVersion": ADAPTER_GV, "metadata": {}, "items": items}

    # ------------------------------------------------------------ Prometheus
    def _selected_monitors(self, fake):
        prometheus = fake.get_object("monitoring.coreos.com/v1", "prometheuses", PROMETHEUS, MONITORING_NS)
        if prometheus is None:
            return []
        spec = prometheus["spec"]
        found = []
        for monitor in fake.objects("monitoring.coreos.com/v1", "servicemonitors"):
            ns = monitor["metadata"]["namespace"]
            namespace = fake.get_object("v1", "namespaces", ns) or {"metadata": {}}
            if spec.get("serviceMonitorSelector") is None or not selector_matches(spec["serviceMonitorSelector"], monitor["metadata"].get("labels") or {}):
                continue
            if not selector_matches(spec.get("serviceMonitorNamespaceSelector") or {}, namespace["metadata"].get("labels") or {}):
                continue
            found.append(monitor)
        return found

    def targets(self, fake):
        """[(target entry, (namespace, pod))] of the selected ServiceMonitors' endpoints."""
        out = []
        for monitor in self._selected_monitors(fake):
            ns, name = monitor["metadata"]["namespace"], monitor["metadata"]["name"]
            for svc in fake.objects("v1", "services", namespace=ns):
                if not selector_matches(monitor["spec"]["selector"], svc["metadata"].get("labels") or {}):
                    continue
                for pod in fake.objects("v1", "pods", namespace=ns):
                    if not selector_matches({"matchLabels": svc["spec"].get("selector") or {}}, pod["metadata"].get("labels") or {}):
                        continue
                    ip = pod["status"].get("podIP")
                    if not ip or pod["status"].get("phase") != "Running":
                        continue
                    health = self.target_health
                    out.append(({"discoveredLabels": {"__address__": "%s:%d" % (ip, APP_PORT)},
                                 "labels": {"container": "app", "endpoint": "http-metrics", "instance": "%s:%d" % (ip, APP_PORT),
                                            "job": svc["metadata"]["name"], "namespace": ns, "pod": pod["metadata"]["name"],
                                            "service": svc["metadata"]["name"]},
                                 "scrapePool": "serviceMonitor/%s/%s/0" % (ns, name),
                                 "scrapeUrl": "http://%s:%d%s" % (ip, APP_PORT, monitor["spec"]["endpoints"][0]["path"]),
                                 "globalUrl": "http://%s:%d%s" % (ip, APP_PORT, monitor["spec"]["endpoints"][0]["path"]),
                                 "lastError": "" if health == "up" else 'Get "http://%s:%d/cgi-bin/metrics": dial tcp %s:%d: connect: connection refused'
                                 % (ip, APP_PORT, ip, APP_PORT),
                                 "lastScrape": "2026-12-01T18:00:05.123456789Z", "lastScrapeDuration": 0.004,
                                 "health": health, "scrapeInterval": "5s", "scrapeTimeout": "5s"},
                                (ns, pod["metadata"]["name"])))
        return out

    @property
    def scraped(self):
        """{(namespace, pod): state} as Prometheus holds it: the app state of ``scrape_delay`` seconds ago, up targets only."""
        now = time.monotonic()
        out = {}
        for entry, key in self.targets(self.fake):
            if entry["health"] != "up" or key not in self.apps:
                continue
            seen = [h for h in self.apps[key]["history"] if h[0] <= now - self.scrape_delay]
            if seen:
                out[key] = {"hits": seen[-1][1], "load": seen[-1][2]}
        return out

    def _record(self, state):
        state["history"].append((time.monotonic(), dict(state["hits"]), state["load"]))

    def prometheus_api(self, method, path, query, body):
        with self._lock:
            if path == "/api/v1/status/buildinfo":
                return {"status": "success", "data": {"version": "3.7.3", "revision": "0a41f0000705c69ab8e0f9a723fc73e39ed62b07",
                                                      "branch": "HEAD", "goVersion": "go1.25.3"}}
            if path == "/api/v1/targets":
                targets = [t for t, _key in self.targets(self.fake)]
                pool = query.get("scrapePool")
                if pool:
                    targets = [t for t in targets if t["scrapePool"] == pool]
                return {"status": "success", "data": {"activeTargets": targets, "droppedTargets": [], "droppedTargetCounts": {}}}
            if path == "/api/v1/query":
                self.queries.append(query.get("query"))
                return self.instant_query(query.get("query") or "")
        return 404, "404 page not found\n"

    def instant_query(self, promql):
        result = []
        count = re.match(r"^count\((\w+)\)$", promql)
        if count:
            if count.group(1) == "DCGM_FI_DEV_GPU_UTIL" and self.gpu_series:
                result = [{"metric": {}, "value": [1764612000.0, str(self.gpu_series)]}]
            return {"status": "success", "data": {"resultType": "vector", "result": result}}
        match = re.match(r'^(\w+)\{(.*)\}$', promql)
        if not match:
            return 400, {"status": "error", "errorType": "bad_data", "error": "invalid parameter \"query\": 1:1: parse error"}
        name, matchers = match.group(1), dict(re.findall(r'(\w+)="([^"]*)"', match.group(2)))
        for (ns, pod), state in sorted(self.scraped.items()):
            labels = {"__name__": name, "container": "app", "endpoint": "http-metrics", "instance": "10.42.0.%d:%d" % (len(result) + 10, APP_PORT),
                      "job": "aic-metrics-app", "namespace": ns, "pod": pod, "service": "aic-metrics-app"}
            if name == "aic_test_requests_total":
                for run, value in state["hits"].items():
                    series = dict(labels, run=run)
                    if all(series.get(k) == v for k, v in matchers.items()):
                        result.append({"metric": series, "value": [1764612005.123, str(value)]})
        return {"status": "success", "data": {"resultType": "vector", "result": result}}

    # ------------------------------------------------------------ the app (service and pod proxies)
    def app_handler(self, key_for):
        def handle(method, path, query, body):
            with self._lock:
                key = key_for()
                if key is None:
                    return 503, {"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
                                 "message": 'no endpoints available for service "aic-metrics-app"', "reason": "ServiceUnavailable", "code": 503}
                state = self.apps[key]
                if path == "/cgi-bin/hit":
                    run = (query.get("run") or "")
                    if not re.match(r"^[a-z0-9-]{1,63}$", run):
                        return "error: query needs run=[a-z0-9-]+\n"
                    state["hits"][run] = state["hits"].get(run, 0) + (2 if self.app_broken else 1)
                    self._record(state)
                    return "ok %s %d\n" % (run, state["hits"][run])
                if path == "/cgi-bin/set":
                    state["load"] = float(query.get("value"))
                    self._record(state)
                    return "ok load %s\n" % query.get("value")
                if path == "/cgi-bin/metrics":
                    lines = ["# HELP aic_test_requests_total Requests received on /cgi-bin/hit, by run id.",
                             "# TYPE aic_test_requests_total counter"]
                    lines += ['aic_test_requests_total{run="%s"} %d' % item for item in sorted(state["hits"].items())]
                    lines += ["# HELP aic_test_load Load gauge set by the verifier through /cgi-bin/set.",
                              "# TYPE aic_test_load gauge", "aic_test_load %s" % _number(state["load"])]
                    return "\n".join(lines) + "\n"
            return 404, "404 Not Found\n"
        return handle

    # ------------------------------------------------------------ controllers
    def reconcile(self, fake):
        with self._lock:
            self.deployments(fake)
            self.kubelet(fake)

    def kubelet(self, fake):
        """Bare test pods (the GPU pod) are scheduled and run."""
        for pod in fake.objects("v1", "pods"):
            ns, name = pod["metadata"]["namespace"], pod["metadata"]["name"]
            if (ns, name) in self.apps or ns in PRESET_NAMESPACES or (pod.get("status") or {}).get("phase") != "Pending":
                continue
            self.gpu_pods.append(pod)
            fake.patch_object("v1", "pods", name, {"spec": {"nodeName": "gpu-node-2"}}, ns)
            fake.set_status("v1", "pods", name, {"phase": "Running", "podIP": "10.42.1.7", "conditions": [{"type": "Ready", "status": "True"}],
                                                 "containerStatuses": [{"name": "gpu", "ready": True, "state": {"running": {}}}]}, namespace=ns)

    def deployments(self, fake):
        for d in fake.objects("apps/v1", "deployments"):
            ns, name = d["metadata"]["namespace"], d["metadata"]["name"]
            want = d["spec"].get("replicas", 1)
            pods = sorted(p["metadata"]["name"] for p in fake.objects("v1", "pods", namespace=ns)
                          if (p["metadata"].get("labels") or {}).get("app.kubernetes.io/name") == name)
            for index in range(len(pods), want):
                pod_name = "%s-7c9d8b6f5-%05d" % (name, index)
                template = d["spec"]["template"]
                fake.put_object({"apiVersion": "v1", "kind": "Pod",
                                 "metadata": {"name": pod_name, "namespace": ns, "labels": template["metadata"]["labels"]},
                                 "spec": dict(template["spec"], nodeName="node-1"),
                                 "status": {"phase": "Running", "podIP": "10.42.0.%d" % (20 + index),
                                            "conditions": [{"type": "Ready", "status": "True"}],
                                            "containerStatuses": [{"name": "app", "ready": True, "state": {"running": {}}}]}})
                self.apps[(ns, pod_name)] = {"hits": {}, "load": 0.0, "history": [(time.monotonic(), {}, 0.0)]}
                fake.set_pod_proxy(ns, pod_name, None, self.app_handler(lambda k=(ns, pod_name): k))
                pods.append(pod_name)
            for pod_name in sorted(pods)[want:]:
                fake.delete_object("v1", "pods", pod_name, ns, force=True)
                self.apps.pop((ns, pod_name), None)
            first = sorted(k for k in self.apps if k[0] == ns)
            service = fake.get_object("v1", "services", name, ns)
            if service is not None:
                ready = [p for p in fake.objects("v1", "pods", namespace=ns) if (p["metadata"].get("labels") or {}).get("app.kubernetes.io/name") == name]
                endpoints = fake.endpoints_for(service, ready)
                current = fake.get_object("v1", "endpoints", name, ns)
                if current is None or current.get("subsets") != endpoints.get("subsets"):
                    fake.put_object(endpoints)
                fake.set_service_proxy(ns, name, None, self.app_handler(lambda first=first: first[0] if first else None))
            fake.set_status("apps/v1", "deployments", name, {
                "replicas": want, "readyReplicas": want, "availableReplicas": want, "updatedReplicas": want,
                "conditions": [{"type": "Available", "status": "True", "reason": "MinimumReplicasAvailable",
                                "message": "Deployment has minimum availability."}]}, namespace=ns)

    def hpa_controller(self, fake):
        for hpa in fake.objects("autoscaling/v2", "horizontalpodautoscalers"):
            ns, name = hpa["metadata"]["namespace"], hpa["metadata"]["name"]
            spec = hpa["spec"]
            target = fake.get_object("apps/v1", "deployments", spec["scaleTargetRef"]["name"], ns)
            if target is None:
                continue
            current = target["spec"].get("replicas", 1)
            metric = spec["metrics"][0]["pods"]["metric"]["name"]
            able = {"type": "AbleToScale", "status": "True", "lastTransitionTime": T0, "reason": "SucceededGetScale",
                    "message": "the HPA controller was able to get the target's current scale"}
            scraped = self.scraped
            values = [s["load"] for (n, _pod), s in sorted(scraped.items()) if n == ns] if self.adapter else []
            if not values:
                reason = "no custom metrics API (custom.metrics.k8s.io) registered" if not self.adapter else \
                    'the server could not find the metric %s for pods' % metric
                status = {"currentReplicas": current, "desiredReplicas": 0, "currentMetrics": [{"type": ""}], "conditions": [able, {
                    "type": "ScalingActive", "status": "False", "lastTransitionTime": T0, "reason": "FailedGetPodsMetric",
                    "message": "the HPA was unable to compute the replica count: unable to get metric %s: unable to fetch metrics "
                               "from custom metrics API: %s" % (metric, reason)}]}
                self._event(fake, ns, name, "FailedGetPodsMetric", "unable to get metric %s: unable to fetch metrics from custom metrics API: %s"
                            % (metric, reason))
            else:
                average = sum(values) / len(values)
                target_value = float(spec["metrics"][0]["pods"]["target"]["averageValue"])
                desired = max(spec.get("minReplicas", 1), min(spec["maxReplicas"], int(math.ceil(current * average / target_value))))
                if desired != current:
                    fake.patch_object("apps/v1", "deployments", target["metadata"]["name"], {"spec": {"replicas": desired}}, ns)
                    self.deployments(fake)
                    able = dict(able, reason="SucceededRescale", message="the HPA controller was able to update the target scale to %d" % desired)
                status = {"currentReplicas": desired, "desiredReplicas": desired, "lastScaleTime": T0,
                          "currentMetrics": [{"type": "Pods", "pods": {"metric": {"name": metric}, "current": {"averageValue": _quantity(average)}}}],
                          "conditions": [able, {"type": "ScalingActive", "status": "True", "lastTransitionTime": T0, "reason": "ValidMetricFound",
                                                "message": "the HPA was able to successfully calculate a replica count from pods metric %s" % metric}]}
            fake.set_status("autoscaling/v2", "horizontalpodautoscalers", name, status, namespace=ns)
            self.max_replicas_seen[(ns, name)] = max(self.max_replicas_seen.get((ns, name), 0), status["currentReplicas"])
        self.hpa_syncs += 1

    def _event(self, fake, ns, hpa, reason, message):
        name = "%s.%s" % (hpa, reason.lower())
        existing = fake.get_object("v1", "events", name, ns)
        count = (existing or {}).get("count", 0) + 1
        fake.put_object({"apiVersion": "v1", "kind": "Event", "metadata": {"name": name, "namespace": ns},
                         "involvedObject": {"kind": "HorizontalPodAutoscaler", "namespace": ns, "name": hpa,
                                            "apiVersion": "autoscaling/v2"},
                         "reason": reason, "message": message, "type": "Warning", "count": count,
                         "source": {"component": "horizontal-pod-autoscaler"}, "firstTimestamp": T0, "lastTimestamp": T0})


def _number(value):
    return ("%d" % value) if value == int(value) else repr(value)


def _quantity(value):
    return ("%d" % value) if value == int(value) else "%dm" % round(value * 1000)


def leftovers(fake):
    """Objects the checks created that are still in the fake (by label, and any extra namespace)."""
    ours = ["%s/%s" % (o["kind"], o["metadata"]["name"]) for o in fake.objects()
            if (o["metadata"].get("labels") or {}).get("app.kubernetes.io/managed-by") == "ai-conformance-rke2"]
    spaces = [o["metadata"]["name"] for o in fake.objects("v1", "namespaces")
              if o["metadata"]["name"] not in PRESET_NAMESPACES + (MONITORING_NS, "hpa-fixtures")]
    return ours + ["Namespace/%s" % n for n in spaces if "Namespace/%s" % n not in ours]
