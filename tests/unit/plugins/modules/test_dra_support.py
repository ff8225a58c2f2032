"""dra_support over HTTP against the fake API server (recorded v1.34 discovery and error bodies).

The fake plays the DRA controller, the scheduler and the kubelet where a test needs them.
"""

import copy

import pytest

from ansible_collections.ai_conformance.rke2.plugins.module_utils import testpods
from ansible_collections.ai_conformance.rke2.plugins.modules import dra_support
from tests.support.fakeapi import FakeKubeAPI
from tests.support.modrun import checks, run_module
from tests.support.shared import fixture_response

RESOURCE = "resource.k8s.io/v1"


@pytest.fixture
def fake(tmp_path):
    with FakeKubeAPI() as server:
        server.kubeconfig = server.write_kubeconfig(str(tmp_path / "kubeconfig"))
        yield server


def run(fake, capsys, check_mode=False, **args):
    args.setdefault("kubeconfig", fake.kubeconfig)
    args.setdefault("timeout", 5)
    return run_module(dra_support, args, capsys, check_mode=check_mode)["result"]


def ours_left(fake):
    """Objects of ours still stored (namespaces labelled as ours and anything inside them)."""
    left = []
    for ns in fake.objects("v1", "namespaces"):
        if ns["metadata"].get("labels", {}).get("app.kubernetes.io/managed-by") == "ai-conformance-rke2":
            left.append(ns["metadata"]["name"])
            left.extend(o["metadata"]["name"] for o in fake.objects(namespace=ns["metadata"]["name"]))
    return left


def add_driver(fake, devices=1):
    fake.put_object({"apiVersion": RESOURCE, "kind": "DeviceClass", "metadata": {"name": "gpu.example.com"},
                     "spec": {"selectors": [{"cel": {"expression": 'device.driver == "gpu.example.com"'}}]}})
    fake.put_object({"apiVersion": RESOURCE, "kind": "ResourceSlice", "metadata": {"name": "node-1-gpu"},
                     "spec": {"driver": "gpu.example.com", "nodeName": "gpu-node-1", "pool": {"name": "gpu-node-1", "generation": 1,
                              "resourceSliceCount": 1}, "devices": [{"name": "gpu-%d" % i} for i in range(devices)]}})


def recorded_status(name):
    return copy.deepcopy(fixture_response("k8s-fixtures", "objects", name)["status"])


def play_dra(fake, pod_state="running", created=None):
    """Reconciler: claim from template, allocation, binding and kubelet status for the DRA test pod.

    ``pod_state``: running; imagepull; pending (bound, claim allocated, containers never created: the recorded
    pod-dra-pod.bound.json); unschedulable / tainted (the recorded scheduler answers, claim not allocated).
    """

    def reconcile(server):
        for pod in server.objects("v1", "pods"):
            spec = pod["spec"]
            if not spec.get("resourceClaims") or pod.get("status", {}).get("resourceClaimStatuses"):
                continue
            if created is not None:
                created.append(copy.deepcopy(pod))
            ns, name = pod["metadata"]["namespace"], pod["metadata"]["name"]
            claim_name = "%s-accelerator-abcde" % name
            template = server.get_object(RESOURCE, "resourceclaimtemplates", spec["resourceClaims"][0]["resourceClaimTemplateName"], ns)
            claim_statuses = [{"name": "accelerator", "resourceClaimName": claim_name}]
            claim_status = {"allocation": {"devices": {"results": [
                {"request": "accelerator", "driver": "gpu.example.com", "pool": "gpu-node-1", "device": "gpu-0"}]}},
                "reservedFor": [{"resource": "pods", "name": name, "uid": pod["metadata"]["uid"]}]}
            if pod_state in ("unschedulable", "tainted"):
                claim_status = recorded_status("resourceclaim-dra-pod-3-gpus-gpus.unallocated.json")
            server.put_object({
                "apiVersion": RESOURCE, "kind": "ResourceClaim",
                "metadata": {"name": claim_name, "namespace": ns,
                             "ownerReferences": [{"apiVersion": "v1", "kind": "Pod", "name": name, "uid": pod["metadata"]["uid"]}]},
                "spec": template["spec"]["spec"], "status": claim_status,
            })
            if pod_state in ("unschedulable", "tainted"):
                recorded = "pod-dra-pod-3-gpus.unschedulable.json" if pod_state == "unschedulable" else (
                    "pod-dra-pod-3-gpus.unschedulable.later.json")
                status = recorded_status(recorded)
                status["resourceClaimStatuses"] = claim_statuses
                server.patch_object("v1", "pods", name, {"status": status}, ns)
                continue
            server.bind_pod(ns, name, "gpu-node-1")
            status = {"resourceClaimStatuses": claim_statuses, "phase": "Running",
                      "conditions": [{"type": "PodScheduled", "status": "True"}, {"type": "Ready", "status": "True"}]}
            if pod_state == "imagepull":
                status.update(phase="Pending", conditions=[{"type": "PodScheduled", "status": "True"}],
                              containerStatuses=[{"name": "probe", "image": spec["containers"][0]["image"], "state": {"waiting": {
                                  "reason": "ImagePullBackOff", "message": 'Back-off pulling image "busybox"'}}}])
            if pod_state == "pending":
                status = recorded_status("pod-dra-pod.bound.json")
                status["resourceClaimStatuses"] = claim_statuses
            server.patch_object("v1", "pods", name, {"status": status}, ns)
            server.set_pod_log(ns, name, "# env\nNVIDIA_VISIBLE_DEVICES=GPU-0\n# /dev\nnvidia0\n")

    fake.add_reconciler(reconcile)


def dry_runs(fake):
    return [(r.path.rsplit("/", 1)[-1], r.query.get("dryRun")) for r in fake.requests_to("POST", r"/apis/resource.k8s.io/")]


def test_recorded_v134_without_driver_exercises_the_api_by_dry_run(fake, capsys):
    result = run(fake, capsys)
    # the served API accepted v1 objects (server-side dry-run): that exercised it
    assert result["status"] == "passed", result
    assert checks(result)["dra_api_resources"]["status"] == "passed"
    accepts = checks(result)["dra_api_accepts_v1"]
    assert accepts["status"] == "passed" and accepts["kind"] == "exercise"
    assert "DeviceClass, ResourceClaim, ResourceClaimTemplate" in accepts["message"]
    assert dry_runs(fake) == [("deviceclasses", "All"), ("resourceclaims", "All"), ("resourceclaimtemplates", "All")]
    accepted = [e for e in result["evidence"] if e["name"] == "api-accepted-objects"][0]["content"]
    assert [o["kind"] for o in accepted] == ["DeviceClass", "ResourceClaim", "ResourceClaimTemplate"]
    assert accepted[2]["spec"]["spec"]["devices"]["requests"][0]["exactly"]["deviceClassName"].startswith("aic-dra-probe-")
    # nothing was stored
    assert fake.objects(RESOURCE, "deviceclasses") == [] and fake.objects(RESOURCE, "resourceclaims") == []
    allocation = checks(result)["dra_allocation"]
    assert allocation["status"] == "skipped" and "no DeviceClass exists" in allocation["message"]
    table = [e for e in result["evidence"] if e["name"] == "api-resources"][0]["content"]
    assert "resourceslices" in table and "resource.k8s.io/v1" in table
    assert ours_left(fake) == []


def test_dry_run_denied_by_a_policy_webhook_is_an_error(fake, capsys):
    body = {"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure", "reason": "Forbidden", "code": 403,
            "message": 'admission webhook "validate.kyverno.svc-fail" denied the request: resource ResourceClaim blocked'}
    fake.fail("POST", r"/resourceclaims$", status_code=403, body=body)
    result = run(fake, capsys)
    accepts = checks(result)["dra_api_accepts_v1"]
    assert accepts["status"] == "error" and accepts["cause"] == "policy_webhook"
    assert "validate.kyverno.svc-fail" in accepts["message"]
    assert result["status"] == "error"
    assert ours_left(fake) == []


def test_server_dropping_the_v1_request_form_fails(fake, capsys):
    """A server that accepts the kind but prunes the v1 ``exactly`` request did not take a v1 claim."""

    def prune(obj, server, dry_run):
        for request in obj["spec"]["devices"]["requests"]:
            request.pop("exactly", None)

    fake.on_create(RESOURCE, "resourceclaims", prune)
    result = run(fake, capsys)
    accepts = checks(result)["dra_api_accepts_v1"]
    assert accepts["status"] == "failed" and accepts["cause"] == "capability"
    assert "did not keep the v1 request accelerator.exactly.deviceClassName" in accepts["message"]
    assert result["status"] == "failed"


def test_allocation_required_without_driver_fails(fake, capsys):
    result = run(fake, capsys, allocation_test="true")
    assert result["status"] == "failed"
    assert checks(result)["dra_allocation"]["cause"] == "not_installed"
    assert "no DeviceClass exists" in checks(result)["dra_allocation"]["message"]


def test_missing_group_fails_naming_every_resource(fake, capsys):
    fake.remove_group_version(RESOURCE)
    result = run(fake, capsys)
    assert result["status"] == "failed"
    message = checks(result)["dra_api_resources"]["message"]
    for name in ("deviceclasses", "resourceclaims", "resourceclaimtemplates", "resourceslices"):
        assert name in message
    assert checks(result)["dra_allocation"]["status"] == "skipped"


def test_only_v1beta1_served_is_named(fake, capsys):
    from tests.support.fakeapi import SCENARIOS

    SCENARIOS["dra-beta-only"](fake)
    result = run(fake, capsys)
    assert result["status"] == "failed"
    assert "resource.k8s.io/v1beta1" in checks(result)["dra_api_resources"]["message"]


def test_allocation_exercised_with_a_driver(fake, capsys):
    add_driver(fake)
    created = []
    play_dra(fake, created=created)
    result = run(fake, capsys)
    assert result["status"] == "passed", result
    allocation = checks(result)["dra_allocation"]
    assert allocation["status"] == "passed" and allocation["kind"] == "exercise"
    assert "gpu.example.com/gpu-node-1/gpu-0" in allocation["message"]
    assert allocation["message"].endswith("pod dra-probe runs on node gpu-node-1")
    evidence = {e["name"]: e["content"] for e in result["evidence"]}
    assert "NVIDIA_VISIBLE_DEVICES=GPU-0" in evidence["pod-view-of-devices"]
    assert evidence["allocation"]["reservedFor"][0]["resource"] == "pods"
    # it really created a template and a pod that uses it ...
    created_paths = [(r.method, r.path) for r in fake.requests if r.method == "POST" and not r.query.get("dryRun")]
    assert any(p.endswith("/resourceclaimtemplates") for m, p in created_paths)
    assert any(p.endswith("/pods") for m, p in created_paths)
    # ... a restricted pod from the builder, in a namespace that enforces restricted ...
    assert testpods.hardening_problems(created[0]["spec"]) == []
    assert created[0]["spec"]["containers"][0]["image"] == testpods.IMAGES["busybox"]
    namespace = list(fake.requests_to("POST", r"^/api/v1/namespaces$"))[0]
    assert namespace.path == "/api/v1/namespaces"
    # ... and removed everything afterwards
    assert ours_left(fake) == []


def test_test_pod_carries_tolerations_mirror_and_image_override(fake, capsys):
    add_driver(fake)
    created = []
    play_dra(fake, created=created)
    toleration = {"key": "example.com/dedicated", "operator": "Exists", "effect": "NoSchedule"}
    result = run(fake, capsys, tolerations=[toleration], image_registry="mirror.example.com:5000")
    assert result["status"] == "passed", result
    spec = created[0]["spec"]
    assert toleration in spec["tolerations"]
    assert spec["containers"][0]["image"] == "mirror.example.com:5000/e2e-test-images/busybox:1.36.1-1"
    fake.clear_requests()
    created[:] = []
    run(fake, capsys, image="quay.io/example/busybox:1.36", image_registry="mirror.example.com")
    assert created[0]["spec"]["containers"][0]["image"] == "mirror.example.com/example/busybox:1.36"


def test_resource_slices_are_read_page_by_page(fake, capsys):
    """501 slices: the only one with devices sorts last, on the second page of 500."""
    for index in range(500):
        fake.put_object({"apiVersion": RESOURCE, "kind": "ResourceSlice", "metadata": {"name": "a-empty-%03d" % index},
                         "spec": {"driver": "other.example.com", "nodeName": "node-%03d" % index,
                                  "pool": {"name": "p%03d" % index, "generation": 1, "resourceSliceCount": 1}, "devices": []}})
    add_driver(fake)
    play_dra(fake)
    result = run(fake, capsys)
    assert checks(result)["dra_allocation"]["status"] == "passed", checks(result)["dra_allocation"]
    slice_lists = fake.requests_to("GET", r"/resourceslices$")
    assert [r.query.get("continue") is not None for r in slice_lists] == [False, True]
    drivers = [e for e in result["evidence"] if e["name"] == "drivers"][0]["content"]
    assert drivers["resource_slices"] == 501 and drivers["devices_by_driver"]["gpu.example.com"] == 1


def test_test_pod_rejected_by_pod_security_is_an_error(fake, capsys):
    add_driver(fake)
    fake.fail("POST", r"/namespaces/aic-dra-support-[a-z0-9]+/pods$", fixture="403-psa-restricted-create-plain-pod.json")
    result = run(fake, capsys)
    allocation = checks(result)["dra_allocation"]
    assert allocation["status"] == "error" and allocation["cause"] == "pod_security"
    assert allocation["message"].startswith("the DRA test objects were not admitted: Forbidden (403)")
    assert result["status"] == "error"
    assert ours_left(fake) == []


def test_image_pull_problem_is_an_error_not_a_failure_and_cleans_up(fake, capsys):
    add_driver(fake)
    play_dra(fake, pod_state="imagepull")
    result = run(fake, capsys)
    allocation = checks(result)["dra_allocation"]
    assert result["status"] == "error"
    assert allocation["cause"] == "image_pull" and "ImagePullBackOff" in allocation["message"]
    assert "registry registry.k8s.io" in allocation["message"]
    assert ours_left(fake) == []


def test_claim_allocated_but_pod_never_starts_is_an_error_naming_node_and_reason(fake, capsys):
    """The recorded bound pod (no kubelet): allocated claim, pod Pending without container statuses."""
    add_driver(fake)
    play_dra(fake, pod_state="pending")
    result = run(fake, capsys, timeout=2)
    allocation = checks(result)["dra_allocation"]
    assert result["status"] == "error"
    assert allocation["status"] == "error" and allocation["cause"] == "image_pull_timeout"
    assert "on node gpu-node-1 is still creating its containers" in allocation["message"]
    assert "allocated gpu.example.com/gpu-node-1/gpu-0" in allocation["message"]
    assert ours_left(fake) == []


@pytest.mark.parametrize("pod_state, cause, text", [
    ("unschedulable", "no_capacity", "1 cannot allocate all claims"),
    ("tainted", "untolerated_taint", "1 node(s) had untolerated taint(s)"),
])
def test_unschedulable_claim_is_an_error_with_the_scheduler_message(fake, capsys, pod_state, cause, text):
    add_driver(fake)
    play_dra(fake, pod_state=pod_state)
    result = run(fake, capsys)
    allocation = checks(result)["dra_allocation"]
    assert result["status"] == "error", allocation
    assert allocation["status"] == "error" and allocation["cause"] == cause
    assert text in allocation["message"] and "is not allocated yet" in allocation["message"]
    assert ours_left(fake) == []


def test_no_controller_fails_with_the_last_state(fake, capsys):
    """Devices are published but no claim is ever generated or allocated: DRA does not work."""
    add_driver(fake)
    result = run(fake, capsys, timeout=1)
    allocation = checks(result)["dra_allocation"]
    assert result["status"] == "failed"
    assert allocation["cause"] == "capability"
    assert allocation["message"] == "not running after 1s: no ResourceClaim was generated for pod dra-probe"
    assert ours_left(fake) == []


def test_check_mode_creates_nothing(fake, capsys):
    add_driver(fake)
    result = run(fake, capsys, check_mode=True)
    assert checks(result)["dra_allocation"]["status"] == "skipped"
    assert "check mode" in checks(result)["dra_allocation"]["message"]
    assert not [r for r in fake.requests if r.method in ("POST", "PUT", "PATCH", "DELETE")]


def test_check_mode_with_allocation_required_is_skipped_not_passed(fake, capsys):
    add_driver(fake)
    result = run(fake, capsys, check_mode=True, allocation_test="true")
    assert result["status"] == "skipped"
    assert result["notes"][-1].startswith("nothing was exercised")
    assert {c["name"]: c["status"] for c in result["checks"]} == {
        "dra_api_resources": "passed", "dra_api_accepts_v1": "skipped", "dra_allocation": "skipped"}


def test_forbidden_discovery_is_an_error_with_the_server_message(fake, capsys):
    fake.fail("GET", r"^/apis$", fixture="errors/403-nobody-cert-list-crds.json")
    result = run(fake, capsys)
    assert result["status"] == "error"
    assert "Forbidden (403)" in result["checks"][0]["message"] and 'User "nobody"' in result["checks"][0]["message"]


def test_invalid_token_is_an_error(fake, capsys, tmp_path):
    fake.require_token("good")
    kubeconfig = fake.write_kubeconfig(str(tmp_path / "bad"), token="bad")
    result = run(fake, capsys, kubeconfig=kubeconfig)
    assert result["status"] == "error"
    assert "Unauthorized (401)" in result["checks"][0]["message"]


def test_connection_refused_is_an_error(capsys, tmp_path):
    with FakeKubeAPI() as server:
        kubeconfig = server.write_kubeconfig(str(tmp_path / "kubeconfig"))
    result = run_module(dra_support, {"kubeconfig": kubeconfig, "timeout": 1}, capsys)["result"]
    assert result["status"] == "error"
    assert "connection refused" in result["checks"][0]["message"]
