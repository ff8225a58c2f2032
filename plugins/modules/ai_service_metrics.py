#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: ai_conformance.rke2 contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r"""
module: ai_service_metrics
short_description: Verify that workload metrics are discovered and collected (CNCF AI conformance C(ai_service_metrics))
version_added: 0.1.0
author:
  - ai_conformance.rke2 maintainers (@ai-conformance)
description:
  - Checks that the Prometheus Operator API (C(monitoring.coreos.com/v1) Prometheus, ServiceMonitor, PodMonitor) is
    served and that a Prometheus instance exists and is C(Available); Prometheus is queried through the API server's
    service proxy (C(/api/v1/status/buildinfo)).
  - Exercises discovery and collection - in a temporary namespace (Pod Security C(restricted)) it runs a small
    workload exposing Prometheus metrics and a ServiceMonitor for it, waits until Prometheus lists the target as
    C(up), sends exactly O(requests) requests tagged with this run's id and requires Prometheus to report the
    run's request counter at exactly O(requests) within O(timeout). Evidence - the target entry, the queries and
    their results.
  - Distinct outcomes - no Prometheus Operator API, no Prometheus, target never discovered (the message names the
    selectors Prometheus uses), target discovered but down (its C(lastError)).
  - Advisory - whether Prometheus collects the GPU metric O(gpu_metric) (skipped when not, never failed).
  - Everything it created is deleted before it returns, also after a failure.
options:
  prometheus:
    description:
      - The Prometheus object to use, as C(namespace/name). By default an C(Available) one found in any namespace.
    type: str
  prometheus_service:
    description:
      - Service to query Prometheus' HTTP API through, as C(namespace/name:port). By default the operator's
        C(prometheus-operated) Service (port C(web)) in the Prometheus object's namespace.
    type: str
  requests:
    description: Number of requests sent to the workload; the scraped counter must reach exactly this value.
    type: int
    default: 20
  scrape_interval:
    description: Scrape interval of the temporary ServiceMonitor.
    type: str
    default: 5s
  adopt_prometheus_selector:
    description:
      - Give the temporary ServiceMonitor (and namespace) the C(matchLabels) of the Prometheus object's
        C(serviceMonitorSelector) (and C(serviceMonitorNamespaceSelector)), as a user labels their own monitors.
    type: bool
    default: true
  service_monitor_labels:
    description: Extra labels of the temporary ServiceMonitor (for selectors that C(matchLabels) cannot satisfy).
    type: dict
    default: {}
  gpu_metric:
    description: Metric whose presence in Prometheus is reported (advisory).
    type: str
    default: DCGM_FI_DEV_GPU_UTIL
extends_documentation_fragment:
  - kubernetes.core.k8s_auth_options
  - ai_conformance.rke2.common
"""

EXAMPLES = r"""
- name: Verify that Prometheus discovers and scrapes a workload
  ai_conformance.rke2.ai_service_metrics:
    timeout: 300
  register: ai_service_metrics

- name: A given Prometheus that selects monitors labelled release=prometheus-stack
  ai_conformance.rke2.ai_service_metrics:
    prometheus: monitoring/prometheus-stack-kube-prom-prometheus
    service_monitor_labels:
      release: prometheus-stack
"""

RETURN = r"""
result:
  description: The requirement's result; see the collection's result schema.
  returned: always
  type: dict
  sample:
    requirement: ai_service_metrics
    status: passed
    checks:
      - name: metrics_collected
        status: passed
        message: "the scraped counter is 20, exactly the 20 requests sent"
"""

import re

from ansible_collections.kubernetes.core.plugins.module_utils.k8s.core import AnsibleK8SModule

from ansible_collections.ai_conformance.rke2.plugins.module_utils import metrics_app as app
from ansible_collections.ai_conformance.rke2.plugins.module_utils import monitoring as mon
from ansible_collections.ai_conformance.rke2.plugins.module_utils.kube import (
    KubeError,
    Stuck,
    WaitTimeout,
    common_argument_spec,
    run_requirement,
)

REQUIREMENT = "ai_service_metrics"
SERVICE_REF = re.compile(r"^[a-z0-9.-]+/[a-z0-9.-]+(:[A-Za-z0-9-]+)?$")
ACTIVE_CHECKS = ("metrics_workload", "target_discovered", "requests_sent", "metrics_collected")


def skip_active(result, reason, after=None):
    start = ACTIVE_CHECKS.index(after) + 1 if after else 0
    for name in ACTIVE_CHECKS[start:]:
        result.skipped(name, "not run: %s" % reason)


def check_operator(kube, result):
    """The Prometheus Operator kinds are served; returns True when they are."""
    missing = mon.operator_kinds_missing(kube.api_resources(mon.MONITORING_V1))
    expected = "%s serves %s" % (mon.MONITORING_V1, ", ".join(mon.OPERATOR_KINDS))
    if missing:
        result.failed("prometheus_operator_api", "no Prometheus Operator: %s does not serve %s (is kube-prometheus-stack installed?)" % (
            mon.MONITORING_V1, ", ".join(missing)), observed={"missing": missing}, expected=expected, cause="not_installed")
        return False
    result.passed("prometheus_operator_api", "%s serves %s" % (mon.MONITORING_V1, ", ".join(mon.OPERATOR_KINDS)), expected=expected)
    return True


class PrometheusEndpoint:
    """Prometheus' HTTP API through the API server's service proxy."""

    def __init__(self, kube, service_ref, prefix=""):
        namespace, _sep, rest = service_ref.partition("/")
        self.name, _sep, self.port = rest.partition(":")
        self.kube, self.namespace, self.prefix = kube, namespace, prefix

    def describe(self):
        return "services/%s:%s in %s (service proxy)" % (self.name, self.port, self.namespace)

    def get(self, path, query=None):
        return mon.api_data(self.kube.service_proxy(self.namespace, self.name, self.port, self.prefix + path, query=query))


def find_prometheus(kube, params, result):
    """(Prometheus object or None, endpoint) after the found/ready checks; None endpoint when unusable."""
    prometheus = None
    if params.get("prometheus") or not params.get("prometheus_service"):
        prometheus, problem = mon.pick_prometheus(kube.list(mon.MONITORING_V1, "Prometheus"), params.get("prometheus"))
        if prometheus is None:
            result.failed("prometheus_found", problem, expected="a Prometheus object (or option prometheus_service)",
                          cause="not_installed")
            return None, None
        meta = prometheus["metadata"]
        result.passed("prometheus_found", "Prometheus %s/%s found" % (meta["namespace"], meta["name"]),
                      observed={"selectors": dict((k, v) for k, v in prometheus.get("spec", {}).items() if k.endswith("Selector"))})
        ready, message = mon.prometheus_ready(prometheus)
        result.add_evidence("prometheus", {"metadata": {"name": meta["name"], "namespace": meta["namespace"]},
                                           "status": prometheus.get("status")})
        if not ready:
            result.failed("prometheus_ready", message, expected="Available=True")
            return prometheus, None
        result.passed("prometheus_ready", message, expected="Available=True")
    service = params.get("prometheus_service") or "%s/prometheus-operated:web" % prometheus["metadata"]["namespace"]
    endpoint = PrometheusEndpoint(kube, service, mon.route_prefix(prometheus))
    try:
        info = endpoint.get("/api/v1/status/buildinfo")
    except (KubeError, mon.PrometheusAPIError) as exc:
        cause = "api_unavailable" if isinstance(exc, mon.PrometheusAPIError) else None
        message = "Prometheus could not be queried through %s: %s" % (endpoint.describe(), exc)
        if cause:
            result.error("prometheus_reachable", message, cause=cause)
        else:
            result.from_exception("prometheus_reachable", exc, "Prometheus could not be queried through %s" % endpoint.describe())
        return prometheus, None
    result.passed("prometheus_reachable", "Prometheus %s answers through %s" % ((info or {}).get("version"), endpoint.describe()),
                  observed=info)
    return prometheus, endpoint


def check_gpu_metrics(endpoint, params, result):
    """Advisory: does Prometheus hold series of the GPU metric?"""
    query = "count(%s)" % params["gpu_metric"]
    try:
        samples = mon.vector_samples(endpoint.get("/api/v1/query", {"query": query}))
    except (KubeError, mon.PrometheusAPIError, ValueError) as exc:
        result.skipped("gpu_metrics_collected", "advisory: the query %s failed: %s" % (query, exc))
        return
    count = int(samples[0][1]) if samples else 0
    if count:
        result.passed("gpu_metrics_collected", "advisory: Prometheus collects %d %s series" % (count, params["gpu_metric"]),
                      observed={"query": query, "result": samples})
    else:
        result.skipped("gpu_metrics_collected", "advisory: Prometheus holds no %s series (no GPU, or dcgm-exporter is not scraped)"
                       % params["gpu_metric"])


def prepare_namespace(kube, params, prometheus, result):
    """Temporary namespace and the ServiceMonitor labels; returns (namespace, monitor labels, selected, verdict)."""
    namespace = kube.temp_namespace(REQUIREMENT)
    monitor_labels = dict(kube.labels(REQUIREMENT))
    if prometheus is None:
        monitor_labels.update(params["service_monitor_labels"])
        return namespace, monitor_labels, True, "no Prometheus object to read selectors from (option prometheus_service)"
    namespace_labels = dict((kube.get("v1", "Namespace", namespace) or {}).get("metadata", {}).get("labels") or {})
    monitor_labels, wanted_namespace = app.monitor_labels(prometheus, monitor_labels, params["service_monitor_labels"],
                                                          params["adopt_prometheus_selector"])
    if wanted_namespace and any(namespace_labels.get(k) != v for k, v in wanted_namespace.items()):
        kube.patch_merge("v1", "Namespace", namespace, {"metadata": {"labels": wanted_namespace}})
        namespace_labels.update(wanted_namespace)
    selected, message = mon.monitor_selection(prometheus, namespace, monitor_labels, namespace_labels)
    result.add_evidence("selection", {"namespace": namespace, "namespace_labels": namespace_labels,
                                      "service_monitor_labels": monitor_labels, "verdict": message})
    return namespace, monitor_labels, selected, message


def deploy_workload(kube, params, namespace, monitor_labels, result):
    """The app, its Service and ServiceMonitor; returns True when its pod is ready."""
    objects = app.render_all(params, namespace, kube.labels(REQUIREMENT), monitor_labels, interval=params["scrape_interval"])
    return app.start(kube, params, objects, 1, result, what="the metrics workload")


def wait_target(kube, params, endpoint, namespace, result, selection):
    """Wait until the ServiceMonitor's target is up; records target_discovered; returns True when up."""
    pool = app.scrape_pool(namespace)
    expected = "an active target in scrape pool %s with health up" % pool

    def probe():
        try:
            data = endpoint.get("/api/v1/targets", {"state": "active", "scrapePool": pool})
        except (KubeError, mon.PrometheusAPIError) as exc:
            return False, {"error": str(exc)}
        target = mon.find_target(data, pool, namespace, app.APP_NAME)
        if target is None:
            return False, {"target": None}
        health, message = mon.evaluate_target(target)
        return health == "up", {"target": target, "health": health, "message": message}

    try:
        state = kube.wait_for(probe, params["timeout"], interval=3, what="target %s up in Prometheus" % pool)
    except WaitTimeout as exc:
        last = exc.body or {}
        target = last.get("target")
        if target:
            result.add_evidence("target", mon.target_summary(target))
            result.failed("target_discovered", "Prometheus discovered the workload's target but it is %s after %ss: %s" % (
                last.get("health"), params["timeout"], last.get("message")), observed=mon.target_summary(target),
                expected=expected, exercised=True)
        elif last.get("error"):
            result.error("target_discovered", "Prometheus could not be queried for its targets: %s" % last["error"],
                         cause="api_unavailable")
        else:
            result.failed("target_discovered", "Prometheus never discovered the workload's target within %ss: %s; the "
                          "ServiceMonitor's labels and namespace are selected - is the Prometheus Operator running and reconciling "
                          "it?" % (params["timeout"], selection), expected=expected, exercised=True)
        return False
    result.add_evidence("target", mon.target_summary(state["target"]))
    result.exercised("target_discovered", "Prometheus discovered the workload through its ServiceMonitor: %s" % state["message"],
                     observed=mon.target_summary(state["target"]), expected=expected)
    return True


def send_requests(kube, params, namespace, result):
    """Send the tagged requests through the service proxy; returns True when each was counted once."""
    run = app.run_label(kube.run_id)
    answers = []
    for number in range(1, params["requests"] + 1):
        try:
            answer = kube.service_proxy(namespace, app.APP_NAME, app.PORT_NAME, app.hit_path(run))
        except KubeError as exc:
            result.from_exception("requests_sent", exc, "request %d of %d to the workload failed" % (number, params["requests"]))
            return False
        answers.append(answer)
        if app.hit_ok(answer, run) != number:
            result.error("requests_sent", "the workload answered request %d of run %s with %r, not its count %d" % (
                number, run, str(answer)[:200], number), cause="test_tooling")
            return False
    exposed = str(kube.service_proxy(namespace, app.APP_NAME, app.PORT_NAME, app.METRICS_PATH))
    result.add_evidence("workload-metrics", exposed, "text")
    try:
        own = mon.exposed_value(exposed, app.COUNTER, {"run": run})
    except ValueError as exc:
        own = "unparsable: %s" % exc
    if own != params["requests"]:
        result.error("requests_sent", "after %d requests the workload itself exposes %s=%s for run %s" % (
            params["requests"], app.COUNTER, own, run), cause="test_tooling")
        return False
    result.passed("requests_sent", "%d requests tagged run=%s sent through the API server's service proxy; the workload counted %d" % (
        params["requests"], run, params["requests"]), observed={"run": run, "last_answer": str(answers[-1]).strip()})
    return True


def wait_collected(kube, params, endpoint, namespace, result):
    """Prometheus must report the run's counter at exactly the number of requests sent."""
    run = app.run_label(kube.run_id)
    query = mon.counter_query(app.COUNTER, namespace, run)
    expected = "%s = %d" % (query, params["requests"])

    def probe():
        data = endpoint.get("/api/v1/query", {"query": query})
        state, value, message = mon.evaluate_count(mon.vector_samples(data), params["requests"])
        if state in ("above", "many"):
            raise Stuck(message, kind="capability", state={"data": data, "message": message}, cause="capability")
        return state == "exact", {"data": data, "message": message, "value": value}

    try:
        state = kube.wait_for(probe, params["timeout"], interval=3, what="Prometheus to report %s" % expected)
    except (Stuck, WaitTimeout) as exc:
        last = exc.state if isinstance(exc, Stuck) else (exc.body or {})
        result.add_evidence("query", {"query": query, "result": (last or {}).get("data")})
        result.failed("metrics_collected", "Prometheus did not report the %d requests of run %s: %s" % (
            params["requests"], run, (last or {}).get("message") or exc), expected=expected, exercised=True)
        return
    except (KubeError, mon.PrometheusAPIError, ValueError) as exc:
        result.error("metrics_collected", "querying Prometheus failed: %s" % exc, cause="api_unavailable")
        return
    result.add_evidence("query", {"query": query, "result": state["data"]})
    result.exercised("metrics_collected", state["message"], observed=state["data"], expected=expected)


def verify(kube, params, result):
    problems = []
    if params["requests"] < 1:
        problems.append("requests must be at least 1")
    if params.get("prometheus_service") and not SERVICE_REF.match(params["prometheus_service"]):
        problems.append("prometheus_service must be namespace/name:port, not %r" % params["prometheus_service"])
    if problems:
        result.error("ai_service_metrics_options", "invalid options: %s" % "; ".join(problems), cause="invalid_request")
        return None
    if not check_operator(kube, result):
        skip_active(result, "the Prometheus Operator API is not served")
        return None
    prometheus, endpoint = find_prometheus(kube, params, result)
    if endpoint is None:
        skip_active(result, "no usable Prometheus")
        return None
    check_gpu_metrics(endpoint, params, result)
    if kube.module.check_mode:
        skip_active(result, "check mode creates nothing")
        return None
    namespace, monitor_labels, selected, selection = prepare_namespace(kube, params, prometheus, result)
    if not selected:
        result.failed("metrics_workload", "the workload's ServiceMonitor would never be discovered: %s; set "
                      "service_monitor_labels to labels Prometheus selects" % selection, cause="capability")
        skip_active(result, "Prometheus does not select the test's ServiceMonitor", after="metrics_workload")
        return None
    if not deploy_workload(kube, params, namespace, monitor_labels, result):
        skip_active(result, "the workload did not start", after="metrics_workload")
        return None
    if not wait_target(kube, params, endpoint, namespace, result, selection):
        skip_active(result, "the target is not up", after="target_discovered")
        return None
    if not send_requests(kube, params, namespace, result):
        skip_active(result, "the requests were not counted", after="requests_sent")
        return None
    wait_collected(kube, params, endpoint, namespace, result)
    return None


def main():
    argument_spec = common_argument_spec({
        "prometheus": {"type": "str"},
        "prometheus_service": {"type": "str"},
        "requests": {"type": "int", "default": 20},
        "scrape_interval": {"type": "str", "default": "5s"},
        "adopt_prometheus_selector": {"type": "bool", "default": True},
        "service_monitor_labels": {"type": "dict", "default": {}},
        "gpu_metric": {"type": "str", "default": mon.GPU_METRIC},
    })
    module = AnsibleK8SModule(argument_spec=argument_spec, supports_check_mode=True)
    run_requirement(module, REQUIREMENT, verify)


if __name__ == "__main__":
    main()
