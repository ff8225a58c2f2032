"""gang_scheduling over HTTP against the fake API server (recorded v1.34 discovery and error bodies).

The fake serves the recorded discovery, which includes the Volcano and Kueue CRDs
(applied when the fixtures were recorded). Reconcilers play the Volcano
controllers and scheduler, or the Kueue controller plus kube-scheduler and the
kubelet: they create PodGroups/Workloads and pods, bind what they decide to bind
and write the status and messages the real components write (shapes cited in
tests/unit/plugins/module_utils/test_gang.py).
"""

import copy
import threading
import time

import pytest

from ansible_collections.ai_conformance.rke2.plugins.module_utils import gang, testpods
from ansible_collections.ai_conformance.rke2.plugins.modules import gang_scheduling
from tests.support.fakeapi import FakeKubeAPI
from tests.support.modrun import checks, run_module
from tests.support.shared import fixture_response

GPU = gang.GPU_RESOURCE
MANAGED = ("app.kubernetes.io/managed-by", "ai-conformance-rke2")
VOLCANO_GROUPS = ["batch.volcano.sh/v1alpha1", "bus.volcano.sh/v1alpha1", "config.volcano.sh/v1alpha1", "nodeinfo.volcano.sh/v1alpha1",
                  "scheduling.volcano.sh/v1beta1", "shard.volcano.sh/v1alpha1", "topology.volcano.sh/v1alpha1"]
KUEUE_GROUPS = ["kueue.x-k8s.io/v1beta1", "kueue.x-k8s.io/v1beta2"]


@pytest.fixture
def fake(tmp_path):
    with FakeKubeAPI() as server:
        server.kubeconfig = server.write_kubeconfig(str(tmp_path / "kubeconfig"))
        yield server
        assert server.internal_errors == []


def run(fake, capsys, check_mode=False, **args):
    args.setdefault("kubeconfig", fake.kubeconfig)
    args.setdefault("timeout", 4)
    args.setdefault("hold_seconds", 1)
    return run_module(gang_scheduling, args, capsys, check_mode=check_mode)


def evidence(result, name):
    return next(e["content"] for e in result["evidence"] if e["name"] == name)


def leftovers(fake):
    """Everything of ours still stored: labelled namespaces and their content, labelled cluster objects, test jobs."""
    left = []
    for ns in fake.objects("v1", "namespaces"):
        if ns["metadata"].get("labels", {}).get(MANAGED[0]) == MANAGED[1]:
            left.append("namespace/" + ns["metadata"]["name"])
            left.extend("%s/%s" % (o["kind"], o["metadata"]["name"]) for o in fake.objects(namespace=ns["metadata"]["name"]))
    for api, plural in (("kueue.x-k8s.io/v1beta2", "clusterqueues"), ("kueue.x-k8s.io/v1beta2", "resourceflavors"),
                        ("kueue.x-k8s.io/v1beta2", "localqueues"), ("kueue.x-k8s.io/v1beta2", "workloads"),
                        ("batch.volcano.sh/v1alpha1", "jobs"), ("scheduling.volcano.sh/v1beta1", "podgroups"), ("batch/v1", "jobs")):
        left.extend("%s/%s" % (plural, o["metadata"]["name"]) for o in fake.objects(api, plural))
    left.extend("pod/" + p["metadata"]["name"] for p in fake.objects("v1", "pods") if gang.GANG_LABEL in p["metadata"].get("labels", {}))
    return left


# --------------------------------------------------------------------------- cluster set-up


def add_node(fake, name="gpu-node-1", gpus=2, **changes):
    node = copy.deepcopy(fake.recorded("objects/node-gpu-node-1.before-binding.json")["response"])
    node["metadata"]["name"] = name
    node["metadata"]["labels"]["kubernetes.io/hostname"] = name
    for section in ("capacity", "allocatable"):
        node["status"][section][GPU] = str(gpus)
    node["spec"].update(changes)
    for key in ("resourceVersion", "uid", "managedFields"):
        node["metadata"].pop(key, None)
    return fake.put_object(node)


def deployment(name, namespace, available=True, image="docker.io/volcanosh/vc-scheduler:v1.15.1"):
    return {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": name, "namespace": namespace},
            "spec": {"replicas": 1, "selector": {"matchLabels": {"app": name}},
                     "template": {"metadata": {"labels": {"app": name}}, "spec": {"containers": [{"name": name, "image": image}]}}},
            "status": {"replicas": 1, "availableReplicas": 1 if available else 0, "conditions": [
                {"type": "Available", "status": "True" if available else "False", "reason": "MinimumReplicasAvailable",
                 "message": "Deployment has minimum availability." if available else "Deployment does not have minimum availability."}]}}


def install_volcano(fake, available=True):
    fake.create_namespace("volcano-system")
    for name in ("volcano-admission", "volcano-controllers", "volcano-scheduler"):
        fake.put_object(deployment(name, "volcano-system", available, "docker.io/volcanosh/vc-%s:v1.15.1" % name.split("-")[1]))


def install_kueue(fake):
    fake.create_namespace("kueue-system")
    fake.put_object(deployment("kueue-controller-manager", "kueue-system", image="registry.k8s.io/kueue/kueue:v0.19.2"))


def without(fake, groups):
    for group_version in groups:
        fake.remove_group_version(group_version)


# --------------------------------------------------------------------------- controllers


def _request(pod_or_template, resource=GPU):
    return gang.pod_request({"spec": pod_or_template}, resource)


def free_per_node(fake):
    free = {}
    for node in fake.objects("v1", "nodes"):
        name = node["metadata"]["name"]
        free[name] = gang.allocatable(node, GPU)
    for pod in fake.objects("v1", "pods"):
        node = pod["spec"].get("nodeName")
        if node in free and not gang.is_terminated(pod):
            free[node] -= gang.pod_request(pod, GPU)
    return free


def placements(fake, request, count):
    """Nodes for up to ``count`` pods of ``request`` GPUs, first fit."""
    free = free_per_node(fake)
    chosen = []
    for dummy in range(count):
        node = next((n for n in sorted(free) if free[n] >= request), None)
        if node is None:
            break
        free[node] -= request
        chosen.append(node)
    return chosen


def make_pod(fake, owner, api_version, name, template, labels, annotations=None):
    """The job controller creates a pod from the template through the API's admission (Pod Security
    ``restricted`` of our namespaces, quota, LimitRange); a refusal is its FailedCreate event. None then."""
    job = dict(owner, apiVersion=api_version, kind="Job")
    tmpl = {"metadata": {"labels": dict(labels), "annotations": dict(annotations or {})}, "spec": template["spec"]}
    return fake.create_pod_for(job, tmpl, name)


def run_pod(fake, pod, node, waiting=None):
    """Bind the pod and let the kubelet run it, or leave its container waiting (``waiting``: reason, message)."""
    fake.bind_pod(pod["metadata"]["namespace"], pod["metadata"]["name"], node)
    if waiting:
        container = pod["spec"]["containers"][0]
        fake.patch_object("v1", "pods", pod["metadata"]["name"], {"status": {"phase": "Pending", "conditions": [
            {"type": "PodScheduled", "status": "True"}], "containerStatuses": [
            {"name": container["name"], "image": container["image"], "ready": False,
             "state": {"waiting": {"reason": waiting[0], "message": waiting[1]}}}]}}, pod["metadata"]["namespace"])
        return
    fake.patch_object("v1", "pods", pod["metadata"]["name"], {"status": {"phase": "Running", "conditions": [
        {"type": "PodScheduled", "status": "True"}, {"type": "Ready", "status": "True"}]}}, pod["metadata"]["namespace"])


def unschedulable(fake, pod, message):
    fake.patch_object("v1", "pods", pod["metadata"]["name"], {"status": {"conditions": [
        {"type": "PodScheduled", "status": "False", "reason": "Unschedulable", "message": message}]}}, pod["metadata"]["namespace"])


def event(fake, namespace, kind, name, reason, message, component):
    fake.put_object({"apiVersion": "v1", "kind": "Event",
                     "metadata": {"name": "%s.%s" % (name, reason.lower()), "namespace": namespace},
                     "involvedObject": {"kind": kind, "name": name, "namespace": namespace},
                     "reason": reason, "message": message, "type": "Warning", "source": {"component": component}})


def play_volcano(fake, mode="gang", waiting=None):
    """Volcano controllers + scheduler + kubelet.

    gang: all pods of a job are bound when all fit, none otherwise (PodGroup Inqueue, Unschedulable condition and
    pod messages naming the GPU). partial: binds what fits (no gang semantics). evict: binds what fits, then unbinds
    it again (the pods are deleted and recreated unbound, as after a preemption). silent: never binds, says nothing
    about resources (a taint message). broken: creates pods and never schedules. enqueue:<message>: job B is not
    enqueued (PodGroup Pending, no pods) with that PodGroup event, as the enqueue action records it.
    """

    def reconcile(server):
        for job in server.objects(gang.VOLCANO_JOB_API, "jobs"):
            ns, name, uid = job["metadata"]["namespace"], job["metadata"]["name"], job["metadata"]["uid"]
            group_name = "%s-%s" % (name, uid)
            if server.get_object(gang.VOLCANO_PODGROUP_API, "podgroups", group_name, ns) is not None:
                continue
            task = job["spec"]["tasks"][0]
            count, request = task["replicas"], _request(task["template"]["spec"])
            enqueue_rejected = mode.startswith("enqueue:") and name == "gang-b"
            server.put_object({"apiVersion": gang.VOLCANO_PODGROUP_API, "kind": "PodGroup",
                               "metadata": {"name": group_name, "namespace": ns, "ownerReferences": [
                                   {"apiVersion": gang.VOLCANO_JOB_API, "kind": "Job", "name": name, "uid": uid, "controller": True}]},
                               "spec": {"minMember": job["spec"]["minAvailable"], "queue": job["spec"]["queue"]},
                               "status": {"phase": "Pending"}})
            if enqueue_rejected:
                event(server, ns, "PodGroup", group_name, "Unschedulable", mode.split(":", 1)[1], "volcano")
                continue
            labels = dict(task["template"]["metadata"]["labels"], **{"volcano.sh/job-name": name})
            created = [make_pod(server, job, gang.VOLCANO_JOB_API, "%s-%s-%d" % (name, task["name"], i), task["template"], labels,
                                {"scheduling.k8s.io/group-name": group_name}) for i in range(count)]
            created = [p for p in created if p is not None]
            nodes = placements(server, request, count)
            if mode == "broken" or len(created) < count:
                continue
            if mode == "silent":
                for pod in created:
                    unschedulable(server, pod, "0/1 nodes are unavailable: 1 node(s) had untolerated taint {dedicated: ml}.")
                server.set_status(gang.VOLCANO_PODGROUP_API, "podgroups", group_name, {"phase": "Inqueue"}, ns)
                continue
            if len(nodes) == count or mode in ("partial", "evict"):
                for pod, node in zip(created, nodes):
                    run_pod(server, pod, node, waiting)
                if mode == "evict" and len(nodes) < count:
                    # a moment later (asynchronously, as a controller acts) the bound pods are replaced by unbound ones
                    timer = threading.Timer(0.5, evict, (server, created[:len(nodes)], task["template"], job, labels, group_name))
                    timer.daemon = True
                    timer.start()
                for pod in created[len(nodes):]:
                    unschedulable(server, pod, "0/1 nodes are unavailable: 1 Insufficient nvidia.com/gpu.")
                phase = "Running" if len(nodes) == count else "Inqueue"
                server.set_status(gang.VOLCANO_PODGROUP_API, "podgroups", group_name, {"phase": phase, "running": len(nodes)}, ns)
                continue
            message = ("%d/%d tasks in gang unschedulable: pod group is not ready, %d Pending, %d minAvailable; Pending: %d Schedulable, "
                       "%d Unschedulable. Origin reason is %s: 0/1 nodes are unavailable: 1 Insufficient nvidia.com/gpu."
                       % (count, count, count, count, len(nodes), count - len(nodes), created[-1]["metadata"]["name"]))
            server.set_status(gang.VOLCANO_PODGROUP_API, "podgroups", group_name, {"phase": "Inqueue", "conditions": [
                {"type": "Unschedulable", "status": "True", "reason": "NotEnoughResources", "transitionID": "1",
                 "lastTransitionTime": "2026-11-23T06:30:00Z", "message": message}]}, ns)
            for pod in created[len(nodes):]:
                unschedulable(server, pod, "0/1 nodes are unavailable: 1 Insufficient nvidia.com/gpu.")
            event(server, ns, "PodGroup", group_name, "Unschedulable", message, "volcano")

    def evict(server, bound, template, job, labels, group_name):
        for pod in bound:
            server.delete_object("v1", "pods", pod["metadata"]["name"], pod["metadata"]["namespace"])
            make_pod(server, job, gang.VOLCANO_JOB_API, pod["metadata"]["name"] + "-r", template, labels,
                     {"scheduling.k8s.io/group-name": group_name})

    fake.add_reconciler(reconcile)


def play_kueue(fake, mode="quota"):
    """Kueue controller (Workload per Job, admission by ClusterQueue quota) + kube-scheduler + kubelet.

    quota: admits a Job when its requests fit the unused nominal quota, else QuotaReserved=False with the flavor
    assigner's message. ignore_quota: admits everything (then kube-scheduler binds what fits). cpu_quota: job B
    lacks cpu quota instead of GPU quota.
    """
    api = "kueue.x-k8s.io/v1beta2"

    def reconcile(server):
        for job in server.objects("batch/v1", "jobs"):
            queue = job["metadata"].get("labels", {}).get(gang.KUEUE_QUEUE_LABEL)
            if not queue:
                continue
            ns, name, uid = job["metadata"]["namespace"], job["metadata"]["name"], job["metadata"]["uid"]
            wl_name = "job-%s-%s" % (name, uid[:5])
            count = job["spec"]["parallelism"]
            request = _request(job["spec"]["template"]["spec"])
            workload = server.get_object(api, "workloads", wl_name, ns)
            if workload is None:
                workload = server.put_object({"apiVersion": api, "kind": "Workload", "metadata": {
                    "name": wl_name, "namespace": ns, "labels": {"kueue.x-k8s.io/job-uid": uid},
                    "ownerReferences": [{"apiVersion": "batch/v1", "kind": "Job", "name": name, "uid": uid, "controller": True}]},
                    "spec": {"queueName": queue, "podSets": [{"name": "main", "count": count, "template": job["spec"]["template"]}]}})
            if not job["spec"].get("suspend"):
                continue
            local_queue = server.get_object(api, "localqueues", queue, ns)
            cluster_queue = server.get_object(api, "clusterqueues", local_queue["spec"]["clusterQueue"]) if local_queue else None
            flavor = cluster_queue["spec"]["resourceGroups"][0]["flavors"][0]
            covered = cluster_queue["spec"]["resourceGroups"][0]["coveredResources"]
            uncovered = [r for r in gang.requested_resources(job["spec"]["template"]["spec"]) if r not in covered]
            if uncovered:
                # Kueue admits nothing that requests a resource its ClusterQueue does not cover
                message = "couldn't assign flavors to pod set main: resource %s unavailable in ClusterQueue" % uncovered[0]
                pending = {"type": "QuotaReserved", "status": "False", "reason": "Pending", "message": message}
                server.set_status(api, "workloads", wl_name, {"conditions": [pending]}, ns)
                continue
            quota = gang.to_units(GPU, [r for r in flavor["resources"] if r["name"] == GPU][0]["nominalQuota"])
            used = 0
            for other in server.objects(api, "workloads"):
                admitted = any(c["type"] == "QuotaReserved" and c["status"] == "True" for c in other.get("status", {}).get("conditions", []))
                if admitted and other["metadata"]["name"] != wl_name:
                    used += other["spec"]["podSets"][0]["count"] * _request(other["spec"]["podSets"][0]["template"]["spec"])
            need = count * request
            if mode == "cpu_quota" and name == "gang-b":
                # the ClusterQueue's cpu quota (not the GPU's) is what is short
                message = "couldn't assign flavors to pod set main: insufficient unused quota for cpu in flavor %s, 20m more needed" % (
                    flavor["name"])
                pending = {"type": "QuotaReserved", "status": "False", "reason": "Pending", "message": message}
                server.set_status(api, "workloads", wl_name, {"conditions": [pending]}, ns)
                continue
            if mode in ("quota", "cpu_quota") and need > quota - used:
                message = ("couldn't assign flavors to pod set main: insufficient quota for nvidia.com/gpu in flavor %s, previously "
                           "considered podsets requests (0) + current podset request (%d) > maximum capacity (%d)" % (flavor["name"], need, quota))
                status = {"conditions": [{"type": "QuotaReserved", "status": "False", "reason": "Pending", "message": message,
                                          "observedGeneration": 1, "lastTransitionTime": "2026-11-23T06:30:00Z"}]}
                if workload.get("status") != status:
                    server.set_status(api, "workloads", wl_name, status, ns)
                    event(server, ns, "Workload", wl_name, "Pending", message, "kueue-admission")
                continue
            server.set_status(api, "workloads", wl_name, {"conditions": [
                {"type": "QuotaReserved", "status": "True", "reason": "QuotaReserved", "message": "Quota reserved in ClusterQueue %s"
                 % cluster_queue["metadata"]["name"]},
                {"type": "Admitted", "status": "True", "reason": "Admitted", "message": "The workload is admitted"}]}, ns)
            server.patch_object("batch/v1", "jobs", name, {"spec": {"suspend": False}}, ns)
            labels = dict(job["spec"]["template"]["metadata"]["labels"], **{"batch.kubernetes.io/job-name": name})
            created = [make_pod(server, job, "batch/v1", "%s-%d" % (name, i), job["spec"]["template"], labels) for i in range(count)]
            created = [p for p in created if p is not None]
            nodes = placements(server, request, len(created))
            for pod, node in zip(created, nodes):
                run_pod(server, pod, node)
            for pod in created[len(nodes):]:
                unschedulable(server, pod, "0/1 nodes are available: 1 Insufficient nvidia.com/gpu.")

    fake.add_reconciler(reconcile)


# --------------------------------------------------------------------------- Volcano


def test_volcano_gang_passes_and_cleans_up(fake, capsys):
    add_node(fake, gpus=2)
    install_volcano(fake)
    play_volcano(fake)
    out = run(fake, capsys)
    result = out["result"]
    assert out["changed"] is False
    assert result["status"] == "passed", result["checks"]
    found = checks(result)
    assert "volcano is installed and running in volcano-system" in found["gang_scheduler"]["message"]
    assert "v1.15.1" in found["gang_scheduler"]["message"]
    assert found["gang_capacity"]["message"].startswith("2 nvidia.com/gpu free on 1 node(s)")
    assert "job A: 2 pods x 1, job B: 3 pods x 1" in found["gang_capacity"]["message"]
    assert "all 2 pods bound" in found["gang_job_a_scheduled"]["message"]
    held = found["gang_job_b_held"]["message"]
    assert held.startswith("job B (3 pods of 1 nvidia.com/gpu, 3 in all, 2 free) stayed completely unscheduled")
    assert "Insufficient nvidia.com/gpu" in held
    timeline = evidence(result, "timeline")
    assert "pod/gang-a-worker-0" in timeline and "gpu-node-1" in timeline and "pod/gang-b-worker-2" in timeline
    assert "job gang-a and its pods deleted" in timeline
    assert evidence(result, "job-b-group")["status"]["phase"] == "Inqueue"
    assert "Insufficient nvidia.com/gpu" in evidence(result, "job-b-reasons")
    assert evidence(result, "plan")["job_b_pods"] == 3
    assert sorted(evidence(result, "scheduler")["volcano"]["versions"]) == ["volcano-admission", "volcano-controllers", "volcano-scheduler"]
    assert leftovers(fake) == []
    # bounded API use: pods are only listed per node or per namespace, never cluster-wide
    assert all(r.query.get("fieldSelector") == "spec.nodeName=gpu-node-1" for r in fake.requests_to("GET", r"^/api/v1/pods$"))
    assert fake.requests_to("GET", r"^/api/v1/pods$")


def test_volcano_partial_gang_fails_naming_the_pods(fake, capsys):
    add_node(fake, gpus=2)
    install_volcano(fake)
    play_volcano(fake, mode="partial")
    result = run(fake, capsys)["result"]
    assert result["status"] == "failed"
    held = checks(result)["gang_job_b_held"]
    assert held["status"] == "failed"
    assert held["message"].startswith("job B: gang violated: 2 of 3 pods bound")
    assert "gang-b-worker-0 on gpu-node-1" in held["message"] and "gang-b-worker-1 on gpu-node-1" in held["message"]
    assert "not bound: gang-b-worker-2" in held["message"]
    assert leftovers(fake) == []  # cleanup after a failure


def test_volcano_held_for_another_reason_is_an_error(fake, capsys):
    add_node(fake, gpus=2)
    install_volcano(fake)
    play_volcano(fake, mode="gang")
    calls = {"n": 0}

    def taint_second_job(server):
        # job A runs normally; job B is held back by a taint, not for lack of GPUs
        for job in server.objects(gang.VOLCANO_JOB_API, "jobs"):
            if job["metadata"]["name"] == "gang-b" and not calls["n"]:
                calls["n"] += 1
                for pod in server.objects("v1", "pods", namespace=job["metadata"]["namespace"]):
                    if pod["metadata"]["name"].startswith("gang-b"):
                        unschedulable(server, pod, "0/1 nodes are unavailable: 1 node(s) had untolerated taint {dedicated: ml}.")
                for group in server.objects(gang.VOLCANO_PODGROUP_API, "podgroups", namespace=job["metadata"]["namespace"]):
                    server.set_status(gang.VOLCANO_PODGROUP_API, "podgroups", group["metadata"]["name"], {"phase": "Inqueue"},
                                      job["metadata"]["namespace"])
                for ev in server.objects("v1", "events", namespace=job["metadata"]["namespace"]):
                    server.delete_object("v1", "events", ev["metadata"]["name"], job["metadata"]["namespace"])

    fake.add_reconciler(taint_second_job)
    result = run(fake, capsys)["result"]
    held = checks(result)["gang_job_b_held"]
    assert held["status"] == "error", held
    assert "not for lack of nvidia.com/gpu" in held["message"] and "untolerated taint" in held["message"]
    assert result["status"] == "error"
    assert leftovers(fake) == []


def test_volcano_that_never_schedules_fails_job_a(fake, capsys):
    add_node(fake, gpus=2)
    install_volcano(fake)
    play_volcano(fake, mode="broken")
    result = run(fake, capsys, timeout=1)["result"]
    found = checks(result)
    assert found["gang_job_a_scheduled"]["status"] == "failed"
    assert "did not schedule job A" in found["gang_job_a_scheduled"]["message"]
    assert found["gang_job_b_held"]["status"] == "skipped"
    assert result["status"] == "failed"
    assert leftovers(fake) == []


def test_volcano_installed_but_not_available_fails(fake, capsys):
    add_node(fake)
    install_volcano(fake, available=False)
    result = run(fake, capsys)["result"]
    assert result["status"] == "failed"
    message = checks(result)["gang_scheduler"]["message"]
    assert "volcano CRDs are installed but deployment(s) volcano-admission, volcano-controllers, volcano-scheduler" in message
    assert not fake.requests_to("POST")


# --------------------------------------------------------------------------- no scheduler, no capacity


def test_without_volcano_or_kueue_fails_fast(fake, capsys):
    add_node(fake)
    without(fake, VOLCANO_GROUPS + KUEUE_GROUPS)
    started = time.monotonic()
    result = run(fake, capsys)["result"]
    assert time.monotonic() - started < 10
    assert result["status"] == "failed"
    message = checks(result)["gang_scheduler"]["message"]
    assert message.startswith("neither Volcano nor Kueue was found")
    assert "batch.volcano.sh/v1alpha1" in message and "kueue.x-k8s.io/v1beta2" in message
    assert not fake.requests_to("POST")  # nothing was created
    assert leftovers(fake) == []


def test_busy_gpus_are_an_error_naming_the_pods_holding_them(fake, capsys):
    """No free capacity keeps the test from running: error (no_capacity), not a failure of gang scheduling."""
    add_node(fake, gpus=2)
    fake.put_recorded("objects/pods-on-gpu-node-1.list.json")  # two running 1-GPU pods on gpu-node-1
    install_volcano(fake)
    play_volcano(fake)
    result = run(fake, capsys)["result"]
    assert result["status"] == "error"
    capacity = checks(result)["gang_capacity"]
    assert (capacity["status"], capacity["cause"]) == ("error", "no_capacity")
    assert "no free nvidia.com/gpu" in capacity["message"]
    assert "ai-fixtures/gpu-pod-1" in capacity["message"] and "ai-fixtures/gpu-pod-2" in capacity["message"]
    assert "gang_job_a_scheduled" not in checks(result)
    assert not fake.requests_to("POST")
    assert evidence(result, "capacity")["nodes"][0]["requested"] == "2"


def test_cordoned_gpu_node_has_zero_capacity(fake, capsys):
    add_node(fake, gpus=2, unschedulable=True)
    install_volcano(fake)
    result = run(fake, capsys)["result"]
    assert (checks(result)["gang_capacity"]["status"], checks(result)["gang_capacity"]["cause"]) == ("error", "no_capacity")
    assert "gpu-node-1: cordoned" in checks(result)["gang_capacity"]["message"]
    assert result["status"] == "error"


def test_gpu_node_with_an_untolerated_taint_is_an_error_naming_it(fake, capsys):
    add_node(fake, gpus=2, taints=[{"key": "dedicated", "value": "ml", "effect": "NoSchedule"}])
    install_volcano(fake)
    result = run(fake, capsys)["result"]
    capacity = checks(result)["gang_capacity"]
    assert (capacity["status"], capacity["cause"]) == ("error", "untolerated_taint")
    assert "taint dedicated=ml:NoSchedule not tolerated" in capacity["message"]
    # the common option tolerations (conformance_tolerations) is what the test pods carry
    result = run(fake, capsys, tolerations=[{"key": "dedicated", "operator": "Equal", "value": "ml", "effect": "NoSchedule"}])["result"]
    assert checks(result)["gang_capacity"]["status"] == "passed"


def test_check_mode_runs_no_jobs(fake, capsys):
    add_node(fake, gpus=2)
    install_volcano(fake)
    play_volcano(fake)
    result = run(fake, capsys, check_mode=True)["result"]
    assert result["status"] == "skipped"
    assert checks(result)["gang_job_a_scheduled"]["status"] == "skipped"
    assert not fake.requests_to("POST")


@pytest.mark.parametrize("args,message", [({"max_pods": 1}, "max_pods must be at least 2"),
                                          ({"hold_seconds": 0}, "hold_seconds must be at least 1")])
def test_bad_parameters(fake, capsys, args, message):
    out = run(fake, capsys, **args)
    assert out["failed"] is True and message in out["msg"]
    assert not fake.requests


# --------------------------------------------------------------------------- Kueue


def test_kueue_gang_passes_and_cleans_up(fake, capsys):
    add_node(fake, gpus=2)
    install_kueue(fake)
    play_kueue(fake)
    quotas = []
    fake.on_create("kueue.x-k8s.io/v1beta2", "clusterqueues",
                   lambda obj, server, dry_run: quotas.append(obj["spec"]["resourceGroups"][0]["flavors"][0]["resources"][0]))
    result = run(fake, capsys)["result"]
    assert result["status"] == "passed", result["checks"]
    found = checks(result)
    assert found["gang_scheduler"]["message"].startswith("kueue is installed and running in kueue-system")
    assert quotas == [{"name": GPU, "nominalQuota": "2"}]  # quota = the free capacity
    held = found["gang_job_b_held"]["message"]
    assert "insufficient quota for nvidia.com/gpu" in held and "Kueue holds job B back for lack of nvidia.com/gpu quota" in held
    assert "pod/gang-a-0" in evidence(result, "timeline")
    assert leftovers(fake) == []


def test_kueue_admitting_over_quota_fails(fake, capsys):
    add_node(fake, gpus=2)
    install_kueue(fake)
    play_kueue(fake, mode="ignore_quota")
    result = run(fake, capsys, scheduler="kueue")["result"]
    held = checks(result)["gang_job_b_held"]
    assert held["status"] == "failed"
    assert held["message"].startswith("job B: gang violated: 2 of 3 pods bound")
    assert leftovers(fake) == []


def test_kueue_chosen_explicitly_but_missing(fake, capsys):
    add_node(fake)
    install_volcano(fake)
    without(fake, KUEUE_GROUPS)
    result = run(fake, capsys, scheduler="kueue")["result"]
    assert result["status"] == "failed"
    assert "kueue is not installed" in checks(result)["gang_scheduler"]["message"]


def test_volcano_gang_over_two_nodes(fake, capsys):
    add_node(fake, "gpu-node-1", gpus=2)
    add_node(fake, "gpu-node-2", gpus=2)
    install_volcano(fake)
    play_volcano(fake)
    result = run(fake, capsys)["result"]
    assert result["status"] == "passed", result["checks"]
    plan = evidence(result, "plan")
    assert (plan["job_a_pods"], plan["job_b_pods"], plan["free"]) == (4, 5, "4")
    # pods listed once per candidate node, with a field selector
    selectors = sorted(r.query.get("fieldSelector") for r in fake.requests_to("GET", r"^/api/v1/pods$"))
    assert selectors == ["spec.nodeName=gpu-node-1", "spec.nodeName=gpu-node-2"]
    assert leftovers(fake) == []


def test_job_a_held_for_another_reason_is_an_error(fake, capsys):
    add_node(fake, gpus=2)
    install_volcano(fake)
    play_volcano(fake, mode="silent")
    result = run(fake, capsys, timeout=1)["result"]
    job_a = checks(result)["gang_job_a_scheduled"]
    assert job_a["status"] == "error"
    assert "Volcano holds job A back, not for lack of nvidia.com/gpu" in job_a["message"]
    assert job_a["cause"] == "untolerated_taint"
    assert result["status"] == "error"
    assert leftovers(fake) == []


def test_job_b_that_fits_after_all_is_an_error(fake, capsys):
    """Capacity that grows during the test (a GPU added while job B waits) makes job B fit: no proof either way."""
    add_node(fake, gpus=2)
    install_volcano(fake)
    grown = {"done": False}

    def add_gpu_when_b_is_created(server):
        if not grown["done"] and any(j["metadata"]["name"] == "gang-b" for j in server.objects(gang.VOLCANO_JOB_API, "jobs")):
            grown["done"] = True
            node = server.get_object("v1", "nodes", "gpu-node-1")
            server.patch_object("v1", "nodes", "gpu-node-1", {"status": {"allocatable": dict(node["status"]["allocatable"], **{GPU: "3"})}})

    fake.add_reconciler(add_gpu_when_b_is_created)
    play_volcano(fake)
    result = run(fake, capsys)["result"]
    held = checks(result)["gang_job_b_held"]
    assert held["status"] == "error"
    assert "was scheduled completely" in held["message"] and "proves nothing" in held["message"]
    assert leftovers(fake) == []


# --------------------------------------------------------------------------- test pods, hold window, mechanisms, causes


def capture(fake, api_version, plural):
    """The bodies of the objects created of that kind, as the API server received them."""
    seen = []
    fake.on_create(api_version, plural, lambda obj, server, dry_run: seen.append(copy.deepcopy(obj)))
    return seen


@pytest.mark.parametrize("scheduler", ["volcano", "kueue"])
def test_job_pods_come_from_the_builder_and_are_admitted_under_restricted(fake, capsys, scheduler):
    """The fake job controllers reject pods that violate restricted (our namespaces enforce it), as the real ones do."""
    add_node(fake, gpus=2)
    install_volcano(fake)
    install_kueue(fake)
    play_volcano(fake)
    play_kueue(fake)
    jobs = capture(fake, gang.VOLCANO_JOB_API if scheduler == "volcano" else "batch/v1", "jobs")
    namespaces = capture(fake, "v1", "namespaces")
    queues = capture(fake, "kueue.x-k8s.io/v1beta2", "clusterqueues")
    result = run(fake, capsys, scheduler=scheduler, image_registry="mirror.example:5000",
                 tolerations=[{"key": "dedicated", "operator": "Exists", "effect": "NoSchedule"}])["result"]
    assert result["status"] == "passed", result["checks"]
    assert len(jobs) == 2
    for job in jobs:
        template = job["spec"]["tasks"][0]["template"] if scheduler == "volcano" else job["spec"]["template"]
        assert testpods.hardening_problems(template["spec"]) == []
        container = template["spec"]["containers"][0]
        assert container["image"] == "mirror.example:5000/e2e-test-images/agnhost:2.53"
        assert container["resources"]["limits"][GPU] == container["resources"]["requests"][GPU] == "1"
        assert {"key": GPU, "operator": "Exists", "effect": "NoSchedule"} in template["spec"]["tolerations"]
        assert {"key": "dedicated", "operator": "Exists", "effect": "NoSchedule"} in template["spec"]["tolerations"]
    namespace = namespaces[0]
    assert namespace["metadata"]["labels"]["pod-security.kubernetes.io/enforce"] == "restricted"
    if scheduler == "kueue":
        queue = queues[0]
        group = queue["spec"]["resourceGroups"][0]
        assert group["coveredResources"] == [GPU, "cpu", "memory"]
        assert group["flavors"][0]["resources"][0] == {"name": GPU, "nominalQuota": "2"}
    assert evidence(result, "test-images") == {"agnhost": "mirror.example:5000/e2e-test-images/agnhost:2.53"}


def test_partial_binding_that_later_disappears_still_fails(fake, capsys):
    """The verdict covers the whole hold window: 2 of 3 pods bound, then evicted, is a gang violation."""
    add_node(fake, gpus=2)
    install_volcano(fake)
    play_volcano(fake, mode="evict")
    result = run(fake, capsys, hold_seconds=3)["result"]
    held = checks(result)["gang_job_b_held"]
    assert (held["status"], held["cause"], held["kind"]) == ("failed", "capability", "exercise")
    assert held["message"].startswith("job B: gang violated: 2 of 3 pods bound")
    assert "at the end of the window: none of the 3 pods bound" in held["message"]
    assert "gang-b-worker-0" in held["observed"]["timeline"]
    assert result["status"] == "failed"
    assert leftovers(fake) == []


def test_volcano_gang_plugin_is_named_as_the_mechanism(fake, capsys):
    add_node(fake, gpus=2)
    install_volcano(fake)
    play_volcano(fake)
    result = run(fake, capsys)["result"]
    held = checks(result)["gang_job_b_held"]
    assert "held by scheduling: Volcano gang plugin (PodGroup" in held["message"]
    assert evidence(result, "job-b-held-by")["mechanism"].startswith("scheduling: Volcano gang plugin")
    assert evidence(result, "job-b-held-by")["requested_resources"] == ["cpu", "memory", GPU]


def test_volcano_enqueue_rejection_for_the_gang_resource_passes_as_admission(fake, capsys):
    add_node(fake, gpus=2)
    install_volcano(fake)
    play_volcano(fake, mode="enqueue:resource in cluster is overused: overused nvidia.com/gpu")
    result = run(fake, capsys)["result"]
    held = checks(result)["gang_job_b_held"]
    assert held["status"] == "passed", held
    assert "held by admission: Volcano enqueue (overcommit plugin" in held["message"]
    assert "overused nvidia.com/gpu" in held["message"]
    assert result["status"] == "passed"


@pytest.mark.parametrize("message,named", [
    ("resource in cluster is overused: overused cpu", "cpu"),
    ("resource in cluster is overused: overused pods", "pods"),
    ("queue resource quota insufficient: insufficient memory, insufficient nvidia.com/gpu", "memory"),
])
def test_volcano_enqueue_rejection_for_another_resource_is_an_error_naming_it(fake, capsys, message, named):
    add_node(fake, gpus=2)
    install_volcano(fake)
    play_volcano(fake, mode="enqueue:" + message)
    result = run(fake, capsys)["result"]
    held = checks(result)["gang_job_b_held"]
    assert (held["status"], held["cause"]) == ("error", "no_capacity"), held
    assert "but for lack of %s, not of the gang resource nvidia.com/gpu" % named in held["message"]
    assert held["observed"]["mechanism"].startswith("admission: Volcano enqueue")
    assert evidence(result, "job-b-held-by")["other_resources"] == [named]
    assert result["status"] == "error"
    assert leftovers(fake) == []


def test_volcano_enqueue_rejection_naming_no_resource_proves_nothing(fake, capsys):
    """Older Volcano names no resource; the rendered pods request cpu and memory besides the GPU, so it is no proof."""
    add_node(fake, gpus=2)
    install_volcano(fake)
    play_volcano(fake, mode="enqueue:queue resource quota insufficient")
    result = run(fake, capsys)["result"]
    held = checks(result)["gang_job_b_held"]
    assert held["status"] == "error", held
    assert "names no resource and job B requests more than nvidia.com/gpu" in held["message"]


def test_kueue_quota_is_named_as_the_mechanism(fake, capsys):
    add_node(fake, gpus=2)
    install_kueue(fake)
    play_kueue(fake)
    result = run(fake, capsys, scheduler="kueue")["result"]
    held = checks(result)["gang_job_b_held"]
    assert held["status"] == "passed", held
    assert "held by admission: Kueue quota" in held["message"]


@pytest.mark.parametrize("waiting,cause", [
    (("ErrImagePull", 'failed to pull and unpack image "registry.k8s.io/e2e-test-images/agnhost:2.53": not found'), "image_pull"),
    (("ContainerCreating", ""), "image_pull_timeout"),
])
def test_job_a_pods_that_cannot_start_are_an_error_naming_the_image(fake, capsys, waiting, cause):
    add_node(fake, gpus=2)
    install_volcano(fake)
    play_volcano(fake, waiting=waiting)
    result = run(fake, capsys, timeout=2)["result"]
    job_a = checks(result)["gang_job_a_scheduled"]
    assert (job_a["status"], job_a["cause"]) == ("error", cause), job_a
    assert "registry.k8s.io/e2e-test-images/agnhost:2.53" in job_a["message"]
    assert checks(result)["gang_job_b_held"]["status"] == "skipped"
    assert result["status"] == "error"
    assert leftovers(fake) == []


def test_job_a_pods_rejected_by_a_quota_are_an_error(fake, capsys):
    """A ResourceQuota in the namespace (e.g. from a policy engine) rejects the job controller's pods."""
    add_node(fake, gpus=2)
    install_kueue(fake)
    play_kueue(fake)
    recorded = fixture_response("k8s-fixtures", "errors", "403-quota-exceeded-second-pod.json")["message"]

    def quota(server):
        for job in server.objects("batch/v1", "jobs"):
            if not job["spec"].get("suspend"):
                ns = job["metadata"]["namespace"]
                for pod in server.objects("v1", "pods", namespace=ns):
                    server.delete_object("v1", "pods", pod["metadata"]["name"], ns)
                event(server, ns, "Job", job["metadata"]["name"], "FailedCreate", "Error creating: " + recorded, "job-controller")

    fake.add_reconciler(quota)
    result = run(fake, capsys, scheduler="kueue", timeout=1)["result"]
    job_a = checks(result)["gang_job_a_scheduled"]
    assert (job_a["status"], job_a["cause"]) == ("error", "resource_quota"), job_a
    assert "exceeded quota: compute-quota" in job_a["message"]
    assert leftovers(fake) == []


def test_kueue_holding_job_b_for_cpu_quota_is_an_error_naming_cpu(fake, capsys):
    add_node(fake, gpus=2)
    install_kueue(fake)
    play_kueue(fake, mode="cpu_quota")
    result = run(fake, capsys, scheduler="kueue")["result"]
    held = checks(result)["gang_job_b_held"]
    assert (held["status"], held["cause"]) == ("error", "no_capacity"), held
    assert "but for lack of cpu, not of the gang resource nvidia.com/gpu" in held["message"]
    assert held["observed"]["mechanism"].startswith("admission: Kueue quota")
    assert leftovers(fake) == []
