"""Certify robust_controller with playbooks/certify.yml against the fake API server (the issue's definition of done).

A cluster where the Kubeflow CRDs exist but no admission webhook is registered must fail, saying that the
invalid TFJob was not rejected by any admission webhook, with the server's answer as evidence; with the
operator played by the fake, the same run passes. Nothing is left behind either way.
"""

import json
import os

import pytest

from tests.support import playbook
from tests.support.fakeapi import FakeKubeAPI
from tests.support.modrun import requirement_result
from tests.support.training_cluster import (
    deny_tfjobs_without_image,
    install_crds,
    install_operator,
    leftovers,
    play_training_operator,
)


def certify(fake, tmp_path, extra_vars):
    kubeconfig = fake.write_kubeconfig(str(tmp_path / "kubeconfig"), context="lab")
    extra_vars = dict({"conformance_report_dir": str(tmp_path / "report"), "conformance_kubeconfig": kubeconfig,
                       "conformance_requirements": ["robust_controller"]}, **extra_vars)
    rc, out, dummy = playbook.certify(tmp_path, extra_vars)
    results_file = tmp_path / "report" / "results.json"
    results = json.loads(results_file.read_text()) if results_file.exists() else None
    return rc, out, results


@pytest.fixture()
def fake():
    with FakeKubeAPI() as server:
        yield server


def test_crds_without_webhook_fail_with_the_servers_answer(fake, tmp_path):
    install_crds(fake)
    rc, out, results = certify(fake, tmp_path, {"robust_controller_run_job": False})
    assert rc != 0, out
    assert "robust_controller" in out
    result = requirement_result(results, "robust_controller")
    assert result["status"] == "failed"
    check = [c for c in result["checks"] if c["name"] == "admission_rejects_invalid"][0]
    assert check["status"] == "failed"
    assert check["message"] == "the invalid TFJob was not rejected by any admission webhook: the server accepted it (HTTP 201)"
    evidence_dir = tmp_path / "report" / "evidence" / "robust_controller"
    names = os.listdir(str(evidence_dir))
    answer_file = [n for n in names if n.startswith("admission-invalid.")]
    assert answer_file, names
    answer = json.loads((evidence_dir / answer_file[0]).read_text())
    assert answer["response"]["code"] == 201 and answer["response"]["body"]["kind"] == "TFJob"
    assert leftovers(fake) == []


def test_operator_certifies(fake, tmp_path):
    install_crds(fake)
    install_operator(fake)
    deny_tfjobs_without_image(fake)
    play_training_operator(fake)
    rc, out, results = certify(fake, tmp_path, {"robust_controller_timeout": 20})
    assert rc == 0, out
    result = requirement_result(results, "robust_controller")
    assert result["status"] == "passed", result["checks"]
    assert {c["name"] for c in result["checks"] if c["status"] == "passed"} >= {
        "admission_rejects_invalid", "admission_accepts_valid", "reconciliation"}
    assert leftovers(fake) == []
