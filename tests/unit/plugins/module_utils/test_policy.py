"""The status policy, row by row, on the real answers and objects in ../shared/k8s-fixtures."""

import copy
import os
import re

import pytest

from ansible_collections.ai_conformance.rke2.plugins.module_utils import policy
from ansible_collections.ai_conformance.rke2.plugins.module_utils.kube import (
    Stuck, Unreachable, WaitTimeout, error_from_status, ResourceNotServed)
from ansible_collections.ai_conformance.rke2.plugins.module_utils.result import ResultBuilder, make_check
from tests.support.shared import fixture_response, load_json

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))))

# The classification table, as docs/development.md states it.
EXPECTED = {
    "capability": "failed", "not_installed": "failed",
    "image_pull": "error", "image_pull_timeout": "error", "no_capacity": "error", "untolerated_taint": "error",
    "no_test_target": "error", "pod_security": "error", "limit_range": "error", "resource_quota": "error",
    "policy_webhook": "error", "rbac": "error", "network_policy": "error", "api_unavailable": "error",
    "test_tooling": "error", "namespace_terminating": "error", "timeout": "error", "invalid_request": "error",
    "internal": "error",
}


@pytest.mark.parametrize("cause", sorted(EXPECTED))
def test_each_cause_row(cause):
    assert policy.status_for(cause) == EXPECTED[cause]
    assert policy.meaning(cause)


def test_table_has_no_other_rows_and_unknown_cause_raises():
    assert set(policy.CAUSES) == set(EXPECTED)
    with pytest.raises(ValueError, match="unknown cause"):
        policy.status_for("flaky")


def test_docs_table_matches_code():
    with open(os.path.join(REPO, "docs", "development.md")) as handle:
        text = handle.read()
    rows = dict(re.findall(r"^\| `([a-z_]+)` \| `(failed|error)` \|", text, re.M))
    assert rows == EXPECTED


def _error(name):
    record = load_json("k8s-fixtures", "errors", name)
    return error_from_status(record["status_code"], record["response"], record["request"]["method"], record["request"]["path"])


@pytest.mark.parametrize("fixture,cause", [
    ("403-psa-restricted-create-plain-pod.json", "pod_security"),
    ("403-psa-baseline-create-hostnetwork-pod.json", "pod_security"),
    ("403-quota-exceeded-second-pod.json", "resource_quota"),
    ("403-quota-pod-without-requests-limits.json", "resource_quota"),
    ("403-nobody-cert-list-pods.json", "rbac"),
    ("403-nobody-cert-create-tfjob.json", "rbac"),
    ("403-anonymous-list-pods.json", "rbac"),
    ("401-invalid-bearer-token.json", "rbac"),
    ("webhook-denied-create-tfjob-no-image.json", "policy_webhook"),
    ("webhook-denied-create-tfjob-no-image.plain-message.json", "policy_webhook"),
    ("webhook-unreachable-create-tfjob.json", "policy_webhook"),
    ("403-create-in-terminating-namespace.json", "namespace_terminating"),
    ("404-unserved-group-custom-metrics.json", "not_installed"),
    ("422-pod-missing-image.json", "invalid_request"),
    ("503-proxy-service-no-endpoints.json", "api_unavailable"),
])
def test_recorded_api_errors(fixture, cause):
    assert policy.classify_api_error(_error(fixture)) == cause


def test_limit_range_and_throttling_and_connection():
    limit = error_from_status(403, {"kind": "Status", "reason": "Forbidden", "code": 403, "message":
                                    'pods "p" is forbidden: [maximum cpu usage per Container is 500m, but limit is 1]'},
                              "POST", "/api/v1/namespaces/x/pods")
    assert policy.classify_api_error(limit) == "limit_range"
    throttled = error_from_status(429, {"kind": "Status", "reason": "TooManyRequests", "code": 429, "message": "slow down"},
                                  "GET", "/api/v1/pods")
    assert policy.classify_api_error(throttled) == "api_unavailable"
    assert policy.classify_api_error(Unreachable("API server x unreachable (connection refused)")) == "api_unavailable"
    assert policy.classify_api_error(ResourceNotServed("no such group")) == "not_installed"
    assert policy.classify_api_error(WaitTimeout("gone")) == "timeout"


def test_scheduling_messages_from_recorded_pods():
    capacity = fixture_response("k8s-fixtures", "objects", "pod-gpu-pod-3.unschedulable.json")
    assert policy.classify_pod(capacity)[0] == "no_capacity"
    taint = fixture_response("k8s-fixtures", "objects", "pod-gpu-no-toleration.unschedulable.json")
    cause, message = policy.classify_pod(taint)
    assert cause == "untolerated_taint" and "untolerated taint" in message
    claims = fixture_response("k8s-fixtures", "objects", "pod-dra-pod-3-gpus.unschedulable.json")
    assert policy.classify_pod(claims)[0] == "no_capacity"


def _bound_pod(waiting_reason=None, image="registry.k8s.io/e2e-test-images/busybox:1.36.1-1"):
    pod = copy.deepcopy(fixture_response("k8s-fixtures", "objects", "pod-dra-pod.bound.json"))
    pod["spec"]["containers"][0]["image"] = image
    if waiting_reason:
        pod["status"]["containerStatuses"] = [{"name": pod["spec"]["containers"][0]["name"], "image": image, "ready": False,
                                               "state": {"waiting": {"reason": waiting_reason, "message": "rpc error"}}}]
    return pod


def test_image_pull_names_image_and_registry():
    cause, message = policy.classify_pod(_bound_pod("ImagePullBackOff", "mirror.example.com:5000/x/busybox:1"))
    assert cause == "image_pull"
    assert "mirror.example.com:5000/x/busybox:1" in message and "registry mirror.example.com:5000" in message


def test_still_creating_at_timeout_is_pull_timeout():
    cause, message = policy.classify_pod(_bound_pod("ContainerCreating"),
                                         events=[{"reason": "Pulling", "message": 'Pulling image "busybox"'}])
    assert cause == "image_pull_timeout"
    assert "gpu-node-1" in message and 'Pulling image "busybox"' in message
    # bound, no container status yet (recorded: no kubelet) is the same
    assert policy.classify_pod(_bound_pod())[0] == "image_pull_timeout"
    running = _bound_pod()
    running["status"]["phase"] = "Running"
    assert policy.classify_pod(running) is None


def test_stuck_causes():
    assert Stuck("x", kind="image").cause == "image_pull"
    assert Stuck("x", kind="crash").cause == "test_tooling"
    assert Stuck("x", kind="unschedulable", cause="untolerated_taint").cause == "untolerated_taint"


# ----------------------------------------------------------------- requirement status


def _check(status, kind="inspect", cause=None):
    return make_check("c_%s_%s" % (status, kind), status, "m", kind=kind, cause=cause)


@pytest.mark.parametrize("checks,status", [
    ([_check("passed", "exercise")], "passed"),
    ([_check("passed"), _check("passed", "exercise")], "passed"),
    ([_check("passed")], "skipped"),                                   # only inspected
    ([_check("passed"), _check("skipped")], "skipped"),
    ([], "skipped"),
    ([_check("passed", "exercise"), _check("error", cause="rbac")], "error"),
    ([_check("error", cause="rbac"), _check("failed", cause="capability")], "failed"),
    ([_check("passed", "exercise"), _check("failed", cause="not_installed")], "failed"),
])
def test_requirement_status_rows(checks, status):
    assert policy.requirement_status(checks)[0] == status


def test_nothing_exercised_is_said():
    builder = ResultBuilder("robust_controller")
    builder.passed("crds_established", "CRDs there")
    builder.skipped("reconciliation", "run_job is false")
    result = builder.finish()
    assert result["status"] == "skipped"
    assert any(n.startswith("nothing was exercised: only inspected: crds_established") for n in result["notes"])
    assert "run_job is false" in result["notes"][0]


def test_builder_takes_status_from_cause_only():
    builder = ResultBuilder("x")
    assert builder.outcome("a", "image_pull", "no pull")["status"] == "error"
    assert builder.failed("b", "missing")["cause"] == "capability"
    with pytest.raises(ValueError, match="means error"):
        builder.failed("c", "m", cause="rbac")
    with pytest.raises(ValueError, match="means failed"):
        builder.error("d", "m", cause="capability")
    check = builder.from_exception("e", _error("403-psa-restricted-create-plain-pod.json"), "creating the probe pod")
    assert check["status"] == "error" and check["cause"] == "pod_security"
    assert check["message"].startswith("creating the probe pod: Forbidden (403)")
