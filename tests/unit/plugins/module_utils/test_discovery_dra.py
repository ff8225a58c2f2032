"""dra_support evaluation on the discovery documents recorded from a real v1.34 apiserver."""

import copy

import pytest

from ansible_collections.ai_conformance.rke2.plugins.module_utils import discovery, dra, policy, testpods
from tests.support.shared import fixture_response, load_json


@pytest.fixture
def groups():
    return load_json("k8s-fixtures", "discovery", "apis.json")


@pytest.fixture
def v1_list():
    return load_json("k8s-fixtures", "discovery", "apis__resource.k8s.io__v1.json")


def evaluate(groups, lists):
    versions = discovery.served_versions(groups, dra.GROUP)
    rows = discovery.resource_rows(lists)
    return versions, rows, discovery.evaluate_resources(dra.REQUIRED_RESOURCES, rows, dra.GROUP, versions)


def test_recorded_v134_serves_all_dra_resources(groups, v1_list):
    versions, rows, out = evaluate(groups, [v1_list])
    assert versions == ["v1"]
    assert out["ok"], out["message"]
    assert len(out["found"]) == 4


def test_table_matches_kubectl_api_resources(v1_list):
    table = discovery.api_resources_table(discovery.resource_rows([v1_list]))
    lines = [line.split() for line in table.strip().splitlines()]
    assert lines[0] == ["NAME", "SHORTNAMES", "APIVERSION", "NAMESPACED", "KIND"]
    # kubectl prints (reference procedure): deviceclasses resource.k8s.io/v1 false DeviceClass ...
    assert lines[1:] == [
        ["deviceclasses", "resource.k8s.io/v1", "false", "DeviceClass"],
        ["resourceclaims", "resource.k8s.io/v1", "true", "ResourceClaim"],
        ["resourceclaimtemplates", "resource.k8s.io/v1", "true", "ResourceClaimTemplate"],
        ["resourceslices", "resource.k8s.io/v1", "false", "ResourceSlice"],
    ]
    assert "resourceclaims/status" not in table


def test_group_missing_names_every_resource(groups):
    groups = copy.deepcopy(groups)
    groups["groups"] = [g for g in groups["groups"] if g["name"] != dra.GROUP]
    versions, dummy, out = evaluate(groups, [])
    assert not out["ok"]
    assert versions == []
    for name in ("deviceclasses", "resourceclaims", "resourceclaimtemplates", "resourceslices"):
        assert name in out["message"]
    assert "none (group not served)" in out["message"]


def test_only_v1beta1_served_is_reported(groups, v1_list):
    groups = copy.deepcopy(groups)
    for group in groups["groups"]:
        if group["name"] == dra.GROUP:
            group["versions"] = [{"groupVersion": "resource.k8s.io/v1beta1", "version": "v1beta1"}]
            group["preferredVersion"] = group["versions"][0]
    beta = copy.deepcopy(v1_list)
    beta["groupVersion"] = "resource.k8s.io/v1beta1"
    versions, dummy, out = evaluate(groups, [beta])
    assert versions == ["v1beta1"]
    assert not out["ok"]
    assert "resource.k8s.io/v1beta1" in out["message"]
    assert len(out["missing"]) == 4


def test_one_resource_missing_and_wrong_scope(v1_list, groups):
    lst = copy.deepcopy(v1_list)
    lst["resources"] = [r for r in lst["resources"] if r["name"] != "resourceslices"]
    for res in lst["resources"]:
        if res["name"] == "deviceclasses":
            res["namespaced"] = True
    dummy, dummy2, out = evaluate(groups, [lst])
    assert out["missing"] == ["resourceslices (resource.k8s.io/v1)"]
    assert out["wrong"] == ["deviceclasses: namespaced=true, expected false"]


# ResourceClaim/ResourceSlice/DeviceClass shapes follow resource.k8s.io/v1 (k8s.io/api/resource/v1 types.go):
# DeviceClass.spec.selectors[].cel.expression, ResourceSlice.spec.{driver,pool,devices[]},
# ResourceClaim.status.allocation.devices.results[].{request,driver,pool,device}, status.reservedFor[].{resource,name,uid}.
def device_class(name, expression=None):
    spec = {"selectors": [{"cel": {"expression": expression}}]} if expression else {}
    return {"metadata": {"name": name}, "spec": spec}


def resource_slice(driver, devices):
    spec = {"driver": driver, "pool": {"name": "node-1"}, "devices": [{"name": "gpu-%d" % i} for i in range(devices)]}
    return {"metadata": {"name": "s-" + driver}, "spec": spec}


def test_choose_class_matches_driver_with_devices():
    classes = [
        device_class("a-other", 'device.driver == "other.example.com"'),
        device_class("gpu.nvidia.com", "device.driver == 'gpu.nvidia.com'"),
    ]
    name, reason = dra.choose_device_class(classes, [resource_slice("gpu.nvidia.com", 2), resource_slice("other.example.com", 0)])
    assert name == "gpu.nvidia.com"
    assert "2 device(s)" in reason


def test_choose_class_without_devices_or_classes():
    assert dra.choose_device_class([], [resource_slice("x", 1)])[0] is None
    name, reason = dra.choose_device_class([device_class("c", 'device.driver == "x"')], [])
    assert name is None and "no ResourceSlice publishes a device" in reason
    name, reason = dra.choose_device_class([device_class("c", 'device.driver == "x"')], [resource_slice("y", 1)])
    assert name is None and "y=1" in reason
    name, reason = dra.choose_device_class([device_class("c")], [], wanted="missing")
    assert name is None and "does not exist" in reason


def test_allocation_evaluation():
    claim_status = {"name": "accelerator", "resourceClaimName": "dra-probe-accelerator-x"}
    pod = {"metadata": {"name": "dra-probe", "uid": "u1"}, "status": {"resourceClaimStatuses": [claim_status]}}
    claim = {"metadata": {"name": "dra-probe-accelerator-x"}, "status": {}}
    assert dra.claim_for_pod([claim], pod) is claim
    ok, msg, dummy = dra.evaluate_allocation(claim, pod)
    assert not ok and "not allocated" in msg
    device = {"request": "accelerator", "driver": "gpu.nvidia.com", "pool": "node-1", "device": "gpu-0"}
    claim["status"]["allocation"] = {"devices": {"results": [device]}}
    ok, msg, dummy = dra.evaluate_allocation(claim, pod)
    assert not ok and "not reserved" in msg
    claim["status"]["reservedFor"] = [{"resource": "pods", "name": "dra-probe", "uid": "u1"}]
    ok, msg, observed = dra.evaluate_allocation(claim, pod)
    assert ok and "gpu.nvidia.com/node-1/gpu-0" in msg
    assert observed["allocated"][0]["device"] == "gpu-0"
    assert dra.evaluate_allocation(None, pod)[0] is False


def test_rendered_manifests_are_wired_together():
    labels = {"app.kubernetes.io/managed-by": "ai-conformance-rke2"}
    tmpl = dra.render_claim_template("t", "ns", "gpu.nvidia.com", labels)
    pod = dra.render_pod(testpods.PodBuilder({"tolerations": [TOLERATION]}), "p", "ns", "t", labels)
    request = tmpl["spec"]["spec"]["devices"]["requests"][0]
    assert request["exactly"]["deviceClassName"] == "gpu.nvidia.com"
    assert pod["spec"]["resourceClaims"][0] == {"name": request["name"], "resourceClaimTemplateName": "t"}
    container = pod["spec"]["containers"][0]
    assert container["resources"]["claims"] == [{"name": request["name"]}]
    # the one builder: restricted, requests/limits, the user's tolerations, the pinned image
    assert testpods.hardening_problems(pod["spec"]) == []
    assert pod["spec"]["tolerations"] == [TOLERATION]
    assert container["image"] == testpods.IMAGES[dra.IMAGE_KEY]


TOLERATION = {"key": "example.com/dedicated", "operator": "Exists", "effect": "NoSchedule"}


def test_pod_for_a_profile_class_tolerates_the_accelerator_taint():
    """gpu.nvidia.com is the NVIDIA profile's DRA class: its nodes' nvidia.com/gpu taint is tolerated."""
    pod = dra.render_pod(testpods.PodBuilder({"tolerations": [TOLERATION]}), "p", "ns", "t", {}, "gpu.nvidia.com")
    assert pod["spec"]["tolerations"] == [TOLERATION, {"key": "nvidia.com/gpu", "operator": "Exists", "effect": "NoSchedule"}]
    assert "limits" in pod["spec"]["containers"][0]["resources"]
    assert "nvidia.com/gpu" not in pod["spec"]["containers"][0]["resources"]["limits"]


# --------------------------------------------------------------------------- the API dry-run


def probes():
    return dra.render_api_probes("Run_42", "aic-dra-support-x", {"app.kubernetes.io/managed-by": "ai-conformance-rke2"})


def test_api_probes_are_v1_objects_with_dns_names():
    kinds = [(o["apiVersion"], o["kind"], o["metadata"]["name"]) for o in probes()]
    assert kinds == [("resource.k8s.io/v1", kind, "aic-dra-probe-run-42")
                     for kind in ("DeviceClass", "ResourceClaim", "ResourceClaimTemplate")]
    assert "namespace" not in probes()[0]["metadata"]


def test_recorded_template_answer_is_accepted_as_v1():
    """The real v1.34 answer to a template create: sent request kept, defaults added."""
    recorded = load_json("k8s-fixtures", "objects", "resourceclaimtemplate-single-gpu.create.json")
    sent = dict(recorded["request"]["body"], apiVersion="resource.k8s.io/v1")
    ok, message, observed = dra.evaluate_api_probe(sent, recorded["response"])
    assert ok, message
    assert message == "ResourceClaimTemplate single-gpu accepted with request gpu (exactly allocationMode=ExactCount, count=1, " \
                      "deviceClassName=gpu.example.com)"


def test_recorded_device_class_answer_is_accepted():
    answer = load_json("k8s-fixtures", "objects", "deviceclass-gpu.example.com.json")["response"]
    sent = {"kind": "DeviceClass", "metadata": {"name": "gpu.example.com"}, "spec": {"selectors": [
        {"cel": {"expression": 'device.driver == "gpu.example.com"'}}]}}
    assert dra.evaluate_api_probe(sent, answer)[0]


def test_answer_without_the_v1_request_or_of_another_kind_fails():
    claim = probes()[1]
    pruned = copy.deepcopy(claim)
    pruned["spec"]["devices"]["requests"][0].pop("exactly")
    ok, message, dummy = dra.evaluate_api_probe(claim, pruned)
    assert not ok and "did not keep the v1 request accelerator.exactly.deviceClassName" in message
    beta = dict(copy.deepcopy(claim), apiVersion="resource.k8s.io/v1beta1")
    ok, message, dummy = dra.evaluate_api_probe(claim, beta)
    assert not ok and "answered resource.k8s.io/v1beta1 ResourceClaim" in message
    device_class = probes()[0]
    no_selector = dict(copy.deepcopy(device_class), spec={})
    assert not dra.evaluate_api_probe(device_class, no_selector)[0]


# --------------------------------------------------------------------------- allocation outcome (recorded objects)


def recorded(name):
    return fixture_response("k8s-fixtures", "objects", name)


def test_recorded_allocated_claim_with_pod_never_started_is_an_error_naming_the_node():
    pod = recorded("pod-dra-pod.bound.json")
    claim = recorded("resourceclaim-dra-pod-gpu.allocated.json")
    assert dra.claim_for_pod([claim], pod, claim_name="gpu") == claim
    cause, message, observed = dra.allocation_outcome(claim, pod, [])
    assert cause == "image_pull_timeout" and policy.status_for(cause) == "error"
    assert message.startswith("pod dra-pod on node gpu-node-1 is still creating its containers: busybox (busybox:1.36)")
    assert "allocated gpu.example.com/gpu-node-1/gpu-0 and reserved for pod dra-pod" in message
    assert observed["allocated"][0]["device"] == "gpu-0"


def test_recorded_allocated_claim_with_running_pod_passes():
    pod = copy.deepcopy(recorded("pod-dra-pod.bound.json"))
    pod["status"].update(phase="Running", conditions=pod["status"]["conditions"] + [{"type": "Ready", "status": "True"}])
    cause, message, dummy = dra.allocation_outcome(recorded("resourceclaim-dra-pod-gpu.allocated.json"), pod)
    assert cause is None and message.endswith("pod dra-pod runs on node gpu-node-1")


@pytest.mark.parametrize("pod_file, cause", [
    ("pod-dra-pod-3-gpus.unschedulable.json", "no_capacity"),
    ("pod-dra-pod-3-gpus.unschedulable.later.json", "untolerated_taint"),
])
def test_recorded_unschedulable_claim_is_an_error_not_a_failure(pod_file, cause):
    claim = recorded("resourceclaim-dra-pod-3-gpus-gpus.unallocated.json")
    pod = recorded(pod_file)
    assert dra.claim_for_pod([claim], pod, claim_name="gpus") == claim
    got, message, dummy = dra.allocation_outcome(claim, pod)
    assert got == cause and policy.status_for(got) == "error"
    assert "cannot allocate all claims" in message and "is not allocated yet" in message


def test_allocated_pod_that_crashes_is_test_tooling_and_nothing_generated_is_capability():
    pod = copy.deepcopy(recorded("pod-dra-pod.bound.json"))
    pod["status"]["containerStatuses"] = [{"name": "busybox", "state": {"waiting": {"reason": "CrashLoopBackOff"}}}]
    cause, message, dummy = dra.allocation_outcome(recorded("resourceclaim-dra-pod-gpu.allocated.json"), pod)
    assert cause == "test_tooling" and "CrashLoopBackOff" in message
    fresh = recorded("pod-dra-pod.create.json")
    cause, message, dummy = dra.allocation_outcome(None, fresh)
    assert cause == "capability" and message == "no ResourceClaim was generated for pod dra-pod"
