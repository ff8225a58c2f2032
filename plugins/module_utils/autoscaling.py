# -*- coding: utf-8 -*-
# Copyright: ai_conformance.rke2 contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Pure evaluation for ``cluster_autoscaling``: provider IDs, the
cluster-autoscaler status ConfigMap, node groups carrying an accelerator,
scale-up events and the outcome of a scale-up test.

The status ConfigMap (``kube-system/cluster-autoscaler-status``, key
``status``) has two shapes, both read here:

* YAML, written by cluster-autoscaler 1.30 and newer: the
  ``ClusterAutoscalerStatus`` type of kubernetes/autoscaler
  ``cluster-autoscaler/clusterstate/api/types.go`` (``autoscalerStatus``,
  ``clusterWide.{health,scaleUp,scaleDown}``, ``nodeGroups[].{name, health:
  {status, nodeCounts, cloudProviderTarget, minSize, maxSize}, scaleUp:
  {status, backoffInfo}, scaleDown: {status, candidates}}``); example in
  ``cluster-autoscaler/clusterstate/utils/status_test.yaml``.
* Text, written by older releases (``api/utils.go`` ``GetReadableString``
  after a ``Cluster-autoscaler status at <time>:`` line): ``Cluster-wide:``
  then ``NodeGroups:`` with ``Name:``, ``Health:      Healthy (ready=1 ...
  registered=1 ... cloudProviderTarget=1 (minSize=0, maxSize=3))``,
  ``ScaleUp:``, ``ScaleDown:`` lines per group (``clusterstate.go``
  ``buildHealthStatusNodeGroup``).

Scale-up events are the ``TriggeredScaleUp`` events cluster-autoscaler
records on the pods it scaled up for, ``pod triggered scale-up: [{<group>
<current>-><new> (max: <max>)}]`` (``processors/status/eventing_scale_up_processor.go``
and ``ScaleUpInfo.String``).
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import re

from ansible_collections.ai_conformance.rke2.plugins.module_utils import policy
from ansible_collections.ai_conformance.rke2.plugins.module_utils import status as k8s_status

try:
    import yaml
except ImportError:  # the modules check for PyYAML (kubernetes.core requires it) before calling
    yaml = None

STATUS_CONFIGMAP = "cluster-autoscaler-status"
DEFAULT_NAMESPACE = "kube-system"
AZURE_PREFIX = "azure://"
# NotTriggerScaleUp events (one per autoscaler loop) before the scale-up test stops early
REJECTED_AFTER = 3

NOT_APPLICABLE_NOTES = (
    "Not applicable: the requirement is conditional - 'If the platform provides a cluster autoscaler or an "
    "equivalent mechanism' (cncf/k8s-ai-conformance, docs/AIConformance-1.34.md, cluster_autoscaling).",
    "RKE2 is a Kubernetes distribution installed on hosts it is given (bare metal, on-prem or cloud VMs); it does "
    "not create or remove machines and ships no node autoscaler (SUSE's RKE2 AI conformance page: 'RKE2 is a "
    "Kubernetes distro and thus does not provide a cluster autoscaler').",
    "The CNCF AI conformance FAQ (cncf/k8s-ai-conformance faq.md, 'Why are some requirements conditional?') names "
    "autoscalers as not always applicable to on-prem clusters and accepts 'Not Applicable' with a justification; "
    "this configuration was declared without an autoscaler (cluster_autoscaling_provided: false) and none was found.",
    "Where RKE2 runs on a cloud with scalable node groups, the upstream cluster-autoscaler can be added (role "
    "ai_conformance.rke2.azure_autoscaler for Azure VMSS) and this requirement is then verified with a scale-up test.",
)

_AZURE_VMSS = re.compile(r"/virtualMachineScaleSets/([^/]+)/virtualMachines/", re.IGNORECASE)
_SCALE_UP_INFO = re.compile(r"\{(\S+) (\d+)->(\d+) \(max: (\d+)\)\}")
_TEXT_FIELD = re.compile(r"^\s{2}(Name|Health|ScaleUp|ScaleDown):\s*(.*)$")
_TEXT_TIME = re.compile(r"^Cluster-autoscaler status at (.+?):\s*$")


# --------------------------------------------------------------------------- nodes


def node_name(node):
    return (node.get("metadata") or {}).get("name", "")


def provider_id(node):
    return (node.get("spec") or {}).get("providerID") or ""


def provider_ids(nodes, prefix=AZURE_PREFIX):
    """Check that every node has a spec.providerID starting with ``prefix``.

    Returns {"ok", "message", "nodes": [{name, providerID}], "missing", "foreign"}.
    """
    rows = [{"name": node_name(n), "providerID": provider_id(n)} for n in nodes]
    missing = [r["name"] for r in rows if not r["providerID"]]
    foreign = [r["name"] for r in rows if r["providerID"] and not r["providerID"].startswith(prefix)]
    if not rows:
        message = "the cluster has no nodes"
    elif missing or foreign:
        parts = []
        if missing:
            parts.append("%d of %d nodes have no spec.providerID (%s) - is the cloud controller manager running "
                         "and the kubelet started with cloud-provider=external?" % (len(missing), len(rows), ", ".join(missing)))
        if foreign:
            parts.append("%d nodes have a providerID not starting with %s (%s)" % (len(foreign), prefix, ", ".join(foreign)))
        message = "; ".join(parts)
    else:
        message = "all %d nodes have a %s providerID" % (len(rows), prefix)
    return {"ok": bool(rows) and not missing and not foreign, "message": message, "nodes": rows,
            "missing": missing, "foreign": foreign}


def azure_scale_set(provider):
    """Name of the VM scale set in an Azure providerID, or None.

    ``azure:///subscriptions/<id>/resourceGroups/<rg>/providers/Microsoft.Compute/
    virtualMachineScaleSets/<vmss>/virtualMachines/<instance>``
    """
    match = _AZURE_VMSS.search(provider or "")
    return match.group(1) if match else None


def quantity_count(value):
    """Integer count of an extended-resource quantity ("2", 2, "0"); 0 when absent or not a plain count."""
    if value is None:
        return 0
    try:
        return int(str(value))
    except ValueError:
        return 0


def accelerator_count(node, resource):
    """How many ``resource`` units the node has in status.capacity."""
    return quantity_count(((node.get("status") or {}).get("capacity") or {}).get(resource))


def has_accelerator(node, resource, labels=None):
    """True when the node has ``resource`` capacity, or carries all of ``labels`` (when given)."""
    if accelerator_count(node, resource) > 0:
        return True
    if labels:
        node_labels = (node.get("metadata") or {}).get("labels") or {}
        return all(node_labels.get(k) == str(v) for k, v in labels.items())
    return False


def node_rows(nodes, resource):
    """Compact evidence rows: name, providerID, scale set, accelerator count, Ready."""
    return [
        {
            "name": node_name(n),
            "providerID": provider_id(n),
            "scaleSet": azure_scale_set(provider_id(n)),
            resource: accelerator_count(n, resource),
            "ready": k8s_status.node_ready(n)[0],
        }
        for n in nodes
    ]


# --------------------------------------------------------------------------- deployment


def find_autoscaler_deployments(deployments, name=None):
    """Deployments that run cluster-autoscaler: by ``name`` if given, else by image or name."""
    found = []
    for dep in deployments:
        dep_name = (dep.get("metadata") or {}).get("name", "")
        if name:
            if dep_name == name:
                found.append(dep)
            continue
        containers = ((((dep.get("spec") or {}).get("template") or {}).get("spec") or {}).get("containers")) or []
        images = [c.get("image") or "" for c in containers]
        if "cluster-autoscaler" in dep_name or any("/cluster-autoscaler:" in i or i.startswith("cluster-autoscaler:") for i in images):
            found.append(dep)
    return found


def deployment_available(deployment):
    """(ok, message) from the Available condition and availableReplicas."""
    name = (deployment.get("metadata") or {}).get("name", "?")
    ok, detail = k8s_status.deployment_available(deployment)
    return ok, "deployment %s is %s (%s)" % (name, "Available" if ok else "not Available", detail)


# --------------------------------------------------------------------------- status ConfigMap


def status_text(configmap):
    """The ``status`` text of the status ConfigMap (or "")."""
    return ((configmap or {}).get("data") or {}).get("status") or ""


def parse_status(text):
    """Parse the status ConfigMap text, YAML (CA >= 1.30) or the older text format.

    Returns {"format": "yaml"|"text", "time", "autoscaler_status", "cluster_wide":
    {"health", "scale_up", "scale_down"}, "node_groups": [{"name", "health", "ready",
    "registered", "target", "min", "max", "scale_up", "scale_down", "backoff"}]}.
    Raises ValueError when the text is neither.
    """
    if not text or not text.strip():
        raise ValueError("the status ConfigMap has no status text")
    if yaml is None:
        raise ValueError("PyYAML is required to read the cluster-autoscaler status")
    doc = None
    try:
        doc = yaml.safe_load(text)
    except yaml.YAMLError:
        doc = None
    if isinstance(doc, dict) and ("autoscalerStatus" in doc or "nodeGroups" in doc or "clusterWide" in doc):
        return _parse_yaml_status(doc)
    if "Cluster-wide:" in text or "NodeGroups:" in text:
        return _parse_text_status(text)
    body = [line.strip() for line in text.splitlines() if line.strip() and not _TEXT_TIME.match(line)]
    if body == ["Initializing"]:
        # what WriteStatusConfigMap writes before the first loop completes
        return {"format": "text", "time": None, "autoscaler_status": "Initializing",
                "cluster_wide": {"health": None, "scale_up": None, "scale_down": None}, "node_groups": []}
    raise ValueError("unrecognised cluster-autoscaler status format: %r" % text[:200])


def _int(value):
    try:
        return int(value)
    except (TypeError, ValueError):
        return None


def _parse_yaml_status(doc):
    cluster = doc.get("clusterWide") or {}
    groups = []
    for group in doc.get("nodeGroups") or []:
        health = group.get("health") or {}
        registered = ((health.get("nodeCounts") or {}).get("registered")) or {}
        scale_up = group.get("scaleUp") or {}
        scale_down = group.get("scaleDown") or {}
        backoff = scale_up.get("backoffInfo") or {}
        groups.append({
            "name": group.get("name", ""),
            "health": health.get("status"),
            "ready": _int(registered.get("ready")),
            "registered": _int(registered.get("total")),
            "target": _int(health.get("cloudProviderTarget")),
            "min": _int(health.get("minSize")),
            "max": _int(health.get("maxSize")),
            "scale_up": scale_up.get("status"),
            "scale_down": scale_down.get("status"),
            "backoff": ("%s: %s" % (backoff.get("errorCode", ""), backoff.get("errorMessage", ""))).strip(": ") or None,
        })
    return {
        "format": "yaml",
        "time": doc.get("time"),
        "autoscaler_status": doc.get("autoscalerStatus"),
        "cluster_wide": {
            "health": (cluster.get("health") or {}).get("status"),
            "scale_up": (cluster.get("scaleUp") or {}).get("status"),
            "scale_down": (cluster.get("scaleDown") or {}).get("status"),
        },
        "node_groups": groups,
    }


def _kv(message, key):
    match = re.search(r"\b%s=(\d+)" % re.escape(key), message or "")
    return int(match.group(1)) if match else None


def _parse_text_status(text):
    out = {"format": "text", "time": None, "autoscaler_status": None,
           "cluster_wide": {"health": None, "scale_up": None, "scale_down": None}, "node_groups": []}
    section = None
    group = None
    for line in text.splitlines():
        time_match = _TEXT_TIME.match(line)
        if time_match:
            out["time"] = time_match.group(1)
            continue
        if line.startswith("Cluster-wide:"):
            section = "cluster"
            continue
        if line.startswith("NodeGroups:"):
            section = "groups"
            continue
        field = _TEXT_FIELD.match(line)
        if not field:
            continue
        key, value = field.group(1), field.group(2).strip()
        status, dummy, detail = value.partition(" ")
        detail = detail.strip()
        if section == "cluster":
            slot = {"Health": "health", "ScaleUp": "scale_up", "ScaleDown": "scale_down"}.get(key)
            if slot:
                out["cluster_wide"][slot] = status
        elif section == "groups":
            if key == "Name":
                group = {"name": value, "health": None, "ready": None, "registered": None, "target": None,
                         "min": None, "max": None, "scale_up": None, "scale_down": None, "backoff": None}
                out["node_groups"].append(group)
            elif group is not None and key == "Health":
                group.update({"health": status, "ready": _kv(detail, "ready"), "registered": _kv(detail, "registered"),
                              "target": _kv(detail, "cloudProviderTarget"), "min": _kv(detail, "minSize"),
                              "max": _kv(detail, "maxSize")})
            elif group is not None and key == "ScaleUp":
                group["scale_up"] = status
                if status == "Backoff":
                    group["backoff"] = detail.strip("()") or None
            elif group is not None and key == "ScaleDown":
                group["scale_down"] = status
    if out["cluster_wide"]["health"]:
        # the text format has no autoscalerStatus; conditions are written only once the loop runs
        out["autoscaler_status"] = "Running"
    return out


# --------------------------------------------------------------------------- node groups


def match_node_groups(node_groups, nodes, resource, labels=None):
    """Attach to each node group the nodes of its scale set and whether they carry the accelerator.

    A node belongs to a group when its Azure providerID names a scale set equal
    (case-insensitively, Azure normalises case) to the group name. ``accelerator``
    is True/False from those nodes, or None when the group has no node to look at.
    """
    out = []
    for group in node_groups:
        members = [n for n in nodes if (azure_scale_set(provider_id(n)) or "").lower() == (group.get("name") or "").lower()]
        carrying = [node_name(n) for n in members if has_accelerator(n, resource, labels)]
        item = dict(group)
        item["nodes"] = [node_name(n) for n in members]
        item["accelerator_nodes"] = carrying
        item["accelerator"] = (len(carrying) > 0) if members else None
        out.append(item)
    return out


def describe_group(group):
    return "%s (min %s, max %s, current %s)" % (group.get("name"), group.get("min"), group.get("max"), group.get("target"))


def scaling_problem(group):
    """Why a node group cannot show scaling up, or None."""
    low, high, target = group.get("min"), group.get("max"), group.get("target")
    if low is None or high is None:
        return "node group %s reports no min/max size" % group.get("name")
    if low == high and (target is None or target == high):
        return ("node group %s has min = max = desired (%s): it cannot show scaling" % (group.get("name"), high))
    if target is not None and target >= high:
        return "node group %s is at its maximum size (%s of %s): it cannot scale up" % (group.get("name"), target, high)
    return None


def evaluate_node_groups(matched, resource, node_group=None):
    """Is there a node group carrying ``resource`` that can scale up?

    ``matched`` comes from match_node_groups. ``node_group`` names the group the
    user expects to carry the accelerator (needed when it has no node to look at,
    e.g. scaled to zero). Returns (ok, message, observed).
    """
    keys = ("name", "min", "max", "target", "health", "scale_up", "backoff", "nodes", "accelerator_nodes", "accelerator")
    observed = [{k: g.get(k) for k in keys} for g in matched]
    if not matched:
        return False, "the cluster-autoscaler status lists no node groups (no --nodes / auto-discovery configured?)", observed
    if node_group:
        chosen = [g for g in matched if (g.get("name") or "").lower() == node_group.lower()]
        if not chosen:
            return False, "node group %s is not in the cluster-autoscaler status (it lists %s)" % (
                node_group, ", ".join(g.get("name") or "?" for g in matched)), observed
        group = chosen[0]
        if group["accelerator"] is False:
            return False, "node group %s has nodes (%s) but none with %s capacity" % (
                node_group, ", ".join(group["nodes"]), resource), observed
    else:
        chosen = [g for g in matched if g["accelerator"]]
        if not chosen:
            unknown = [g["name"] for g in matched if g["accelerator"] is None]
            hint = (" (groups without nodes to look at: %s; name the GPU group with node_group)" % ", ".join(unknown)) if unknown else ""
            return False, "no node group of the cluster-autoscaler has nodes with %s%s" % (resource, hint), observed
        group = chosen[0]
    problem = scaling_problem(group)
    if problem:
        return False, problem, observed
    how = ("nodes %s carry %s" % (", ".join(group["accelerator_nodes"]), resource)) if group["accelerator_nodes"] else (
        "declared to carry %s (no node to look at now)" % resource)
    return True, "node group %s can scale up; its %s" % (describe_group(group), how), observed


# --------------------------------------------------------------------------- events and scale-up test


def parse_scale_up_message(message):
    """[{group, current, new, max}] from a TriggeredScaleUp message."""
    return [{"group": m.group(1), "current": int(m.group(2)), "new": int(m.group(3)), "max": int(m.group(4))}
            for m in _SCALE_UP_INFO.finditer(message or "")]


def _event_time(event):
    return event.get("lastTimestamp") or event.get("eventTime") or event.get("firstTimestamp") or ""


def scale_up_events(events, pod_name=None):
    """TriggeredScaleUp / NotTriggerScaleUp events (optionally of one pod), oldest first."""
    out = []
    for event in events:
        reason = event.get("reason")
        if reason not in ("TriggeredScaleUp", "NotTriggerScaleUp"):
            continue
        involved = event.get("involvedObject") or {}
        if pod_name and involved.get("name") != pod_name:
            continue
        out.append({
            "reason": reason,
            "pod": involved.get("name"),
            "namespace": involved.get("namespace"),
            "message": event.get("message", ""),
            "groups": parse_scale_up_message(event.get("message", "")),
            "time": _event_time(event),
            "count": event.get("count"),
        })
    return sorted(out, key=lambda e: e["time"] or "")


def scale_up_state(before_names, pod, nodes, events, resource):
    """Where a scale-up test stands.

    Returns (state, info): state is "done" (the pod runs on a node that was not
    there before and carries the accelerator), "rejected" (cluster-autoscaler
    said no node group fits, NotTriggerScaleUp, REJECTED_AFTER times), "fit_existing" (the pod landed
    on a node that was already there: scale-up not exercised) or "waiting".
    """
    pod_events = scale_up_events(events, node_name(pod))
    new = [n for n in nodes if node_name(n) not in before_names]
    spec_node = (pod.get("spec") or {}).get("nodeName")
    phase = (pod.get("status") or {}).get("phase")
    info = {
        "pod_phase": phase,
        "pod_node": spec_node,
        "new_nodes": node_rows(new, resource),
        "triggered": [e for e in pod_events if e["reason"] == "TriggeredScaleUp"],
        "not_triggered": [e for e in pod_events if e["reason"] == "NotTriggerScaleUp"],
    }
    if spec_node and spec_node in before_names:
        return "fit_existing", info
    if spec_node and phase == "Running":
        target = next((n for n in nodes if node_name(n) == spec_node), None)
        if target is not None and accelerator_count(target, resource) > 0:
            return "done", info
    # cluster-autoscaler re-emits NotTriggerScaleUp every loop; stop only when it persists
    refusals = sum(e["count"] or 1 for e in info["not_triggered"])
    if refusals >= REJECTED_AFTER and not info["triggered"] and not new:
        return "rejected", info
    return "waiting", info


def scale_down_state(new_node_names, nodes):
    """(done, remaining): done when none of the nodes added by the scale-up is left."""
    names = set(node_name(n) for n in nodes)
    remaining = [n for n in new_node_names if n in names]
    return not remaining, remaining


# test image key (testpods.IMAGES) of the scale-test pod: it only needs sh and sleep
IMAGE_KEY = "busybox"


def render_scale_test_pod(builder, name, namespace, resource, count, exclude_nodes, labels):
    """A pod (from the test-pod builder) requesting ``count`` ``resource`` that no current node may take.

    Node affinity ``kubernetes.io/hostname NotIn`` the current nodes; the builder
    adds the accelerator's own taint to the tolerations.
    """
    affinity = None
    if exclude_nodes:
        affinity = {"nodeAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": {"nodeSelectorTerms": [
            {"matchExpressions": [{"key": "kubernetes.io/hostname", "operator": "NotIn", "values": sorted(exclude_nodes)}]}]}}}
    amount = {resource: str(count)}
    container = builder.container("accelerator", IMAGE_KEY, command=["sh", "-c", "sleep 3600"],
                                  resources={"requests": amount, "limits": amount})
    return builder.pod(name, namespace, [container], labels=labels, affinity=affinity)


def timeout_verdict(pod, new_node_names, events=None):
    """(cause, message) when no node ran the scale-test pod within the timeout.

    No node joined: the capability's negative outcome (``capability``). A node
    joined but the pod does not run there: what keeps it (image pull, still
    creating, taint, capacity; see ``policy.classify_pod``), else ``timeout``.
    """
    if not new_node_names:
        return "capability", "no node joined"
    classified = policy.classify_pod(pod, events)
    joined = "node(s) %s joined" % ", ".join(new_node_names)
    if classified:
        return classified[0], "%s, but %s" % (joined, classified[1])
    status = pod.get("status") or {}
    return "timeout", "%s, but the pod is still %s%s" % (
        joined, status.get("phase") or "unknown", (" on %s" % pod["spec"]["nodeName"]) if (pod.get("spec") or {}).get("nodeName") else "")
