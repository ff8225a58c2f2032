"""Why a pod is stuck, on the recorded real pod objects and on kubelet status shapes."""

from ansible_collections.ai_conformance.rke2.plugins.module_utils import pods
from tests.support.shared import fixture_response


def waiting(reason, message=""):
    statuses = [{"name": "c", "state": {"waiting": {"reason": reason, "message": message}}}]
    return {"metadata": {"name": "p"}, "status": {"phase": "Pending", "containerStatuses": statuses}}


def test_recorded_unschedulable_pod_reports_the_scheduler_message():
    pod = fixture_response("k8s-fixtures", "objects", "pod-gpu-pod-3.unschedulable.json")
    problem = pods.pod_problem(pod)
    assert problem["kind"] == "unschedulable"
    assert "1 Insufficient nvidia.com/gpu" in problem["message"]
    assert pods.pod_problem(pod, unschedulable_is_problem=False) is None


def test_recorded_scheduled_pod_is_not_stuck_nor_running():
    pod = fixture_response("k8s-fixtures", "objects", "pod-gpu-pod-1.scheduled.json")
    assert pods.pod_problem(pod) is None
    assert pods.reached(pod, "Scheduled")
    assert not pods.reached(pod, "Running")
    assert pods.summarize([pod])[0]["node"] == "gpu-node-1"


def test_container_waiting_reasons():
    assert pods.pod_problem(waiting("ImagePullBackOff", 'Back-off pulling image "x"'))["kind"] == "image"
    assert pods.pod_problem(waiting("ErrImagePull"))["kind"] == "image"
    assert pods.pod_problem(waiting("CrashLoopBackOff"))["kind"] == "crash"
    assert pods.pod_problem(waiting("CreateContainerConfigError"))["kind"] == "config"
    assert pods.pod_problem(waiting("ContainerCreating")) is None
    assert 'Back-off pulling image "x"' in pods.pod_problem(waiting("ImagePullBackOff", 'Back-off pulling image "x"'))["message"]


def test_failed_pod_names_exit_codes():
    statuses = [{"name": "c", "state": {"terminated": {"exitCode": 3, "reason": "Error"}}}]
    pod = {"metadata": {"name": "p"}, "status": {"phase": "Failed", "containerStatuses": statuses}}
    problem = pods.pod_problem(pod)
    assert problem["kind"] == "failed" and "c exited 3 (Error)" in problem["message"]


def test_running_requires_ready():
    pod = {"metadata": {"name": "p"}, "spec": {"nodeName": "n"}, "status": {"phase": "Running", "conditions": [{"type": "Ready", "status": "False"}]}}
    assert not pods.reached(pod, "Running")
    pod["status"]["conditions"][0]["status"] = "True"
    assert pods.reached(pod, "Running")
