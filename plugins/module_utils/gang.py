# -*- coding: utf-8 -*-
# Copyright: ai_conformance.rke2 contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Pure evaluation and manifests for `gang_scheduling` (all-or-nothing scheduling).

The check runs two gang jobs through Volcano or Kueue:

* job A needs exactly the free capacity of the gang resource and must be
  scheduled completely;
* job B needs one pod more than job A and must stay completely unscheduled,
  held back *for lack of that resource*.

Everything here works on plain API dicts: free capacity per node, the plan of
both jobs, gang verdicts over pod lists, why a PodGroup or Workload is held
back, scheduler detection, a timeline of what was observed and the manifests.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import re
from decimal import ROUND_CEILING, ROUND_FLOOR, Decimal

from ansible_collections.ai_conformance.rke2.plugins.module_utils import status as k8s_status

try:
    from kubernetes.utils.quantity import parse_quantity

    HAS_PARSER = True
except ImportError:  # pragma: no cover - the kubernetes client is a requirement
    HAS_PARSER = False

GPU_RESOURCE = "nvidia.com/gpu"
DEFAULT_MAX_PODS = 8
GANG_LABEL = "ai-conformance.rke2/gang-job"
TERMINATED_PHASES = ("Succeeded", "Failed")
# Resources the kubelet accounts in milli-units (requests like "250m").
MILLI_RESOURCES = ("cpu",)
_BINARY_RESOURCES = ("memory", "ephemeral-storage")

VOLCANO = "volcano"
KUEUE = "kueue"
VOLCANO_JOB_API = "batch.volcano.sh/v1alpha1"
VOLCANO_PODGROUP_API = "scheduling.volcano.sh/v1beta1"
KUEUE_GROUP = "kueue.x-k8s.io"
KUEUE_QUEUE_LABEL = "kueue.x-k8s.io/queue-name"
SCHEDULERS = {
    VOLCANO: {
        "apis": [(VOLCANO_JOB_API, "Job"), (VOLCANO_PODGROUP_API, "PodGroup")],
        "deployments": ["volcano-admission", "volcano-controllers", "volcano-scheduler"],
        "namespace": "volcano-system",
    },
    KUEUE: {
        # The served version is chosen at run time (v1beta2 from Kueue 0.15 on, else v1beta1).
        "apis": [("kueue.x-k8s.io/{version}", "ClusterQueue"), ("kueue.x-k8s.io/{version}", "LocalQueue"),
                 ("kueue.x-k8s.io/{version}", "ResourceFlavor"), ("kueue.x-k8s.io/{version}", "Workload")],
        "deployments": ["kueue-controller-manager"],
        "namespace": "kueue-system",
    },
}
KUEUE_VERSIONS = ("v1beta2", "v1beta1")


class PlanError(Exception):
    """No gang test can be planned; the message says why and ``cause`` names the policy cause."""

    def __init__(self, message, cause="no_capacity"):
        super(PlanError, self).__init__(message)
        self.cause = cause


# --------------------------------------------------------------------------- quantities


def quantity(value):
    """A Kubernetes quantity ("1500m", "2", 4, "128Gi") as Decimal; None and "" are 0."""
    if value is None or value == "":
        return Decimal(0)
    if not HAS_PARSER:  # pragma: no cover
        raise ValueError("the kubernetes Python client is required to parse quantities")
    return parse_quantity(value)


def _scale(resource):
    return Decimal(1000) if resource in MILLI_RESOURCES else Decimal(1)


def to_units(resource, value, rounding=ROUND_CEILING):
    """Integer units of a quantity: millicores for cpu, whole units otherwise.

    Requests round up and capacities round down (``rounding=ROUND_FLOOR``), so
    free capacity is never overstated.
    """
    return int((quantity(value) * _scale(resource)).to_integral_value(rounding=rounding))


def format_units(resource, units):
    """Quantity string of integer units ("1500m", "2", "4Gi")."""
    units = int(units)
    if resource in MILLI_RESOURCES:
        return str(units // 1000) if units % 1000 == 0 else "%dm" % units
    if resource in _BINARY_RESOURCES or resource.startswith("hugepages-"):
        for suffix, size in (("Gi", 2 ** 30), ("Mi", 2 ** 20)):
            if units and units % size == 0:
                return "%d%s" % (units // size, suffix)
    return str(units)


# --------------------------------------------------------------------------- pod requests


def container_request(container, resource):
    """Request of one container; a limit alone counts as the request (API defaulting)."""
    resources = container.get("resources") or {}
    requests = resources.get("requests") or {}
    if resource in requests:
        return to_units(resource, requests[resource])
    return to_units(resource, (resources.get("limits") or {}).get(resource))


def pod_request(pod, resource):
    """What the scheduler reserves for ``pod``, in units of ``resource``.

    Same rule as the scheduler (k8s.io/component-helpers resource.PodRequests):
    the larger of the app containers' sum and the biggest init container, where
    restartable init containers (sidecars) run alongside and add to both; a
    pod-level ``spec.resources.requests`` replaces the container sum; the
    RuntimeClass ``spec.overhead`` is added on top.
    """
    spec = pod.get("spec") or {}
    total = sum(container_request(c, resource) for c in spec.get("containers") or [])
    sidecars = 0
    biggest_init = 0
    for init in spec.get("initContainers") or []:
        request = container_request(init, resource)
        if init.get("restartPolicy") == "Always":
            total += request
            sidecars += request
            needed = sidecars
        else:
            needed = sidecars + request
        biggest_init = max(biggest_init, needed)
    total = max(total, biggest_init)
    pod_level = ((spec.get("resources") or {}).get("requests") or {})
    if resource in pod_level:
        total = to_units(resource, pod_level[resource])
    return total + to_units(resource, (spec.get("overhead") or {}).get(resource))


def is_terminated(pod):
    """Succeeded and Failed pods hold no resources."""
    return (pod.get("status") or {}).get("phase") in TERMINATED_PHASES


def pod_key(pod):
    meta = pod.get("metadata") or {}
    return "%s/%s" % (meta.get("namespace"), meta.get("name"))


# --------------------------------------------------------------------------- nodes


def tolerates(toleration, taint):
    """Whether one toleration matches one taint (core/v1 Toleration.ToleratesTaint)."""
    effect = toleration.get("effect")
    if effect and effect != taint.get("effect"):
        return False
    key = toleration.get("key")
    operator = toleration.get("operator") or "Equal"
    if not key:
        return operator == "Exists"
    if key != taint.get("key"):
        return False
    if operator == "Exists":
        return True
    return (toleration.get("value") or "") == (taint.get("value") or "")


def untolerated_taints(node, tolerations):
    """NoSchedule/NoExecute taints of the node that none of ``tolerations`` matches."""
    taints = ((node.get("spec") or {}).get("taints")) or []
    return [
        t for t in taints
        if t.get("effect") in ("NoSchedule", "NoExecute") and not any(tolerates(tol, t) for tol in tolerations or [])
    ]


def _taint_text(taint):
    value = taint.get("value")
    return "%s%s:%s" % (taint.get("key"), ("=%s" % value) if value else "", taint.get("effect"))


def node_exclusion(node, tolerations=None, node_selector=None):
    """Why the test pods cannot land on ``node``, or None."""
    if (node.get("spec") or {}).get("unschedulable"):
        return "cordoned (spec.unschedulable)"
    ready, reason = k8s_status.node_ready(node)
    if not ready:
        return "not Ready (%s)" % reason
    labels = (node.get("metadata") or {}).get("labels") or {}
    for key, value in sorted((node_selector or {}).items()):
        if labels.get(key) != value:
            return "label %s=%s of the node selector does not match" % (key, value)
    taints = untolerated_taints(node, tolerations)
    if taints:
        return "taint %s not tolerated by the test pods" % ", ".join(_taint_text(t) for t in taints)
    return None


def allocatable(node, resource):
    """Allocatable units of ``resource`` on the node (0 when not advertised)."""
    value = ((node.get("status") or {}).get("allocatable") or {}).get(resource)
    return to_units(resource, value, rounding=ROUND_FLOOR) if value is not None else 0


def choose_resource(nodes, requested="auto"):
    """The gang resource and why: ``auto`` takes nvidia.com/gpu when a node advertises it, else cpu."""
    if requested and requested != "auto":
        return requested, "resource %s chosen by the user" % requested
    gpu_nodes = [n["metadata"]["name"] for n in nodes if allocatable(n, GPU_RESOURCE) > 0]
    if gpu_nodes:
        return GPU_RESOURCE, "%d node(s) advertise %s (%s)" % (len(gpu_nodes), GPU_RESOURCE, ", ".join(sorted(gpu_nodes)))
    return "cpu", "no node advertises %s, so the gang resource is cpu" % GPU_RESOURCE


def candidate_nodes(nodes, resource, tolerations=None, node_selector=None):
    """Split nodes into candidates (schedulable, advertising the resource) and excluded ones.

    Returns (candidates, excluded) where excluded is [{"node", "reason"}].
    Only candidates need their pods listed.
    """
    candidates, excluded = [], []
    for node in sorted(nodes, key=lambda n: n["metadata"]["name"]):
        name = node["metadata"]["name"]
        reason = node_exclusion(node, tolerations, node_selector)
        if reason is None and allocatable(node, resource) <= 0:
            reason = "does not advertise %s" % resource
        if reason:
            excluded.append({"node": name, "reason": reason})
        else:
            candidates.append(node)
    return candidates, excluded


def node_capacity(node, pods, resource):
    """Free capacity of one node: allocatable minus requests of its non-terminated pods."""
    name = node["metadata"]["name"]
    total = allocatable(node, resource)
    used = 0
    consumers = []
    for pod in pods:
        if (pod.get("spec") or {}).get("nodeName") != name or is_terminated(pod):
            continue
        request = pod_request(pod, resource)
        if request:
            used += request
            consumers.append({"pod": pod_key(pod), "request": format_units(resource, request),
                              "phase": (pod.get("status") or {}).get("phase")})
    free = max(total - used, 0)
    return {
        "node": name,
        "allocatable": format_units(resource, total),
        "requested": format_units(resource, used),
        "free": format_units(resource, free),
        "free_units": free,
        "consumers": consumers,
    }


def cluster_capacity(nodes, pods_by_node, resource, tolerations=None, node_selector=None):
    """Free capacity of ``resource`` on the nodes the test pods can use.

    ``pods_by_node`` maps a candidate node name to the pods listed with
    ``fieldSelector=spec.nodeName=<node>``.
    """
    candidates, excluded = candidate_nodes(nodes, resource, tolerations, node_selector)
    rows = [node_capacity(n, pods_by_node.get(n["metadata"]["name"], []), resource) for n in candidates]
    return {
        "resource": resource,
        "nodes": rows,
        "excluded": excluded,
        "free_units": sum(r["free_units"] for r in rows),
        "free": format_units(resource, sum(r["free_units"] for r in rows)),
        "allocatable_units": sum(allocatable(n, resource) for n in candidates),
    }


def zero_capacity_cause(capacity):
    """Policy cause of a capacity without free units.

    Nodes that offer the resource but whose taints the test pods do not
    tolerate: ``untolerated_taint``; no node advertises the resource at all:
    ``no_test_target``; otherwise (busy, cordoned, not Ready): ``no_capacity``.
    """
    if not capacity["nodes"]:
        reasons = [e["reason"] for e in capacity["excluded"]]
        if any(r.startswith("taint ") for r in reasons):
            return "untolerated_taint"
        if all(r.startswith("does not advertise") for r in reasons):
            return "no_test_target"
    return "no_capacity"


def zero_capacity_reason(capacity):
    """A sentence for a capacity without free units."""
    resource = capacity["resource"]
    if not capacity["nodes"]:
        excluded = "; ".join("%s: %s" % (e["node"], e["reason"]) for e in capacity["excluded"]) or "the cluster has no nodes"
        return "no schedulable node offers %s to the test pods (%s)" % (resource, excluded)
    consumers = [c["pod"] for row in capacity["nodes"] for c in row["consumers"]]
    text = "no free %s: all %s allocatable on %d schedulable node(s) are requested by %d pod(s)" % (
        resource, format_units(resource, capacity["allocatable_units"]), len(capacity["nodes"]), len(consumers))
    if consumers:
        text += " (%s%s)" % (", ".join(consumers[:10]), ", ..." if len(consumers) > 10 else "")
    if resource == GPU_RESOURCE:
        text += "; free some GPUs or test with cpu (module option resource: cpu, certify variable gang_scheduling_resource: cpu)"
    return text


# --------------------------------------------------------------------------- plan


def _divisors(value):
    small, large = [], []
    i = 1
    while i * i <= value:
        if value % i == 0:
            small.append(i)
            if i * i != value:
                large.append(value // i)
        i += 1
    return small + large[::-1]


def _gcd(values):
    result = 0
    for v in values:
        a, b = result, v
        while b:
            a, b = b, a % b
        result = a
    return result


def _smallest_request(free_per_node, max_pods):
    """Smallest per-pod request that tiles every node exactly with at most max_pods - 1 pods in all."""
    total = sum(free_per_node)
    for request in _divisors(_gcd(free_per_node)):
        if total // request <= max_pods - 1:
            return request
    return None


def plan_jobs(capacity, max_pods=DEFAULT_MAX_PODS):
    """Choose pod count and per-pod request of job A and job B.

    Algorithm (all values in integer units: millicores for cpu, whole units
    otherwise):

    1. Whole cluster: with F_i the free units of candidate node i and g their
       greatest common divisor, take the smallest divisor r of g such that
       n = sum(F_i) / r <= max_pods - 1. Every node's free capacity is a
       multiple of r, so *any* placement of n pods of r fills the nodes
       exactly: job A (n pods of r) needs exactly the free capacity and each of
       its pods fits on some node, whatever order the scheduler picks. Job B
       is n + 1 pods of r: every single pod of it fits on some node, so a
       scheduler without gang semantics binds n of them (a visible partial
       binding), while the gang as a whole does not fit.
    2. If no such r exists (free capacity spread over many nodes or odd
       amounts), the test narrows to the candidate node with the most free
       units (ties: name) and pins both jobs to it with node affinity on
       ``metadata.name``; step 1 on that single node always succeeds
       (r = F at worst: A is 1 pod, B is 2 pods).

    Smaller requests are preferred, so the jobs have as many pods as allowed.
    Raises PlanError when the free capacity is zero or max_pods < 2.
    """
    if max_pods < 2:
        raise PlanError("max_pods must be at least 2 (job B needs one pod more than job A), got %d" % max_pods, "invalid_request")
    resource = capacity["resource"]
    rows = [r for r in capacity["nodes"] if r["free_units"] > 0]
    if not rows:
        raise PlanError(zero_capacity_reason(capacity), zero_capacity_cause(capacity))
    free = [r["free_units"] for r in rows]
    request = _smallest_request(free, max_pods)
    pin_node = None
    note = "job A tiles the free %s of %d node(s) exactly" % (resource, len(rows))
    if request is None:
        best = sorted(rows, key=lambda r: (-r["free_units"], r["node"]))[0]
        pin_node = best["node"]
        rows = [best]
        free = [best["free_units"]]
        request = _smallest_request(free, max_pods)
        note = ("free %s is spread so that no equal per-pod request tiles all %d nodes with at most %d pods; "
                "the test uses node %s only (pods pinned to it)" % (resource, len(capacity["nodes"]), max_pods, pin_node))
    total = sum(free)
    pods_a = total // request
    return {
        "resource": resource,
        "free_units": total,
        "free": format_units(resource, total),
        "request_units": request,
        "request": format_units(resource, request),
        "job_a_pods": pods_a,
        "job_b_pods": pods_a + 1,
        "job_a_total": format_units(resource, request * pods_a),
        "job_b_total": format_units(resource, request * (pods_a + 1)),
        "nodes": [r["node"] for r in rows],
        "pin_node": pin_node,
        "note": note,
    }


# --------------------------------------------------------------------------- gang verdicts


def pod_name(pod):
    return (pod.get("metadata") or {}).get("name")


def evaluate_gang(pods, expected):
    """All-or-nothing verdict over the pods of one gang job.

    Returns {"state": "all"|"none"|"partial", "bound": [...], "unbound": [...],
    "message"}; a pod is bound once ``spec.nodeName`` is set. Pods not created
    yet count as unbound, so 2 bound of an expected 3 is partial.
    """
    pods = sorted(pods, key=pod_name)
    bound = [{"pod": pod_name(p), "node": p["spec"]["nodeName"]} for p in pods if (p.get("spec") or {}).get("nodeName")]
    unbound = [pod_name(p) for p in pods if not (p.get("spec") or {}).get("nodeName")]
    missing = max(expected - len(pods), 0)
    if not bound:
        state = "none"
        message = "none of the %d pods bound (%d created)" % (expected, len(pods))
    elif len(bound) >= expected and not unbound:
        state = "all"
        message = "all %d pods bound (%s)" % (len(bound), ", ".join("%s on %s" % (b["pod"], b["node"]) for b in bound))
    else:
        state = "partial"
        message = "gang violated: %d of %d pods bound (%s); not bound: %s" % (
            len(bound), expected, ", ".join("%s on %s" % (b["pod"], b["node"]) for b in bound),
            ", ".join(unbound + (["%d pod(s) not created" % missing] if missing else [])) or "none")
    return {"state": state, "bound": bound, "unbound": unbound, "expected": expected, "created": len(pods), "message": message}


def all_running(pods, expected):
    """True when ``expected`` pods exist, all bound and Running."""
    running = [p for p in pods if (p.get("spec") or {}).get("nodeName") and (p.get("status") or {}).get("phase") == "Running"]
    return len(running) >= expected and len(pods) >= expected


# --------------------------------------------------------------------------- why job B is held


# Resource names in the messages the schedulers write (volcano-sh/volcano and kube-scheduler):
# fit errors "0/1 nodes are unavailable: 1 Insufficient nvidia.com/gpu." and "Too many pods";
# Volcano's "node(s) pod number exceeded"; the enqueue rejections of the overcommit plugin
# "resource in cluster is overused[: overused cpu, overused pods]" and of the proportion and
# capacity plugins "queue resource quota insufficient[: insufficient cpu, insufficient nvidia.com/gpu]"
# (util.FormatResourceNames); Kueue's flavor assigner "insufficient [unused ]quota [in cohort ]for
# <name> in flavor F" and "resource <name> unavailable in ClusterQueue".
_NAME = r"([A-Za-z0-9][-A-Za-z0-9_.]*(?:/[-A-Za-z0-9_.]+)?)"
_NAMED = (
    re.compile(r"\binsufficient\s+" + _NAME, re.IGNORECASE),
    re.compile(r"\boverused\s+" + _NAME, re.IGNORECASE),
)
_NOT_NAMES = ("quota", "unused", "resource", "resources")
_POD_COUNT = ("too many pods", "pod number exceeded")
_KUEUE_QUOTA_RE = re.compile(r"insufficient (?:unused )?quota (?:in cohort )?for " + _NAME + r" in flavor", re.IGNORECASE)
_KUEUE_UNCOVERED_RE = re.compile(r"resource " + _NAME + r" unavailable in ClusterQueue", re.IGNORECASE)
VOLCANO_OVERUSED = "resource in cluster is overused"
VOLCANO_QUEUE_QUOTA = "queue resource quota insufficient"


def _clean(name):
    return name.rstrip(".,;:")


def resources_named(text):
    """Resource names a scheduler message says are lacking, in order of appearance."""
    found = []
    lowered = (text or "").lower()
    for pattern in _NAMED:
        for match in pattern.finditer(text or ""):
            name = _clean(match.group(1))
            if name.lower() not in _NOT_NAMES and name not in found:
                found.append(name)
    for match in _KUEUE_QUOTA_RE.finditer(text or ""):
        name = _clean(match.group(1))
        if name not in found:
            found.append(name)
    if any(p in lowered for p in _POD_COUNT) and "pods" not in found:
        found.append("pods")
    return found


def requested_resources(pod_spec):
    """Sorted names of the resources the containers of ``pod_spec`` request (requests or limits)."""
    names = set()
    for container in (pod_spec.get("initContainers") or []) + (pod_spec.get("containers") or []):
        resources = container.get("resources") or {}
        for section in ("requests", "limits"):
            names.update((resources.get(section) or {}).keys())
    names.update(((pod_spec.get("resources") or {}).get("requests") or {}).keys())
    return sorted(names)


def _pod_messages(pods):
    texts = []
    for pod in pods:
        for cond in k8s_status.conditions(pod):
            if cond.get("type") == "PodScheduled" and cond.get("status") == "False" and cond.get("message"):
                texts.append("pod %s: %s" % (pod_name(pod), cond["message"]))
    return texts


def _event_messages(events, kinds, names):
    texts = []
    for event in events or []:
        involved = event.get("involvedObject") or event.get("regarding") or {}
        if involved.get("kind") in kinds and involved.get("name") in names:
            message = event.get("message") or event.get("note")
            if message:
                texts.append("%s %s event %s: %s" % (involved.get("kind"), involved.get("name"), event.get("reason"), message))
    return texts


def _is_enqueue_text(text):
    lowered = text.lower()
    return VOLCANO_OVERUSED in lowered or VOLCANO_QUEUE_QUOTA in lowered


def _enqueue_plugin(text):
    if VOLCANO_OVERUSED in text.lower():
        return "overcommit plugin: the job's minResources exceed the idle resources of the cluster"
    return "proportion/capacity plugin: the job's minResources exceed the queue's capability"


def _verdict(verdict, message, texts, mechanism=None, other=None):
    return {"verdict": verdict, "message": message, "messages": texts, "mechanism": mechanism,
            "other_resources": list(other or [])}


def volcano_hold_reason(podgroup, events, pods, resource, requests_only_resource, job="job B"):
    """Why Volcano holds a job back, from its PodGroup, events and pods.

    PodGroup status (volcano.sh/apis scheduling/v1beta1 PodGroupStatus):
    ``phase`` Pending (not enqueued: pods not even created), Inqueue (pods
    created, not allocated) or Running (minMember allocated). At *admission*
    the enqueue action rejects a job with PodGroup events "resource in cluster
    is overused: overused <name>, ..." (overcommit) or "queue resource quota
    insufficient: insufficient <name>, ..." (proportion, capacity); older
    releases name no resource. At *scheduling* the gang plugin sets condition
    ``Unschedulable`` (reason ``NotEnoughResources``) with "<n>/<m> tasks in gang
    unschedulable: ...", whose fit errors and the pods' PodScheduled messages
    name the resource ("Insufficient nvidia.com/gpu", "Too many pods").

    Returns {"verdict": "lack_of_resource"|"other"|"none"|"admitted", "message",
    "messages", "mechanism", "other_resources"}: held at admission for any resource
    besides the gang resource is "other" naming it; an enqueue message naming no
    resource counts as lack of the gang resource only when the job requests nothing
    else (``requests_only_resource``, computed from the rendered pods).
    """
    name = (podgroup or {}).get("metadata", {}).get("name")
    phase = ((podgroup or {}).get("status") or {}).get("phase")
    group_texts = []
    for cond in k8s_status.conditions(podgroup):
        if cond.get("message") and cond.get("status") == "True" and cond.get("type") == "Unschedulable":
            group_texts.append("PodGroup %s condition Unschedulable/%s: %s" % (name, cond.get("reason"), cond["message"]))
    group_texts += _event_messages(events, ("PodGroup",), [name] if name else [])
    texts = group_texts + _pod_messages(pods) + _event_messages(events, ("Pod",), [pod_name(p) for p in pods])
    if phase in ("Running", "Completed"):
        return _verdict("admitted", "Volcano set PodGroup %s to %s although %s needs more %s than is free" % (name, phase, job, resource),
                        texts, "scheduling: Volcano gang plugin")
    enqueue = [t for t in group_texts if _is_enqueue_text(t)]
    scheduling = [t for t in texts if not _is_enqueue_text(t)]
    # A PodGroup past Pending was enqueued: earlier enqueue rejections are history.
    if phase in (None, "Pending") and enqueue:
        named = []
        for text in enqueue:
            named += [n for n in resources_named(text) if n not in named]
        others = [n for n in named if n != resource]
        mechanism = "admission: Volcano enqueue (%s)" % _enqueue_plugin(enqueue[-1])
        if others:
            return _verdict("other", "Volcano does not enqueue %s for lack of %s%s (PodGroup %s phase %s): %s" % (
                job, ", ".join(others), (" (besides %s)" % resource) if resource in named else ", not of %s" % resource,
                name, phase, enqueue[-1]), texts, mechanism, others)
        if resource in named:
            text = [t for t in enqueue if resource in resources_named(t)][-1]
            return _verdict("lack_of_resource", "Volcano does not enqueue %s for lack of %s (PodGroup %s phase %s): %s" % (
                job, resource, name, phase, text), texts, mechanism)
        if requests_only_resource:
            return _verdict("lack_of_resource", "Volcano does not enqueue %s for lack of resources, and %s requests only %s "
                            "(PodGroup %s phase %s): %s" % (job, job, resource, name, phase, enqueue[-1]), texts, mechanism)
        return _verdict("other", "Volcano does not enqueue %s, but its message names no resource and %s requests more than %s, "
                        "so it does not say the gang resource is lacking (PodGroup %s phase %s): %s" % (
                            job, job, resource, name, phase, enqueue[-1]), texts, mechanism)
    mechanism = "scheduling: Volcano gang plugin (PodGroup %s phase %s)" % (name, phase)
    lacking = [t for t in scheduling if resource in resources_named(t)]
    if lacking:
        return _verdict("lack_of_resource", "Volcano holds %s back for lack of %s (PodGroup %s phase %s): %s" % (
            job, resource, name, phase, lacking[0]), texts, mechanism)
    if texts:
        others = []
        for text in scheduling:
            others += [n for n in resources_named(text) if n not in others]
        what = (" but for lack of %s" % ", ".join(others)) if others else ""
        return _verdict("other", "Volcano holds %s back, not for lack of %s%s: %s" % (job, resource, what, "; ".join(texts[:3])),
                        texts, mechanism, others)
    return _verdict("none", "%s is not scheduled, but neither PodGroup %s (phase %s) nor its pods or events say why" % (job, name, phase),
                    texts)


def kueue_hold_reason(workload, events, resource, job="job B"):
    """Why Kueue holds a job back, from its Workload and events (admission: Kueue quota).

    Workload status (sigs.k8s.io/kueue apis v1beta2 WorkloadStatus): condition
    ``QuotaReserved`` False (reason Pending, or ExceedsMaxQuota/WaitingForQuota
    with the UnadmittedWorkloadsObservability gate) and ``Admitted`` False;
    the flavor assigner's message reads "couldn't assign flavors to pod set
    main: insufficient quota for nvidia.com/gpu in flavor F, ... > maximum
    capacity (..)" or "insufficient unused quota for nvidia.com/gpu in flavor
    F, 1 more needed"; a requested resource the ClusterQueue does not cover reads
    "resource cpu unavailable in ClusterQueue". The ClusterQueue's quota of the
    gang resource is the free capacity, so lacking that quota is lacking the
    resource; lacking any other resource's quota, or any other reason, is not.
    """
    mechanism = "admission: Kueue quota (ClusterQueue quota of %s = the free capacity)" % resource
    if workload is None:
        return _verdict("none", "Kueue created no Workload for %s (is the batch/job integration enabled?)" % job, [])
    name = workload["metadata"]["name"]
    texts = []
    for cond in k8s_status.conditions(workload):
        if cond.get("type") in ("QuotaReserved", "Admitted") and cond.get("status") == "True":
            return _verdict("admitted", "Kueue admitted %s (Workload %s %s=True) although it needs more %s than the queue's quota "
                            "(the free capacity)" % (job, name, cond.get("type"), resource), [], mechanism)
        if cond.get("type") in ("QuotaReserved", "Admitted", "Inadmissible") and cond.get("message"):
            texts.append("Workload %s condition %s=%s/%s: %s" % (name, cond.get("type"), cond.get("status"), cond.get("reason"), cond["message"]))
    texts += _event_messages(events, ("Workload",), [name])
    others = []
    for text in texts:
        others += [n for n in resources_named(text) + [m.group(1) for m in _KUEUE_UNCOVERED_RE.finditer(text)]
                   if n != resource and n not in others]
    named = [t for t in texts if resource in [_clean(m.group(1)) for m in _KUEUE_QUOTA_RE.finditer(t)]]
    if others:
        return _verdict("other", "Kueue holds %s back for lack of %s quota, not (only) of %s: %s" % (
            job, ", ".join(others), resource, "; ".join(texts[:3])), texts, mechanism, others)
    if named:
        return _verdict("lack_of_resource", "Kueue holds %s back for lack of %s quota (= the free capacity): %s" % (job, resource, named[0]),
                        texts, mechanism)
    if texts:
        return _verdict("other", "Kueue holds %s back, but not for lack of %s: %s" % (job, resource, "; ".join(texts[:3])), texts, mechanism)
    return _verdict("none", "Workload %s of %s has no QuotaReserved/Admitted condition yet" % (name, job), texts)


def hold_window(samples):
    """The verdict on job B over the whole hold window, not only its last sample.

    ``samples`` is [(seconds, evaluate_gang() result), ...] in order. A partial
    binding at any sample is a gang violation even when it later disappears
    (pods evicted or deleted); all pods bound at the end means the job fitted
    after all (the free capacity grew), which proves nothing either way.
    Returns {"state": "partial"|"all"|"none", "at": seconds, "verdict": the sample's
    verdict, "last": the last verdict}.
    """
    last_t, last = samples[-1]
    if last["state"] == "all":
        return {"state": "all", "at": last_t, "verdict": last, "last": last}
    partial = [(t, v) for t, v in samples if v["state"] == "partial"]
    if partial:
        worst_t, worst = max(partial, key=lambda item: (len(item[1]["bound"]), -item[0]))
        return {"state": "partial", "at": worst_t, "verdict": worst, "last": last}
    return {"state": "none", "at": last_t, "verdict": last, "last": last}


def owned_by(obj, kind, name):
    """Whether ``obj`` has an ownerReference to kind/name."""
    return any(o.get("kind") == kind and o.get("name") == name for o in (obj.get("metadata") or {}).get("ownerReferences") or [])


def group_summary(obj):
    """Compact status of a PodGroup or Workload for the timeline and evidence."""
    if not obj:
        return None
    status = obj.get("status") or {}
    conds = ["%s=%s%s" % (c.get("type"), c.get("status"), ("/%s" % c["reason"]) if c.get("reason") else "") for c in k8s_status.conditions(obj)]
    return {"name": obj["metadata"]["name"], "phase": status.get("phase"), "conditions": conds}


# --------------------------------------------------------------------------- scheduler detection


def image_versions(deployment):
    """Image tags of a Deployment's containers, e.g. {"volcano-scheduler": "v1.15.1"}."""
    out = {}
    for container in (((deployment or {}).get("spec") or {}).get("template") or {}).get("spec", {}).get("containers") or []:
        image = container.get("image") or ""
        ref = image.split("@")[0]
        tag = ref.rsplit(":", 1)[1] if ":" in ref.rsplit("/", 1)[-1] else "latest"
        out[container.get("name")] = tag
    return out


def evaluate_scheduler(name, served, deployments, namespace):
    """Whether one gang scheduler is installed and working.

    ``served`` maps "group/version Kind" to True/False; ``deployments`` maps a
    deployment name to its object (or None). Returns {"name", "found",
    "ready", "message", "versions", "missing_apis", "deployments"}.
    """
    missing = sorted(k for k, ok in served.items() if not ok)
    found = not missing
    states = {}
    versions = {}
    for dep_name, obj in sorted(deployments.items()):
        ok, detail = k8s_status.deployment_available(obj)
        states[dep_name] = detail
        if obj is not None:
            versions[dep_name] = image_versions(obj)
    unavailable = sorted(d for d, obj in deployments.items() if not k8s_status.deployment_available(obj)[0])
    if not found:
        message = "%s is not installed: the API server does not serve %s" % (name, ", ".join(missing))
    elif unavailable:
        message = "%s CRDs are installed but deployment(s) %s in %s are not available (%s)" % (
            name, ", ".join(unavailable), namespace, "; ".join("%s: %s" % (d, states[d]) for d in unavailable))
    else:
        message = "%s is installed and running in %s (%s)" % (
            name, namespace, ", ".join("%s %s" % (d, "/".join(sorted(set(v.values())))) for d, v in sorted(versions.items())))
    return {"name": name, "found": found, "ready": found and not unavailable, "message": message,
            "versions": versions, "missing_apis": missing, "deployments": states}


def choose_scheduler(evaluations, requested="auto"):
    """Pick the scheduler to test from evaluate_scheduler() results.

    Returns (evaluation or None, message). With ``auto`` the first ready one
    wins (Volcano before Kueue).
    """
    by_name = dict((e["name"], e) for e in evaluations)
    if requested != "auto":
        evaluation = by_name[requested]
        return (evaluation if evaluation["ready"] else None), evaluation["message"]
    for evaluation in evaluations:
        if evaluation["ready"]:
            return evaluation, evaluation["message"]
    if not any(e["found"] for e in evaluations):
        return None, "neither Volcano nor Kueue was found: %s" % "; ".join(e["message"] for e in evaluations)
    return None, "no gang scheduler is ready: %s" % "; ".join(e["message"] for e in evaluations)


# --------------------------------------------------------------------------- timeline


class Timeline:
    """What was observed about both jobs, recorded only when something changed."""

    def __init__(self):
        self.rows = []
        self._last = {}

    def observe(self, seconds, job, pods, group=None):
        """Record pod phases/nodes and the PodGroup/Workload state of ``job`` at ``seconds``."""
        for pod in sorted(pods, key=pod_name):
            state = ((pod.get("status") or {}).get("phase") or "-", (pod.get("spec") or {}).get("nodeName") or "-")
            key = (job, pod_name(pod))
            if self._last.get(key) != state:
                self._last[key] = state
                self.rows.append({"t": round(seconds, 1), "job": job, "object": "pod/%s" % pod_name(pod),
                                  "phase": state[0], "node": state[1]})
        if group:
            state = (group.get("phase") or "-", ",".join(group.get("conditions") or []) or "-")
            key = (job, "group")
            if self._last.get(key) != state:
                self._last[key] = state
                self.rows.append({"t": round(seconds, 1), "job": job, "object": group["name"],
                                  "phase": state[0], "node": state[1]})

    def note(self, seconds, job, text):
        self.rows.append({"t": round(seconds, 1), "job": job, "object": "-", "phase": text, "node": "-"})

    def render(self):
        """Fixed-width text table."""
        header = ("T(S)", "JOB", "OBJECT", "PHASE/EVENT", "NODE/CONDITIONS")
        lines = [header] + [("%.1f" % r["t"], r["job"], r["object"], r["phase"], r["node"]) for r in self.rows]
        widths = [max(len(str(line[i])) for line in lines) for i in range(4)]
        return "\n".join(
            "  ".join(str(line[i]).ljust(widths[i]) for i in range(4)) + "  " + str(line[4]) for line in lines
        ) + "\n"


# --------------------------------------------------------------------------- manifests


def pod_template(builder, plan, job, labels=None, node_selector=None):
    """The pod template of gang job ``job`` from the one test-pod builder (``testpods.PodBuilder``).

    One agnhost ``pause`` container requesting ``plan["request"]`` of the gang
    resource as request and limit (extended resources need them equal) besides
    the builder's CPU/memory defaults; restricted, tolerating the user's taints
    and the resource's own taint; pinned to ``plan["pin_node"]`` when the plan says so.
    """
    resource = plan["resource"]
    amount = plan["request"]
    container = builder.container("worker", "agnhost", args=["pause"],
                                  resources={"requests": {resource: amount}, "limits": {resource: amount}})
    affinity = None
    if plan.get("pin_node"):
        affinity = {"nodeAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": {"nodeSelectorTerms": [
            {"matchFields": [{"key": "metadata.name", "operator": "In", "values": [plan["pin_node"]]}]}]}}}
    return builder.template([container], labels=_labels(labels, job), node_selector=node_selector,
                            accelerator_resources=[resource], affinity=affinity)


def _labels(labels, job):
    out = dict(labels or {})
    out[GANG_LABEL] = job
    return out


def pod_selector(job):
    """Label selector of the pods of gang job ``job`` ("a" or "b")."""
    return "%s=%s" % (GANG_LABEL, job)


def job_pods(plan, job):
    return plan["job_a_pods"] if job == "a" else plan["job_b_pods"]


def render_volcano_job(name, namespace, plan, job, template, labels=None, queue="default"):
    """Volcano Job of ``job`` ("a" or "b") with ``template`` (``pod_template()``): one task, minAvailable = all its pods."""
    count = job_pods(plan, job)
    return {
        "apiVersion": VOLCANO_JOB_API,
        "kind": "Job",
        "metadata": {"name": name, "namespace": namespace, "labels": _labels(labels, job)},
        "spec": {
            "minAvailable": count,
            "schedulerName": "volcano",
            "queue": queue,
            "maxRetry": 1,
            "tasks": [{
                "name": "worker",
                "replicas": count,
                "template": template,
            }],
        },
    }


def kueue_quotas(plan, template):
    """[{"name", "nominalQuota"}] of the ClusterQueue: the free capacity of the gang resource, and for every
    other resource the pods request (Kueue admits nothing that requests a resource its ClusterQueue does not
    cover: "resource cpu unavailable in ClusterQueue") twice what job B requests, so only the gang resource limits."""
    resource = plan["resource"]
    quotas = [{"name": resource, "nominalQuota": plan["free"]}]
    for name in requested_resources(template["spec"]):
        if name != resource:
            need = pod_request({"spec": template["spec"]}, name) * plan["job_b_pods"] * 2
            quotas.append({"name": name, "nominalQuota": format_units(name, need)})
    return quotas


def render_kueue_queues(name, namespace, plan, template, labels=None, api_version="kueue.x-k8s.io/v1beta2"):
    """ResourceFlavor, ClusterQueue (quota of the gang resource = the free capacity, only our namespace) and LocalQueue."""
    meta_labels = dict(labels or {})
    quotas = kueue_quotas(plan, template)
    flavor = {"apiVersion": api_version, "kind": "ResourceFlavor",
              "metadata": {"name": name, "labels": meta_labels}, "spec": {}}
    cluster_queue = {
        "apiVersion": api_version,
        "kind": "ClusterQueue",
        "metadata": {"name": name, "labels": meta_labels},
        "spec": {
            "namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": namespace}},
            "queueingStrategy": "BestEffortFIFO",
            "resourceGroups": [{
                "coveredResources": [q["name"] for q in quotas],
                "flavors": [{"name": name, "resources": quotas}],
            }],
        },
    }
    local_queue = {"apiVersion": api_version, "kind": "LocalQueue",
                   "metadata": {"name": name, "namespace": namespace, "labels": meta_labels},
                   "spec": {"clusterQueue": name}}
    return [flavor, cluster_queue, local_queue]


def render_kueue_job(name, namespace, plan, job, queue_name, template, labels=None):
    """batch/v1 Job of ``job`` with ``template`` for Kueue: created suspended, queue-name label, parallelism = completions = pods."""
    count = job_pods(plan, job)
    meta_labels = _labels(labels, job)
    meta_labels[KUEUE_QUEUE_LABEL] = queue_name
    return {
        "apiVersion": "batch/v1",
        "kind": "Job",
        "metadata": {"name": name, "namespace": namespace, "labels": meta_labels},
        "spec": {
            "suspend": True,
            "parallelism": count,
            "completions": count,
            "backoffLimit": 0,
            "template": template,
        },
    }
