"""Pure evaluation of gang_scheduling: capacity, plan, gang verdicts, hold reasons, detection.

Node and pod shapes come from ../shared/k8s-fixtures (a real v1.34.9 apiserver).
PodGroup and Workload status shapes are built from the upstream Go types, cited
at each helper, because no Volcano/Kueue controller ran when the fixtures were
recorded.
"""

import copy
import itertools
import random

import pytest

from ansible_collections.ai_conformance.rke2.plugins.module_utils import gang, testpods
from tests.support.shared import fixture_response


def node(name="gpu-node-1", variant="before-binding"):
    obj = copy.deepcopy(fixture_response("k8s-fixtures", "objects", "node-gpu-node-1.%s.json" % variant))
    obj["metadata"]["name"] = name
    return obj


def pods_on_node():
    return copy.deepcopy(fixture_response("k8s-fixtures", "objects", "pods-on-gpu-node-1.list.json")["items"])


def gpu_pod(name, gpus, node_name="gpu-node-1", phase="Running"):
    pod = copy.deepcopy(pods_on_node()[0])
    pod["metadata"]["name"] = name
    pod["spec"]["nodeName"] = node_name
    pod["spec"]["containers"][0]["resources"] = {"limits": {gang.GPU_RESOURCE: str(gpus)}, "requests": {gang.GPU_RESOURCE: str(gpus)}}
    pod["status"]["phase"] = phase
    return pod


def with_gpus(obj, count):
    obj["status"]["allocatable"][gang.GPU_RESOURCE] = str(count)
    obj["status"]["capacity"][gang.GPU_RESOURCE] = str(count)
    return obj


# --------------------------------------------------------------------------- quantities


def test_quantities_use_the_kubernetes_parser():
    assert gang.to_units("cpu", "1500m") == 1500
    assert gang.to_units("cpu", "16") == 16000
    assert gang.to_units("cpu", 0.25) == 250
    assert gang.to_units(gang.GPU_RESOURCE, "2") == 2
    assert gang.to_units(gang.GPU_RESOURCE, 1) == 1
    assert gang.to_units("memory", "128Gi") == 128 * 2 ** 30
    assert gang.to_units("cpu", None) == 0
    # requests round up, capacities down: free capacity is never overstated
    assert gang.to_units("cpu", "0.0001") == 1
    assert gang.allocatable({"status": {"allocatable": {"cpu": "1500500u"}}}, "cpu") == 1500
    with pytest.raises(ValueError):
        gang.to_units("cpu", "lots")


def test_format_units():
    assert gang.format_units("cpu", 2000) == "2"
    assert gang.format_units("cpu", 2200) == "2200m"
    assert gang.format_units(gang.GPU_RESOURCE, 3) == "3"
    assert gang.format_units("memory", 3 * 2 ** 30) == "3Gi"
    assert gang.format_units("memory", 512 * 2 ** 20) == "512Mi"
    assert gang.format_units("memory", 1000) == "1000"


# --------------------------------------------------------------------------- pod requests


def test_recorded_gpu_pods_request_one_gpu_each():
    pods = pods_on_node()
    assert [gang.pod_request(p, gang.GPU_RESOURCE) for p in pods] == [1, 1]
    assert [gang.pod_request(p, "cpu") for p in pods] == [0, 0]


def test_limit_only_container_counts_its_limit():
    pod = {"spec": {"containers": [{"resources": {"limits": {gang.GPU_RESOURCE: 2}}}]}}
    assert gang.pod_request(pod, gang.GPU_RESOURCE) == 2


def test_init_containers_take_the_max_not_the_sum():
    pod = {"spec": {
        "initContainers": [{"resources": {"requests": {"cpu": "3"}}}, {"resources": {"requests": {"cpu": "1"}}}],
        "containers": [{"resources": {"requests": {"cpu": "500m"}}}, {"resources": {"requests": {"cpu": "1"}}}],
    }}
    assert gang.pod_request(pod, "cpu") == 3000
    pod["spec"]["initContainers"][0]["resources"]["requests"]["cpu"] = "1"
    assert gang.pod_request(pod, "cpu") == 1500


def test_sidecar_init_containers_add_to_the_app_containers():
    pod = {"spec": {
        "initContainers": [
            {"restartPolicy": "Always", "resources": {"requests": {"cpu": "200m"}}},
            {"resources": {"requests": {"cpu": "1"}}},
        ],
        "containers": [{"resources": {"requests": {"cpu": "500m"}}}],
    }}
    # app 500m + sidecar 200m = 700m; the later init container runs beside the sidecar: 1200m
    assert gang.pod_request(pod, "cpu") == 1200


def test_overhead_and_pod_level_requests():
    pod = {"spec": {"containers": [{"resources": {"requests": {"cpu": "1"}}}], "overhead": {"cpu": "250m"}}}
    assert gang.pod_request(pod, "cpu") == 1250
    pod["spec"]["resources"] = {"requests": {"cpu": "2"}}
    assert gang.pod_request(pod, "cpu") == 2250


# --------------------------------------------------------------------------- nodes and capacity


def test_recorded_node_after_binding_has_no_free_gpu_and_names_the_consumers():
    cap = gang.cluster_capacity([node(variant="after-binding")], {"gpu-node-1": pods_on_node()}, gang.GPU_RESOURCE)
    assert cap["free_units"] == 0
    assert cap["nodes"][0]["allocatable"] == "2" and cap["nodes"][0]["requested"] == "2"
    reason = gang.zero_capacity_reason(cap)
    assert "no free nvidia.com/gpu" in reason
    assert "ai-fixtures/gpu-pod-1" in reason and "ai-fixtures/gpu-pod-2" in reason
    assert "resource: cpu" in reason
    with pytest.raises(gang.PlanError, match="no free nvidia.com/gpu"):
        gang.plan_jobs(cap)


def test_terminated_pods_free_their_gpus():
    pods = pods_on_node()
    pods[0]["status"]["phase"] = "Succeeded"
    pods[1]["status"]["phase"] = "Failed"
    cap = gang.cluster_capacity([node()], {"gpu-node-1": pods}, gang.GPU_RESOURCE)
    assert cap["free_units"] == 2


def test_pods_of_other_nodes_in_the_answer_are_ignored():
    pods = pods_on_node()
    pods[0]["spec"]["nodeName"] = "elsewhere"
    cap = gang.cluster_capacity([node()], {"gpu-node-1": pods}, gang.GPU_RESOURCE)
    assert cap["free_units"] == 1


def test_multiple_resources_are_accounted_separately():
    pods = copy.deepcopy(fixture_response("k8s-fixtures", "objects", "pods-ai-fixtures.list.final.json")["items"])
    bound = [p for p in pods if p["spec"].get("nodeName") == "gpu-node-1"]
    assert len(bound) == 3  # two GPU pods and the cpu-only Deployment pod
    gpu = gang.cluster_capacity([node()], {"gpu-node-1": bound}, gang.GPU_RESOURCE)
    cpu = gang.cluster_capacity([node()], {"gpu-node-1": bound}, "cpu")
    assert gpu["free_units"] == 0
    assert cpu["free_units"] == 16000 - 100
    assert cpu["free"] == "15900m"


def test_recorded_new_node_with_not_ready_taint_is_excluded():
    created = node(variant="create")
    assert created["spec"]["taints"][0]["key"] == "node.kubernetes.io/not-ready"
    candidates, excluded = gang.candidate_nodes([created], gang.GPU_RESOURCE, testpods.PodBuilder().tolerations_for([gang.GPU_RESOURCE]))
    assert candidates == []
    assert "node.kubernetes.io/not-ready:NoSchedule not tolerated" in excluded[0]["reason"]


def test_cordoned_not_ready_and_selector_mismatch_are_excluded():
    cordoned = node("cordoned")
    cordoned["spec"]["unschedulable"] = True
    not_ready = node("not-ready")
    not_ready["status"]["conditions"][0].update(status="False", reason="KubeletNotReady")
    cpu_only = node("cpu-only")
    del cpu_only["status"]["allocatable"][gang.GPU_RESOURCE]
    good = node("good")
    cap = gang.cluster_capacity([cordoned, not_ready, cpu_only, good], {}, gang.GPU_RESOURCE)
    reasons = dict((e["node"], e["reason"]) for e in cap["excluded"])
    assert reasons == {
        "cordoned": "cordoned (spec.unschedulable)",
        "not-ready": "not Ready (KubeletNotReady)",
        "cpu-only": "does not advertise nvidia.com/gpu",
    }
    assert [r["node"] for r in cap["nodes"]] == ["good"] and cap["free_units"] == 2
    selected = gang.cluster_capacity([good], {}, gang.GPU_RESOURCE, node_selector={"pool": "gpu"})
    assert selected["nodes"] == [] and "pool=gpu" in selected["excluded"][0]["reason"]
    assert "no schedulable node offers nvidia.com/gpu" in gang.zero_capacity_reason(selected)


def test_taints_and_tolerations():
    tainted = node("tainted")
    tainted["spec"]["taints"] = [{"key": "nvidia.com/gpu", "value": "present", "effect": "NoSchedule"}]
    prefer = node("prefer")
    prefer["spec"]["taints"] = [{"key": "spot", "effect": "PreferNoSchedule"}]
    dedicated = node("dedicated")
    dedicated["spec"]["taints"] = [{"key": "dedicated", "value": "ml", "effect": "NoExecute"}]
    # the GPU taint is tolerated by the toleration the test pods always carry for their extended resource
    tolerations = testpods.PodBuilder().tolerations_for([gang.GPU_RESOURCE])
    candidates, excluded = gang.candidate_nodes([tainted, prefer, dedicated], gang.GPU_RESOURCE, tolerations)
    assert sorted(n["metadata"]["name"] for n in candidates) == ["prefer", "tainted"]
    assert excluded == [{"node": "dedicated", "reason": "taint dedicated=ml:NoExecute not tolerated by the test pods"}]
    # a cpu gang carries no such toleration
    assert gang.untolerated_taints(tainted, testpods.PodBuilder().tolerations_for(["cpu"])) == tainted["spec"]["taints"]
    # user tolerations: Equal needs the value, Exists does not, an empty key with Exists matches all
    taint = dedicated["spec"]["taints"][0]
    assert gang.tolerates({"key": "dedicated", "operator": "Equal", "value": "ml", "effect": "NoExecute"}, taint)
    assert not gang.tolerates({"key": "dedicated", "operator": "Equal", "value": "web"}, taint)
    assert gang.tolerates({"key": "dedicated", "operator": "Exists"}, taint)
    assert not gang.tolerates({"key": "dedicated", "operator": "Exists", "effect": "NoSchedule"}, taint)
    assert gang.tolerates({"operator": "Exists"}, taint)


def test_choose_resource():
    assert gang.choose_resource([node()])[0] == gang.GPU_RESOURCE
    plain = node("plain")
    del plain["status"]["allocatable"][gang.GPU_RESOURCE]
    assert gang.choose_resource([plain])[0] == "cpu"
    assert gang.choose_resource([plain, node()])[0] == gang.GPU_RESOURCE
    assert gang.choose_resource([node()], "cpu") == ("cpu", "resource cpu chosen by the user")


# --------------------------------------------------------------------------- plan


def capacity_of(free, resource=gang.GPU_RESOURCE):
    return {"resource": resource, "excluded": [], "allocatable_units": sum(free),
            "nodes": [{"node": "n%d" % i, "free_units": f, "consumers": []} for i, f in enumerate(free)]}


def test_plan_reproduces_the_reference_procedure_on_two_gpus():
    plan = gang.plan_jobs(gang.cluster_capacity([node()], {"gpu-node-1": []}, gang.GPU_RESOURCE))
    assert (plan["job_a_pods"], plan["job_b_pods"], plan["request"], plan["free"]) == (2, 3, "1", "2")
    assert plan["pin_node"] is None and plan["nodes"] == ["gpu-node-1"]


@pytest.mark.parametrize("free,max_pods,expected", [
    ([8, 8], 8, (4, 5, 4)),         # 16 GPUs: 1- and 2-GPU pods would need more than 8 pods
    ([2, 3], 8, (5, 6, 1)),         # odd amounts still tile with 1-GPU pods
    ([4, 4, 4, 4], 4, (2, 3, 8)),   # gcd 4; requests 1, 2, 4 need too many pods; 8 does not divide 4 -> pinned
    ([1], 8, (1, 2, 1)),
])
def test_plan_counts(free, max_pods, expected):
    plan = gang.plan_jobs(capacity_of(free), max_pods)
    if expected == (2, 3, 8):
        # no equal request tiles all four nodes with <= 3 pods: pinned to one node (ties by name)
        assert plan["pin_node"] == "n0" and plan["nodes"] == ["n0"]
        assert (plan["job_a_pods"], plan["job_b_pods"], plan["request_units"]) == (2, 3, 2)
    else:
        assert (plan["job_a_pods"], plan["job_b_pods"], plan["request_units"]) == expected
        assert plan["pin_node"] is None


def test_plan_for_cpu_spread_over_nodes_pins_to_the_largest():
    plan = gang.plan_jobs(capacity_of([15400, 7850], "cpu"), 8)
    assert plan["pin_node"] == "n0"
    assert (plan["job_a_pods"], plan["request"], plan["job_a_total"], plan["job_b_total"]) == (7, "2200m", "15400m", "17600m")
    assert "spread" in plan["note"]


def test_plan_rejects_too_few_pods_and_zero():
    with pytest.raises(gang.PlanError, match="at least 2"):
        gang.plan_jobs(capacity_of([2]), 1)
    with pytest.raises(gang.PlanError, match="no free"):
        gang.plan_jobs(capacity_of([0, 0]))


def _placements_fill_exactly(free, request, pods):
    """Every order of greedy first-fit placement uses all free units (no stranded capacity)."""
    for order in itertools.permutations(range(len(free))):
        left = list(free)
        for dummy in range(pods):
            for i in order:
                if left[i] >= request:
                    left[i] -= request
                    break
            else:
                return False
        if any(left):
            return False
    return True


def test_plan_invariants_on_random_capacities():
    rng = random.Random(7)
    for dummy in range(300):
        free = [rng.choice([0, 1, 2, 3, 4, 6, 8]) for dummy in range(rng.randint(1, 4))]
        if not any(free):
            continue
        max_pods = rng.randint(2, 10)
        plan = gang.plan_jobs(capacity_of(free), max_pods)
        used = [f for f in free if f] if plan["pin_node"] is None else [free[int(plan["pin_node"][1:])]]
        assert plan["job_b_pods"] == plan["job_a_pods"] + 1 <= max_pods
        assert plan["job_a_pods"] * plan["request_units"] == sum(used) == plan["free_units"]
        assert all(f % plan["request_units"] == 0 for f in used)
        assert _placements_fill_exactly(used, plan["request_units"], plan["job_a_pods"])
        if plan["pin_node"] is None:
            assert plan["free_units"] == sum(free)


# --------------------------------------------------------------------------- gang verdicts


def job_pod(name, node_name=None, phase="Pending"):
    pod = copy.deepcopy(fixture_response("k8s-fixtures", "objects", "pod-gpu-pod-3.unschedulable.json"))
    pod["metadata"]["name"] = name
    if node_name:
        pod["spec"]["nodeName"] = node_name
        pod["status"] = {"phase": phase, "conditions": [{"type": "PodScheduled", "status": "True"}]}
    return pod


def test_gang_all_none_partial():
    all_bound = gang.evaluate_gang([job_pod("a-0", "n1", "Running"), job_pod("a-1", "n1", "Running")], 2)
    assert all_bound["state"] == "all"
    assert gang.all_running([job_pod("a-0", "n1", "Running"), job_pod("a-1", "n1", "Running")], 2)
    assert not gang.all_running([job_pod("a-0", "n1", "Running"), job_pod("a-1", "n1", "Pending")], 2)
    assert not gang.all_running([job_pod("a-0", "n1", "Running")], 2)

    none = gang.evaluate_gang([job_pod("b-0"), job_pod("b-1"), job_pod("b-2")], 3)
    assert none["state"] == "none" and none["unbound"] == ["b-0", "b-1", "b-2"]
    assert gang.evaluate_gang([], 3)["state"] == "none"

    partial = gang.evaluate_gang([job_pod("b-2"), job_pod("b-0", "n1"), job_pod("b-1", "n2")], 3)
    assert partial["state"] == "partial"
    assert partial["message"].startswith("gang violated: 2 of 3 pods bound")
    assert "b-0 on n1" in partial["message"] and "b-1 on n2" in partial["message"] and "not bound: b-2" in partial["message"]

    # all created pods bound but one not created yet is still partial
    short = gang.evaluate_gang([job_pod("b-0", "n1"), job_pod("b-1", "n1")], 3)
    assert short["state"] == "partial" and "1 pod(s) not created" in short["message"]


# --------------------------------------------------------------------------- Volcano PodGroup


def podgroup(phase, conditions=(), name="gang-b-0c1d"):
    """PodGroup as the Volcano scheduler writes it.

    Shape: volcano.sh/apis pkg/apis/scheduling/v1beta1/types.go PodGroupStatus
    {phase, conditions[{type, status, transitionID, lastTransitionTime, reason,
    message}], running, succeeded, failed} (also the CRD
    ../shared/crds/volcano/scheduling.volcano.sh_podgroups.yaml). The controller
    names it <job>-<job uid> and sets an ownerReference to the Job.
    """
    return {
        "apiVersion": gang.VOLCANO_PODGROUP_API,
        "kind": "PodGroup",
        "metadata": {"name": name, "namespace": "aic-x",
                     "ownerReferences": [{"apiVersion": gang.VOLCANO_JOB_API, "kind": "Job", "name": "gang-b", "controller": True}]},
        "spec": {"minMember": 3, "queue": "default"},
        "status": {"phase": phase, "conditions": list(conditions)},
    }


def unschedulable(message):
    # volcano-sh/volcano pkg/scheduler/plugins/gang/gang.go OnSessionClose: type Unschedulable,
    # status True, reason NotEnoughResources, message "%v/%v tasks in gang unschedulable: %v" % (.., job.FitError())
    return {"type": "Unschedulable", "status": "True", "reason": "NotEnoughResources", "transitionID": "f875efa5",
            "lastTransitionTime": "2026-11-23T06:30:00Z", "message": message}


def pg_event(reason, message, name="gang-b-0c1d", kind="PodGroup"):
    events = copy.deepcopy(fixture_response("k8s-fixtures", "events", "core-v1-events-pod-gpu-pod-3.json")["items"])
    event = events[0]
    event["involvedObject"].update(kind=kind, name=name, apiVersion=gang.VOLCANO_PODGROUP_API)
    event.update(reason=reason, message=message, type="Normal", reportingComponent="volcano")
    return event


# pkg/scheduler/api/job_info.go FitError + unschedule_info.go FitErrors.Error ("0/%v nodes are unavailable: %v.")
FIT_ERROR = ("3/3 tasks in gang unschedulable: pod group is not ready, 3 Pending, 3 minAvailable; "
             "Pending: 1 Unschedulable, 2 Schedulable. Origin reason is gang-b-worker-2: "
             "0/1 nodes are unavailable: 1 Insufficient nvidia.com/gpu.")


def test_volcano_inqueue_with_insufficient_gpu_is_lack_of_resource():
    pg = podgroup("Inqueue", [unschedulable(FIT_ERROR)])
    verdict = gang.volcano_hold_reason(pg, [], [], gang.GPU_RESOURCE, True)
    assert verdict["verdict"] == "lack_of_resource"
    assert "Insufficient nvidia.com/gpu" in verdict["message"]


def test_volcano_recorded_unschedulable_pod_message_names_the_gpu():
    # the pod's PodScheduled condition and FailedScheduling event as recorded from a real scheduler
    pod = fixture_response("k8s-fixtures", "objects", "pod-gpu-pod-3.unschedulable.json")
    events = fixture_response("k8s-fixtures", "events", "core-v1-events-pod-gpu-pod-3.json")["items"]
    pg = podgroup("Inqueue", [unschedulable("3/3 tasks in gang unschedulable: pod group is not ready, 3 Pending, 3 minAvailable")])
    verdict = gang.volcano_hold_reason(pg, events, [pod], gang.GPU_RESOURCE, True)
    assert verdict["verdict"] == "lack_of_resource"
    assert any("FailedScheduling" in m for m in verdict["messages"])
    # the same pod messages do not make a cpu gang lack cpu
    assert gang.volcano_hold_reason(pg, events, [pod], "cpu", True)["verdict"] == "other"


def test_volcano_enqueue_rejections():
    pending = podgroup("Pending", [unschedulable("3/0 tasks in gang unschedulable: pod group is not ready, 3 minAvailable")])
    # pkg/scheduler/plugins/overcommit/overcommit.go: RecordPodGroupEvent(Normal, "Unschedulable", "resource in cluster is overused")
    overused = [pg_event("Unschedulable", "resource in cluster is overused")]
    verdict = gang.volcano_hold_reason(pending, overused, [], gang.GPU_RESOURCE, True)
    assert verdict["verdict"] == "lack_of_resource" and "requests only nvidia.com/gpu" in verdict["message"]
    # generic enqueue messages prove nothing when the job also requested something else
    assert gang.volcano_hold_reason(pending, overused, [], gang.GPU_RESOURCE, False)["verdict"] == "other"
    # capacity plugin: util.FormatResourceNames("queue resource quota insufficient", "insufficient", names)
    named = [pg_event("Unschedulable", "queue resource quota insufficient: insufficient nvidia.com/gpu")]
    assert gang.volcano_hold_reason(pending, named, [], gang.GPU_RESOURCE, True)["verdict"] == "lack_of_resource"
    other = [pg_event("Unschedulable", "queue resource quota insufficient: insufficient memory")]
    verdict = gang.volcano_hold_reason(pending, other, [], gang.GPU_RESOURCE, True)
    assert verdict["verdict"] == "other" and verdict["other_resources"] == ["memory"]
    assert verdict["mechanism"] == ("admission: Volcano enqueue (proportion/capacity plugin: the job's minResources exceed "
                                    "the queue's capability)")
    # events of other objects do not count
    foreign = [pg_event("Unschedulable", "resource in cluster is overused", name="someone-else")]
    assert gang.volcano_hold_reason(pending, foreign, [], gang.GPU_RESOURCE, True)["verdict"] == "other"


def test_volcano_other_reasons_and_silence_are_not_lack_of_resource():
    taint = podgroup("Inqueue", [unschedulable(
        "3/3 tasks in gang unschedulable: pod group is not ready, 3 Pending, 3 minAvailable; Pending: 3 Unschedulable. "
        "Origin reason is gang-b-worker-0: 0/2 nodes are unavailable: 2 node(s) had untolerated taint {dedicated: ml}.")])
    verdict = gang.volcano_hold_reason(taint, [], [], gang.GPU_RESOURCE, True)
    assert verdict["verdict"] == "other" and "not for lack of nvidia.com/gpu" in verdict["message"]
    assert verdict["mechanism"].startswith("scheduling: Volcano gang plugin")
    # "Insufficient nvidia.com/gpu-memory" is another resource
    shared = podgroup("Inqueue", [unschedulable("Origin reason is x: 0/1 nodes are unavailable: 1 Insufficient nvidia.com/gpu-memory.")])
    assert gang.volcano_hold_reason(shared, [], [], gang.GPU_RESOURCE, True)["verdict"] == "other"
    silent = gang.volcano_hold_reason(podgroup("Pending"), [], [], gang.GPU_RESOURCE, True)
    assert silent["verdict"] == "none"
    assert gang.volcano_hold_reason(None, [], [], gang.GPU_RESOURCE, True)["verdict"] == "none"


def test_volcano_running_podgroup_is_admitted():
    running = podgroup("Running", [{"type": "Scheduled", "status": "True", "reason": "tasks in gang are ready to be scheduled"}])
    assert gang.volcano_hold_reason(running, [], [], gang.GPU_RESOURCE, True)["verdict"] == "admitted"


# --------------------------------------------------------------------------- Kueue Workload


def workload(conditions, name="job-gang-b-3f2a1"):
    """Workload as Kueue writes it for a pending batch Job.

    Shape: sigs.k8s.io/kueue apis/kueue/v1beta2 workload_types.go WorkloadStatus
    (conditions are metav1.Condition: type, status, reason, message,
    observedGeneration, lastTransitionTime; see the CRD
    ../shared/crds/kueue/kueue.x-k8s.io_workloads.yaml). Named job-<job>-<hash>,
    owned by the Job.
    """
    return {
        "apiVersion": "kueue.x-k8s.io/v1beta2",
        "kind": "Workload",
        "metadata": {"name": name, "namespace": "aic-x",
                     "ownerReferences": [{"apiVersion": "batch/v1", "kind": "Job", "name": "gang-b", "controller": True}]},
        "spec": {"queueName": "aic-gang", "podSets": [{"name": "main", "count": 3}]},
        "status": {"conditions": list(conditions)},
    }


def quota_reserved(status, reason, message):
    return {"type": "QuotaReserved", "status": status, "reason": reason, "message": message,
            "observedGeneration": 1, "lastTransitionTime": "2026-11-23T06:30:00Z"}


# pkg/scheduler/flavorassigner/flavorassigner.go fitsResourceQuota (v0.19 wording and the older one)
MAX_CAPACITY = ("couldn't assign flavors to pod set main: insufficient quota for nvidia.com/gpu in flavor aic-gang, "
                "previously considered podsets requests (0) + current podset request (3) > maximum capacity (2)")
OLD_MAX_CAPACITY = "couldn't assign flavors to pod set main: insufficient quota for nvidia.com/gpu in flavor aic-gang, request > maximum capacity (3 > 2)"
UNUSED = "couldn't assign flavors to pod set main: insufficient unused quota for nvidia.com/gpu in flavor aic-gang, 1 more needed"


@pytest.mark.parametrize("reason,message", [
    ("Pending", MAX_CAPACITY), ("ExceedsMaxQuota", MAX_CAPACITY), ("Pending", OLD_MAX_CAPACITY), ("WaitingForQuota", UNUSED)])
def test_kueue_insufficient_quota_of_the_resource_is_lack_of_resource(reason, message):
    verdict = gang.kueue_hold_reason(workload([quota_reserved("False", reason, message)]), [], gang.GPU_RESOURCE)
    assert verdict["verdict"] == "lack_of_resource"
    assert "nvidia.com/gpu" in verdict["message"]


def test_kueue_event_alone_is_enough():
    wl = workload([])
    event = pg_event("Pending", MAX_CAPACITY, name=wl["metadata"]["name"], kind="Workload")
    assert gang.kueue_hold_reason(wl, [event], gang.GPU_RESOURCE)["verdict"] == "lack_of_resource"


@pytest.mark.parametrize("message", [
    "couldn't assign flavors to pod set main: resource cpu unavailable in ClusterQueue",
    "LocalQueue aic-gang doesn't exist",
    "ClusterQueue aic-gang is inactive",
    "couldn't assign flavors to pod set main: insufficient quota for cpu in flavor aic-gang, request > maximum capacity (2 > 1)",
])
def test_kueue_other_reasons_are_not_lack_of_the_gang_resource(message):
    verdict = gang.kueue_hold_reason(workload([quota_reserved("False", "Pending", message)]), [], gang.GPU_RESOURCE)
    assert verdict["verdict"] == "other"


def test_kueue_admitted_or_missing_workload():
    admitted = workload([quota_reserved("True", "QuotaReserved", "Quota reserved in ClusterQueue aic-gang"),
                         {"type": "Admitted", "status": "True", "reason": "Admitted", "message": "The workload is admitted"}])
    assert gang.kueue_hold_reason(admitted, [], gang.GPU_RESOURCE)["verdict"] == "admitted"
    assert gang.kueue_hold_reason(None, [], gang.GPU_RESOURCE)["verdict"] == "none"
    assert gang.kueue_hold_reason(workload([]), [], gang.GPU_RESOURCE)["verdict"] == "none"


def test_owned_by_and_group_summary():
    wl = workload([quota_reserved("False", "Pending", UNUSED)])
    assert gang.owned_by(wl, "Job", "gang-b") and not gang.owned_by(wl, "Job", "gang-a")
    assert gang.group_summary(wl) == {"name": "job-gang-b-3f2a1", "phase": None, "conditions": ["QuotaReserved=False/Pending"]}
    assert gang.group_summary(podgroup("Inqueue", [unschedulable("x")]))["conditions"] == ["Unschedulable=True/NotEnoughResources"]


# --------------------------------------------------------------------------- detection


def deployment(name, available=True, image="docker.io/volcanosh/vc-scheduler:v1.15.1"):
    return {"metadata": {"name": name}, "spec": {"replicas": 1, "template": {"spec": {"containers": [{"name": name, "image": image}]}}},
            "status": {"availableReplicas": 1 if available else 0, "conditions": [
                {"type": "Available", "status": "True" if available else "False", "reason": "MinimumReplicasAvailable",
                 "message": "Deployment has minimum availability." if available else "Deployment does not have minimum availability."}]}}


def test_detection():
    served = {"batch.volcano.sh/v1alpha1 Job": True, "scheduling.volcano.sh/v1beta1 PodGroup": True}
    deps = dict((d, deployment(d)) for d in gang.SCHEDULERS["volcano"]["deployments"])
    volcano = gang.evaluate_scheduler("volcano", served, deps, "volcano-system")
    assert volcano["ready"] and volcano["versions"]["volcano-scheduler"] == {"volcano-scheduler": "v1.15.1"}
    assert "v1.15.1" in volcano["message"]

    deps["volcano-scheduler"] = deployment("volcano-scheduler", available=False)
    broken = gang.evaluate_scheduler("volcano", served, deps, "volcano-system")
    assert broken["found"] and not broken["ready"] and "volcano-scheduler" in broken["message"]

    missing = gang.evaluate_scheduler("kueue", {"kueue.x-k8s.io/v1beta2 ClusterQueue": False}, {"kueue-controller-manager": None}, "kueue-system")
    assert not missing["found"] and "does not serve kueue.x-k8s.io/v1beta2 ClusterQueue" in missing["message"]

    chosen, message = gang.choose_scheduler([broken, missing])
    assert chosen is None and message.startswith("no gang scheduler is ready")
    absent = gang.evaluate_scheduler("volcano", {"batch.volcano.sh/v1alpha1 Job": False}, {}, "volcano-system")
    chosen, message = gang.choose_scheduler([absent, missing])
    assert chosen is None and message.startswith("neither Volcano nor Kueue was found")
    chosen = gang.choose_scheduler([volcano, missing], "auto")[0]
    assert chosen["name"] == "volcano"
    assert gang.choose_scheduler([volcano, missing], "kueue")[0] is None
    assert gang.image_versions(deployment("x", image="registry.k8s.io/kueue/kueue@sha256:abc")) == {"x": "latest"}
    assert gang.image_versions(deployment("x", image="localhost:5000/kueue:v0.19.2")) == {"x": "v0.19.2"}


# --------------------------------------------------------------------------- timeline


def test_timeline_records_changes_only():
    timeline = gang.Timeline()
    timeline.observe(0.0, "A", [job_pod("a-0")], {"name": "pg-a", "phase": "Pending", "conditions": []})
    timeline.observe(1.0, "A", [job_pod("a-0")], {"name": "pg-a", "phase": "Pending", "conditions": []})
    timeline.observe(2.0, "A", [job_pod("a-0", "n1", "Running")], {"name": "pg-a", "phase": "Running", "conditions": []})
    timeline.note(3.0, "A", "deleted")
    assert [(r["t"], r["object"], r["phase"], r["node"]) for r in timeline.rows] == [
        (0.0, "pod/a-0", "Pending", "-"), (0.0, "pg-a", "Pending", "-"),
        (2.0, "pod/a-0", "Running", "n1"), (2.0, "pg-a", "Running", "-"), (3.0, "-", "deleted", "-")]
    text = timeline.render()
    assert text.splitlines()[0].split() == ["T(S)", "JOB", "OBJECT", "PHASE/EVENT", "NODE/CONDITIONS"]
    assert "pod/a-0" in text and "n1" in text


# --------------------------------------------------------------------------- resource names, hold window, causes


@pytest.mark.parametrize("text,names", [
    # kube-scheduler / Volcano fit errors
    ("0/1 nodes are unavailable: 1 Insufficient nvidia.com/gpu.", ["nvidia.com/gpu"]),
    ("0/3 nodes are available: 1 Insufficient cpu, 2 Insufficient nvidia.com/gpu. preemption: ...", ["cpu", "nvidia.com/gpu"]),
    ("0/2 nodes are available: 1 Too many pods, 1 cannot allocate all claims.", ["pods"]),
    ("0/1 nodes are unavailable: 1 node(s) pod number exceeded.", ["pods"]),
    ("Origin reason is x: 0/1 nodes are unavailable: 1 Insufficient nvidia.com/gpu-memory.", ["nvidia.com/gpu-memory"]),
    # overcommit plugin: util.FormatResourceNames("resource in cluster is overused", "overused", names)
    ("resource in cluster is overused: overused cpu, overused pods", ["cpu", "pods"]),
    ("resource in cluster is overused", []),
    # proportion / capacity plugins: util.FormatResourceNames("queue resource quota insufficient", "insufficient", names)
    ("queue resource quota insufficient: insufficient cpu, insufficient nvidia.com/gpu", ["cpu", "nvidia.com/gpu"]),
    ("queue resource quota insufficient", []),
    # Kueue flavor assigner
    ("couldn't assign flavors to pod set main: insufficient quota for nvidia.com/gpu in flavor f, previously considered "
     "podsets requests (0) + current podset request (3) > maximum capacity (2)", ["nvidia.com/gpu"]),
    ("couldn't assign flavors to pod set main: insufficient unused quota for memory in flavor f, 16Mi more needed", ["memory"]),
    ("0/1 nodes are unavailable: 1 node(s) had untolerated taint(s).", []),
])
def test_resources_named_in_every_message_form(text, names):
    assert gang.resources_named(text) == names


def test_requested_resources_come_from_the_rendered_pods():
    plan = {"resource": gang.GPU_RESOURCE, "request": "1", "pin_node": None}
    template = gang.pod_template(testpods.PodBuilder(), plan, "b")
    assert gang.requested_resources(template["spec"]) == ["cpu", "memory", gang.GPU_RESOURCE]
    assert gang.requested_resources({"containers": [{"resources": {"limits": {"nvidia.com/gpu": "1"}}}]}) == [gang.GPU_RESOURCE]


def test_volcano_enqueue_names_decide_and_a_gang_message_after_enqueue_wins():
    pending = podgroup("Pending")
    gpu = gang.volcano_hold_reason(pending, [pg_event("Unschedulable", "resource in cluster is overused: overused nvidia.com/gpu")], [],
                                   gang.GPU_RESOURCE, False)
    assert gpu["verdict"] == "lack_of_resource"
    assert gpu["mechanism"].startswith("admission: Volcano enqueue (overcommit plugin")
    both = gang.volcano_hold_reason(pending, [pg_event("Unschedulable", "resource in cluster is overused: overused cpu, overused nvidia.com/gpu")],
                                    [], gang.GPU_RESOURCE, False)
    assert both["verdict"] == "other" and both["other_resources"] == ["cpu"] and "besides nvidia.com/gpu" in both["message"]
    # enqueued later (Inqueue): the old enqueue rejection is history, the gang plugin's message decides
    inqueue = podgroup("Inqueue", [unschedulable(FIT_ERROR)])
    later = gang.volcano_hold_reason(inqueue, [pg_event("Unschedulable", "resource in cluster is overused: overused cpu")], [],
                                     gang.GPU_RESOURCE, False)
    assert later["verdict"] == "lack_of_resource" and later["mechanism"].startswith("scheduling: Volcano gang plugin")


def test_kueue_lacking_quota_of_another_resource_is_other():
    message = "couldn't assign flavors to pod set main: insufficient unused quota for cpu in flavor f, 20m more needed"
    verdict = gang.kueue_hold_reason(workload([quota_reserved("False", "Pending", message)]), [], gang.GPU_RESOURCE)
    assert verdict["verdict"] == "other" and verdict["other_resources"] == ["cpu"]
    uncovered = "couldn't assign flavors to pod set main: resource memory unavailable in ClusterQueue"
    verdict = gang.kueue_hold_reason(workload([quota_reserved("False", "Pending", uncovered)]), [], gang.GPU_RESOURCE)
    assert verdict["other_resources"] == ["memory"]
    assert verdict["mechanism"].startswith("admission: Kueue quota")


def _sample(bound, expected=3):
    pods = [{"metadata": {"name": "p%d" % i}, "spec": {"nodeName": "n" if i < bound else None}} for i in range(expected)]
    return gang.evaluate_gang(pods, expected)


def test_hold_window_remembers_a_partial_binding_that_disappeared():
    samples = [(0.0, _sample(0)), (0.5, _sample(2)), (1.0, _sample(0)), (2.0, _sample(0))]
    window = gang.hold_window(samples)
    assert window["state"] == "partial" and window["at"] == 0.5 and len(window["verdict"]["bound"]) == 2
    assert window["last"]["state"] == "none"
    assert gang.hold_window([(0.0, _sample(0)), (1.0, _sample(0))])["state"] == "none"
    # all bound at the end: the job fitted after all (capacity grew), whatever was seen before
    assert gang.hold_window([(0.0, _sample(1)), (1.0, _sample(3))])["state"] == "all"


def test_zero_capacity_causes():
    def capacity(reasons):
        return {"resource": gang.GPU_RESOURCE, "nodes": [], "allocatable_units": 0,
                "excluded": [{"node": "n%d" % i, "reason": r} for i, r in enumerate(reasons)]}

    assert gang.zero_capacity_cause(capacity(["taint dedicated=ml:NoSchedule not tolerated by the test pods"])) == "untolerated_taint"
    assert gang.zero_capacity_cause(capacity(["does not advertise nvidia.com/gpu"])) == "no_test_target"
    assert gang.zero_capacity_cause(capacity(["cordoned (spec.unschedulable)"])) == "no_capacity"
    busy = {"resource": "cpu", "nodes": [{"node": "n", "free_units": 0, "consumers": []}], "excluded": [], "allocatable_units": 4}
    with pytest.raises(gang.PlanError) as raised:
        gang.plan_jobs(busy)
    assert raised.value.cause == "no_capacity"
