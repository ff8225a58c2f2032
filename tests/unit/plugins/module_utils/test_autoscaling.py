"""cluster_autoscaling evaluation on the recorded node and pod shapes and the
cluster-autoscaler status formats (YAML of CA >= 1.30, text of older CA).

Azure nodes are the recorded ``gpu-node-1`` (a real v1.34 Node object) with the
spec.providerID the Azure cloud-node-manager sets added, since the recording
cluster had no cloud provider; that is the only field changed.
"""

import copy

import pytest

from ansible_collections.ai_conformance.rke2.plugins.module_utils import autoscaling, policy, testpods
from tests.support.autoscaling_data import GPU_VMSS, SUB, TEXT_STATUS, YAML_STATUS, azure_node, cluster_nodes, recorded_node
from tests.support.shared import fixture_response

# --------------------------------------------------------------------------- provider IDs


def test_recorded_node_without_cloud_provider_has_no_provider_id():
    outcome = autoscaling.provider_ids([recorded_node()])
    assert not outcome["ok"]
    assert outcome["missing"] == ["gpu-node-1"]
    assert "cloud controller manager" in outcome["message"]
    assert "cloud-provider=external" in outcome["message"]


def test_every_azure_node_has_a_provider_id():
    outcome = autoscaling.provider_ids(cluster_nodes())
    assert outcome["ok"]
    assert outcome["message"] == "all 2 nodes have a azure:// providerID"
    assert [r["name"] for r in outcome["nodes"]] == ["rke2-cpu-vmss000000", "rke2-gpu-vmss000000"]


def test_rke2_embedded_cloud_provider_ids_are_not_azure():
    # RKE2's own cloud controller sets rke2://<node>; the Azure CCM is not in charge of those nodes
    nodes = cluster_nodes()
    nodes[0]["spec"]["providerID"] = "rke2://rke2-cpu-vmss000000"
    outcome = autoscaling.provider_ids(nodes)
    assert not outcome["ok"]
    assert outcome["foreign"] == ["rke2-cpu-vmss000000"]
    assert outcome["missing"] == []


def test_no_nodes_is_not_ok():
    assert not autoscaling.provider_ids([])["ok"]


def test_azure_scale_set_from_provider_id():
    assert autoscaling.azure_scale_set(cluster_nodes()[1]["spec"]["providerID"]) == GPU_VMSS
    availability_set_vm = SUB + "/virtualMachines/rke2-server-0"
    assert autoscaling.azure_scale_set(availability_set_vm) is None
    assert autoscaling.azure_scale_set("") is None


def test_accelerator_from_recorded_capacity_and_labels():
    node = recorded_node()
    assert autoscaling.accelerator_count(node, "nvidia.com/gpu") == 2
    assert autoscaling.has_accelerator(node, "nvidia.com/gpu")
    cpu = cluster_nodes()[0]
    assert autoscaling.accelerator_count(cpu, "nvidia.com/gpu") == 0
    assert not autoscaling.has_accelerator(cpu, "nvidia.com/gpu")
    # a GPU node whose device plugin is not up yet is recognised by its label
    labelled = copy.deepcopy(recorded_node())
    labelled["status"]["capacity"].pop("nvidia.com/gpu")
    assert not autoscaling.has_accelerator(labelled, "nvidia.com/gpu")
    assert autoscaling.has_accelerator(labelled, "nvidia.com/gpu", {"nvidia.com/gpu.present": "true"})
    assert autoscaling.quantity_count("1k") == 0


def test_node_rows_are_evidence():
    rows = autoscaling.node_rows(cluster_nodes(), "nvidia.com/gpu")
    assert rows[1] == {"name": "rke2-gpu-vmss000000", "providerID": cluster_nodes()[1]["spec"]["providerID"],
                       "scaleSet": GPU_VMSS, "nvidia.com/gpu": 2, "ready": True}


# --------------------------------------------------------------------------- deployment


def test_recorded_unavailable_deployment():
    dep = fixture_response("k8s-fixtures", "objects", "deployment-gpu-inference.json")
    ok, message = autoscaling.deployment_available(dep)
    assert not ok
    assert "gpu-inference is not Available (0/1" in message
    assert "Deployment does not have minimum availability." in message


def test_available_autoscaler_deployment_found_by_image():
    dep = copy.deepcopy(fixture_response("k8s-fixtures", "objects", "deployment-gpu-inference.json"))
    dep["metadata"]["name"] = "cluster-autoscaler-azure-cluster-autoscaler"
    dep["spec"]["template"]["spec"]["containers"][0]["image"] = "registry.k8s.io/autoscaling/cluster-autoscaler:v1.34.3"
    dep["status"] = {"availableReplicas": 1, "replicas": 1,
                     "conditions": [{"type": "Available", "status": "True", "reason": "MinimumReplicasAvailable"}]}
    other = fixture_response("k8s-fixtures", "objects", "deployment-gpu-inference.json")
    assert autoscaling.find_autoscaler_deployments([other, dep]) == [dep]
    assert autoscaling.find_autoscaler_deployments([other, dep], name="gpu-inference") == [other]
    assert autoscaling.find_autoscaler_deployments([other]) == []
    ok, message = autoscaling.deployment_available(dep)
    assert ok and message == "deployment cluster-autoscaler-azure-cluster-autoscaler is Available (1/1 replicas available)"


# --------------------------------------------------------------------------- status ConfigMap


def test_parse_yaml_status():
    status = autoscaling.parse_status(YAML_STATUS)
    assert status["format"] == "yaml"
    assert status["autoscaler_status"] == "Running"
    assert status["cluster_wide"] == {"health": "Healthy", "scale_up": "NoActivity", "scale_down": "NoCandidates"}
    gpu = status["node_groups"][1]
    assert gpu["name"] == GPU_VMSS
    assert (gpu["min"], gpu["max"], gpu["target"], gpu["ready"], gpu["registered"]) == (0, 3, 1, 1, 1)
    assert gpu["scale_up"] == "Backoff"
    assert gpu["backoff"].startswith("QUOTA_EXCEEDED: Operation could not be completed")


def test_parse_upstream_yaml_example():
    # the example document of kubernetes/autoscaler clusterstate/utils/status_test.yaml
    text = (
        'time: "2023-11-24 04:28:19.546750398 +0000 UTC"\nmessage: "TEST_MSG"\nautoscalerStatus: "Running"\n'
        'clusterWide:\n  health:\n    status: "Healthy"\nnodeGroups:\n  -\n    name: "sample-node-group"\n'
        '    health:\n      status: "Healthy"\n      nodeCounts:\n        registered:\n          total: 11\n'
        '          ready: 4\n      cloudProviderTarget: 8\n      minSize: 2\n      maxSize: 12\n'
        '    scaleUp:\n      status: "Backoff"\n      backoffInfo:\n        errorCode: "QUOTA_EXCEEDED"\n'
    )
    group = autoscaling.parse_status(text)["node_groups"][0]
    assert (group["name"], group["min"], group["max"], group["target"], group["ready"]) == ("sample-node-group", 2, 12, 8, 4)
    assert group["backoff"] == "QUOTA_EXCEEDED"


def test_parse_text_status():
    status = autoscaling.parse_status(TEXT_STATUS)
    assert status["format"] == "text"
    assert status["time"] == "2026-11-23 06:40:12.123456789 +0000 UTC"
    assert status["cluster_wide"] == {"health": "Healthy", "scale_up": "NoActivity", "scale_down": "NoCandidates"}
    assert status["node_groups"] == [{
        "name": GPU_VMSS, "health": "Healthy", "ready": 1, "registered": 1, "target": 1, "min": 1, "max": 1,
        "scale_up": "NoActivity", "scale_down": "NoCandidates", "backoff": None}]


def test_parse_initializing_and_garbage():
    assert autoscaling.parse_status(
        "Cluster-autoscaler status at 2026-11-23 06:40:12 +0000 UTC:\nInitializing")["autoscaler_status"] == "Initializing"
    with pytest.raises(ValueError, match="no status text"):
        autoscaling.parse_status("")
    with pytest.raises(ValueError, match="unrecognised"):
        autoscaling.parse_status("hello: world\n")


def test_status_text_of_a_configmap():
    cm = copy.deepcopy(fixture_response("k8s-fixtures", "objects", "configmap-cm-conflict.create.json"))
    assert autoscaling.status_text(cm) == ""
    cm["data"] = {"status": YAML_STATUS}
    assert autoscaling.status_text(cm) == YAML_STATUS
    assert autoscaling.status_text(None) == ""


# --------------------------------------------------------------------------- node groups


def groups_of(text, nodes=None):
    return autoscaling.match_node_groups(autoscaling.parse_status(text)["node_groups"],
                                         cluster_nodes() if nodes is None else nodes, "nvidia.com/gpu")


def test_gpu_node_group_found_by_its_nodes():
    matched = groups_of(YAML_STATUS)
    assert [g["accelerator"] for g in matched] == [False, True]
    assert matched[1]["accelerator_nodes"] == ["rke2-gpu-vmss000000"]
    ok, message, observed = autoscaling.evaluate_node_groups(matched, "nvidia.com/gpu")
    assert ok, message
    assert message == ("node group rke2-gpu-vmss (min 0, max 3, current 1) can scale up; "
                       "its nodes rke2-gpu-vmss000000 carry nvidia.com/gpu")
    assert observed[1]["backoff"].startswith("QUOTA_EXCEEDED")


def test_scale_set_names_match_case_insensitively():
    nodes = cluster_nodes()
    nodes[1]["spec"]["providerID"] = nodes[1]["spec"]["providerID"].replace(GPU_VMSS, GPU_VMSS.upper())
    assert groups_of(YAML_STATUS, nodes)[1]["accelerator_nodes"] == ["rke2-gpu-vmss000000"]


def test_min_equals_max_equals_desired_cannot_show_scaling():
    ok, message, dummy = autoscaling.evaluate_node_groups(groups_of(TEXT_STATUS), "nvidia.com/gpu")
    assert not ok
    assert message == "node group rke2-gpu-vmss has min = max = desired (1): it cannot show scaling"


def test_group_at_its_maximum_cannot_scale_up():
    text = YAML_STATUS.replace("cloudProviderTarget: 1\n    minSize: 0\n    maxSize: 3", "cloudProviderTarget: 3\n    minSize: 0\n    maxSize: 3")
    ok, message, dummy = autoscaling.evaluate_node_groups(groups_of(text), "nvidia.com/gpu")
    assert not ok
    assert message == "node group rke2-gpu-vmss is at its maximum size (3 of 3): it cannot scale up"


def test_only_cpu_groups():
    ok, message, dummy = autoscaling.evaluate_node_groups(groups_of(YAML_STATUS, [cluster_nodes()[0]]), "nvidia.com/gpu")
    assert not ok
    assert message.startswith("no node group of the cluster-autoscaler has nodes with nvidia.com/gpu")
    assert "rke2-gpu-vmss" in message  # named as a group without nodes to look at


def test_named_group_scaled_to_zero_is_taken_as_declared():
    matched = groups_of(YAML_STATUS, [cluster_nodes()[0]])
    ok, message, dummy = autoscaling.evaluate_node_groups(matched, "nvidia.com/gpu", node_group=GPU_VMSS)
    assert ok
    assert message.endswith("declared to carry nvidia.com/gpu (no node to look at now)")


def test_named_group_missing_or_without_gpus():
    ok, message, dummy = autoscaling.evaluate_node_groups(groups_of(YAML_STATUS), "nvidia.com/gpu", node_group="other")
    assert not ok and message == "node group other is not in the cluster-autoscaler status (it lists rke2-cpu-vmss, rke2-gpu-vmss)"
    ok, message, dummy = autoscaling.evaluate_node_groups(groups_of(YAML_STATUS), "nvidia.com/gpu", node_group="rke2-cpu-vmss")
    assert not ok and message == "node group rke2-cpu-vmss has nodes (rke2-cpu-vmss000000) but none with nvidia.com/gpu capacity"


def test_no_node_groups():
    ok, message, observed = autoscaling.evaluate_node_groups([], "nvidia.com/gpu")
    assert not ok and observed == [] and "lists no node groups" in message


def test_not_applicable_notes_cite_the_faq_and_the_checklist():
    notes = " ".join(autoscaling.NOT_APPLICABLE_NOTES)
    assert "faq.md" in notes and "Why are some requirements conditional?" in notes
    assert "If the platform provides a cluster autoscaler" in notes
    assert "does not provide a cluster autoscaler" in notes


# --------------------------------------------------------------------------- events and the scale-up test


def scale_up_event(pod, message, reason="TriggeredScaleUp", time="2026-11-23T06:41:00Z"):
    # core/v1 event shape of the recorded controller events (count/first/lastTimestamp set)
    event = copy.deepcopy(fixture_response("k8s-fixtures", "events", "core-v1-events-node-gpu-node-1.json")["items"][0])
    event["involvedObject"] = {"kind": "Pod", "namespace": pod["metadata"]["namespace"], "name": pod["metadata"]["name"],
                               "uid": pod["metadata"].get("uid"), "apiVersion": "v1"}
    event.update({"reason": reason, "message": message, "source": {"component": "cluster-autoscaler"},
                  "reportingComponent": "cluster-autoscaler", "lastTimestamp": time, "firstTimestamp": time})
    return event


def test_parse_scale_up_message():
    message = "pod triggered scale-up: [{rke2-gpu-vmss 1->2 (max: 3)} {rke2-gpu-b 0->1 (max: 2)}]"
    assert autoscaling.parse_scale_up_message(message) == [
        {"group": "rke2-gpu-vmss", "current": 1, "new": 2, "max": 3},
        {"group": "rke2-gpu-b", "current": 0, "new": 1, "max": 2}]
    assert autoscaling.parse_scale_up_message("nothing") == []


def test_scale_up_events_of_a_pod_ignore_others():
    pod = fixture_response("k8s-fixtures", "objects", "pod-gpu-pod-3.unschedulable.json")
    recorded = fixture_response("k8s-fixtures", "events", "core-v1-events-ai-fixtures.json")["items"]
    events = recorded + [scale_up_event(pod, "pod triggered scale-up: [{rke2-gpu-vmss 1->2 (max: 3)}]")]
    found = autoscaling.scale_up_events(events, "gpu-pod-3")
    assert [e["reason"] for e in found] == ["TriggeredScaleUp"]
    assert found[0]["groups"][0]["group"] == "rke2-gpu-vmss"
    assert autoscaling.scale_up_events(recorded) == []


def test_scale_up_state_waiting_then_done():
    pending = fixture_response("k8s-fixtures", "objects", "pod-gpu-pod-3.unschedulable.json")
    before = ["rke2-cpu-vmss000000", "rke2-gpu-vmss000000"]
    event = scale_up_event(pending, "pod triggered scale-up: [{rke2-gpu-vmss 1->2 (max: 3)}]")
    state, info = autoscaling.scale_up_state(before, pending, cluster_nodes(), [event], "nvidia.com/gpu")
    assert state == "waiting"
    assert info["triggered"][0]["groups"] == [{"group": "rke2-gpu-vmss", "current": 1, "new": 2, "max": 3}]

    new_node = azure_node("rke2-gpu-vmss000001", GPU_VMSS, 1)
    running = copy.deepcopy(fixture_response("k8s-fixtures", "objects", "pod-gpu-pod-1.scheduled.json"))
    running["metadata"]["name"] = "gpu-pod-3"
    running["spec"]["nodeName"] = "rke2-gpu-vmss000001"
    running["status"]["phase"] = "Running"
    state, info = autoscaling.scale_up_state(before, running, cluster_nodes() + [new_node], [event], "nvidia.com/gpu")
    assert state == "done"
    assert info["new_nodes"][0]["name"] == "rke2-gpu-vmss000001"
    assert info["new_nodes"][0]["scaleSet"] == GPU_VMSS


def test_scale_up_state_fit_existing_and_rejected():
    scheduled = fixture_response("k8s-fixtures", "objects", "pod-gpu-pod-1.scheduled.json")
    state, dummy = autoscaling.scale_up_state(["gpu-node-1"], scheduled, [recorded_node()], [], "nvidia.com/gpu")
    assert state == "fit_existing"
    pending = fixture_response("k8s-fixtures", "objects", "pod-gpu-pod-3.unschedulable.json")
    refused = scale_up_event(pending, "pod didn't trigger scale-up: 1 max node group size reached", reason="NotTriggerScaleUp")
    state, dummy = autoscaling.scale_up_state(["gpu-node-1"], pending, [recorded_node()], [refused], "nvidia.com/gpu")
    assert state == "waiting"  # once may be a passing state of the autoscaler
    refused["count"] = 3
    state, info = autoscaling.scale_up_state(["gpu-node-1"], pending, [recorded_node()], [refused], "nvidia.com/gpu")
    assert state == "rejected"
    assert info["not_triggered"][0]["message"].endswith("max node group size reached")


def test_scale_down_state():
    assert autoscaling.scale_down_state(["rke2-gpu-vmss000001"], cluster_nodes()) == (True, [])
    nodes = cluster_nodes() + [azure_node("rke2-gpu-vmss000001", GPU_VMSS, 1)]
    assert autoscaling.scale_down_state(["rke2-gpu-vmss000001"], nodes) == (False, ["rke2-gpu-vmss000001"])


def test_scale_test_pod_cannot_land_on_current_nodes():
    toleration = {"key": "example.com/dedicated", "operator": "Exists", "effect": "NoSchedule"}
    builder = testpods.PodBuilder({"tolerations": [toleration], "image_registry": "mirror.example.com"})
    pod = autoscaling.render_scale_test_pod(builder, "scale-probe", "aic-cluster-autoscaling-abcde", "nvidia.com/gpu", 2,
                                            ["b", "a"], {"app.kubernetes.io/managed-by": "ai-conformance-rke2"})
    term = pod["spec"]["affinity"]["nodeAffinity"]["requiredDuringSchedulingIgnoredDuringExecution"]["nodeSelectorTerms"][0]
    assert term["matchExpressions"] == [{"key": "kubernetes.io/hostname", "operator": "NotIn", "values": ["a", "b"]}]
    resources = pod["spec"]["containers"][0]["resources"]
    assert resources["limits"]["nvidia.com/gpu"] == resources["requests"]["nvidia.com/gpu"] == "2"
    assert pod["metadata"]["labels"] == {"app.kubernetes.io/managed-by": "ai-conformance-rke2"}
    # the builder's pod: restricted, requests/limits, the user's tolerations plus the accelerator's own taint, mirrored image
    assert testpods.hardening_problems(pod["spec"]) == []
    assert pod["spec"]["tolerations"] == [toleration, {"key": "nvidia.com/gpu", "operator": "Exists", "effect": "NoSchedule"}]
    assert pod["spec"]["containers"][0]["image"] == "mirror.example.com/e2e-test-images/busybox:1.36.1-1"
    assert "affinity" not in autoscaling.render_scale_test_pod(testpods.PodBuilder(), "p", "n", "nvidia.com/gpu", 1, [], {})["spec"]


def _scale_pod(**status):
    return {"metadata": {"name": "aic-scale-up"}, "spec": {"nodeName": status.pop("node", None), "containers": [
        {"name": "accelerator", "image": testpods.IMAGES["busybox"]}]}, "status": dict({"phase": "Pending"}, **status)}


def test_timeout_without_a_new_node_is_the_capability():
    assert autoscaling.timeout_verdict(_scale_pod(), []) == ("capability", "no node joined")


def test_timeout_with_a_new_node_that_does_not_run_the_pod_is_the_environment():
    # bound to the new node, never got its containers (as the recorded bound pods without kubelet)
    bound = copy.deepcopy(fixture_response("k8s-fixtures", "objects", "pod-gpu-with-toleration.bound.json"))
    cause, message = autoscaling.timeout_verdict(bound, ["gpu-node-2"])
    assert cause == "image_pull_timeout" and policy.status_for(cause) == "error"
    assert message.startswith("node(s) gpu-node-2 joined, but pod gpu-with-toleration on node gpu-node-2 is still creating")
    # the new node carries a taint the pod does not tolerate (recorded scheduler message)
    tainted = fixture_response("k8s-fixtures", "objects", "pod-gpu-no-toleration.unschedulable.json")
    assert autoscaling.timeout_verdict(tainted, ["gpu-node-2"])[0] == "untolerated_taint"
    # nothing explains it
    running = _scale_pod(node="gpu-node-2", phase="Running")
    assert autoscaling.timeout_verdict(running, ["gpu-node-2"]) == (
        "timeout", "node(s) gpu-node-2 joined, but the pod is still Running on gpu-node-2")
