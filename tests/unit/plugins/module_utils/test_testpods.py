"""The one test-pod builder: restricted, bounded resources, tolerations, pinned and mirrorable images."""

import pytest

from ansible_collections.ai_conformance.rke2.plugins.module_utils import testpods
from ansible_collections.ai_conformance.rke2.plugins.module_utils.testpods import PodBuilder
from tests.support.shared import fixture_response


@pytest.mark.parametrize("reference,registry,expected", [
    ("registry.k8s.io/e2e-test-images/agnhost:2.53", "mirror.local:5000",
     "mirror.local:5000/e2e-test-images/agnhost:2.53"),
    ("nvcr.io/nvidia/cuda:12.9.1-base-ubuntu24.04", "harbor.example.com/proxy/",
     "harbor.example.com/proxy/nvidia/cuda:12.9.1-base-ubuntu24.04"),
    ("busybox:1.36", "mirror.local", "mirror.local/library/busybox:1.36"),
    ("prom/prometheus:v3.0.0", "mirror.local", "mirror.local/prom/prometheus:v3.0.0"),
    ("localhost/x:1", "m", "m/x:1"),
    ("registry.k8s.io/pause:3.10", None, "registry.k8s.io/pause:3.10"),
])
def test_rewrite_image(reference, registry, expected):
    assert testpods.rewrite_image(reference, registry) == expected


def test_every_image_is_pinned():
    for key, reference in testpods.IMAGES.items():
        name = reference.rsplit("/", 1)[-1]
        assert ":" in name or "@sha256:" in reference, key
        assert not name.endswith(":latest"), key


def test_images_mirror_override_and_unknown():
    pods = PodBuilder({"image_registry": "mirror.local", "images": {"busybox": "quay.io/me/busybox:2"}})
    assert pods.image("busybox") == "mirror.local/me/busybox:2"
    assert pods.image("agnhost") == "mirror.local/e2e-test-images/agnhost:2.53"
    with pytest.raises(KeyError, match="unknown test image"):
        pods.image("nope")


def test_pod_is_restricted_bounded_and_tolerant():
    user_toleration = {"key": "dedicated", "operator": "Equal", "value": "ai", "effect": "NoSchedule"}
    pods = PodBuilder({"tolerations": [user_toleration], "image_pull_secrets": ["registry-creds/mirror-pull", "plain"]})
    pod = pods.pod("probe", "ns", [pods.container("probe", "busybox", command=["sh", "-c", "ls /dev"],
                                                  resources={"limits": {"nvidia.com/gpu": 1}})],
                   labels={"a": "b"}, node_name="gpu-node-1")
    spec = pod["spec"]
    assert testpods.hardening_problems(spec) == []
    container = spec["containers"][0]
    assert container["resources"]["limits"] == {"cpu": "200m", "memory": "64Mi", "nvidia.com/gpu": 1}
    assert container["securityContext"]["capabilities"] == {"drop": ["ALL"]}
    assert spec["securityContext"]["runAsUser"] == 65534 and spec["securityContext"]["runAsNonRoot"] is True
    assert spec["tolerations"] == [user_toleration, {"key": "nvidia.com/gpu", "operator": "Exists", "effect": "NoSchedule"}]
    assert spec["imagePullSecrets"] == [{"name": "mirror-pull"}, {"name": "plain"}]
    assert spec["nodeName"] == "gpu-node-1" and spec["automountServiceAccountToken"] is False
    assert pod["metadata"] == {"name": "probe", "namespace": "ns", "labels": {"a": "b"}}


def test_cpu_pod_gets_only_user_tolerations():
    spec = PodBuilder({}).pod_spec([PodBuilder({}).container("c", "agnhost", args=["netexec"])])
    assert "tolerations" not in spec
    assert PodBuilder({}).tolerations_for(["cpu", "kubernetes.io/batch", "hugepages-2Mi"]) == []


def test_hardening_problems_on_the_recorded_psa_rejected_pod():
    # the pod the real apiserver rejected under restricted (errors/403-psa-restricted-create-plain-pod.json)
    from tests.support.shared import load_json
    plain = load_json("k8s-fixtures", "errors", "403-psa-restricted-create-plain-pod.json")["request"]["body"]
    problems = testpods.hardening_problems(plain["spec"])
    assert any("allowPrivilegeEscalation" in p for p in problems)
    assert any("seccompProfile" in p for p in problems)
    # and the one it admitted is restricted-compliant in every field restricted checks
    admitted = fixture_response("k8s-fixtures", "objects", "pod-restricted-ok.create.psa-restricted.json")
    assert [p for p in testpods.hardening_problems(admitted["spec"]) if "requests" not in p and "limits" not in p] == []


def test_template_and_claims():
    pods = PodBuilder({})
    template = pods.template([pods.container("w", "busybox", claims=["gpu"])], labels={"x": "y"},
                             restart_policy="OnFailure", resource_claims=[{"name": "gpu", "resourceClaimTemplateName": "t"}])
    assert template["metadata"]["labels"] == {"x": "y"}
    assert template["spec"]["restartPolicy"] == "OnFailure"
    assert template["spec"]["containers"][0]["resources"]["claims"] == [{"name": "gpu"}]
    assert template["spec"]["resourceClaims"][0]["resourceClaimTemplateName"] == "t"
