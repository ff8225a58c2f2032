# -*- coding: utf-8 -*-
# Copyright: ai_conformance.rke2 contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Pure evaluation of ``accelerator_metrics``: GPU nodes, the exporter's Service and Endpoints, its metrics.

Everything vendor-specific (metric and label names, Service, node label) comes
from the ``metrics`` section of an accelerator profile
(``accelerator_profiles.py``). Metrics text is parsed by ``prometheus_client``.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import re
import traceback

try:
    from prometheus_client.parser import text_string_to_metric_families

    HAS_PROMETHEUS_CLIENT = True
    PROMETHEUS_CLIENT_IMPORT_ERROR = None
except ImportError:
    HAS_PROMETHEUS_CLIENT = False
    PROMETHEUS_CLIENT_IMPORT_ERROR = traceback.format_exc()

ADVISORY_ORDER = ("temperature", "power", "interconnect")


class MetricsFormatError(ValueError):
    """The exporter's answer is not in the Prometheus text format."""


# --------------------------------------------------------------------------- nodes


def _int_quantity(value):
    """An extended resource quantity ("2") as int; None when it is not a plain integer."""
    try:
        return int(str(value))
    except (TypeError, ValueError):
        return None


def gpu_nodes(nodes, resource, replicas_label=None):
    """The nodes that advertise ``resource`` capacity, with how many physical devices to expect.

    Returns ``(with_gpus, without)``: ``with_gpus`` is a list of
    ``{"node", "capacity", "replicas", "expected"}``; time-slicing (``replicas_label``
    > 1) divides the advertised capacity by the replicas. ``without`` lists the
    names of nodes that carry no such capacity (labelled but not advertising).
    """
    found, without = [], []
    for node in nodes:
        meta = node.get("metadata") or {}
        capacity = _int_quantity(((node.get("status") or {}).get("capacity") or {}).get(resource))
        if not capacity:
            without.append(meta.get("name"))
            continue
        replicas = _int_quantity((meta.get("labels") or {}).get(replicas_label)) if replicas_label else None
        replicas = replicas if replicas and replicas > 1 else 1
        found.append({"node": meta.get("name"), "resource": resource, "capacity": capacity, "replicas": replicas,
                      "expected": max(1, capacity // replicas)})
    found.sort(key=lambda item: item["node"])
    return found, sorted(n for n in without if n)


# --------------------------------------------------------------------------- Service and Endpoints


def service_port(service, port):
    """The Service port entry named (or numbered) ``port``, or None."""
    for entry in (service.get("spec") or {}).get("ports") or []:
        if str(entry.get("name") or "") == str(port) or str(entry.get("port")) == str(port):
            return entry
    return None


def describe_ports(service):
    """``name:port->targetPort`` for each port of a Service."""
    parts = []
    for entry in (service.get("spec") or {}).get("ports") or []:
        parts.append("%s:%s->%s" % (entry.get("name") or "(unnamed)", entry.get("port"), entry.get("targetPort", entry.get("port"))))
    return ", ".join(parts) or "none"


def endpoint_addresses(endpoints, port_name):
    """Ready and not-ready addresses of a v1 Endpoints for the port named ``port_name``.

    Returns ``{"ready": [...], "not_ready": [...]}`` with ``{"ip", "node", "pod", "port"}``
    items; ``port`` is the endpoint (container) port number.
    """
    ready, not_ready = [], []
    for subset in (endpoints or {}).get("subsets") or []:
        numbers = [p.get("port") for p in subset.get("ports") or [] if (p.get("name") or "") == (port_name or "")]
        if not numbers:
            continue
        for key, bucket in (("addresses", ready), ("notReadyAddresses", not_ready)):
            for address in subset.get(key) or []:
                target = address.get("targetRef") or {}
                bucket.append({"ip": address.get("ip"), "node": address.get("nodeName"),
                               "pod": target.get("name") if target.get("kind") == "Pod" else None, "port": numbers[0]})
    return {"ready": ready, "not_ready": not_ready}


def proxy_answer(exc):
    """What a failed service-proxy GET means, from the API server's answer.

    ``missing_service`` / ``missing_pod`` (404), ``no_port`` (503 ``no service port N found``),
    ``no_endpoints`` (503 ``no endpoints available``: no ready address serves
    the port; or 404: the Service has no Endpoints object at all), ``unreachable_backend`` (the API server could not reach the pod),
    ``no_address`` (pod proxy: 400 ``address not allowed``, the pod has no IP),
    or None (anything else: RBAC, API errors).
    """
    status = getattr(exc, "status", None)
    body = getattr(exc, "body", None)
    text = body.get("message", "") if isinstance(body, dict) else str(body or getattr(exc, "message", ""))
    if status == 404 and isinstance(body, dict):
        missing = (body.get("details") or {}).get("kind")
        if missing in ("services", "endpoints", "pods"):
            return {"services": "missing_service", "endpoints": "no_endpoints", "pods": "missing_pod"}[missing]
    if status == 503 and "no service port" in text:
        return "no_port"
    if status == 503 and "no endpoints available" in text:
        return "no_endpoints"
    if status == 400 and "address not allowed" in text:
        return "no_address"
    if status in (500, 502, 503) and re.search(r"error trying to reach service|dial tcp|connection refused|i/o timeout", text, re.I):
        return "unreachable_backend"
    return None


# --------------------------------------------------------------------------- metrics text


def parse_metrics(text):
    """Samples of a Prometheus text exposition: list of ``{"metric", "family", "labels", "value"}``.

    ``family`` is the metric family (counters lose a ``_total`` suffix there,
    samples gain one); a configured name matches either. Raises
    MetricsFormatError when the text is not in the Prometheus text format.
    """
    if not HAS_PROMETHEUS_CLIENT:
        raise MetricsFormatError("the prometheus_client Python library is required to parse metrics: %s" % PROMETHEUS_CLIENT_IMPORT_ERROR)
    samples = []
    try:
        for family in text_string_to_metric_families(text or ""):
            for sample in family.samples:
                samples.append({"metric": sample.name, "family": family.name, "labels": dict(sample.labels), "value": sample.value})
    except (ValueError, TypeError, IndexError) as exc:
        raise MetricsFormatError("the answer is not in the Prometheus text format: %s (first line: %r)"
                                 % (exc, (text or "").strip().splitlines()[0][:120] if (text or "").strip() else ""))
    return samples


def _names(sample):
    return (sample["metric"], sample["family"])


def has_metric(samples, names):
    """True when any sample belongs to one of ``names``."""
    return any(set(_names(s)) & set(names) for s in samples)


def by_host(samples, host_label, nodes):
    """Split samples by their host label among ``nodes``: ``{node: [samples]}`` (only nodes that appear)."""
    wanted = set(nodes)
    grouped = {}
    for sample in samples:
        host = sample["labels"].get(host_label)
        if host in wanted:
            grouped.setdefault(host, []).append(sample)
    return grouped


def _device_key(labels, config):
    index = labels.get(config["index_label"], "")
    instance = labels.get(config.get("instance_label") or "", "")
    return (index, instance)


def _key_text(key):
    return key[0] + ("/%s" % key[1] if key[1] else "")


def _sort_key(key):
    return (int(key[0]) if key[0].isdigit() else 1 << 30, key[0], key[1])


def required_metrics(config):
    """(category, metric name) pairs every device must publish."""
    return [("utilization", m) for m in config.get("utilization") or []] + [("memory", m) for m in config.get("memory") or []]


def devices_of(samples, config):
    """Per device (index label, MIG instance): its identity labels and the value of each wanted metric.

    Only samples of the required and advisory metrics count; a metric with several
    series for one device (one per pod using it) keeps the first value and collects the pods.
    """
    wanted = [m for dummy, m in required_metrics(config)]
    for names in (config.get("advisory") or {}).values():
        wanted.extend(names)
    devices = {}
    for sample in samples:
        names = [n for n in _names(sample) if n in wanted]
        if not names:
            continue
        labels = sample["labels"]
        device = devices.setdefault(_device_key(labels, config), {"labels": {}, "values": {}, "pods": [], "no_identity": []})
        for label in config.get("identity_labels") or []:
            if labels.get(label) and label not in device["labels"]:
                device["labels"][label] = labels[label]
        missing = [label for label in config.get("identity_labels") or [] if not labels.get(label)]
        if missing:
            device["no_identity"].append("%s lacks %s" % (names[0], ", ".join(missing)))
        for label in (config.get("model_label"),):
            if label and labels.get(label):
                device["labels"].setdefault(label, labels[label])
        device["values"].setdefault(names[0], sample["value"])
        pod = labels.get("pod")
        if pod:
            ref = "%s/%s" % (labels.get("namespace", ""), pod)
            if ref not in device["pods"]:
                device["pods"].append(ref)
    return devices


def _describe_device(node, key, device, config):
    uuid = device["labels"].get(config.get("uuid_label") or "UUID")
    return "node %s GPU %s%s" % (node, _key_text(key), " (%s)" % uuid if uuid else "")


def _expectation(item):
    text = "%d GPU(s) expected from capacity %s=%d" % (item["expected"], item.get("resource", "accelerators"), item["capacity"])
    return text + (" shared %d ways (time-slicing)" % item["replicas"] if item["replicas"] > 1 else "")


def evaluate(nodes, samples_by_node, config, sources=None):
    """Judge the per-device metrics of every GPU node.

    ``nodes``: ``gpu_nodes()`` items; ``samples_by_node``: ``{node: samples}`` (a node
    absent from it had no exporter answer); ``sources``: ``{node: why it has no samples}``.
    Returns ``{"ok", "message", "problems", "devices", "advisory"}``; ``devices`` is a list of
    table rows, ``advisory`` maps each advisory category to ``{"ok", "missing"}``.
    """
    sources = sources or {}
    required = required_metrics(config)
    problems, rows = [], []
    advisory = dict((cat, {"names": names, "missing": []}) for cat, names in (config.get("advisory") or {}).items())
    for item in nodes:
        node = item["node"]
        samples = samples_by_node.get(node)
        if not samples:
            why = sources.get(node, "the exporter published no series for this node")
            problems.append("node %s: no metrics for its %d GPU(s): %s" % (node, item["expected"], why))
            continue
        devices = devices_of(samples, config)
        keys = sorted(devices, key=_sort_key)
        indexes = set(k[0] for k in keys)
        absent = [str(i) for i in range(item["expected"]) if str(i) not in indexes]
        if len(indexes) < item["expected"]:
            problems.append("node %s: %s, series for %d GPU(s) (%s); no series at all for GPU index %s" % (
                node, _expectation(item), len(indexes), ", ".join(sorted(indexes, key=lambda i: _sort_key((i, "")))) or "none",
                ", ".join(absent) or "(the exporter's indexes do not follow 0..N-1)"))
        for key in keys:
            device = devices[key]
            who = _describe_device(node, key, device, config)
            lacking = [name for dummy, name in required if name not in device["values"]]
            if lacking:
                problems.append("%s lacks %s" % (who, ", ".join(lacking)))
            if device["no_identity"]:
                problems.append("%s: series without device identity (%s)" % (who, "; ".join(device["no_identity"][:3])))
            for cat, info in advisory.items():
                if not any(name in device["values"] for name in info["names"]):
                    info["missing"].append(who)
            rows.append({"node": node, "gpu": _key_text(key), "uuid": device["labels"].get(config.get("uuid_label") or "UUID"),
                         "model": device["labels"].get(config.get("model_label") or ""), "host": device["labels"].get(config.get("host_label") or ""),
                         "values": device["values"], "pods": device["pods"], "missing": lacking})
    total = sum(item["expected"] for item in nodes)
    complete = [r for r in rows if not r["missing"]]
    if problems:
        message = "per-GPU metrics incomplete: %s" % "; ".join(problems)
    else:
        message = "%d GPU(s) on %d node(s) publish %s with device identity (%s)" % (
            len(complete), len(nodes), ", ".join(name for dummy, name in required), ", ".join(config.get("identity_labels") or []))
    for cat, info in advisory.items():
        info["ok"] = bool(rows) and not info["missing"]
    return {"ok": bool(nodes) and not problems and len(complete) >= total, "message": message, "problems": problems, "devices": rows,
            "advisory": advisory, "expected_gpus": total}


def _cell(value):
    if value is None:
        return "—"
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)


def metrics_table(rows, config):
    """Markdown table: one row per GPU, one column per required and advisory metric."""
    columns = [name for dummy, name in required_metrics(config)]
    for cat in ADVISORY_ORDER + tuple(sorted(set(config.get("advisory") or {}) - set(ADVISORY_ORDER))):
        columns.extend((config.get("advisory") or {}).get(cat) or [])
    head = ["node", "GPU", "UUID", "model"] + columns + ["pods"]
    lines = ["| %s |" % " | ".join(head), "|%s" % ("---|" * len(head))]
    for row in rows:
        cells = [row["node"], row["gpu"], row.get("uuid") or "—", row.get("model") or "—"]
        cells += [_cell(row["values"].get(name)) if name in row["values"] else ("**missing**" if name in row["missing"] else "—") for name in columns]
        cells.append(", ".join(row["pods"]) or "—")
        lines.append("| %s |" % " | ".join(c.replace("|", "\\|") for c in cells))
    return "\n".join(lines) + "\n"
