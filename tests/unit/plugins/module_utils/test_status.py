"""Status readers shared by every requirement, on recorded real objects."""

import copy

from ansible_collections.ai_conformance.rke2.plugins.module_utils import status as k8s_status
from tests.support.shared import fixture_response


def test_deployment_not_available_recorded():
    deployment = fixture_response("k8s-fixtures", "objects", "deployment-gpu-inference.json")
    available, summary = k8s_status.deployment_available(deployment)
    assert available is False
    assert summary == ("0/1 replicas available, Available=False: Deployment does not have minimum availability. "
                       "(MinimumReplicasUnavailable)")


def test_deployment_available():
    deployment = copy.deepcopy(fixture_response("k8s-fixtures", "objects", "deployment-gpu-inference.json"))
    deployment["status"]["readyReplicas"] = 1
    deployment["status"]["conditions"][0].update(status="True", reason="MinimumReplicasAvailable")
    assert k8s_status.deployment_available(deployment)[0] is False  # ready but not yet available
    deployment["status"]["availableReplicas"] = 1
    assert k8s_status.deployment_available(deployment) == (True, "1/1 replicas available")
    assert k8s_status.deployment_available(None) == (False, "not found")
    del deployment["status"]["conditions"]
    assert k8s_status.deployment_available(deployment) == (False, "1/1 replicas available, no Available condition")


def test_node_ready_on_recorded_node():
    node = fixture_response("k8s-fixtures", "objects", "node-gpu-node-1.final.json")
    assert k8s_status.node_ready(node)[0] is True
    node["status"]["conditions"] = [c for c in node["status"]["conditions"] if c["type"] != "Ready"]
    assert k8s_status.node_ready(node) == (False, "no Ready condition")


def test_conditions_of_recorded_hpa():
    hpa = fixture_response("k8s-fixtures", "objects", "hpa-gpu-inference.reconciled.json")
    assert k8s_status.condition_true(hpa, "AbleToScale")
    assert not k8s_status.condition_true(hpa, "ScalingActive")
    assert k8s_status.condition(hpa, "ScalingActive")["reason"] == "FailedGetObjectMetric"
    assert k8s_status.condition(hpa, "ScalingLimited") is None
    assert k8s_status.conditions(None) == [] and k8s_status.find_condition(None, "Ready") is None
