"""Certify ai_service_metrics and pod_autoscaling with playbooks/certify.yml against the fake API server.

The issue's definition of done: against a cluster with no custom metrics adapter (and no Prometheus: the
recorded API serves the Prometheus Operator CRDs, nothing runs them), pod_autoscaling fails quoting the HPA's
condition and ai_service_metrics fails saying no Prometheus was found, both leaving nothing behind. With the
monitoring stack played by the fake, both pass.
"""

import json

import pytest

from tests.support import playbook
from tests.support.fakeapi import FakeKubeAPI
from tests.support.modrun import requirement_result
from tests.support.monitoring_cluster import MonitoringCluster, leftovers

REQUIREMENTS = ["ai_service_metrics", "pod_autoscaling"]


def certify(fake, tmp_path, extra_vars=None):
    kubeconfig = fake.write_kubeconfig(str(tmp_path / "kubeconfig"), context="lab")
    variables = {"conformance_report_dir": str(tmp_path / "report"), "conformance_kubeconfig": kubeconfig,
                 "conformance_requirements": REQUIREMENTS, "ai_service_metrics_timeout": 5, "pod_autoscaling_timeout": 30,
                 "ai_service_metrics_requests": 5}
    variables.update(extra_vars or {})
    rc, out, elapsed = playbook.certify(tmp_path, variables)
    results_file = tmp_path / "report" / "results.json"
    return rc, out, elapsed, json.loads(results_file.read_text()) if results_file.exists() else None


@pytest.fixture()
def fake():
    with FakeKubeAPI() as server:
        yield server


def test_no_adapter_and_no_prometheus_fail_with_the_real_reasons_and_leave_nothing(fake, tmp_path):
    cluster = MonitoringCluster(fake, prometheus=False, adapter=False)
    try:
        rc, out, elapsed, results = certify(fake, tmp_path)
    finally:
        cluster.close()
    assert rc != 0, out[-3000:]
    metrics = requirement_result(results, "ai_service_metrics")
    assert metrics["status"] == "failed"
    found = dict((c["name"], c) for c in metrics["checks"])
    assert found["prometheus_found"]["message"].startswith("no Prometheus was found")
    autoscaling = requirement_result(results, "pod_autoscaling")
    assert autoscaling["status"] == "failed"
    found = dict((c["name"], c) for c in autoscaling["checks"])
    assert found["hpa_scales_up"]["message"].startswith("the HPA cannot read its metric aic_test_load: FailedGetPodsMetric: "
                                                        "the HPA was unable to compute the replica count: ")
    assert "no custom metrics API (custom.metrics.k8s.io) registered" in found["hpa_scales_up"]["message"]
    assert leftovers(fake) == []
    assert elapsed < 120, "the certification took %.0fs" % elapsed


def test_monitoring_stack_certifies(fake, tmp_path):
    cluster = MonitoringCluster(fake)
    try:
        rc, out, dummy, results = certify(fake, tmp_path)
    finally:
        cluster.close()
    assert rc == 0, out[-3000:]
    for requirement in REQUIREMENTS:
        result = requirement_result(results, requirement)
        assert result["status"] == "passed", result["checks"]
    assert leftovers(fake) == []
