"""dra_support over HTTP against the fake API server (recorded v1.34 discovery and error bodies).

The fake plays the DRA controller, the scheduler and the kubelet where a test needs them.
"""

import pytest

from ansible_collections.ai_conformance.rke2.plugins.modules import dra_support
from tests.support.fakeapi import FakeKubeAPI
from tests.support.modrun import checks, run_module

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


def play_dra(fake, pod_state="running"):
    """Reconciler: claim from template, allocation, binding and kubelet status for the DRA test pod."""

    def reconcile(server):
        for pod in server.objects("v1", "pods"):
            spec = pod["spec"]
            if not spec.get("resourceClaims") or pod.get("status", {}).get("resourceClaimStatuses"):
                continue
            ns, name = pod["metadata"]["namespace"], pod["metadata"]["name"]
            claim_name = "%s-accelerator-abcde" % name
            template = server.get_object(RESOURCE, "resourceclaimtemplates", spec["resourceClaims"][0]["resourceClaimTemplateName"], ns)
            server.put_object({
                "apiVersion": RESOURCE, "kind": "ResourceClaim",
                "metadata": {"name": claim_name, "namespace": ns,
                             "ownerReferences": [{"apiVersion": "v1", "kind": "Pod", "name": name, "uid": pod["metadata"]["uid"]}]},
                "spec": template["spec"]["spec"],
                "status": {"allocation": {"devices": {"results": [
                    {"request": "accelerator", "driver": "gpu.example.com", "pool": "gpu-node-1", "device": "gpu-0"}]}},
                    "reservedFor": [{"resource": "pods", "name": name, "uid": pod["metadata"]["uid"]}]},
            })
            if pod_state == "unschedulable":
                server.patch_object("v1", "pods", name, {"status": {"conditions": [{
                    "type": "PodScheduled", "status": "False", "reason": "Unschedulable",
                    "message": "0/1 nodes are available: 1 cannot allocate all claims."}]}}, ns)
                continue
            server.bind_pod(ns, name, "gpu-node-1")
            status = {"resourceClaimStatuses": [{"name": "accelerator", "resourceClaimName": claim_name}], "phase": "Running",
                      "conditions": [{"type": "PodScheduled", "status": "True"}, {"type": "Ready", "status": "True"}]}
            if pod_state == "imagepull":
                status.update(phase="Pending", conditions=[{"type": "PodScheduled", "status": "True"}],
                              containerStatuses=[{"name": "probe", "state": {"waiting": {
                                  "reason": "ImagePullBackOff", "message": 'Back-off pulling image "busybox"'}}}])
            server.patch_object("v1", "pods", name, {"status": status}, ns)
            server.set_pod_log(ns, name, "# env\nNVIDIA_VISIBLE_DEVICES=GPU-0\n# /dev\nnvidia0\n")

    fake.add_reconciler(reconcile)


def test_recorded_v134_without_driver_passes_discovery_and_skips_allocation(fake, capsys):
    result = run(fake, capsys)
    # discovery alone exercises nothing
    assert result["status"] == "skipped" and result["notes"][0].startswith("nothing was exercised")
    assert checks(result)["dra_api_resources"]["status"] == "passed"
    allocation = checks(result)["dra_allocation"]
    assert allocation["status"] == "skipped" and "no DeviceClass exists" in allocation["message"]
    table = [e for e in result["evidence"] if e["name"] == "api-resources"][0]["content"]
    assert "resourceslices" in table and "resource.k8s.io/v1" in table
    assert ours_left(fake) == []


def test_allocation_required_without_driver_fails(fake, capsys):
    result = run(fake, capsys, allocation_test="true")
    assert result["status"] == "failed"
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
    play_dra(fake)
    result = run(fake, capsys)
    assert result["status"] == "passed", result
    allocation = checks(result)["dra_allocation"]
    assert allocation["status"] == "passed"
    assert "gpu.example.com/gpu-node-1/gpu-0" in allocation["message"]
    evidence = {e["name"]: e["content"] for e in result["evidence"]}
    assert "NVIDIA_VISIBLE_DEVICES=GPU-0" in evidence["pod-view-of-devices"]
    assert evidence["allocation"]["reservedFor"][0]["resource"] == "pods"
    # it really created a template and a pod that uses it ...
    created = [(r.method, r.path) for r in fake.requests if r.method == "POST"]
    assert any(p.endswith("/resourceclaimtemplates") for m, p in created)
    assert any(p.endswith("/pods") for m, p in created)
    # ... and removed everything afterwards
    assert ours_left(fake) == []


def test_image_pull_problem_is_an_error_not_a_failure_and_cleans_up(fake, capsys):
    add_driver(fake)
    play_dra(fake, pod_state="imagepull")
    result = run(fake, capsys)
    assert result["status"] == "error"
    assert "ImagePullBackOff" in checks(result)["dra_allocation"]["message"]
    assert ours_left(fake) == []


def test_unschedulable_claim_fails_with_the_scheduler_message(fake, capsys):
    add_driver(fake)
    play_dra(fake, pod_state="unschedulable")
    result = run(fake, capsys)
    assert result["status"] == "failed"
    assert "cannot allocate all claims" in checks(result)["dra_allocation"]["message"]
    assert ours_left(fake) == []


def test_no_controller_times_out_with_the_last_state(fake, capsys):
    add_driver(fake)
    result = run(fake, capsys, timeout=1)
    allocation = checks(result)["dra_allocation"]
    assert result["status"] == "failed"
    assert "not reached after 1s" in allocation["message"] and "no ResourceClaim was generated" in allocation["message"]
    assert ours_left(fake) == []


def test_check_mode_creates_nothing(fake, capsys):
    add_driver(fake)
    result = run(fake, capsys, check_mode=True)
    assert checks(result)["dra_allocation"]["status"] == "skipped"
    assert "check mode" in checks(result)["dra_allocation"]["message"]
    assert not [r for r in fake.requests if r.method in ("POST", "PUT", "PATCH", "DELETE")]


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
