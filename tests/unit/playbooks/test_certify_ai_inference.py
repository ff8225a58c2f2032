"""Certify ai_inference with playbooks/certify.yml against the fake API server (the issue's definition of done).

A cluster with the Gateway API CRDs but no controller must fail within the configured timeout with a
message naming the GatewayClass and its conditions, and leave no object behind; with Traefik played by
the fake, the same run passes and reports the counts.
"""

import json
import os

import pytest

from tests.support import playbook
from tests.support.fakeapi import FakeKubeAPI
from tests.support.modrun import requirement_result
from tests.support.gateway_cluster import Cluster, leftovers


def certify(fake, tmp_path, extra_vars):
    kubeconfig = fake.write_kubeconfig(str(tmp_path / "kubeconfig"), context="lab")
    extra_vars = dict({"conformance_report_dir": str(tmp_path / "report"), "conformance_kubeconfig": kubeconfig,
                       "conformance_requirements": ["ai_inference"]}, **extra_vars)
    rc, out, elapsed = playbook.certify(tmp_path, extra_vars)
    results_file = tmp_path / "report" / "results.json"
    results = json.loads(results_file.read_text()) if results_file.exists() else None
    return rc, out, elapsed, results


@pytest.fixture()
def fake():
    with FakeKubeAPI() as server:
        yield server


def test_gateway_crds_without_controller_fail_within_the_timeout_and_leave_nothing(fake, tmp_path):
    Cluster(fake, controller=False)
    rc, out, elapsed, results = certify(fake, tmp_path, {"ai_inference_timeout": 3})
    assert rc != 0, out
    assert "MUST requirement(s) of checklist" in out and "ai_inference" in out
    result = requirement_result(results, "ai_inference")
    assert result["status"] == "failed"
    check = [c for c in result["checks"] if c["name"] == "gatewayclass_accepted"][0]
    assert check["status"] == "failed"
    assert check["message"].startswith("GatewayClass aic-ai-inference-")
    assert "not accepted after 3s" in check["message"]
    assert "conditions=[Accepted=Unknown (Pending: Waiting for controller)]" in check["message"]
    assert leftovers(fake) == []
    assert fake.requests_to("DELETE", "/gatewayclasses/aic-ai-inference-")
    assert elapsed < 120, "the whole certification took %.0fs" % elapsed


def test_traefik_routing_certifies(fake, tmp_path):
    Cluster(fake)
    rc, out, dummy, results = certify(fake, tmp_path, {"ai_inference_timeout": 3})
    assert rc == 0, out
    result = requirement_result(results, "ai_inference")
    assert result["status"] == "passed", result["checks"]
    assert {c["name"] for c in result["checks"] if c["status"] == "passed"} >= {"header_routing", "weighted_split"}
    assert os.listdir(str(tmp_path / "report" / "evidence" / "ai_inference"))
    assert leftovers(fake) == []
