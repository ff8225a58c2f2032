#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: ai_conformance.rke2 contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r"""
module: dra_support
short_description: Verify Dynamic Resource Allocation (CNCF AI conformance C(dra_support))
version_added: 0.1.0
author:
  - ai_conformance.rke2 maintainers (@ai-conformance)
description:
  - Checks through API discovery that C(resource.k8s.io/v1) serves C(deviceclasses) and C(resourceslices)
    (cluster-scoped) and C(resourceclaims) and C(resourceclaimtemplates) (namespaced), with their kinds.
  - Exercises the API itself, with or without a DRA driver - a server-side dry-run create (nothing is stored) of a
    v1 C(DeviceClass), C(ResourceClaim) and C(ResourceClaimTemplate) must be accepted as sent (the accepted objects
    are the evidence).
  - When a DRA driver publishes devices (ResourceSlices are read page by page), exercises allocation for real - a
    temporary namespace (Pod Security C(restricted)) gets a C(ResourceClaimTemplate) and a test pod using it; the
    check passes once the claim is allocated, reserved for the pod and the pod runs. The pod comes from the
    collection's test-pod builder - it tolerates O(tolerations) and, for the DeviceClass of an accelerator profile
    (C(gpu.nvidia.com)), that accelerator's taint (C(nvidia.com/gpu:NoSchedule)). A claim that is allocated while
    its pod never starts, and a pod the scheduler cannot place (no free device, untolerated taint), are C(error)s
    naming the node and the reason, not failures of DRA.
  - In check mode nothing is sent (not even dry-runs), so nothing is exercised and the requirement is C(skipped).
  - Everything it created is deleted afterwards.
options:
  allocation_test:
    description:
      - Whether to run the allocation test.
      - C(auto) runs it when a DeviceClass and a ResourceSlice with devices exist, and reports it as skipped
        (with the reason) otherwise.
      - C(true) runs it and fails the requirement (C(not_installed)) when no driver publishes devices.
      - C(false) skips it.
    type: str
    choices: [auto, "true", "false"]
    default: auto
  device_class:
    description:
      - DeviceClass to allocate from. By default the first class that selects a driver publishing devices.
    type: str
  image:
    description:
      - Image of the test pod; it needs C(sh), C(env), C(ls) and C(sleep).
      - By default the C(busybox) entry of the collection's test image table; O(image_registry) rewrites it too.
    type: str
extends_documentation_fragment:
  - kubernetes.core.k8s_auth_options
  - ai_conformance.rke2.common
"""

EXAMPLES = r"""
- name: Verify DRA support of the cluster in ~/.kube/config
  ai_conformance.rke2.dra_support:
  register: dra

- name: Require the allocation test on a given class
  ai_conformance.rke2.dra_support:
    kubeconfig: /etc/rancher/rke2/rke2.yaml
    allocation_test: "true"
    device_class: gpu.nvidia.com
    timeout: 300
"""

RETURN = r"""
result:
  description: The requirement's result; see the collection's result schema.
  returned: always
  type: dict
  sample:
    requirement: dra_support
    status: passed
    checks:
      - name: dra_api_resources
        status: passed
        message: resource.k8s.io serves all 4 required resources
"""

from ansible_collections.kubernetes.core.plugins.module_utils.k8s.core import AnsibleK8SModule

from ansible_collections.ai_conformance.rke2.plugins.module_utils import discovery, dra, pods
from ansible_collections.ai_conformance.rke2.plugins.module_utils.kube import (
    KubeError,
    Stuck,
    WaitTimeout,
    common_argument_spec,
    run_requirement,
)
from ansible_collections.ai_conformance.rke2.plugins.module_utils.testpods import PodBuilder

REQUIREMENT = "dra_support"


def check_api_resources(kube, result):
    """Discovery of resource.k8s.io; True when all required resources are served."""
    versions = discovery.served_versions(kube.api_groups(), dra.GROUP)
    lists = [kube.api_resources("%s/%s" % (dra.GROUP, v)) for v in versions]
    rows = discovery.resource_rows(lists)
    result.add_evidence("api-resources", discovery.api_resources_table(rows), "text")
    outcome = discovery.evaluate_resources(dra.REQUIRED_RESOURCES, rows, dra.GROUP, versions)
    expected = ["%s %s" % (dra.API_VERSION, r["name"]) for r in dra.REQUIRED_RESOURCES]
    observed = {"served_versions": versions, "found": outcome["found"], "missing": outcome["missing"], "wrong": outcome["wrong"]}
    if outcome["ok"]:
        result.passed("dra_api_resources", outcome["message"], observed, expected)
    else:
        result.failed("dra_api_resources", outcome["message"], observed, expected, cause="not_installed")
    return outcome["ok"]


def check_api_accepts_v1(kube, result, namespace):
    """Server-side dry-run create of a v1 DeviceClass, ResourceClaim and ResourceClaimTemplate (nothing is stored)."""
    name = "dra_api_accepts_v1"
    expected = "server-side dry-run create of v1 DeviceClass, ResourceClaim and ResourceClaimTemplate accepted as sent"
    if namespace is None:
        result.skipped(name, "check mode: nothing is sent to the API server, not even a dry-run")
        return
    probes = dra.render_api_probes(kube.run_id.lower(), namespace, kube.labels(REQUIREMENT))
    accepted, observed = [], []
    for obj in probes:
        try:
            answer = kube.create(obj, dry_run=True)
        except KubeError as exc:
            result.add_evidence("api-accepted-objects", accepted)
            result.from_exception(name, exc, "server-side dry-run create of %s %s" % (dra.API_VERSION, obj["kind"]),
                                  observed=observed, expected=expected)
            return
        accepted.append(answer)
        ok, message, seen = dra.evaluate_api_probe(obj, answer)
        observed.append(dict(seen, message=message))
        if not ok:
            result.add_evidence("api-accepted-objects", accepted)
            result.failed(name, message, observed, expected, exercised=True)
            return
    result.add_evidence("api-accepted-objects", accepted)
    result.exercised(name, "the API server accepted v1 %s by server-side dry-run: %s" % (
        ", ".join(o["kind"] for o in probes), "; ".join(o["message"] for o in observed)), observed, expected)


def check_allocation(kube, params, result, namespace):
    """Allocate a device through a ResourceClaimTemplate for a real pod; the pod must run."""
    name = "dra_allocation"
    mode = params["allocation_test"]
    if mode == "false":
        result.skipped(name, "allocation test disabled (allocation_test=false)")
        return
    classes = kube.list(dra.API_VERSION, "DeviceClass")
    slices = kube.list(dra.API_VERSION, "ResourceSlice")  # every page
    device_class, reason = dra.choose_device_class(classes, slices, params.get("device_class"))
    result.add_evidence(
        "drivers",
        {"device_classes": [c["metadata"]["name"] for c in classes], "resource_slices": len(slices),
         "devices_by_driver": dra.devices_by_driver(slices)},
    )
    if device_class is None:
        if mode == "auto" and not params.get("device_class"):
            result.skipped(name, "allocation test not run: %s" % reason)
        else:
            result.failed(name, "allocation test cannot run: %s" % reason, expected="a DeviceClass whose driver publishes devices",
                          cause="not_installed")
        return
    if namespace is None:
        result.skipped(name, "check mode: allocation test not run (would allocate from DeviceClass %s)" % device_class)
        return

    builder = PodBuilder(params, image_overrides={dra.IMAGE_KEY: params.get("image")})
    labels = kube.labels(REQUIREMENT)
    expected = "claim allocated from %s, reserved for the pod, pod running" % device_class
    try:
        template = kube.create(dra.render_claim_template("dra-probe", namespace, device_class, labels))
        pod = kube.create(dra.render_pod(builder, "dra-probe", namespace, template["metadata"]["name"], labels, device_class))
    except KubeError as exc:  # Pod Security, quota, LimitRange, a policy webhook: the test cannot start
        result.from_exception(name, exc, "the DRA test objects were not admitted", expected=expected)
        return
    pod_name = pod["metadata"]["name"]
    seen = {"pod": pod, "claim": None}

    def probe():
        seen["pod"] = current = kube.get("v1", "Pod", pod_name, namespace) or pod
        seen["claim"] = dra.claim_for_pod(kube.list(dra.API_VERSION, "ResourceClaim", namespace=namespace), current)
        cause, message, observed = dra.allocation_outcome(seen["claim"], current)
        problem = pods.pod_problem(current)
        if problem:
            raise Stuck(problem["message"], kind=problem["kind"])
        return cause is None, {"claim": observed, "pod": pods.summarize([current]), "message": message}

    try:
        kube.wait_for(probe, params["timeout"], what="DRA allocation from %s and pod %s running" % (device_class, pod_name))
    except (Stuck, WaitTimeout) as exc:
        note = "stopped early: " if isinstance(exc, Stuck) else "not running after %ss: " % params["timeout"]
        try:
            events = kube.list("v1", "Event", namespace=namespace, field_selector="involvedObject.name=%s" % pod_name)
        except KubeError:
            events = []  # the verdict stands on the pod and the claim; events only add detail
        cause, message, observed = dra.allocation_outcome(seen["claim"], seen["pod"], events)
        cause = cause or "timeout"
        result.add_evidence("allocation-state", {"claim": observed, "pod": pods.summarize([seen["pod"]]),
                                                 "events": [e.get("message") for e in events]})
        result.outcome(name, cause, note + message, observed=observed, expected=expected, exercised=True)
        return
    cause, message, observed = dra.allocation_outcome(seen["claim"], seen["pod"])
    result.add_evidence("allocation", observed)
    try:
        result.add_evidence("pod-view-of-devices", kube.pod_logs(namespace, pod_name, tail_lines=200), "text")
    except KubeError as exc:
        result.note("the test pod's log (what it sees of the device) could not be read: %s" % exc)
    result.exercised(name, message, observed=observed, expected=expected)


def verify(kube, params, result):
    served = check_api_resources(kube, result)
    if not served:
        for name in ("dra_api_accepts_v1", "dra_allocation"):
            result.skipped(name, "not run: the DRA API is not fully served")
        return None
    # check mode sends nothing, not even dry-runs: nothing is exercised, the requirement is skipped
    namespace = None if kube.module.check_mode else kube.temp_namespace(REQUIREMENT)
    check_api_accepts_v1(kube, result, namespace)
    check_allocation(kube, params, result, namespace)
    return None


def main():
    argument_spec = common_argument_spec(
        {
            "allocation_test": {"type": "str", "choices": ["auto", "true", "false"], "default": "auto"},
            "device_class": {"type": "str"},
            "image": {"type": "str"},
        }
    )
    module = AnsibleK8SModule(argument_spec=argument_spec, supports_check_mode=True)
    run_requirement(module, REQUIREMENT, verify)


if __name__ == "__main__":
    main()
