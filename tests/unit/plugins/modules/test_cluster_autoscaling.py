"""cluster_autoscaling over HTTP against the fake API server (recorded v1.34 discovery, nodes and error bodies).

Where a test needs an autoscaler, the fake plays cluster-autoscaler and the Azure
cloud-node-manager: it adds a node with an Azure providerID to the GPU scale set
when the test pod appears, records TriggeredScaleUp, binds and runs the pod, and
removes the node again once the pod is gone.
"""

import copy
import time

import pytest

from ansible_collections.ai_conformance.rke2.plugins.module_utils import testpods
from ansible_collections.ai_conformance.rke2.plugins.modules import cluster_autoscaling
from tests.support.fakeapi import FakeKubeAPI
from tests.support.modrun import checks, run_module
from tests.support.shared import fixture_response
from tests.support.autoscaling_data import GPU_VMSS, TEXT_STATUS, YAML_STATUS, azure_node, cluster_nodes


@pytest.fixture
def fake(tmp_path):
    with FakeKubeAPI() as server:
        server.kubeconfig = server.write_kubeconfig(str(tmp_path / "kubeconfig"))
        yield server


def run(fake, capsys, check_mode=False, **args):
    args.setdefault("kubeconfig", fake.kubeconfig)
    args.setdefault("timeout", 5)
    return run_module(cluster_autoscaling, args, capsys, check_mode=check_mode)["result"]


def evidence(result, name):
    return [e for e in result["evidence"] if e["name"] == name][0]["content"]


def ours_left(fake):
    left = []
    for ns in fake.objects("v1", "namespaces"):
        if ns["metadata"].get("labels", {}).get("app.kubernetes.io/managed-by") == "ai-conformance-rke2":
            left.append(ns["metadata"]["name"])
    return left


def put_node(fake, node):
    node = copy.deepcopy(node)
    for key in ("resourceVersion", "uid", "creationTimestamp", "managedFields"):
        node["metadata"].pop(key, None)
    return fake.put_object(node)


def autoscaler_deployment(available=True):
    dep = copy.deepcopy(fixture_response("k8s-fixtures", "objects", "deployment-gpu-inference.json"))
    dep["metadata"] = {"name": "cluster-autoscaler", "namespace": "kube-system", "labels": {"app.kubernetes.io/instance": "cluster-autoscaler"}}
    dep["spec"]["template"]["spec"]["containers"][0]["image"] = "registry.k8s.io/autoscaling/cluster-autoscaler:v1.34.1"
    if available:
        dep["status"] = {"replicas": 1, "availableReplicas": 1, "readyReplicas": 1, "conditions": [
            {"type": "Available", "status": "True", "reason": "MinimumReplicasAvailable", "message": "Deployment has minimum availability."}]}
    return dep


def azure_cluster(fake, status=YAML_STATUS):
    for node in cluster_nodes():
        put_node(fake, node)
    fake.put_object(autoscaler_deployment())
    fake.put_object({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "cluster-autoscaler-status", "namespace": "kube-system"},
                     "data": {"status": status}})


def play_autoscaler(fake, scale_down=True, refuse=False):
    """cluster-autoscaler + Azure node manager for the scale-test pod."""
    added = "rke2-gpu-vmss000001"

    def reconcile(server):
        pods = [p for p in server.objects("v1", "pods") if p["metadata"]["name"] == "aic-scale-up"]
        for pod in pods:
            ns = pod["metadata"]["namespace"]
            if pod["spec"].get("nodeName"):
                continue
            event = copy.deepcopy(fixture_response("k8s-fixtures", "events", "core-v1-events-node-gpu-node-1.json")["items"][0])
            event.update(apiVersion="v1", kind="Event")  # list items of built-in groups carry neither
            event["metadata"] = {"name": "aic-scale-up.18ea98", "namespace": ns}
            event["involvedObject"] = {"kind": "Pod", "namespace": ns, "name": "aic-scale-up", "apiVersion": "v1"}
            event["source"] = {"component": "cluster-autoscaler"}
            if refuse:
                event.update(reason="NotTriggerScaleUp", count=3,
                             message="pod didn't trigger scale-up: 1 max node group size reached, 1 Insufficient nvidia.com/gpu")
                if not server.objects("v1", "events", namespace=ns):
                    server.put_object(event)
                continue
            event.update(reason="TriggeredScaleUp", message="pod triggered scale-up: [{%s 1->2 (max: 3)}]" % GPU_VMSS)
            server.put_object(event)
            if server.get_object("v1", "nodes", added) is None:
                put_node(server, azure_node(added, GPU_VMSS, 1))
            server.bind_pod(ns, "aic-scale-up", added)
            server.patch_object("v1", "pods", "aic-scale-up", {"status": {"phase": "Running", "conditions": [
                {"type": "PodScheduled", "status": "True"}, {"type": "Ready", "status": "True"}]}}, ns)
        if scale_down and not pods and server.get_object("v1", "nodes", added) is not None:
            server.delete_object("v1", "nodes", added)

    fake.add_reconciler(reconcile)


# --------------------------------------------------------------------------- declared without autoscaler


def test_declared_without_autoscaler_is_not_applicable_with_notes(fake, capsys):
    put_node(fake, fixture_response("k8s-fixtures", "objects", "node-gpu-node-1.final.json"))
    result = run(fake, capsys, provided=False)
    assert result["status"] == "not_applicable"
    assert checks(result)["autoscaler_present"]["status"] == "skipped"
    notes = " ".join(result["notes"])
    assert "faq.md" in notes and "Not Applicable" in notes and "does not provide a cluster autoscaler" in notes
    assert evidence(result, "nodes")[0]["name"] == "gpu-node-1"
    assert ours_left(fake) == []


def test_declared_without_autoscaler_but_one_is_running_is_verified(fake, capsys):
    azure_cluster(fake)
    result = run(fake, capsys, provided=False)
    assert result["status"] == "skipped"  # verified; scaling not exercised
    assert "a cluster-autoscaler was found; it is verified" in " ".join(result["notes"])
    assert checks(result)["accelerator_node_group"]["status"] == "passed"


# --------------------------------------------------------------------------- static checks


def test_cluster_without_autoscaler_fails_with_reasons(fake, capsys):
    put_node(fake, fixture_response("k8s-fixtures", "objects", "node-gpu-node-1.final.json"))
    result = run(fake, capsys)
    assert result["status"] == "failed"
    by_name = checks(result)
    assert by_name["provider_ids"]["status"] == "failed"
    assert "gpu-node-1" in by_name["provider_ids"]["message"]
    assert by_name["autoscaler_deployment"]["status"] == "failed"
    assert by_name["autoscaler_deployment"]["message"] == "no deployment running the cluster-autoscaler image in namespace kube-system"
    assert by_name["accelerator_node_group"]["status"] == "failed"
    assert "kube-system/cluster-autoscaler-status does not exist" in by_name["accelerator_node_group"]["message"]
    assert by_name["scale_up"]["status"] == "skipped"


def test_configured_autoscaler_without_scale_test_is_skipped_not_passed(fake, capsys):
    azure_cluster(fake)
    result = run(fake, capsys)
    by_name = checks(result)
    assert [by_name[n]["status"] for n in ("provider_ids", "autoscaler_deployment", "accelerator_node_group")] == ["passed"] * 3
    assert by_name["accelerator_node_group"]["message"].startswith("node group rke2-gpu-vmss (min 0, max 3, current 1) can scale up")
    assert by_name["scale_up"]["status"] == "skipped" and "costs money" in by_name["scale_up"]["message"]
    assert result["status"] == "skipped"
    assert "cluster-autoscaler-status" not in [e["name"] for e in result["evidence"]]
    assert "rke2-gpu-vmss" in evidence(result, "autoscaler-status")


def test_min_equals_max_equals_desired_fails(fake, capsys):
    azure_cluster(fake, status=TEXT_STATUS)
    result = run(fake, capsys, scale_test=True)
    assert result["status"] == "failed"
    group = checks(result)["accelerator_node_group"]
    assert group["status"] == "failed"
    assert group["message"] == "node group rke2-gpu-vmss has min = max = desired (1): it cannot show scaling"
    assert checks(result)["scale_up"]["status"] == "skipped"
    assert ours_left(fake) == []


def test_unavailable_deployment_and_unreadable_status(fake, capsys):
    azure_cluster(fake, status="hello: world\n")
    fake.put_object(autoscaler_deployment(available=False))
    result = run(fake, capsys)
    assert result["status"] == "failed"
    assert "is not Available (0/1 replicas available, Available=False: Deployment does not have minimum availability." in (
        checks(result)["autoscaler_deployment"]["message"])
    status = checks(result)["accelerator_node_group"]
    assert status["status"] == "error" and "unrecognised cluster-autoscaler status format" in status["message"]


# --------------------------------------------------------------------------- scale test


def test_scale_up_and_down_exercised(fake, capsys):
    azure_cluster(fake)
    play_autoscaler(fake)
    result = run(fake, capsys, scale_test=True, check_scale_down=True, scale_up_timeout=20, scale_down_timeout=20)
    by_name = checks(result)
    assert "scale_up" in by_name, result["checks"]
    assert by_name["scale_up"]["status"] == "passed", by_name["scale_up"]
    assert by_name["scale_up"]["message"] == (
        "cluster-autoscaler scaled up rke2-gpu-vmss 1->2 (max 3); node rke2-gpu-vmss000001 joined and runs the pod "
        "requesting 1 nvidia.com/gpu")
    assert by_name["scale_down"]["status"] == "passed"
    assert result["status"] == "passed"
    before = [row["name"] for row in evidence(result, "nodes-before")]
    after = [row["name"] for row in evidence(result, "nodes-after")]
    assert "rke2-gpu-vmss000001" not in before and "rke2-gpu-vmss000001" in after
    assert evidence(result, "scale-up-events")[0]["reason"] == "TriggeredScaleUp"
    assert [row["name"] for row in evidence(result, "nodes-after-scale-down")] == before
    assert ours_left(fake) == []


def test_scale_test_pod_excludes_current_nodes(fake, capsys):
    azure_cluster(fake)
    seen = []
    fake.on_create("v1", "pods", lambda obj, server, dry_run: seen.append(copy.deepcopy(obj)))
    run(fake, capsys, scale_test=True, scale_up_timeout=1)
    term = seen[0]["spec"]["affinity"]["nodeAffinity"]["requiredDuringSchedulingIgnoredDuringExecution"]["nodeSelectorTerms"][0]
    assert term["matchExpressions"][0]["values"] == ["rke2-cpu-vmss000000", "rke2-gpu-vmss000000"]
    assert seen[0]["spec"]["containers"][0]["resources"]["limits"]["nvidia.com/gpu"] == "1"
    assert seen[0]["metadata"]["labels"]["app.kubernetes.io/managed-by"] == "ai-conformance-rke2"
    # the builder's pod: restricted (the namespace enforces it), the accelerator's taint tolerated, the table's image
    assert testpods.hardening_problems(seen[0]["spec"]) == []
    assert {"key": "nvidia.com/gpu", "operator": "Exists", "effect": "NoSchedule"} in seen[0]["spec"]["tolerations"]
    assert seen[0]["spec"]["containers"][0]["image"] == testpods.IMAGES["busybox"]


def test_no_new_node_within_timeout_fails_in_bounded_time(fake, capsys):
    azure_cluster(fake)
    start = time.monotonic()
    result = run(fake, capsys, scale_test=True, scale_up_timeout=2)
    assert time.monotonic() - start < 15
    scale = checks(result)["scale_up"]
    assert scale["status"] == "failed" and scale["cause"] == "capability"
    assert scale["message"].startswith("no nvidia.com/gpu node joined and ran the pod within 2s (no node joined)")
    assert result["status"] == "failed"
    assert checks(result)["scale_down"]["status"] == "skipped"
    assert ours_left(fake) == []


def test_autoscaler_refusing_to_scale_fails_early_with_its_reason(fake, capsys):
    azure_cluster(fake)
    play_autoscaler(fake, refuse=True)
    start = time.monotonic()
    result = run(fake, capsys, scale_test=True, scale_up_timeout=60)
    assert time.monotonic() - start < 30
    scale = checks(result)["scale_up"]
    assert scale["status"] == "failed"
    assert scale["message"] == ("cluster-autoscaler did not scale up: pod didn't trigger scale-up: 1 max node group size reached, "
                                "1 Insufficient nvidia.com/gpu")
    assert ours_left(fake) == []


def test_scale_down_not_happening_fails(fake, capsys):
    azure_cluster(fake)
    play_autoscaler(fake, scale_down=False)
    result = run(fake, capsys, scale_test=True, check_scale_down=True, scale_up_timeout=20, scale_down_timeout=2)
    assert checks(result)["scale_up"]["status"] == "passed"
    down = checks(result)["scale_down"]
    assert down["status"] == "failed" and "rke2-gpu-vmss000001" in down["message"]
    assert result["status"] == "failed"


def test_check_mode_creates_nothing(fake, capsys):
    azure_cluster(fake)
    result = run(fake, capsys, check_mode=True, scale_test=True)
    assert checks(result)["scale_up"]["status"] == "skipped"
    assert result["status"] == "skipped"
    assert fake.objects("v1", "pods") == []
    assert ours_left(fake) == []


# --------------------------------------------------------------------------- issue 9: the environment is an error


def test_scale_test_pod_rejected_by_quota_is_an_error_not_a_failure(fake, capsys):
    azure_cluster(fake)
    fake.fail("POST", r"/namespaces/aic-cluster-autoscaling-[a-z0-9]+/pods$", fixture="403-quota-exceeded-second-pod.json")
    result = run(fake, capsys, scale_test=True, scale_up_timeout=5)
    scale = checks(result)["scale_up"]
    assert scale["status"] == "error" and scale["cause"] == "resource_quota"
    assert scale["message"].startswith("the scale-test pod was not admitted: ") and "exceeded quota: compute-quota" in scale["message"]
    assert result["status"] == "error"
    assert ours_left(fake) == []


def test_image_not_pullable_on_the_new_node_is_an_error(fake, capsys):
    azure_cluster(fake)
    play_autoscaler(fake)

    def image_pull(server):
        for pod in server.objects("v1", "pods"):
            if pod["spec"].get("nodeName") and not pod["status"].get("containerStatuses"):
                image = pod["spec"]["containers"][0]["image"]
                server.patch_object("v1", "pods", pod["metadata"]["name"], {"status": {"phase": "Pending", "conditions": [
                    {"type": "PodScheduled", "status": "True"}], "containerStatuses": [{"name": "accelerator", "image": image, "state": {
                        "waiting": {"reason": "ErrImagePull", "message": 'failed to pull "%s": not found' % image}}}]}},
                    pod["metadata"]["namespace"])

    fake.add_reconciler(image_pull)
    result = run(fake, capsys, scale_test=True, scale_up_timeout=20, image_registry="mirror.example.com")
    scale = checks(result)["scale_up"]
    assert scale["status"] == "error" and scale["cause"] == "image_pull", scale
    assert "image mirror.example.com/e2e-test-images/busybox:1.36.1-1 (registry mirror.example.com)" in scale["message"]
    assert ours_left(fake) == []


def test_new_node_joined_but_pod_still_creating_at_timeout_is_an_error(fake, capsys):
    azure_cluster(fake)
    play_autoscaler(fake)

    def no_kubelet(server):  # the pod is bound to the new node and stays Pending without container statuses
        for pod in server.objects("v1", "pods"):
            if pod["spec"].get("nodeName") and pod["status"].get("phase") == "Running":
                server.patch_object("v1", "pods", pod["metadata"]["name"], {"status": {"phase": "Pending", "conditions": [
                    {"type": "PodScheduled", "status": "True"}]}}, pod["metadata"]["namespace"])

    fake.add_reconciler(no_kubelet)
    result = run(fake, capsys, scale_test=True, scale_up_timeout=3)
    scale = checks(result)["scale_up"]
    assert scale["status"] == "error" and scale["cause"] == "image_pull_timeout", scale
    assert "node(s) rke2-gpu-vmss000001 joined, but pod aic-scale-up on node rke2-gpu-vmss000001 is still creating" in scale["message"]
    assert ours_left(fake) == []
