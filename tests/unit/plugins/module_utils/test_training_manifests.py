"""The TFJob probes and the PyTorchJob robust_controller creates, validated against the real v1.8.1 CRDs."""

import jsonschema
import pytest

from ansible_collections.ai_conformance.rke2.plugins.module_utils import testpods, training
from tests.support import crdschema
from tests.support.shared import fixture_response, load_json

PROFILE = training.operator_profile("kubeflow_training")
COMPONENT = "kubeflow-training-operator"


def test_invalid_probe_passes_the_crd_schema():
    """Only the operator's webhook can reject it: the schema accepts a container without image."""
    probe = training.render_probe(PROFILE, "aic-robust-controller-x1")
    crdschema.validate(COMPONENT, probe)
    container = probe["spec"]["tfReplicaSpecs"]["Chief"]["template"]["spec"]["containers"][0]
    assert container == {"name": "tensorflow"}
    assert probe["metadata"] == {"name": "aic-invalid-tfjob", "namespace": "aic-robust-controller-x1"}


def test_invalid_probe_is_the_recorded_one():
    """Same spec as the TFJob the recorded webhook denied (errors/webhook-denied-dryrun-create-tfjob-no-image.json)."""
    recorded = load_json("k8s-fixtures", "errors", "webhook-denied-dryrun-create-tfjob-no-image.json")["request"]["body"]
    assert training.render_probe(PROFILE, "ns")["spec"] == recorded["spec"]


def test_valid_probe_has_the_image():
    probe = training.render_probe(PROFILE, "ns", name="aic-valid-tfjob", image="registry.local/busybox:1.36.1")
    crdschema.validate(COMPONENT, probe)
    container = probe["spec"]["tfReplicaSpecs"]["Chief"]["template"]["spec"]["containers"][0]
    assert container == {"name": "tensorflow", "image": "registry.local/busybox:1.36.1"}
    assert probe["metadata"]["name"] == "aic-valid-tfjob"


def test_render_does_not_mutate_the_profile():
    training.render_probe(PROFILE, "ns", image="x")
    training.render_job(PROFILE, "ns", testpods.PodBuilder())
    assert "image" not in PROFILE["probe"]["template"]["spec"]["tfReplicaSpecs"]["Chief"]["template"]["spec"]["containers"][0]
    assert "template" not in PROFILE["job"]["template"]["spec"]["pytorchReplicaSpecs"]["Master"]


@pytest.mark.parametrize("params, image", [
    ({}, testpods.IMAGES["busybox"]),
    ({"image_registry": "harbor.example.com/mirror"}, "harbor.example.com/mirror/e2e-test-images/busybox:1.36.1-1"),
    ({"images": {"busybox": "docker.io/library/busybox:1.36.1"}}, "docker.io/library/busybox:1.36.1"),
])
def test_job_validates(params, image):
    toleration = {"key": "nvidia.com/gpu", "operator": "Exists", "effect": "NoSchedule"}
    builder = testpods.PodBuilder(dict(params, tolerations=[toleration]))
    labels = {"app.kubernetes.io/managed-by": "ai-conformance-rke2"}
    job = training.render_job(PROFILE, "aic-robust-controller-x1", builder, labels=labels)
    crdschema.validate(COMPONENT, job)
    specs = job["spec"]["pytorchReplicaSpecs"]
    assert list(specs) == ["Master"], "a Worker would get v1.8's wait-for-master init container (another image)"
    master = specs["Master"]
    assert master["replicas"] == 1 and master["restartPolicy"] == "Never"
    # the replica's pod template is the builder's: restricted, requests/limits, tolerations, mirrored image
    pod_spec = master["template"]["spec"]
    assert testpods.hardening_problems(pod_spec) == []
    assert pod_spec["tolerations"] == [toleration] and pod_spec["restartPolicy"] == "Never"
    assert master["template"]["metadata"]["labels"] == labels
    container = pod_spec["containers"][0]
    assert container["name"] == "pytorch", "the operator requires a container named pytorch"
    assert container["image"] == image
    assert container["command"][:2] == ["sh", "-c"] and container["command"][2].endswith("exit 0")
    assert job["metadata"]["labels"] == labels
    assert job["spec"]["runPolicy"]["backoffLimit"] == 0


def test_schema_catches_a_broken_job():
    """The validation is real: a container without name is what the schema rejects (cf. 422-tfjob-missing-container-name)."""
    job = training.render_job(PROFILE, "ns", testpods.PodBuilder())
    del job["spec"]["pytorchReplicaSpecs"]["Master"]["template"]["spec"]["containers"][0]["name"]
    with pytest.raises(jsonschema.ValidationError):
        crdschema.validate(COMPONENT, job)


def test_recorded_valid_tfjob_validates_too():
    crdschema.validate(COMPONENT, fixture_response("k8s-fixtures", "objects", "tfjob-mnist.json"))
