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
  - When a DRA driver publishes devices, exercises allocation for real - a temporary namespace gets a
    C(ResourceClaimTemplate) and a pod using it; the check passes once the claim is allocated, reserved for the
    pod and the pod runs. Everything it created is deleted afterwards.
options:
  allocation_test:
    description:
      - Whether to run the allocation test.
      - C(auto) runs it when a DeviceClass and a ResourceSlice with devices exist, and reports it as skipped
        (with the reason) otherwise.
      - C(true) runs it and fails the requirement when no driver publishes devices.
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
    type: str
    default: registry.k8s.io/e2e-test-images/busybox:1.36.1-1
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
    Stuck,
    WaitTimeout,
    common_argument_spec,
    run_requirement,
)

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
        result.failed("dra_api_resources", outcome["message"], observed, expected)
    return outcome["ok"]


def check_allocation(kube, params, result, check_mode):
    """Allocate a device through a ResourceClaimTemplate for a real pod."""
    name = "dra_allocation"
    mode = params["allocation_test"]
    if mode == "false":
        result.skipped(name, "allocation test disabled (allocation_test=false)")
        return
    classes = kube.list(dra.API_VERSION, "DeviceClass")
    slices = kube.list(dra.API_VERSION, "ResourceSlice", limit=500)
    device_class, reason = dra.choose_device_class(classes, slices, params.get("device_class"))
    result.add_evidence(
        "drivers",
        {"device_classes": [c["metadata"]["name"] for c in classes], "devices_by_driver": dra.devices_by_driver(slices)},
    )
    if device_class is None:
        if mode == "auto" and not params.get("device_class"):
            result.skipped(name, "allocation test not run: %s" % reason)
        else:
            result.failed(name, "allocation test cannot run: %s" % reason, expected="a DeviceClass whose driver publishes devices")
        return
    if check_mode:
        result.skipped(name, "check mode: allocation test not run (would allocate from DeviceClass %s)" % device_class)
        return

    namespace = kube.temp_namespace(REQUIREMENT)
    labels = kube.labels(REQUIREMENT)
    template = kube.create(dra.render_claim_template("dra-probe", namespace, device_class, labels))
    pod = kube.create(dra.render_pod("dra-probe", namespace, template["metadata"]["name"], params["image"], labels))
    expected = "claim allocated from %s, reserved for the pod, pod running" % device_class

    def probe():
        current = kube.get("v1", "Pod", pod["metadata"]["name"], namespace) or pod
        claims = kube.list(dra.API_VERSION, "ResourceClaim", namespace=namespace)
        ok, message, observed = dra.evaluate_allocation(dra.claim_for_pod(claims, current), current)
        problem = pods.pod_problem(current)
        if problem:
            raise Stuck(problem["message"], kind=problem["kind"], state={"claim": observed, "pod": pods.summarize([current])})
        state = {"claim": observed, "pod": pods.summarize([current]), "message": message}
        return ok and pods.reached(current, "Running"), state

    try:
        state = kube.wait_for(probe, params["timeout"], what="DRA allocation from %s" % device_class)
    except Stuck as exc:
        result.add_evidence("allocation-state", exc.state or {})
        if exc.kind == "unschedulable":
            result.failed(name, "the pod claiming a %s device was not scheduled: %s" % (device_class, exc), expected=expected)
        else:
            result.error(name, "the test pod could not run: %s" % exc, expected=expected)
        return
    except WaitTimeout as exc:
        result.add_evidence("allocation-state", exc.body or {})
        result.failed(name, str(exc), expected=expected)
        return
    result.add_evidence("allocation", state["claim"])
    result.add_evidence("pod-view-of-devices", kube.pod_logs(namespace, pod["metadata"]["name"], tail_lines=200), "text")
    result.exercised(name, state["message"], observed=state["claim"], expected=expected)


def verify(kube, params, result):
    served = check_api_resources(kube, result)
    if not served:
        result.skipped("dra_allocation", "allocation test not run: the DRA API is not fully served")
        return None
    check_allocation(kube, params, result, kube.module.check_mode)
    return None


def main():
    argument_spec = common_argument_spec(
        {
            "allocation_test": {"type": "str", "choices": ["auto", "true", "false"], "default": "auto"},
            "device_class": {"type": "str"},
            "image": {"type": "str", "default": "registry.k8s.io/e2e-test-images/busybox:1.36.1-1"},
        }
    )
    module = AnsibleK8SModule(argument_spec=argument_spec, supports_check_mode=True)
    run_requirement(module, REQUIREMENT, verify)


if __name__ == "__main__":
    main()
