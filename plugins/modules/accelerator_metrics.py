#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: ai_conformance.rke2 contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r"""
module: accelerator_metrics
short_description: Verify per-accelerator metrics (CNCF AI conformance C(accelerator_metrics))
version_added: 0.1.0
author:
  - ai_conformance.rke2 maintainers (@ai-conformance)
description:
  - Finds the accelerator metrics exporter (by default the GPU Operator's dcgm-exporter, Service
    C(gpu-operator/nvidia-dcgm-exporter), port C(gpu-metrics)) and reads its metrics B(through the API server's
    proxy), as any in-cluster consumer would; nothing runs on the nodes and nothing is created.
  - Parses the answer with C(prometheus_client)'s text parser and requires, for every accelerator of every
    accelerator node (counted from the node's capacity of the profile's extended resource), a utilization series
    and the memory series, each carrying the device identity labels.
  - Temperature, power and interconnect series are reported as advisory checks; they never fail the requirement.
  - A service-proxy GET reaches one exporter pod; nodes whose series were not in that answer are read through the
    pod proxy of their own exporter pod (one GET per node, found in the Service's Endpoints).
  - Missing Service or port, no ready exporter endpoint, and a GPU without series fail with distinct messages;
    no accelerator node at all is an C(error) (nothing to test), never a pass.
  - Everything vendor-specific comes from the accelerator profile (see C(accelerator_profile)).
requirements:
  - kubernetes
  - prometheus-client
options:
  accelerator_profile:
    description:
      - Name of a shipped accelerator profile (C(nvidia)) or a complete profile dict.
      - The module reads the profile's C(resource), C(node_label) and C(metrics) (Service, port, path, metric and
        label names).
    type: raw
    default: nvidia
  accelerator_profile_overrides:
    description:
      - "Dict merged (deeply) into the profile, for example C({metrics: {utilization: [MY_UTIL]}})."
    type: dict
    default: {}
  exporter_namespace:
    description: Namespace of the exporter's Service; default from the profile (C(gpu-operator)).
    type: str
  exporter_service:
    description: Name of the exporter's Service; default from the profile (C(nvidia-dcgm-exporter)).
    type: str
  exporter_port:
    description: Port name or number of the Service that serves metrics; default from the profile (C(gpu-metrics)).
    type: str
  metrics_path:
    description: HTTP path of the metrics; default from the profile (C(/metrics)).
    type: str
  node_selector:
    description:
      - Label selector of the accelerator nodes; default the profile's C(node_label) (C(nvidia.com/gpu.present)).
      - Among the selected nodes, those with capacity of the profile's resource are checked.
    type: str
extends_documentation_fragment:
  - kubernetes.core.k8s_auth_options
  - ai_conformance.rke2.common
"""

EXAMPLES = r"""
- name: Verify the GPU Operator's dcgm-exporter publishes per-GPU metrics
  ai_conformance.rke2.accelerator_metrics:
    kubeconfig: /etc/rancher/rke2/rke2.yaml
  register: metrics

- name: A standalone dcgm-exporter chart in namespace monitoring
  ai_conformance.rke2.accelerator_metrics:
    exporter_namespace: monitoring
    exporter_service: dcgm-exporter
    exporter_port: metrics

- name: Another vendor's exporter, described as data
  ai_conformance.rke2.accelerator_metrics:
    accelerator_profile_overrides:
      metrics:
        utilization: [VENDOR_DEVICE_BUSY_PERCENT]
        memory: [VENDOR_DEVICE_MEMORY_USED_BYTES]
"""

RETURN = r"""
result:
  description: The requirement's result; see the collection's result schema.
  returned: always
  type: dict
  sample:
    requirement: accelerator_metrics
    status: passed
    checks:
      - name: per_gpu_metrics
        status: passed
        kind: exercise
        message: 2 GPU(s) on 1 node(s) publish DCGM_FI_DEV_GPU_UTIL, DCGM_FI_DEV_FB_USED, DCGM_FI_DEV_FB_FREE with device identity (gpu, UUID, Hostname)
"""

from ansible.module_utils.basic import missing_required_lib
from ansible_collections.kubernetes.core.plugins.module_utils.k8s.core import AnsibleK8SModule

from ansible_collections.ai_conformance.rke2.plugins.module_utils import accelerator_metrics as am
from ansible_collections.ai_conformance.rke2.plugins.module_utils import accelerator_profiles
from ansible_collections.ai_conformance.rke2.plugins.module_utils.kube import (
    KubeError,
    Stuck,
    WaitTimeout,
    common_argument_spec,
    run_requirement,
)

REQUIREMENT = "accelerator_metrics"
RAW_EVIDENCE_LIMIT = 200000
RETRY_INTERVAL = 5.0


def settings(params):
    """The resolved profile and the exporter coordinates (module options override the profile)."""
    profile = accelerator_profiles.resolve(params["accelerator_profile"], params.get("accelerator_profile_overrides"))
    config = profile["metrics"]
    target = {
        "namespace": params.get("exporter_namespace") or config["namespace"],
        "service": params.get("exporter_service") or config["service"],
        "port": params.get("exporter_port") or str(config["port"]),
        "path": params.get("metrics_path") or config.get("path") or "/metrics",
    }
    selector = params.get("node_selector") or profile.get("node_label")
    return profile, config, target, selector


def find_gpu_nodes(kube, profile, config, selector, result):
    """GPU nodes with capacity; records the inspect check. One list call: by label selector (the label NFD/GFD
    puts on every GPU node) rather than all nodes, paginated by kube.list."""
    nodes = kube.list("v1", "Node", label_selector=selector or None)
    found, without = am.gpu_nodes(nodes, profile["resource"], config.get("replicas_label"))
    observed = {"selector": selector, "gpu_nodes": found, "labelled_without_capacity": without}
    if found:
        result.passed("gpu_nodes", "%d node(s) advertise %s: %s" % (
            len(found), profile["resource"], ", ".join("%s (%d)" % (n["node"], n["capacity"]) for n in found)), observed)
    else:
        result.error("gpu_nodes", "no accelerator node to check: no node %sadvertises %s capacity%s" % (
            "selected by %r " % selector if selector else "", profile["resource"],
            " (labelled but without capacity: %s)" % ", ".join(without) if without else ""),
            observed, expected="at least one node with %s capacity" % profile["resource"], cause="no_test_target")
    return found


def find_exporter(kube, target, result):
    """The exporter's Service and port and its Endpoints; None when the Service or port is missing."""
    where = "%s/%s" % (target["namespace"], target["service"])
    service = kube.get("v1", "Service", target["service"], target["namespace"])
    expected = "Service %s with port %s" % (where, target["port"])
    if service is None:
        result.failed("exporter_service", "the metrics exporter Service %s does not exist: is the GPU Operator (dcgm-exporter) "
                      "installed, or set exporter_namespace/exporter_service?" % where, expected=expected, cause="not_installed")
        return None
    port = am.service_port(service, target["port"])
    if port is None:
        result.failed("exporter_service", "Service %s declares no port %r (its ports: %s); set exporter_port" % (
            where, target["port"], am.describe_ports(service)), observed=am.describe_ports(service), expected=expected, cause="not_installed")
        return None
    endpoints = kube.get("v1", "Endpoints", target["service"], target["namespace"])
    addresses = am.endpoint_addresses(endpoints, port.get("name"))
    observed = {"ports": am.describe_ports(service), "ready": addresses["ready"], "not_ready": addresses["not_ready"]}
    result.passed("exporter_service", "Service %s port %s:%s found; %d ready and %d not ready exporter endpoint(s)" % (
        where, port.get("name") or "(unnamed)", port.get("port"), len(addresses["ready"]), len(addresses["not_ready"])), observed, expected)
    return {"service": service, "port": port, "addresses": addresses}


def read_through_service(kube, target, exporter, config, timeout):
    """One service-proxy GET, repeated while the exporter warms up (pods not ready yet, no series yet).

    Returns (samples, text); raises Stuck(kind) with the API server's answer when it cannot succeed.
    """
    names = [m for dummy, m in am.required_metrics(config)]
    warming = bool(exporter["addresses"]["not_ready"])

    def fetch():
        try:
            text = kube.service_proxy(target["namespace"], target["service"], target["port"], target["path"])
        except KubeError as exc:
            kind = am.proxy_answer(exc)
            if kind in ("no_endpoints", "unreachable_backend") and (warming or exporter["addresses"]["ready"]):
                return False, {"answer": kind, "message": str(exc)}
            if kind:
                raise Stuck(str(exc), kind=kind, cause="capability")
            raise
        if not isinstance(text, str):
            raise Stuck("the exporter answered JSON, not metrics text: %s" % str(text)[:200], kind="format", cause="capability")
        try:
            samples = am.parse_metrics(text)
        except am.MetricsFormatError as exc:
            raise Stuck(str(exc), kind="format", cause="capability")
        if names and not am.has_metric(samples, names[:1]):
            return False, {"answer": "no_series", "message": "%d samples, none of %s" % (len(samples), names[0]), "text": text}
        return True, {"samples": samples, "text": text}

    state = kube.wait_for(fetch, timeout if warming or exporter["addresses"]["ready"] else 0, interval=RETRY_INTERVAL,
                          what="metrics through the service proxy")
    return state["samples"], state["text"]


def read_per_node(kube, target, exporter, nodes, samples, config, result):
    """Attribute the service answer to nodes by host label; read missing nodes through their exporter pod."""
    by_node = am.by_host(samples, config.get("host_label") or "Hostname", [n["node"] for n in nodes])
    reasons, texts, untested = {}, {}, set()
    for item in nodes:
        node = item["node"]
        if node in by_node:
            continue
        endpoint = next((a for a in exporter["addresses"]["ready"] if a["node"] == node and a["pod"]), None)
        if endpoint is None:
            not_ready = [a["pod"] for a in exporter["addresses"]["not_ready"] if a["node"] == node]
            reasons[node] = "no ready exporter endpoint on this node%s" % (" (not ready: %s)" % ", ".join(not_ready) if not_ready else "")
            continue
        try:
            text = kube.pod_proxy(target["namespace"], endpoint["pod"], endpoint["port"], target["path"])
            by_node[node] = am.parse_metrics(text if isinstance(text, str) else "")
            texts[node] = text
        except KubeError as exc:
            if am.proxy_answer(exc) is None:  # RBAC, API trouble: this node could not be tested, it did not fail
                result.from_exception("exporter_pod_proxy_%s" % node, exc, "reading the metrics of exporter pod %s on node %s" % (endpoint["pod"], node))
                untested.add(node)
                continue
            reasons[node] = "its exporter pod %s did not answer through the pod proxy: %s" % (endpoint["pod"], exc)
        except am.MetricsFormatError as exc:
            reasons[node] = "its exporter pod %s answered something else than metrics: %s" % (endpoint["pod"], exc)
    return by_node, reasons, texts, untested


def record_metrics(config, nodes, by_node, reasons, result):
    """The exercise check, the advisory checks and the GPU x metric table."""
    outcome = am.evaluate(nodes, by_node, config, reasons)
    result.add_evidence("gpu-metrics", am.metrics_table(outcome["devices"], config), "markdown")
    expected = "for each of %d GPU(s): %s with labels %s" % (
        outcome["expected_gpus"], ", ".join(m for dummy, m in am.required_metrics(config)), ", ".join(config.get("identity_labels") or []))
    observed = {"devices": outcome["devices"], "problems": outcome["problems"]}
    if outcome["ok"]:
        result.exercised("per_gpu_metrics", outcome["message"], observed, expected)
    else:
        result.failed("per_gpu_metrics", outcome["message"], observed, expected, exercised=True)
    for category in am.ADVISORY_ORDER + tuple(sorted(set(outcome["advisory"]) - set(am.ADVISORY_ORDER))):
        info = outcome["advisory"].get(category)
        if info is None:
            continue
        name = "advisory_%s" % category
        if info["ok"]:
            result.passed(name, "advisory: every GPU publishes %s (%s)" % (category, " or ".join(info["names"])), expected=info["names"])
        else:
            result.skipped(name, "advisory, does not affect the requirement: no %s series (%s) for %s" % (
                category, " or ".join(info["names"]), ", ".join(info["missing"]) or "any GPU"), expected=info["names"])


def verify(kube, params, result):
    profile, config, target, selector = settings(params)
    nodes = find_gpu_nodes(kube, profile, config, selector, result)
    exporter = find_exporter(kube, target, result)
    if exporter is None or not nodes:
        result.skipped("per_gpu_metrics", "metrics not read: %s" % (
            "no accelerator node to check" if exporter is not None else "the exporter Service is missing"))
        return None
    result.add_evidence("exporter-endpoints", exporter["addresses"])
    try:
        samples, text = read_through_service(kube, target, exporter, config, params["timeout"])
    except (Stuck, WaitTimeout) as exc:
        state = getattr(exc, "body", None) if isinstance(exc, WaitTimeout) else None
        state = state if isinstance(state, dict) else {}
        kind = getattr(exc, "kind", None) or state.get("answer")
        detail = str(exc) if not state else "%s (still so after %ss)" % (state.get("message"), params["timeout"])
        messages = {
            "no_endpoints": "the exporter Service has no ready endpoints: the API server's service proxy answered %s",
            "no_port": "the exporter Service has no such port: the API server's service proxy answered %s",
            "missing_service": "the exporter Service is gone: the API server's service proxy answered %s",
            "unreachable_backend": "the API server could not reach the exporter pod: %s",
            "format": "the exporter's answer is not machine-readable metrics: %s",
            "no_series": "the exporter answered but published no %s series: %%s" % (am.required_metrics(config) or [("", "utilization")])[0][1],
        }
        message = messages.get(kind, "reading metrics through the service proxy: %s") % detail
        if kind == "no_series":
            result.add_evidence("metrics-raw", (state.get("text") or "")[:RAW_EVIDENCE_LIMIT], "text")
        result.failed("per_gpu_metrics", message, observed={"answer": kind, "endpoints": exporter["addresses"]},
                      expected="metrics text from %s/%s:%s%s" % (target["namespace"], target["service"], target["port"], target["path"]),
                      cause="capability", exercised=True)
        return None
    except KubeError as exc:
        result.from_exception("per_gpu_metrics", exc, "reading metrics through the service proxy")
        return None
    result.add_evidence("metrics-raw", text[:RAW_EVIDENCE_LIMIT], "text")
    by_node, reasons, texts, untested = read_per_node(kube, target, exporter, nodes, samples, config, result)
    for node, node_text in sorted(texts.items()):
        result.add_evidence("metrics-raw-%s" % node, (node_text or "")[:RAW_EVIDENCE_LIMIT], "text")
    tested = [n for n in nodes if n["node"] not in untested]
    if tested:
        record_metrics(config, tested, by_node, reasons, result)
    else:
        result.skipped("per_gpu_metrics", "no node's exporter could be read (see exporter_pod_proxy_* checks)")
    return None


def main():
    argument_spec = common_argument_spec(
        {
            "accelerator_profile": {"type": "raw", "default": "nvidia"},
            "accelerator_profile_overrides": {"type": "dict", "default": {}},
            "exporter_namespace": {"type": "str"},
            "exporter_service": {"type": "str"},
            "exporter_port": {"type": "str"},
            "metrics_path": {"type": "str"},
            "node_selector": {"type": "str"},
        }
    )
    module = AnsibleK8SModule(argument_spec=argument_spec, supports_check_mode=True)
    if not am.HAS_PROMETHEUS_CLIENT:
        module.fail_json(msg=missing_required_lib("prometheus-client"),
                         exception=am.PROMETHEUS_CLIENT_IMPORT_ERROR)
    try:
        settings(module.params)
    except (ValueError, KeyError, TypeError) as exc:
        module.fail_json(msg="accelerator_profile: %s" % exc)
    run_requirement(module, REQUIREMENT, verify)


if __name__ == "__main__":
    main()
