# -*- coding: utf-8 -*-
# Copyright: ai_conformance.rke2 contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Pure evaluation for ai_service_metrics and pod_autoscaling.

Prometheus Operator objects (Prometheus readiness, which ServiceMonitors a
Prometheus selects), Prometheus HTTP API answers (``/api/v1/targets``,
``/api/v1/query``), APIService availability, custom metrics discovery and
HorizontalPodAutoscaler status. Inputs are plain dicts as the API returns them.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import json

from ansible_collections.ai_conformance.rke2.plugins.module_utils import accelerator_metrics
from ansible_collections.ai_conformance.rke2.plugins.module_utils import accelerators
from ansible_collections.ai_conformance.rke2.plugins.module_utils import status as k8s_status

MONITORING_GROUP = "monitoring.coreos.com"
MONITORING_V1 = "monitoring.coreos.com/v1"
OPERATOR_KINDS = ("Prometheus", "ServiceMonitor", "PodMonitor")
CUSTOM_METRICS_APISERVICE = "v1beta1.custom.metrics.k8s.io"
CUSTOM_METRICS_API = "custom.metrics.k8s.io/v1beta1"
GPU_METRIC = "DCGM_FI_DEV_GPU_UTIL"
GPU_CUSTOM_METRIC = "gpu_utilization"
# HPA condition reasons that say the metric could not be read (pkg/controller/podautoscaler).
METRIC_FAILURES = ("FailedGetPodsMetric", "FailedGetObjectMetric", "FailedGetExternalMetric",
                   "FailedGetResourceMetric", "FailedGetContainerResourceMetric")
NO_CUSTOM_METRICS_API = "no custom metrics API (custom.metrics.k8s.io) registered"


# ---------------------------------------------------------------- Prometheus Operator


def operator_kinds_missing(resource_list):
    """Kinds of ``OPERATOR_KINDS`` that the monitoring.coreos.com/v1 APIResourceList lacks (all when None)."""
    served = set(r.get("kind") for r in (resource_list or {}).get("resources") or [] if "/" not in r.get("name", ""))
    return [kind for kind in OPERATOR_KINDS if kind not in served]


def prometheus_ready(prometheus):
    """(ready, message) of a Prometheus CR from the operator's ``Available`` condition and replica counts."""
    meta = prometheus.get("metadata") or {}
    name = "%s/%s" % (meta.get("namespace"), meta.get("name"))
    status = prometheus.get("status") or {}
    available = k8s_status.condition(prometheus, "Available")
    replicas = "%s/%s replicas available" % (status.get("availableReplicas", 0),
                                             (prometheus.get("spec") or {}).get("replicas", 1))
    if available is None:
        return False, "Prometheus %s has no Available condition yet (%s; is the Prometheus Operator running?)" % (name, replicas)
    if available.get("status") != "True":
        return False, "Prometheus %s is not available: %s (%s)" % (
            name, k8s_status.format_conditions(k8s_status.conditions(prometheus)), replicas)
    if status.get("paused") or (prometheus.get("spec") or {}).get("paused"):
        return False, "Prometheus %s is paused: the operator does not reconcile it" % name
    return True, "Prometheus %s is available (%s)" % (name, replicas)


def pick_prometheus(items, wanted=None):
    """(prometheus, problem): the CR named ``wanted`` (namespace/name), else a ready one, else the first."""
    if wanted:
        namespace, _sep, name = wanted.rpartition("/")
        for item in items:
            meta = item.get("metadata") or {}
            if meta.get("name") == name and (not namespace or meta.get("namespace") == namespace):
                return item, None
        return None, "Prometheus %s (option prometheus) was not found; found: %s" % (wanted, names(items) or "none")
    if not items:
        return None, "no Prometheus was found: no Prometheus object (monitoring.coreos.com/v1) in any namespace"
    ordered = sorted(items, key=lambda p: (not prometheus_ready(p)[0], names([p])))
    return ordered[0], None


def names(items):
    return ", ".join("%s/%s" % ((i.get("metadata") or {}).get("namespace"), (i.get("metadata") or {}).get("name"))
                     for i in items)


def route_prefix(prometheus):
    """The path prefix of Prometheus' web/API endpoints (``spec.routePrefix``, default ``/``)."""
    prefix = ((prometheus or {}).get("spec") or {}).get("routePrefix") or "/"
    return "/" + prefix.strip("/") if prefix.strip("/") else ""


def selector_matches(selector, labels):
    """Does a metav1.LabelSelector select ``labels``? ``None`` selects nothing, ``{}`` everything."""
    if selector is None:
        return False
    labels = labels or {}
    for key, value in (selector.get("matchLabels") or {}).items():
        if labels.get(key) != value:
            return False
    for expr in selector.get("matchExpressions") or []:
        key, op, values = expr.get("key"), expr.get("operator"), expr.get("values") or []
        if op == "In" and labels.get(key) not in values:
            return False
        if op == "NotIn" and key in labels and labels[key] in values:
            return False
        if op == "Exists" and key not in labels:
            return False
        if op == "DoesNotExist" and key in labels:
            return False
    return True


def describe_selector(selector):
    """A label selector as text (``null`` selects nothing, ``{}`` everything)."""
    if selector is None:
        return "null (selects nothing)"
    if not selector.get("matchLabels") and not selector.get("matchExpressions"):
        return "{} (selects everything)"
    parts = ["%s=%s" % item for item in sorted((selector.get("matchLabels") or {}).items())]
    for expr in selector.get("matchExpressions") or []:
        parts.append("%s %s %s" % (expr.get("key"), expr.get("operator"), ",".join(expr.get("values") or [])))
    return ", ".join(parts)


def monitor_selection(prometheus, namespace, monitor_labels, namespace_labels, kind="serviceMonitor"):
    """(selected, message): whether Prometheus selects a ``kind`` monitor with these labels in ``namespace``.

    The operator reads ``spec.<kind>Selector`` (null: none) and
    ``spec.<kind>NamespaceSelector`` (null: only Prometheus' own namespace).
    """
    spec = (prometheus or {}).get("spec") or {}
    meta = (prometheus or {}).get("metadata") or {}
    own = meta.get("namespace")
    monitor_selector = spec.get("%sSelector" % kind)
    namespace_selector = spec.get("%sNamespaceSelector" % kind)
    where = "Prometheus %s/%s uses %sSelector %s and %sNamespaceSelector %s" % (
        own, meta.get("name"), kind, describe_selector(monitor_selector), kind,
        "null (only its own namespace %s)" % own if namespace_selector is None else describe_selector(namespace_selector))
    if not selector_matches(monitor_selector, monitor_labels):
        return False, "%s: the %s's labels %s do not match" % (where, kind, json.dumps(monitor_labels or {}, sort_keys=True))
    if namespace_selector is None:
        if namespace != own:
            return False, "%s: namespace %s is not selected" % (where, namespace)
    elif not selector_matches(namespace_selector, namespace_labels):
        return False, "%s: namespace %s (labels %s) is not selected" % (where, namespace, json.dumps(namespace_labels or {}, sort_keys=True))
    return True, "%s: selected" % where


# ---------------------------------------------------------------- Prometheus HTTP API


class PrometheusAPIError(ValueError):
    """Prometheus answered ``status: error`` or something that is not its API envelope."""


def api_data(answer):
    """``data`` of a Prometheus HTTP API answer (``{"status": "success", "data": ...}``)."""
    if isinstance(answer, str):
        try:
            answer = json.loads(answer)
        except ValueError:
            raise PrometheusAPIError("not a Prometheus API answer: %s" % answer[:300])
    if not isinstance(answer, dict) or "status" not in answer:
        raise PrometheusAPIError("not a Prometheus API answer: %s" % json.dumps(answer)[:300])
    if answer["status"] != "success":
        raise PrometheusAPIError("Prometheus answered %s: %s (%s)" % (answer["status"], answer.get("error"), answer.get("errorType")))
    return answer.get("data")


def find_target(targets_data, pool, namespace=None, service=None):
    """The active target of scrape pool ``pool`` (or with labels namespace/service), or None."""
    for target in (targets_data or {}).get("activeTargets") or []:
        labels = target.get("labels") or {}
        if target.get("scrapePool") == pool:
            return target
        if namespace and service and labels.get("namespace") == namespace and labels.get("service") == service:
            return target
    return None


def target_summary(target):
    """The fields of a target entry worth showing as evidence."""
    keys = ("scrapePool", "scrapeUrl", "health", "lastError", "lastScrape", "lastScrapeDuration", "scrapeInterval", "labels")
    return dict((k, target.get(k)) for k in keys if k in target)


def evaluate_target(target):
    """(health, message) of a target entry: ``up``, ``down`` (with lastError) or ``unknown`` (not scraped yet)."""
    health = target.get("health") or "unknown"
    url = target.get("scrapeUrl")
    if health == "up":
        return "up", "target %s is up (last scrape %s)" % (url, target.get("lastScrape"))
    if health == "down":
        return "down", "target %s is down: %s" % (url, target.get("lastError") or "no lastError given")
    return "unknown", "target %s has not been scraped yet" % url


def vector_samples(query_data):
    """[(labels, value)] of an instant-vector query result; values as floats."""
    if (query_data or {}).get("resultType") != "vector":
        raise PrometheusAPIError("expected a vector result, got %s" % (query_data or {}).get("resultType"))
    samples = []
    for item in query_data.get("result") or []:
        value = item.get("value") or [None, "NaN"]
        samples.append((item.get("metric") or {}, float(value[1])))
    return samples


def counter_query(metric, namespace, run):
    """PromQL selecting the run's counter in the test namespace."""
    return '%s{namespace="%s",run="%s"}' % (metric, namespace, run)


def evaluate_count(samples, expected):
    """(state, value, message) for the scraped counter: ``exact``, ``below`` (not yet) or ``above``/``many``."""
    if not samples:
        return "below", None, "no sample yet"
    if len(samples) > 1:
        return "many", None, "%d series match, expected one: %s" % (len(samples), [s[0] for s in samples])
    value = samples[0][1]
    if value == expected:
        return "exact", value, "the scraped counter is %d, exactly the %d requests sent" % (value, expected)
    if value < expected:
        return "below", value, "the scraped counter is %g of %d" % (value, expected)
    return "above", value, "the scraped counter is %g, more than the %d requests sent" % (value, expected)


def exposed_value(text, sample_name, labels=None):
    """Value of the sample ``sample_name`` with ``labels`` in Prometheus text ``text``, or None.

    Parsed with prometheus_client (``accelerator_metrics.parse_metrics``; raises MetricsFormatError).
    """
    wanted = labels or {}
    for sample in accelerator_metrics.parse_metrics(text):
        if sample["metric"] == sample_name and all(sample["labels"].get(k) == v for k, v in wanted.items()):
            return sample["value"]
    return None


# ---------------------------------------------------------------- APIService, custom metrics


def apiservice_available(apiservice, name=CUSTOM_METRICS_APISERVICE):
    """(available, message) of an APIService from its ``Available`` condition."""
    if apiservice is None:
        return False, "APIService %s does not exist: no custom metrics adapter is registered" % name
    cond = k8s_status.condition(apiservice, "Available")
    service = ((apiservice.get("spec") or {}).get("service") or {})
    backend = "%s/%s" % (service.get("namespace"), service.get("name")) if service else "local"
    if cond is not None and cond.get("status") == "True":
        return True, "APIService %s (service %s) is Available: %s" % (name, backend, cond.get("message") or cond.get("reason"))
    return False, "APIService %s (service %s) is not Available: %s" % (
        name, backend, k8s_status.format_conditions(k8s_status.conditions(apiservice)))


def find_apiservice(items, name=CUSTOM_METRICS_APISERVICE):
    for item in items or []:
        if (item.get("metadata") or {}).get("name") == name:
            return item
    return None


def custom_metrics_listed(resource_list):
    """Names of the custom metrics a discovery document lists, as ``resource/metric``."""
    return sorted(r.get("name") for r in (resource_list or {}).get("resources") or [] if "/" in (r.get("name") or ""))


def metric_listed(resource_list, metric, resource="pods"):
    return "%s/%s" % (resource, metric) in custom_metrics_listed(resource_list)


def accelerator_nodes(nodes, resource):
    """Names of the nodes with allocatable ``resource`` (e.g. ``nvidia.com/gpu``) above zero."""
    return sorted(n["metadata"]["name"] for n in accelerators.accelerator_nodes(nodes, {"resource": resource})[0])


def metric_values(metric_value_list):
    """{pod name: value} from a MetricValueList (quantities like ``50`` or ``500m`` as floats)."""
    values = {}
    for item in (metric_value_list or {}).get("items") or []:
        values[(item.get("describedObject") or {}).get("name")] = parse_quantity(item.get("value"))
    return values


def parse_quantity(text):
    """A Kubernetes quantity as float (``500m`` = 0.5, ``2k`` = 2000); None when it is not one."""
    if text is None:
        return None
    text = str(text).strip()
    suffixes = {"n": 1e-9, "u": 1e-6, "m": 1e-3, "k": 1e3, "M": 1e6, "G": 1e9, "T": 1e12,
                "Ki": 1024.0, "Mi": 1024.0 ** 2, "Gi": 1024.0 ** 3}
    for suffix in sorted(suffixes, key=len, reverse=True):
        if text.endswith(suffix):
            try:
                return float(text[:-len(suffix)]) * suffixes[suffix]
            except ValueError:
                return None
    try:
        return float(text)
    except ValueError:
        return None


# ---------------------------------------------------------------- HorizontalPodAutoscaler


def render_hpa(name, namespace, target, metric, metric_type, target_value, min_replicas, max_replicas, labels,
               service=None):
    """autoscaling/v2 HPA on Deployment ``target`` with one Pods (AverageValue) or Object (Service, Value) metric."""
    if metric_type == "Pods":
        spec_metric = {"type": "Pods", "pods": {"metric": {"name": metric},
                                                "target": {"type": "AverageValue", "averageValue": str(target_value)}}}
    elif metric_type == "Object":
        spec_metric = {"type": "Object", "object": {
            "describedObject": {"apiVersion": "v1", "kind": "Service", "name": service or target},
            "metric": {"name": metric}, "target": {"type": "Value", "value": str(target_value)}}}
    else:
        raise ValueError("metric_type must be Pods or Object, not %r" % metric_type)
    return {"apiVersion": "autoscaling/v2", "kind": "HorizontalPodAutoscaler",
            "metadata": {"name": name, "namespace": namespace, "labels": dict(labels)},
            "spec": {"scaleTargetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": target},
                     "minReplicas": min_replicas, "maxReplicas": max_replicas, "metrics": [spec_metric],
                     # scale down after one minute instead of the default five (the scale-down check waits for it)
                     "behavior": {"scaleDown": {"stabilizationWindowSeconds": 60}}}}


def hpa_summary(hpa):
    """currentReplicas, desiredReplicas, currentMetrics and conditions of an HPA (evidence)."""
    status = (hpa or {}).get("status") or {}
    return {"currentReplicas": status.get("currentReplicas"), "desiredReplicas": status.get("desiredReplicas"),
            "currentMetrics": status.get("currentMetrics"), "conditions": status.get("conditions") or []}


def hpa_metric_failure(hpa):
    """(reason, message) when the HPA reports it cannot read its metric (ScalingActive=False, FailedGet*Metric)."""
    cond = k8s_status.condition(hpa, "ScalingActive")
    if cond and cond.get("status") == "False" and cond.get("reason") in METRIC_FAILURES:
        return cond.get("reason"), cond.get("message")
    return None


def hpa_scaling_active(hpa):
    return k8s_status.condition_true(hpa, "ScalingActive")


def hpa_condition_text(hpa):
    return k8s_status.format_conditions(k8s_status.conditions(hpa))


def evaluate_scale_up(hpa, min_replicas):
    """(ok, message): ScalingActive=True and currentReplicas above ``min_replicas``."""
    status = (hpa or {}).get("status") or {}
    current, desired = status.get("currentReplicas") or 0, status.get("desiredReplicas") or 0
    active = hpa_scaling_active(hpa)
    if active and current > min_replicas:
        return True, "the HPA scaled the Deployment from %d to %d replicas (desired %d) on the custom metric: %s" % (
            min_replicas, current, desired, hpa_condition_text(hpa))
    return False, "currentReplicas %d, desiredReplicas %d, conditions %s" % (current, desired, hpa_condition_text(hpa))


def evaluate_scale_down(hpa, high, low):
    """(ok, message): back to at most ``low`` replicas after having been at ``high``."""
    status = (hpa or {}).get("status") or {}
    current = status.get("currentReplicas") or 0
    if hpa_scaling_active(hpa) and current <= low:
        return True, "the HPA scaled the Deployment back from %d to %d replicas" % (high, current)
    return False, "currentReplicas %d (want at most %d), conditions %s" % (current, low, hpa_condition_text(hpa))


def hpa_events_text(events):
    """``Reason: message (xN)`` lines of an HPA's events (evidence)."""
    lines = []
    for event in events or []:
        lines.append("%s %s: %s (x%s)" % (event.get("type"), event.get("reason"), event.get("message"), event.get("count") or 1))
    return "\n".join(lines)
