# -*- coding: utf-8 -*-
# Copyright: ai_conformance.rke2 contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Pure evaluation and manifests for `dra_support` (Dynamic Resource Allocation, resource.k8s.io/v1)."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import re

GROUP = "resource.k8s.io"
API_VERSION = "resource.k8s.io/v1"
REQUIRED_RESOURCES = [
    {"name": "deviceclasses", "kind": "DeviceClass", "namespaced": False, "versions": ["v1"]},
    {"name": "resourceclaims", "kind": "ResourceClaim", "namespaced": True, "versions": ["v1"]},
    {"name": "resourceclaimtemplates", "kind": "ResourceClaimTemplate", "namespaced": True, "versions": ["v1"]},
    {"name": "resourceslices", "kind": "ResourceSlice", "namespaced": False, "versions": ["v1"]},
]
CLAIM_NAME = "accelerator"
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


def render_pod(name, namespace, template_name, image, labels, command=None):
    """Pod consuming one claim from the template; prints what it sees, then waits to be deleted."""
    script = command or "echo '# env'; env | sort | grep -iE 'nvidia|cuda|gpu|dra|device' || true; echo '# /dev'; ls /dev; sleep 3600"
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": name, "namespace": namespace, "labels": dict(labels)},
        "spec": {
            "restartPolicy": "Never",
            "terminationGracePeriodSeconds": 1,
            "resourceClaims": [{"name": CLAIM_NAME, "resourceClaimTemplateName": template_name}],
            "containers": [
                {
                    "name": "probe",
                    "image": image,
                    "command": ["sh", "-c", script],
                    "resources": {"claims": [{"name": CLAIM_NAME}]},
                }
            ],
        },
    }


def claim_for_pod(claims, pod):
    """The ResourceClaim generated for ``pod`` (via pod.status.resourceClaimStatuses or ownerReferences)."""
    wanted = None
    for status in (pod.get("status") or {}).get("resourceClaimStatuses") or []:
        if status.get("name") == CLAIM_NAME:
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
