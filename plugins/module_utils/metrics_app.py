# -*- coding: utf-8 -*-
# Copyright: ai_conformance.rke2 contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The test workload of ai_service_metrics and pod_autoscaling: a metrics app and its ServiceMonitor.

BusyBox ``httpd`` serves three CGI scripts from a ConfigMap (state in an emptyDir):

* ``/cgi-bin/metrics`` - Prometheus text format: the counter
  ``aic_test_requests_total{run="<run id>"}`` and the gauge ``aic_test_load``;
* ``/cgi-bin/hit?run=<run id>`` - counts one request of that run, answers ``ok <run> <count>``;
* ``/cgi-bin/set?value=<number>`` - sets the gauge, answers ``ok load <value>``.

The pods come from ``testpods.PodBuilder`` (``restricted``, requests/limits,
pinned image). Rendering here is pure; only ``wait_reachable`` talks to the API.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import re

from ansible_collections.ai_conformance.rke2.plugins.module_utils.kube import KubeError, Stuck, WaitTimeout
from ansible_collections.ai_conformance.rke2.plugins.module_utils.testpods import PodBuilder

APP_NAME = "aic-metrics-app"
PORT = 8080
PORT_NAME = "http-metrics"
METRICS_PATH = "/cgi-bin/metrics"
COUNTER = "aic_test_requests_total"
GAUGE = "aic_test_load"
# Metric family the monitoring role's prometheus-adapter rule serves as custom metrics.
FAMILY_PREFIX = "aic_test_"
APP_LABEL = "app.kubernetes.io/name"
IMAGE_KEY = "busybox"
SERVICE_MONITOR_API = "monitoring.coreos.com/v1"

_HEADER = "printf 'Content-Type: text/plain; version=0.0.4; charset=utf-8\\r\\n\\r\\n'\n"

METRICS_SCRIPT = """#!/bin/sh
# Prometheus text exposition of the requests counted per run id and of the load gauge.
""" + _HEADER + """echo '# HELP %(counter)s Requests received on /cgi-bin/hit, by run id.'
echo '# TYPE %(counter)s counter'
for f in /state/hits.*; do
  [ -f "$f" ] || continue
  echo "%(counter)s{run=\\"${f#/state/hits.}\\"} $(cat "$f")"
done
echo '# HELP %(gauge)s Load gauge set by the verifier through /cgi-bin/set.'
echo '# TYPE %(gauge)s gauge'
echo "%(gauge)s $(cat /state/load 2>/dev/null || echo 0)"
""" % {"counter": COUNTER, "gauge": GAUGE}

HIT_SCRIPT = """#!/bin/sh
# Count one request of the run named in the query (run=[a-z0-9-]+).
""" + _HEADER + """run=$(echo "$QUERY_STRING" | sed -n 's/^\\(.*&\\)\\{0,1\\}run=\\([a-z0-9-]\\{1,63\\}\\)\\(&.*\\)\\{0,1\\}$/\\2/p')
if [ -z "$run" ]; then echo "error: query needs run=[a-z0-9-]+"; exit 0; fi
f="/state/hits.$run"
n=$(( $(cat "$f" 2>/dev/null || echo 0) + 1 ))
echo "$n" > "$f.tmp" && mv "$f.tmp" "$f"
echo "ok $run $n"
"""

SET_SCRIPT = """#!/bin/sh
# Set the load gauge to the number in the query (value=N or N.M).
""" + _HEADER + """number='[0-9]\\{1,9\\}\\(\\.[0-9]\\{1,6\\}\\)\\{0,1\\}'
value=$(echo "$QUERY_STRING" | sed -n "s/^\\(.*&\\)\\{0,1\\}value=\\($number\\)\\(&.*\\)\\{0,1\\}\\$/\\2/p")
if [ -z "$value" ]; then echo "error: query needs value=<number>"; exit 0; fi
echo "$value" > /state/load.tmp && mv /state/load.tmp /state/load
echo "ok load $value"
"""

_RUN_ID_CHARS = re.compile(r"[^a-z0-9-]+")


def run_label(run_id):
    """The run id as the workload accepts it (lower case, [a-z0-9-], at most 63 characters)."""
    value = _RUN_ID_CHARS.sub("-", str(run_id).lower()).strip("-")[:63].strip("-")
    return value or "run"


def hit_path(run_id):
    return "/cgi-bin/hit?run=%s" % run_label(run_id)


def set_path(value):
    return "/cgi-bin/set?value=%s" % format_value(value)


def format_value(value):
    """A gauge value as the set script accepts it (non-negative, at most 6 decimals)."""
    number = float(value)
    if number < 0:
        raise ValueError("the load gauge cannot be negative: %r" % value)
    return ("%d" % number) if number == int(number) else ("%.6f" % number).rstrip("0")


def hit_ok(answer, run_id):
    """The count the hit script reported, or None when the answer is not its ``ok`` line."""
    match = re.search(r"^ok %s (\d+)$" % re.escape(run_label(run_id)), str(answer or ""), re.MULTILINE)
    return int(match.group(1)) if match else None


def set_ok(answer, value):
    return ("ok load %s" % format_value(value)) in str(answer or "")


def selector(name=APP_NAME):
    return {APP_LABEL: name}


def selector_string(name=APP_NAME):
    return ",".join("%s=%s" % item for item in sorted(selector(name).items()))


def wait_reachable(kube, namespace, timeout, name=APP_NAME):
    """Wait until the app answers ``/cgi-bin/metrics`` through the API server's service proxy (Endpoints can lag
    behind a Ready pod: the proxy answers 503 until they are there). Returns the metrics text; raises WaitTimeout."""

    def probe():
        try:
            return True, str(kube.service_proxy(namespace, name, PORT_NAME, METRICS_PATH))
        except KubeError as exc:  # the proxy's answer is the state to report
            return False, str(exc)

    return kube.wait_for(probe, timeout, interval=2, what="the test app to answer through the service proxy")


def render_configmap(namespace, labels, name=APP_NAME):
    return {"apiVersion": "v1", "kind": "ConfigMap",
            "metadata": {"name": name, "namespace": namespace, "labels": dict(labels)},
            "data": {"metrics": METRICS_SCRIPT, "hit": HIT_SCRIPT, "set": SET_SCRIPT}}


def render_pod_template(params, labels, name=APP_NAME):
    """Pod template of the app: ``httpd`` as nobody, scripts from the ConfigMap, state in an emptyDir."""
    builder = PodBuilder(params)
    probe = {"httpGet": {"path": METRICS_PATH, "port": PORT_NAME}, "periodSeconds": 2, "failureThreshold": 3}
    container = builder.container(
        "app", IMAGE_KEY,
        command=["httpd", "-f", "-v", "-p", str(PORT), "-h", "/www"],
        ports=[{"name": PORT_NAME, "containerPort": PORT, "protocol": "TCP"}],
        readiness_probe=probe)
    container["volumeMounts"] = [{"name": "scripts", "mountPath": "/www/cgi-bin", "readOnly": True},
                                 {"name": "state", "mountPath": "/state"}]
    template = builder.template([container], labels=dict(labels, **selector(name)), restart_policy="Always")
    template["spec"]["volumes"] = [
        {"name": "scripts", "configMap": {"name": name, "defaultMode": 0o555}},
        {"name": "state", "emptyDir": {"sizeLimit": "1Mi"}},
    ]
    return template


def render_deployment(params, namespace, labels, replicas=1, name=APP_NAME):
    return {"apiVersion": "apps/v1", "kind": "Deployment",
            "metadata": {"name": name, "namespace": namespace, "labels": dict(labels)},
            "spec": {"replicas": replicas, "selector": {"matchLabels": selector(name)},
                     "template": render_pod_template(params, labels, name)}}


def render_service(namespace, labels, name=APP_NAME):
    return {"apiVersion": "v1", "kind": "Service",
            "metadata": {"name": name, "namespace": namespace, "labels": dict(labels, **selector(name))},
            "spec": {"selector": selector(name),
                     "ports": [{"name": PORT_NAME, "port": PORT, "targetPort": PORT_NAME, "protocol": "TCP"}]}}


def render_service_monitor(namespace, labels, interval="5s", name=APP_NAME):
    """ServiceMonitor scraping the app's Service every ``interval`` (``labels`` may carry Prometheus' selector)."""
    return {"apiVersion": SERVICE_MONITOR_API, "kind": "ServiceMonitor",
            "metadata": {"name": name, "namespace": namespace, "labels": dict(labels)},
            "spec": {"selector": {"matchLabels": selector(name)},
                     "namespaceSelector": {"matchNames": [namespace]},
                     "endpoints": [{"port": PORT_NAME, "path": METRICS_PATH, "interval": interval,
                                    "scrapeTimeout": interval}]}}


def monitor_labels(prometheus, base, extra=None, adopt=True):
    """(ServiceMonitor labels, namespace labels) for the test monitor: ``base`` + the ``matchLabels`` of
    Prometheus' selectors (``adopt``, as a user labels their own monitors) + ``extra``."""
    labels, namespace_labels = dict(base), {}
    if adopt and prometheus:
        spec = prometheus.get("spec") or {}
        labels.update((spec.get("serviceMonitorSelector") or {}).get("matchLabels") or {})
        namespace_labels.update((spec.get("serviceMonitorNamespaceSelector") or {}).get("matchLabels") or {})
    labels.update(extra or {})
    return labels, namespace_labels


def scrape_pool(namespace, name=APP_NAME):
    """Prometheus' scrape pool of the ServiceMonitor's first endpoint (as the operator names it)."""
    return "serviceMonitor/%s/%s/0" % (namespace, name)


def render_all(params, namespace, labels, monitor_labels=None, replicas=1, interval="5s", name=APP_NAME,
               with_monitor=True):
    """ConfigMap, Deployment, Service and (``with_monitor``) the ServiceMonitor, in creation order."""
    objects = [render_configmap(namespace, labels, name),
               render_deployment(params, namespace, labels, replicas, name),
               render_service(namespace, labels, name)]
    if with_monitor:
        objects.append(render_service_monitor(namespace, dict(labels, **(monitor_labels or {})), interval, name))
    return objects


def start(kube, params, objects, replicas, result, check="metrics_workload", what="the test app"):
    """Create ``objects`` (from ``render_all``), wait until ``replicas`` pods run and answer through the service proxy.

    Records ``check`` (passed, or the policy's cause) and returns True when the app is up.
    """
    namespace = objects[0]["metadata"]["namespace"]
    for obj in objects:
        kube.create(obj)
    image = PodBuilder(params).image(IMAGE_KEY)
    try:
        state = kube.wait_for_pods(namespace, selector_string(), replicas, "Running", timeout=params["timeout"])
    except Stuck as exc:
        result.outcome(check, exc.cause, "%s (image %s) did not start: %s" % (what, image, exc))
        return False
    except WaitTimeout as exc:
        result.error(check, "%s (image %s) was not ready: %s" % (what, image, exc), cause="timeout")
        return False
    try:
        wait_reachable(kube, namespace, params["timeout"])
    except WaitTimeout as exc:
        result.error(check, "%s runs but does not answer through the API server's service proxy: %s" % (what, exc),
                     cause="network_policy")
        return False
    result.passed(check, "%s (image %s, %d replica(s)) runs under Pod Security restricted and answers through the service proxy"
                  % (what, image, replicas), observed=state)
    return True
