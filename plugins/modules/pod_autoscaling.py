#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: ai_conformance.rke2 contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r"""
module: pod_autoscaling
short_description: Verify HorizontalPodAutoscaling on custom metrics (CNCF AI conformance C(pod_autoscaling))
version_added: 0.1.0
author:
  - ai_conformance.rke2 maintainers (@ai-conformance)
description:
  - Checks that C(autoscaling/v2) serves C(horizontalpodautoscalers) and that the APIService
    C(v1beta1.custom.metrics.k8s.io) is C(Available) (its conditions are evidence).
  - Exercises the whole custom metrics path - in a temporary namespace (Pod Security C(restricted)) a Deployment
    of a small app exposing the gauge O(metric), scraped by Prometheus through a ServiceMonitor (when the
    Prometheus Operator API is served), served by the custom metrics adapter, and an C(autoscaling/v2) HPA on it
    (a C(Pods) metric with target C(AverageValue) O(target_value)). The custom metrics API must list the metric;
    the verifier drives the gauge to O(high_value) through the API server's service proxy and the HPA must report
    C(ScalingActive=True) and scale above O(min_replicas) within O(timeout); with O(check_scale_down) it sets the
    gauge to 0 on every pod (pod proxy) and the HPA must scale back to O(min_replicas).
  - A metric the HPA cannot read fails the requirement quoting the HPA's own condition (C(FailedGetPodsMetric) and
    its message); with no custom metrics API registered this happens after the HPA's first sync.
  - On clusters with GPUs (O(gpu_metric_check)) a GPU pod must get its O(gpu_metric) served by the custom metrics
    API (the reference procedure's HPA scales on it); skipped as advisory on CPU-only clusters.
  - Everything it created is deleted before it returns, also after a failure.
options:
  metric:
    description: Custom metric of the app's gauge; the adapter must serve it for pods.
    type: str
    default: aic_test_load
  target_value:
    description: Target C(averageValue) of the HPA's Pods metric.
    type: int
    default: 10
  high_value:
    description: Value the gauge is driven to for the scale-up (well above O(target_value)).
    type: int
    default: 50
  min_replicas:
    description: C(minReplicas) of the HPA (and initial replicas of the Deployment).
    type: int
    default: 1
  max_replicas:
    description: C(maxReplicas) of the HPA.
    type: int
    default: 3
  check_scale_down:
    description: Also require the HPA to scale back down after the gauge drops (slow - the scale-down window is 60 s).
    type: bool
    default: false
  prometheus:
    description: The Prometheus object whose selectors the test ServiceMonitor adopts, as C(namespace/name); default the first found.
    type: str
  service_monitor_labels:
    description: Extra labels of the temporary ServiceMonitor.
    type: dict
    default: {}
  scrape_interval:
    description: Scrape interval of the temporary ServiceMonitor.
    type: str
    default: 5s
  gpu_metric:
    description: Custom metric of the GPU utilization per pod (the reference procedure's C(gpu_utilization)).
    type: str
    default: gpu_utilization
  gpu_metric_check:
    description:
      - Whether to check that the custom metrics API serves O(gpu_metric) for a GPU pod - a pod requesting one
        O(accelerator_resource) runs in the temporary namespace until the API returns its value.
      - C(auto) runs it when a node has allocatable O(accelerator_resource) (skipped, advisory, on CPU-only clusters);
        C(true) always (no accelerator node is an error); C(false) never.
    type: str
    choices: [auto, "true", "false"]
    default: auto
  accelerator_resource:
    description: Extended resource of the GPU pod of the O(gpu_metric_check).
    type: str
    default: nvidia.com/gpu
extends_documentation_fragment:
  - kubernetes.core.k8s_auth_options
  - ai_conformance.rke2.common
"""

EXAMPLES = r"""
- name: Verify HPA scaling on a custom metric
  ai_conformance.rke2.pod_autoscaling:
    timeout: 420
  register: pod_autoscaling

- name: Also wait for the scale-down
  ai_conformance.rke2.pod_autoscaling:
    check_scale_down: true
    timeout: 600
"""

RETURN = r"""
result:
  description: The requirement's result; see the collection's result schema.
  returned: always
  type: dict
  sample:
    requirement: pod_autoscaling
    status: failed
    checks:
      - name: hpa_scales_up
        status: failed
        message: "the HPA cannot read its metric: FailedGetPodsMetric: the HPA was unable to compute the replica count: ..."
"""

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
from ansible_collections.ai_conformance.rke2.plugins.module_utils.testpods import PodBuilder

REQUIREMENT = "pod_autoscaling"
HPA_NAME = "aic-hpa"
GPU_POD = "aic-gpu-pod"
# seconds: the HPA controller syncs every 15 s (--horizontal-pod-autoscaler-sync-period)
HPA_SYNC_WAIT = 20
ACTIVE_CHECKS = ("metrics_workload", "custom_metric_listed", "hpa_scales_up", "hpa_scales_down")


def skip_active(result, reason, after=None):
    start = ACTIVE_CHECKS.index(after) + 1 if after else 0
    for name in ACTIVE_CHECKS[start:]:
        result.skipped(name, "not run: %s" % reason)


def check_hpa_api(kube, result):
    resources = kube.api_resources("autoscaling/v2")
    served = any(r.get("name") == "horizontalpodautoscalers" for r in (resources or {}).get("resources") or [])
    if not served:
        result.failed("autoscaling_v2_served", "autoscaling/v2 does not serve horizontalpodautoscalers", cause="not_installed")
        return False
    result.passed("autoscaling_v2_served", "autoscaling/v2 serves horizontalpodautoscalers")
    return True


def check_apiservice(kube, result):
    """APIService v1beta1.custom.metrics.k8s.io Available; returns (registered, available)."""
    apiservice = kube.get("apiregistration.k8s.io/v1", "APIService", mon.CUSTOM_METRICS_APISERVICE)
    ok, message = mon.apiservice_available(apiservice)
    observed = None if apiservice is None else {"spec": apiservice.get("spec"), "conditions": (apiservice.get("status") or {}).get("conditions")}
    result.add_evidence("custom-metrics-apiservice", observed if observed else "APIService %s does not exist" % mon.CUSTOM_METRICS_APISERVICE)
    expected = "APIService %s with Available=True" % mon.CUSTOM_METRICS_APISERVICE
    if ok:
        result.passed("custom_metrics_apiservice", message, observed=observed, expected=expected)
    else:
        result.failed("custom_metrics_apiservice", message, observed=observed, expected=expected,
                      cause="not_installed" if apiservice is None else "capability")
    return apiservice is not None, ok


def find_prometheus(kube, params):
    """The Prometheus object whose selectors the ServiceMonitor adopts (None without the operator or one)."""
    if mon.operator_kinds_missing(kube.api_resources(mon.MONITORING_V1)):
        return None, False
    prometheus, _problem = mon.pick_prometheus(kube.list(mon.MONITORING_V1, "Prometheus"), params.get("prometheus"))
    return prometheus, True


def deploy(kube, params, result):
    """Namespace, app Deployment, Service and ServiceMonitor; returns the namespace or None (check recorded)."""
    namespace = kube.temp_namespace(REQUIREMENT)
    labels = kube.labels(REQUIREMENT)
    prometheus, operator = find_prometheus(kube, params)
    monitor_labels, namespace_labels = app.monitor_labels(prometheus, labels, params["service_monitor_labels"])
    if namespace_labels:
        kube.patch_merge("v1", "Namespace", namespace, {"metadata": {"labels": namespace_labels}})
    if not operator:
        result.note("The Prometheus Operator API is not served: no ServiceMonitor was created for the test app, so only an "
                    "adapter fed by another scraper can serve its metric.")
    objects = app.render_all(params, namespace, labels, monitor_labels, replicas=params["min_replicas"],
                             interval=params["scrape_interval"], with_monitor=operator)
    if not app.start(kube, params, objects, params["min_replicas"], result):
        return None
    return namespace


def set_gauge_by_service(kube, namespace, value):
    """Set the gauge through the API server's service proxy (one replica: the one pod)."""
    answer = kube.service_proxy(namespace, app.APP_NAME, app.PORT_NAME, app.set_path(value))
    if not app.set_ok(answer, value):
        raise Stuck("the test app answered %r to setting the gauge to %s" % (str(answer)[:200], value), kind="config", cause="test_tooling")


def set_gauge_on_pods(kube, namespace, value):
    """Set the gauge on every pod of the app through the pod proxy; returns the pod names."""
    names = []
    for pod in kube.list("v1", "Pod", namespace=namespace, label_selector=app.selector_string()):
        name = pod["metadata"]["name"]
        answer = kube.pod_proxy(namespace, name, app.PORT, app.set_path(value))
        if not app.set_ok(answer, value):
            raise Stuck("pod %s answered %r to setting the gauge to %s" % (name, str(answer)[:200], value), kind="config",
                        cause="test_tooling")
        names.append(name)
    return names


def wait_metric_listed(kube, params, result, registered):
    """The custom metrics API lists pods/<metric> (it appears once Prometheus has series of it)."""
    name = "custom_metric_listed"
    wanted = "pods/%s" % params["metric"]
    if not registered:
        result.skipped(name, "not run: no custom metrics API is registered")
        return False

    def probe():
        try:
            listed = mon.custom_metrics_listed(kube.request("GET", "/apis/%s" % mon.CUSTOM_METRICS_API))
        except KubeError as exc:
            return False, {"error": str(exc)}
        return wanted in listed, {"listed": listed}

    try:
        state = kube.wait_for(probe, params["timeout"], interval=3, what="the custom metrics API to list %s" % wanted)
    except WaitTimeout as exc:
        last = exc.body or {}
        result.add_evidence("custom-metrics", last)
        seen = last.get("error") or "listed %s" % (last.get("listed") or "nothing")
        result.failed(name, "the custom metrics API did not list %s within %ss (is the adapter's rule for %s* installed and "
                      "Prometheus scraping the test app?): %s" % (wanted, params["timeout"], app.FAMILY_PREFIX, seen),
                      expected=wanted, exercised=True)
        return False
    result.add_evidence("custom-metrics", state)
    result.exercised(name, "the custom metrics API lists %s from the test app's scraped gauge" % wanted, observed=state, expected=wanted)
    return True


def hpa_evidence(kube, result, namespace, hpa):
    result.add_evidence("hpa", mon.hpa_summary(hpa))
    try:
        events = kube.list("v1", "Event", namespace=namespace,
                           field_selector="involvedObject.kind=HorizontalPodAutoscaler,involvedObject.name=%s" % HPA_NAME)
    except KubeError:
        events = []
    if events:
        result.add_evidence("hpa-events", mon.hpa_events_text(events), "text")


def wait_scale(kube, params, result, namespace, name, evaluate, stop_on_failure, what, timeout=None):
    """Wait (``timeout``, default the option) until ``evaluate(hpa)`` is ok; record check ``name``; returns True when ok."""
    timeout = timeout or params["timeout"]

    def probe():
        hpa = kube.get("autoscaling/v2", "HorizontalPodAutoscaler", HPA_NAME, namespace)
        if hpa is None:
            raise Stuck("HPA %s/%s disappeared" % (namespace, HPA_NAME))
        failure = mon.hpa_metric_failure(hpa)
        if failure and stop_on_failure and mon.NO_CUSTOM_METRICS_API in (failure[1] or ""):
            raise Stuck("%s: %s" % failure, kind="capability", state=hpa, cause="capability")
        ok, message = evaluate(hpa)
        return ok, {"hpa": hpa, "message": message}

    try:
        state = kube.wait_for(probe, timeout, interval=3, what=what)
    except Stuck as exc:
        hpa = exc.state if isinstance(exc.state, dict) else None
        hpa_evidence(kube, result, namespace, hpa)
        result.failed(name, "the HPA cannot read its metric %s: %s" % (params["metric"], exc), observed=mon.hpa_summary(hpa),
                      expected=what, exercised=True)
        return False
    except WaitTimeout as exc:
        hpa = (exc.body or {}).get("hpa")
        hpa_evidence(kube, result, namespace, hpa)
        failure = mon.hpa_metric_failure(hpa)
        if failure:
            message = "the HPA cannot read its metric %s after %ss: %s: %s" % (params["metric"], timeout, failure[0], failure[1])
        else:
            message = "%s not reached within %ss: %s" % (what, timeout, (exc.body or {}).get("message") or exc)
        result.failed(name, message, observed=mon.hpa_summary(hpa), expected=what, exercised=True)
        return False
    hpa_evidence(kube, result, namespace, state["hpa"])
    result.exercised(name, state["message"], observed=mon.hpa_summary(state["hpa"]), expected=what)
    return True


def exercise(kube, params, result, registered):
    namespace = deploy(kube, params, result)
    if namespace is None:
        skip_active(result, "the test app did not start", after="metrics_workload")
        return None
    kube.create(mon.render_hpa(HPA_NAME, namespace, app.APP_NAME, params["metric"], "Pods", params["target_value"],
                               params["min_replicas"], params["max_replicas"], kube.labels(REQUIREMENT)))
    try:
        set_gauge_by_service(kube, namespace, params["high_value"])
    except (KubeError, Stuck) as exc:
        cause = exc.cause if isinstance(exc, Stuck) else None
        if cause:
            result.outcome("hpa_scales_up", cause, str(exc))
        else:
            result.from_exception("hpa_scales_up", exc, "setting the test gauge through the service proxy failed")
        skip_active(result, "the gauge could not be set", after="hpa_scales_up")
        return namespace
    if registered:
        listed = wait_metric_listed(kube, params, result, registered)
    else:
        listed = False
        result.skipped("custom_metric_listed", "not run: no custom metrics API is registered")

    def scaled_up(hpa):
        return mon.evaluate_scale_up(hpa, params["min_replicas"])

    what = "HPA %s/%s ScalingActive=True and more than %d replica(s) with %s at %d (target %d)" % (
        namespace, HPA_NAME, params["min_replicas"], params["metric"], params["high_value"], params["target_value"])
    # the metric never listed: the HPA has been failing all along; one more HPA sync shows its condition
    timeout = min(HPA_SYNC_WAIT, params["timeout"]) if registered and not listed else None
    if not wait_scale(kube, params, result, namespace, "hpa_scales_up", scaled_up, not registered, what, timeout):
        skip_active(result, "the HPA did not scale up", after="hpa_scales_up")
        return namespace
    if not params["check_scale_down"]:
        result.skipped("hpa_scales_down", "not run: check_scale_down is false")
        return namespace
    high = (kube.get("autoscaling/v2", "HorizontalPodAutoscaler", HPA_NAME, namespace) or {}).get("status", {}).get("currentReplicas", 0)
    try:
        pods = set_gauge_on_pods(kube, namespace, 0)
    except (KubeError, Stuck) as exc:
        result.error("hpa_scales_down", "setting the test gauge to 0 failed: %s" % exc,
                     cause=exc.cause if isinstance(exc, Stuck) else "api_unavailable")
        return namespace
    result.note("gauge set to 0 on %s through the pod proxy" % ", ".join(pods))

    def scaled_down(hpa):
        return mon.evaluate_scale_down(hpa, high, params["min_replicas"])

    wait_scale(kube, params, result, namespace, "hpa_scales_down", scaled_down, False,
               "HPA %s/%s back at %d replica(s) with %s at 0" % (namespace, HPA_NAME, params["min_replicas"], params["metric"]))
    return namespace


def check_gpu_metric(kube, params, result, namespace, registered):
    """A GPU pod's gpu_utilization is served by the custom metrics API (advisory without GPUs)."""
    name = "gpu_metric_served"
    resource, metric = params["accelerator_resource"], params["gpu_metric"]
    if params["gpu_metric_check"] == "false":
        result.skipped(name, "not run: gpu_metric_check is false")
        return
    nodes = mon.accelerator_nodes(kube.list("v1", "Node"), resource)
    if not nodes:
        if params["gpu_metric_check"] == "true":
            result.error(name, "no node has allocatable %s for the GPU pod (gpu_metric_check is true)" % resource, cause="no_test_target")
        else:
            result.skipped(name, "advisory: no node has allocatable %s (CPU-only cluster); %s not checked" % (resource, metric))
        return
    if not registered or namespace is None:
        result.skipped(name, "not run: %s" % ("no custom metrics API is registered" if not registered else "no test namespace"))
        return
    builder = PodBuilder(params)
    container = builder.container("gpu", app.IMAGE_KEY, command=["sleep", str(params["timeout"] + 120)],
                                  resources={"limits": {resource: "1"}, "requests": {resource: "1"}})
    labels = dict(kube.labels(REQUIREMENT), **{app.APP_LABEL: GPU_POD})
    kube.create(builder.pod(GPU_POD, namespace, [container], labels=labels, restart_policy="Never"))
    try:
        kube.wait_for_pods(namespace, "%s=%s" % (app.APP_LABEL, GPU_POD), 1, "Running", timeout=params["timeout"])
    except Stuck as exc:
        result.outcome(name, exc.cause, "the GPU pod did not start: %s" % exc)
        return
    except WaitTimeout as exc:
        result.error(name, "the GPU pod did not start: %s" % exc, cause="timeout")
        return
    path = "/apis/%s/namespaces/%s/pods/%s/%s" % (mon.CUSTOM_METRICS_API, namespace, GPU_POD, metric)

    def probe():
        try:
            values = mon.metric_values(kube.request("GET", path))
        except KubeError as exc:
            return False, {"error": str(exc)}
        return GPU_POD in values, {"values": values}

    try:
        state = kube.wait_for(probe, params["timeout"], interval=5, what="the custom metrics API to serve %s for the GPU pod" % metric)
    except WaitTimeout as exc:
        result.failed(name, "the custom metrics API did not serve %s for GPU pod %s/%s within %ss (dcgm-exporter scraped, "
                      "adapter rule for DCGM_FI_DEV_GPU_UTIL with exported_namespace/exported_pod?): %s" % (
                          metric, namespace, GPU_POD, params["timeout"], (exc.body or {}).get("error") or "no value"),
                      expected="GET %s returns a value" % path, exercised=True)
        return
    result.add_evidence("gpu-metric", {"request": path, "values": state["values"]})
    result.exercised(name, "the custom metrics API serves %s=%s for GPU pod %s/%s" % (metric, state["values"][GPU_POD], namespace, GPU_POD),
                     observed=state, expected="GET %s returns a value" % path)


def verify(kube, params, result):
    problems = []
    if params["min_replicas"] < 1 or params["max_replicas"] <= params["min_replicas"]:
        problems.append("need 1 <= min_replicas < max_replicas")
    if params["high_value"] <= params["target_value"] or params["target_value"] < 1:
        problems.append("need 1 <= target_value < high_value")
    if problems:
        result.error("pod_autoscaling_options", "invalid options: %s" % "; ".join(problems), cause="invalid_request")
        return None
    if not check_hpa_api(kube, result):
        skip_active(result, "autoscaling/v2 is not served")
        return None
    registered, _available = check_apiservice(kube, result)
    if kube.module.check_mode:
        skip_active(result, "check mode creates nothing")
        return None
    namespace = exercise(kube, params, result, registered)
    check_gpu_metric(kube, params, result, namespace, registered)
    return None


def main():
    argument_spec = common_argument_spec({
        "metric": {"type": "str", "default": app.GAUGE},
        "target_value": {"type": "int", "default": 10},
        "high_value": {"type": "int", "default": 50},
        "min_replicas": {"type": "int", "default": 1},
        "max_replicas": {"type": "int", "default": 3},
        "check_scale_down": {"type": "bool", "default": False},
        "prometheus": {"type": "str"},
        "service_monitor_labels": {"type": "dict", "default": {}},
        "scrape_interval": {"type": "str", "default": "5s"},
        "gpu_metric": {"type": "str", "default": mon.GPU_CUSTOM_METRIC},
        "gpu_metric_check": {"type": "str", "choices": ["auto", "true", "false"], "default": "auto"},
        "accelerator_resource": {"type": "str", "default": "nvidia.com/gpu"},
    })
    module = AnsibleK8SModule(argument_spec=argument_spec, supports_check_mode=True)
    run_requirement(module, REQUIREMENT, verify)


if __name__ == "__main__":
    main()
