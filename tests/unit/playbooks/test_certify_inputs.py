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


def one_clean_message(out, message):
    """The message is the task's msg, whole, not indented, and no dump of the argument spec follows."""
    assert '"msg": "%s' % message in out, out
    assert "argument_spec_data" not in out and "validate_args_context" not in out, out


def test_unknown_checklist_version(fake, tmp_path):
    rc, out, dummy = certify({"conformance_kubeconfig": fake.kubeconfig, "conformance_version": "9.9"}, tmp_path)
    assert rc != 0
    one_clean_message(out, "Unknown conformance_version 9.9; valid versions: 1.33, 1.34, 1.35, 1.36, 1.37")
    assert not (tmp_path / "report").exists()


def test_unknown_requirement_id_lists_the_valid_ids_of_the_chosen_version(fake, tmp_path):
    rc, out, dummy = certify({"conformance_kubeconfig": fake.kubeconfig, "conformance_requirements": ["dra_suport"]}, tmp_path)
    assert rc != 0
    one_clean_message(out, "Unknown requirement id(s) for checklist 1.34: dra_suport; valid ids: dra_support, ")
    assert "driver_runtime_management" not in out  # an id of 1.36, not of 1.34
    assert not (tmp_path / "report").exists()


def test_requirement_not_in_the_chosen_version(fake, tmp_path):
    rc, out, dummy = certify({"conformance_kubeconfig": fake.kubeconfig, "conformance_version": "1.36",
                              "conformance_requirements": ["dra_support"]}, tmp_path)
    assert rc != 0
    one_clean_message(out, "Unknown requirement id(s) for checklist 1.36: dra_support; valid ids: driver_runtime_management")


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


def test_no_kubeconfig_says_how_to_point_at_a_cluster(tmp_path):
    env = playbook.playbook_env(tmp_path, KUBECONFIG=str(tmp_path / "nowhere"))
    env.pop("K8S_AUTH_KUBECONFIG", None)
    rc, out, dummy = playbook.certify(tmp_path, {"conformance_report_dir": str(tmp_path / "report")}, env=env)
    assert rc != 0
    text = " ".join(out.split())
    assert "kubeconfig file %s does not exist. Point at a cluster with KUBECONFIG=" % (tmp_path / "nowhere") in text, out
    assert "-e conformance_kubeconfig=/path/to/kubeconfig" in text and "make run ARGS=" in text
    assert not (tmp_path / "report").exists()


def test_kubeconfig_list_in_the_environment_is_merged(fake, tmp_path):
    """KUBECONFIG=a:b where a (first) defines nothing current: the context of b is used, as kubectl would."""
    other = tmp_path / "other.kubeconfig"
    other.write_text("apiVersion: v1\nkind: Config\nclusters: []\nusers: []\ncontexts: []\n")
    env = playbook.playbook_env(tmp_path, KUBECONFIG="%s:%s" % (other, fake.kubeconfig))
    env.pop("K8S_AUTH_KUBECONFIG", None)
    rc, out, dummy = playbook.certify(tmp_path, {"conformance_report_dir": str(tmp_path / "report"),
                                                 "conformance_requirements": "dra_support"}, env=env)
    assert rc == 0, out
    results = json.loads((tmp_path / "report" / "results.json").read_text())
    assert [r["requirement"] for r in results["requirements"]] == ["dra_support"]
