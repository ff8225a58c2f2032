"""Manifests of gang_scheduling, validated against the real Volcano and Kueue CRD schemas in ../shared/crds."""

import copy

import pytest

from ansible_collections.ai_conformance.rke2.plugins.module_utils import gang, testpods
from tests.support import crdschema
from tests.support.shared import fixture_response

LABELS = {"app.kubernetes.io/managed-by": "ai-conformance-rke2", "ai-conformance.rke2/requirement": "gang_scheduling",
          "ai-conformance.rke2/run-id": "r1"}


BUILDER = testpods.PodBuilder()


def template(plan, job, builder=BUILDER, node_selector=None):
    return gang.pod_template(builder, plan, job, LABELS, node_selector)


def plan_for(free, resource=gang.GPU_RESOURCE, max_pods=8):
    capacity = {"resource": resource, "excluded": [], "allocatable_units": sum(free),
                "nodes": [{"node": "node-%d" % i, "free_units": f, "consumers": []} for i, f in enumerate(free)]}
    return gang.plan_jobs(capacity, max_pods)


def containers(manifest):
    if manifest["kind"] == "Job" and manifest["apiVersion"] == gang.VOLCANO_JOB_API:
        return [c for task in manifest["spec"]["tasks"] for c in task["template"]["spec"]["containers"]]
    return manifest["spec"]["template"]["spec"]["containers"]


def pod_specs(manifest):
    if manifest["apiVersion"] == gang.VOLCANO_JOB_API:
        return [task["template"]["spec"] for task in manifest["spec"]["tasks"]]
    return [manifest["spec"]["template"]["spec"]]


def assert_request_equals_limit(manifest, resource):
    # the apiserver rejects extended resources whose request != limit:
    # ../shared/k8s-fixtures/errors/422-pod-gpu-request-not-equal-limit.json
    error = fixture_response("k8s-fixtures", "errors", "422-pod-gpu-request-not-equal-limit.json")
    assert "must be equal to nvidia.com/gpu limit" in error["message"]
    for container in containers(manifest):
        res = container["resources"]
        assert res["requests"][resource] == res["limits"][resource]
    for spec in pod_specs(manifest):
        assert testpods.hardening_problems(spec) == []


@pytest.mark.parametrize("job", ["a", "b"])
def test_volcano_job_is_valid_and_gangs_all_pods(job):
    plan = plan_for([2])
    manifest = gang.render_volcano_job("gang-%s" % job, "aic-gang-scheduling-x1", plan, job, template(plan, job), LABELS)
    crdschema.validate("volcano", manifest)
    count = plan["job_%s_pods" % job]
    assert count == (2 if job == "a" else 3)
    assert manifest["spec"]["minAvailable"] == count
    assert sum(t["replicas"] for t in manifest["spec"]["tasks"]) == count
    assert manifest["spec"]["schedulerName"] == "volcano"
    assert manifest["spec"]["queue"] == "default"
    assert_request_equals_limit(manifest, gang.GPU_RESOURCE)
    spec = pod_specs(manifest)[0]
    assert spec["containers"][0]["image"] == testpods.IMAGES["agnhost"]
    assert spec["containers"][0]["args"] == ["pause"]
    assert {"key": "nvidia.com/gpu", "operator": "Exists", "effect": "NoSchedule"} in spec["tolerations"]
    assert "affinity" not in spec
    template_labels = manifest["spec"]["tasks"][0]["template"]["metadata"]["labels"]
    assert template_labels[gang.GANG_LABEL] == job and template_labels["ai-conformance.rke2/run-id"] == "r1"
    assert gang.pod_selector(job) == "%s=%s" % (gang.GANG_LABEL, job)


def test_volcano_job_has_the_shape_the_apiserver_accepted():
    """Our job uses the same fields as the recorded, accepted vcjob-gang (minAvailable 2, 2 x 1 GPU)."""
    recorded = fixture_response("k8s-fixtures", "objects", "volcano-job-vcjob-gang.create.json")
    ours = gang.render_volcano_job("vcjob-gang", "ai-fixtures", plan_for([2]), "a", template(plan_for([2]), "a"), LABELS)
    assert ours["apiVersion"] == recorded["apiVersion"] and ours["kind"] == recorded["kind"]
    for key in ("minAvailable", "schedulerName", "queue"):
        assert ours["spec"][key] == recorded["spec"][key]
    assert ours["spec"]["tasks"][0]["replicas"] == recorded["spec"]["tasks"][0]["replicas"]
    assert set(ours["spec"]) - set(recorded["spec"]) == set()  # maxRetry was defaulted there, set here


def test_volcano_job_pinned_and_cpu():
    plan = plan_for([15400, 7850], "cpu")
    builder = testpods.PodBuilder({"images": {"agnhost": "example.org/agnhost:1"},
                                   "tolerations": [{"key": "dedicated", "operator": "Equal", "value": "ml", "effect": "NoSchedule"}]})
    manifest = gang.render_volcano_job("gang-b", "ns", plan, "b", template(plan, "b", builder, {"pool": "batch"}), LABELS,
                                       queue="research")
    crdschema.validate("volcano", manifest)
    spec = pod_specs(manifest)[0]
    assert spec["containers"][0]["resources"]["requests"] == {"cpu": "2200m", "memory": "16Mi"}
    assert spec["containers"][0]["resources"]["limits"]["cpu"] == "2200m"
    assert spec["containers"][0]["image"] == "example.org/agnhost:1"
    assert spec["nodeSelector"] == {"pool": "batch"}
    assert spec["tolerations"] == [{"key": "dedicated", "operator": "Equal", "value": "ml", "effect": "NoSchedule"}]
    terms = spec["affinity"]["nodeAffinity"]["requiredDuringSchedulingIgnoredDuringExecution"]["nodeSelectorTerms"]
    assert terms == [{"matchFields": [{"key": "metadata.name", "operator": "In", "values": ["node-0"]}]}]
    assert manifest["spec"]["queue"] == "research" and manifest["spec"]["minAvailable"] == 8


def test_invalid_volcano_job_is_caught_by_the_schema():
    """The validator itself rejects what the apiserver rejected (422-volcano-job-invalid.json)."""
    manifest = gang.render_volcano_job("gang-a", "ns", plan_for([2]), "a", template(plan_for([2]), "a"), LABELS)
    broken = copy.deepcopy(manifest)
    broken["spec"]["minAvailable"] = "two"
    with pytest.raises(Exception):
        crdschema.validate("volcano", broken)
    unknown = copy.deepcopy(manifest)
    unknown["spec"]["minMember"] = 2
    with pytest.raises(AssertionError, match="unknown field"):
        crdschema.validate("volcano", unknown)


@pytest.mark.parametrize("api_version", ["kueue.x-k8s.io/v1beta2", "kueue.x-k8s.io/v1beta1"])
def test_kueue_queues_are_valid_with_quota_equal_to_free_capacity(api_version):
    plan = plan_for([8, 8])
    flavor, cluster_queue, local_queue = gang.render_kueue_queues("aic-gang-r1", "aic-gang-scheduling-x1", plan, template(plan, "b"),
                                                                  LABELS, api_version)
    for manifest in (flavor, cluster_queue, local_queue):
        crdschema.validate("kueue", manifest)
        assert manifest["apiVersion"] == api_version
        assert manifest["metadata"]["labels"]["ai-conformance.rke2/run-id"] == "r1"
    group = cluster_queue["spec"]["resourceGroups"][0]
    # Kueue admits nothing that requests an uncovered resource: cpu and memory get twice job B's need
    assert group["coveredResources"] == [gang.GPU_RESOURCE, "cpu", "memory"]
    assert group["flavors"] == [{"name": flavor["metadata"]["name"], "resources": [
        {"name": gang.GPU_RESOURCE, "nominalQuota": "16"}, {"name": "cpu", "nominalQuota": "100m"},
        {"name": "memory", "nominalQuota": "160Mi"}]}]
    assert cluster_queue["spec"]["namespaceSelector"] == {"matchLabels": {"kubernetes.io/metadata.name": "aic-gang-scheduling-x1"}}
    assert local_queue["spec"]["clusterQueue"] == cluster_queue["metadata"]["name"]
    assert local_queue["metadata"]["namespace"] == "aic-gang-scheduling-x1"
    assert "namespace" not in cluster_queue["metadata"] and "namespace" not in flavor["metadata"]


def test_kueue_cpu_quota_is_a_quantity():
    plan = plan_for([15400], "cpu")
    cluster_queue = gang.render_kueue_queues("q", "ns", plan, template(plan, "b"), LABELS)[1]
    crdschema.validate("kueue", cluster_queue)
    assert cluster_queue["spec"]["resourceGroups"][0]["flavors"][0]["resources"][0]["nominalQuota"] == "15400m"


@pytest.mark.parametrize("job", ["a", "b"])
def test_kueue_batch_job_is_suspended_and_queued(job):
    plan = plan_for([2])
    manifest = gang.render_kueue_job("gang-%s" % job, "ns", plan, job, "aic-gang-r1", template(plan, job), LABELS)
    count = plan["job_%s_pods" % job]
    assert manifest["apiVersion"] == "batch/v1" and manifest["kind"] == "Job"
    assert manifest["spec"]["suspend"] is True
    assert manifest["metadata"]["labels"][gang.KUEUE_QUEUE_LABEL] == "aic-gang-r1"
    assert manifest["spec"]["parallelism"] == manifest["spec"]["completions"] == count
    assert manifest["spec"]["template"]["metadata"]["labels"][gang.GANG_LABEL] == job
    assert gang.KUEUE_QUEUE_LABEL not in manifest["spec"]["template"]["metadata"]["labels"]
    assert manifest["spec"]["template"]["spec"]["restartPolicy"] == "Never"
    assert_request_equals_limit(manifest, gang.GPU_RESOURCE)
