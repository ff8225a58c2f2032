# -*- coding: utf-8 -*-
# Copyright: ai_conformance.rke2 contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Pure evaluation and manifests for `dra_support` (Dynamic Resource Allocation, resource.k8s.io/v1)."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import re

from ansible_collections.ai_conformance.rke2.plugins.module_utils import accelerator_profiles, pods, policy

GROUP = "resource.k8s.io"
API_VERSION = "resource.k8s.io/v1"
REQUIRED_RESOURCES = [
    {"name": "deviceclasses", "kind": "DeviceClass", "namespaced": False, "versions": ["v1"]},
    {"name": "resourceclaims", "kind": "ResourceClaim", "namespaced": True, "versions": ["v1"]},
    {"name": "resourceclaimtemplates", "kind": "ResourceClaimTemplate", "namespaced": True, "versions": ["v1"]},
    {"name": "resourceslices", "kind": "ResourceSlice", "namespaced": False, "versions": ["v1"]},
]
CLAIM_NAME = "accelerator"
# test image key (testpods.IMAGES): the probe needs sh, env, ls and sleep
IMAGE_KEY = "busybox"
# driver named by the DeviceClass of the API dry-run (never installed; nothing is allocated)
PROBE_DRIVER = "dra-probe.ai-conformance.rke2.io"
_DRIVER_RE = re.compile(r"device\.driver\s*==\s*['\"]([^'\"]+)['\"]")


def class_drivers(device_class):
    """Drivers a DeviceClass selects through `device.driver == "..."` CEL selectors (empty: any)."""
    drivers = []
    for selector in (device_class.get("spec") or {}).get("selectors") or []:
        expression = ((selector or {}).get("cel") or {}).get("expression") or ""
        drivers.extend(_DRIVER_RE.findall(expression))
    return drivers


def devices_by_driver(slices):
    """{driver: number of devices published in ResourceSlices}."""
    counts = {}
    for item in slices:
        spec = item.get("spec") or {}
        driver = spec.get("driver")
        if driver:
            counts[driver] = counts.get(driver, 0) + len(spec.get("devices") or [])
    return counts


def choose_device_class(device_classes, slices, wanted=None):
    """Pick the DeviceClass to allocate from.

    Returns (name or None, reason). A class qualifies when a ResourceSlice
    publishes at least one device of a driver it selects (or of any driver,
    for a class without a driver selector).
    """
    counts = devices_by_driver(slices)
    names = [c["metadata"]["name"] for c in device_classes]
    if wanted:
        if wanted not in names:
            return None, "DeviceClass %s does not exist (classes: %s)" % (wanted, ", ".join(names) or "none")
        return wanted, "DeviceClass %s chosen by the user" % wanted
    if not device_classes:
        return None, "no DeviceClass exists (no DRA driver installed)"
    if not any(counts.values()):
        return None, "no ResourceSlice publishes a device (no DRA driver is running on any node)"
    for device_class in sorted(device_classes, key=lambda c: c["metadata"]["name"]):
        drivers = class_drivers(device_class)
        usable = [d for d in drivers if counts.get(d)] if drivers else [d for d in counts if counts[d]]
        if usable:
            return device_class["metadata"]["name"], "DeviceClass %s selects driver %s, which publishes %d device(s)" % (
                device_class["metadata"]["name"],
                usable[0],
                counts[usable[0]],
            )
    return None, "no DeviceClass selects a driver that publishes devices (drivers with devices: %s)" % ", ".join(
        "%s=%d" % item for item in sorted(counts.items()) if item[1]
    )


def render_claim_template(name, namespace, device_class, labels):
    """ResourceClaimTemplate asking for exactly one device of the class."""
    return {
        "apiVersion": API_VERSION,
        "kind": "ResourceClaimTemplate",
        "metadata": {"name": name, "namespace": namespace, "labels": dict(labels)},
        "spec": {"spec": {"devices": {"requests": [{"name": CLAIM_NAME, "exactly": {"deviceClassName": device_class}}]}}},
    }


def class_resources(device_class):
    """Extended resources of the accelerator profiles whose DRA DeviceClass is ``device_class``.

    Their nodes are commonly tainted with the resource name (``nvidia.com/gpu:NoSchedule``), which the
    DRA test pod then tolerates although it requests no extended resource.
    """
    return sorted(p["resource"] for p in accelerator_profiles.PROFILES.values() if p.get("dra_device_class") == device_class)


def render_pod(builder, name, namespace, template_name, labels, device_class=None, command=None):
    """Pod (from the test-pod builder) consuming one claim from the template; prints what it sees, then waits."""
    script = command or "echo '# env'; env | sort | grep -iE 'nvidia|cuda|gpu|dra|device' || true; echo '# /dev'; ls /dev; sleep 3600"
    container = builder.container("probe", IMAGE_KEY, command=["sh", "-c", script], claims=[CLAIM_NAME])
    return builder.pod(name, namespace, [container], labels=labels, accelerator_resources=class_resources(device_class),
                       resource_claims=[{"name": CLAIM_NAME, "resourceClaimTemplateName": template_name}])


# --------------------------------------------------------------------------- the API itself (no driver needed)


def render_api_probes(suffix, namespace, labels):
    """A v1 DeviceClass, ResourceClaim and ResourceClaimTemplate for a server-side dry-run create.

    The claim and the template request one device of the probe class with the
    v1 ``exactly`` form; a server that only knows v1beta1 shapes would drop it.
    """
    class_name = ("aic-dra-probe-" + re.sub(r"[^a-z0-9-]+", "-", str(suffix).lower()))[:63].strip("-")
    request = {"name": CLAIM_NAME, "exactly": {"deviceClassName": class_name}}
    meta = {"labels": dict(labels)}
    return [
        {"apiVersion": API_VERSION, "kind": "DeviceClass", "metadata": dict(meta, name=class_name),
         "spec": {"selectors": [{"cel": {"expression": 'device.driver == "%s"' % PROBE_DRIVER}}]}},
        {"apiVersion": API_VERSION, "kind": "ResourceClaim", "metadata": dict(meta, name=class_name, namespace=namespace),
         "spec": {"devices": {"requests": [request]}}},
        {"apiVersion": API_VERSION, "kind": "ResourceClaimTemplate",
         "metadata": dict(meta, name=class_name, namespace=namespace),
         "spec": {"spec": {"devices": {"requests": [request]}}}},
    ]


def _requests(obj):
    spec = obj.get("spec") or {}
    if obj.get("kind") == "ResourceClaimTemplate":
        spec = spec.get("spec") or {}
    return (spec.get("devices") or {}).get("requests") or []


def evaluate_api_probe(sent, answer):
    """Did the server accept ``sent`` as the v1 object it is? Returns (ok, message, observed)."""
    kind, name = sent["kind"], sent["metadata"]["name"]
    observed = {"kind": answer.get("kind"), "apiVersion": answer.get("apiVersion"),
                "name": (answer.get("metadata") or {}).get("name")}
    if (answer.get("kind"), answer.get("apiVersion"), observed["name"]) != (kind, API_VERSION, name):
        return False, "the dry-run create of %s %s answered %s %s %s instead" % (
            API_VERSION, kind, observed["apiVersion"], observed["kind"], observed["name"]), observed
    if kind == "DeviceClass":
        expressions = [((s or {}).get("cel") or {}).get("expression") for s in (answer.get("spec") or {}).get("selectors") or []]
        observed["selectors"] = expressions
        wanted = sent["spec"]["selectors"][0]["cel"]["expression"]
        if wanted not in expressions:
            return False, "the server accepted DeviceClass %s but dropped its CEL selector" % name, observed
        return True, "DeviceClass %s accepted with its CEL selector" % name, observed
    wanted = _requests(sent)[0]
    got = [r for r in _requests(answer) if r.get("name") == wanted["name"]]
    observed["requests"] = got
    exactly = (got[0].get("exactly") or {}) if got else {}
    if exactly.get("deviceClassName") != wanted["exactly"]["deviceClassName"]:
        return False, ("the server accepted %s %s but did not keep the v1 request %s.exactly.deviceClassName "
                       "(got %s)" % (kind, name, wanted["name"], got or "no such request")), observed
    return True, "%s %s accepted with request %s (exactly %s)" % (
        kind, name, wanted["name"], ", ".join("%s=%s" % item for item in sorted(exactly.items()))), observed


# --------------------------------------------------------------------------- allocation test


def claim_for_pod(claims, pod, claim_name=CLAIM_NAME):
    """The ResourceClaim generated for ``pod`` (via pod.status.resourceClaimStatuses or ownerReferences)."""
    wanted = None
    for status in (pod.get("status") or {}).get("resourceClaimStatuses") or []:
        if status.get("name") == claim_name:
            wanted = status.get("resourceClaimName")
    uid = pod["metadata"].get("uid")
    for claim in claims:
        meta = claim["metadata"]
        if wanted and meta["name"] == wanted:
            return claim
        if uid and any(ref.get("uid") == uid for ref in meta.get("ownerReferences") or []):
            return claim
    return None


def evaluate_allocation(claim, pod):
    """Is the claim allocated and reserved for the pod? Returns (ok, message, observed)."""
    if claim is None:
        return False, "no ResourceClaim was generated for pod %s" % pod["metadata"]["name"], None
    status = claim.get("status") or {}
    results = ((status.get("allocation") or {}).get("devices") or {}).get("results") or []
    reserved = status.get("reservedFor") or []
    observed = {
        "claim": claim["metadata"]["name"],
        "allocated": [{k: r.get(k) for k in ("request", "driver", "pool", "device")} for r in results],
        "reservedFor": [{k: r.get(k) for k in ("resource", "name", "uid")} for r in reserved],
    }
    if not results:
        return False, "ResourceClaim %s is not allocated yet" % claim["metadata"]["name"], observed
    pod_name, pod_uid = pod["metadata"]["name"], pod["metadata"].get("uid")
    if not any(r.get("resource") == "pods" and (r.get("uid") == pod_uid or r.get("name") == pod_name) for r in reserved):
        return False, "ResourceClaim %s is allocated but not reserved for pod %s" % (claim["metadata"]["name"], pod_name), observed
    devices = ", ".join("%s/%s/%s" % (r.get("driver"), r.get("pool"), r.get("device")) for r in results)
    return True, "ResourceClaim %s allocated %s and reserved for pod %s" % (claim["metadata"]["name"], devices, pod_name), observed


def allocation_outcome(claim, pod, events=None):
    """Final verdict of the allocation test: (cause, message, observed); cause None means passed.

    Passed only when the claim is allocated and reserved for the pod **and**
    the pod runs. A pod the environment keeps from running (image pull, still
    creating its containers, no free device or capacity, untolerated taint) is
    the policy's cause for it (an ``error``), naming the node and the claim's
    state; a claim the DRA control plane never generates or allocates while
    nothing else explains it is ``capability`` (``failed``); an allocated claim
    whose pod is still not running for no known reason is ``timeout``.
    """
    ok, claim_message, observed = evaluate_allocation(claim, pod)
    name = pod["metadata"]["name"]
    status = pod.get("status") or {}
    node = (pod.get("spec") or {}).get("nodeName")
    if ok and pods.reached(pod, "Running"):
        return None, "%s; pod %s runs on node %s" % (claim_message, name, node), observed
    classified = policy.classify_pod(pod, events)
    if classified:
        cause, why = classified
        return cause, "%s (%s)" % (why, claim_message), observed
    problem = pods.pod_problem(pod, unschedulable_is_problem=False)
    if problem:  # the test container crashed or could not be created: says nothing about DRA
        return policy.classify_stuck(problem["kind"]), "pod %s on node %s: %s (%s)" % (
            name, node or "(none)", problem["message"], claim_message), observed
    if ok:
        return "timeout", "%s, but pod %s on node %s never started: phase %s" % (
            claim_message, name, node or "(none)", status.get("phase") or "unknown"), observed
    return "capability", claim_message, observed
