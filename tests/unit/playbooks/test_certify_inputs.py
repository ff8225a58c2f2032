"""playbooks/certify.yml with bad input: one clear message, nothing written, fast."""

import json
import os

import pytest

from tests.support import playbook
from tests.support.fakeapi import FakeKubeAPI


def certify(extra_vars, tmp_path):
    extra_vars = dict({"conformance_report_dir": str(tmp_path / "report")}, **extra_vars)
    return playbook.certify(tmp_path, extra_vars, timeout=120)


@pytest.fixture(scope="module")
def fake(tmp_path_factory):
    with FakeKubeAPI() as server:
        server.kubeconfig = server.write_kubeconfig(str(tmp_path_factory.mktemp("kube") / "kubeconfig"), context="lab")
        yield server


def test_unknown_checklist_version(fake, tmp_path):
    rc, out, dummy = certify({"conformance_kubeconfig": fake.kubeconfig, "conformance_version": "1.99"}, tmp_path)
    assert rc != 0
    assert "conformance_version" in out and "1.33, 1.34, 1.35, 1.36, 1.37" in out and "1.99" in out
    assert not (tmp_path / "report").exists()


def test_unknown_requirement_id(fake, tmp_path):
    rc, out, dummy = certify({"conformance_kubeconfig": fake.kubeconfig, "conformance_requirements": ["dra_suport"]}, tmp_path)
    assert rc != 0
    assert "conformance_requirements" in out and "dra_suport" in out and "dra_support" in out
    assert not (tmp_path / "report").exists()


def test_requirement_not_in_the_chosen_version(fake, tmp_path):
    rc, out, dummy = certify({"conformance_kubeconfig": fake.kubeconfig, "conformance_version": "1.36",
                              "conformance_requirements": ["dra_support"]}, tmp_path)
    assert rc != 0
    assert "Unknown requirement id(s) for checklist 1.36: dra_support; valid ids: driver_runtime_management" in " ".join(out.split())


def test_malformed_requirements(fake, tmp_path):
    rc, out, dummy = certify({"conformance_kubeconfig": fake.kubeconfig, "conformance_requirements": {"dra_support": True}}, tmp_path)
    assert rc != 0
    assert "conformance_requirements" in out and "list" in out


def test_unreachable_cluster_stops_fast_with_one_clear_message(tmp_path):
    with FakeKubeAPI() as server:
        kubeconfig = server.write_kubeconfig(str(tmp_path / "kubeconfig"), context="gone")
    rc, out, elapsed = certify({"conformance_kubeconfig": kubeconfig}, tmp_path)
    assert rc != 0
    assert "Cannot use the cluster (kubeconfig %s, context gone (current)): API server" % kubeconfig in out
    assert "connection refused" in out and "Traceback" not in out
    assert elapsed < 15
    assert not (tmp_path / "report").exists()


def test_comma_separated_requirements_certify_and_write_the_report(fake, tmp_path):
    rc, out, dummy = certify({"conformance_kubeconfig": fake.kubeconfig, "conformance_requirements": "dra_support"}, tmp_path)
    assert rc == 0, out
    written = sorted(os.listdir(str(tmp_path / "report")))
    assert written == ["PRODUCT.yaml", "evidence", "junit.xml", "report.md", "results.json"]
    results = json.loads((tmp_path / "report" / "results.json").read_text())
    assert [r["requirement"] for r in results["requirements"]] == ["dra_support"]
    # what extensions/molecule/certify/verify.yml asserts: the served API exercised by dry-run, allocation skipped
    assert results["requirements"][0]["status"] == "passed"
    assert {c["name"]: (c["status"], c["kind"]) for c in results["requirements"][0]["checks"]} == {
        "dra_api_resources": ("passed", "inspect"), "dra_api_accepts_v1": ("passed", "exercise"),
        "dra_allocation": ("skipped", "inspect")}
    assert "| dra_support | MUST | PASS | 2/3 |" in (tmp_path / "report" / "report.md").read_text()
