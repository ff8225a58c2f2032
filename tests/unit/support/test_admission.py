"""The fake's built-in admission (tests/support/admission.py) as pure functions; wording as kube-apiserver v1.34."""

from decimal import Decimal

import pytest

from tests.support import admission


def spec(containers, **pod):
    return dict(pod, containers=containers)


def test_restricted_pluralizes_and_joins_setters_like_pod_security():
    pod = spec([{"name": "a", "securityContext": {"runAsUser": 0, "seccompProfile": {"type": "Unconfined"}}},
                {"name": "b", "ports": [{"hostPort": 81}, {"hostPort": 80}]},
                {"name": "c", "ports": [{"hostPort": 80}]}],
               securityContext={"runAsUser": 0, "runAsNonRoot": False},
               volumes=[{"name": "x", "hostPath": {}}, {"name": "y", "gcePersistentDisk": {}}])
    found = dict(admission.pod_security_violations("restricted", pod))
    assert found["runAsUser=0"] == 'pod and container "a" must not set runAsUser=0'
    assert found["runAsNonRoot != true"] == "pod must not set securityContext.runAsNonRoot=false"
    assert found["hostPort"] == 'containers "b", "c" use hostPorts 80, 81'
    assert found["restricted volume types"] == 'volumes "x", "y" use restricted volume types "gcePersistentDisk", "hostPath"'
    assert found["seccompProfile"] == (
        'container "a" must not set securityContext.seccompProfile.type to "Unconfined"; pod or containers "b", "c" '
        'must set securityContext.seccompProfile.type to "RuntimeDefault" or "Localhost"')
    assert list(found)[:4] == ["allowPrivilegeEscalation != false", "unrestricted capabilities", "hostPath volumes", "hostPort"]


def test_baseline_allows_the_default_pod_and_net_bind_service():
    default = spec([{"name": "c", "securityContext": {"capabilities": {"add": ["NET_BIND_SERVICE", "CHOWN"]}}}])
    assert admission.pod_security_violations("baseline", default) == []
    assert admission.pod_security_violations("privileged", spec([{"name": "c", "securityContext": {"privileged": True}}])) == []
    admin = spec([{"name": "c", "securityContext": {"capabilities": {"add": ["SYS_ADMIN", "NET_ADMIN"]}}}])
    assert admission.pod_security_violations("baseline", admin) == [
        ("non-default capabilities", 'container "c" must not include "NET_ADMIN", "SYS_ADMIN" in securityContext.capabilities.add')]


def test_workloads_get_the_stricter_level_as_warning_and_invalid_levels_are_restricted():
    deployment = {"spec": {"template": {"spec": spec([{"name": "c", "securityContext": {"privileged": True}}])}}}
    labels = {"pod-security.kubernetes.io/enforce": "baseline", "pod-security.kubernetes.io/warn": "restricted"}
    denied, warnings = admission.pod_security_admission(labels, "apps", "deployments", deployment)
    assert denied is None and warnings[0].startswith('would violate PodSecurity "restricted:latest": allowPrivilegeEscalation')
    assert admission.namespace_levels({"pod-security.kubernetes.io/enforce": "bogus"})["enforce"] == "restricted"
    assert admission.warning_header('a "b"') == '299 - "a \\"b\\""'


@pytest.mark.parametrize("text,value", [("500m", Decimal("0.5")), ("1", Decimal(1)), ("256Mi", Decimal(256 * 2 ** 20)),
                                        ("1e3", Decimal(1000)), ("2k", Decimal(2000))])
def test_quantities(text, value):
    assert admission.parse_quantity(text) == value


def test_quantity_formats():
    assert admission.format_quantity(Decimal("0.5")) == "500m" and admission.format_quantity(Decimal(1)) == "1"
    assert admission.format_quantity(Decimal(320 * 2 ** 20), binary=True) == "320Mi"
    assert admission.format_quantity(Decimal("1.5")) == "1500m" and admission.format_quantity(0) == "0"


def test_quota_messages_list_only_the_exceeded_resources():
    hard = {"pods": "10", "requests.cpu": "1", "requests.memory": "1Gi"}
    used = {"pods": Decimal(1), "requests.cpu": Decimal("0.5"), "requests.memory": Decimal(0)}
    requested = {"pods": Decimal(1), "requests.cpu": Decimal("0.75"), "requests.memory": Decimal(2 ** 20)}
    assert admission.quota_exceeded_error("q", hard, used, requested) == (
        "exceeded quota: q, requested: requests.cpu=750m, used: requests.cpu=500m, limited: requests.cpu=1")
    pod = {"spec": {"containers": [{"name": "b", "resources": {}}, {"name": "a", "resources": {"limits": {"cpu": "1"}}}]}}
    assert admission.quota_constraint_error({"limits.cpu": "2", "requests.memory": "1Gi"}, pod) == (
        "must specify limits.cpu for: b; requests.memory for: a,b")


def test_microtime_needs_six_digits_and_normalises_offsets():
    assert admission.parse_microtime("2026-12-01T18:03:11.403760+01:00") == "2026-12-01T17:03:11.403760Z"
    with pytest.raises(ValueError, match=r'cannot parse "\.4Z" as "\.000000"'):
        admission.parse_microtime("2026-12-01T17:03:11.4Z")


def test_limit_range_defaults_keep_what_the_container_set():
    pod = {"metadata": {}, "spec": {"containers": [{"name": "c", "resources": {"limits": {"cpu": "2"}, "requests": {"cpu": "2"}}}]}}
    limit_range = {"spec": {"limits": [{"type": "Container", "default": {"cpu": "500m", "memory": "256Mi"},
                                        "defaultRequest": {"cpu": "100m", "memory": "64Mi"}}]}}
    admission.limit_range_defaults(pod, [limit_range])
    assert pod["spec"]["containers"][0]["resources"] == {"limits": {"cpu": "2", "memory": "256Mi"},
                                                         "requests": {"cpu": "2", "memory": "64Mi"}}
    assert pod["metadata"]["annotations"]["kubernetes.io/limit-ranger"] == (
        "LimitRanger plugin set: memory request for container c; memory limit for container c")
