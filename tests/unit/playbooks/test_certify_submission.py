"""playbooks/certify.yml on the fake cluster: readiness in the report and the closing message, a submission directory.

Readiness never changes the exit status unless conformance_fail_on_unready is true.
"""

import json
import os

import pytest
import yaml

from tests.support import playbook
from tests.support.fakeapi import FakeKubeAPI
from tests.support.shared import fixture_response

CHECKLIST = os.path.join(playbook.REPO_ROOT, "tests", "fixtures", "cncf", "AIConformance-1.34.yaml")
METADATA = {"vendorName": "SUSE", "contactEmailAddress": "ai@example.com", "productLogoUrl": "https://example.com/rke2.svg",
            "k8sConformanceUrl": "https://github.com/cncf/k8s-conformance/tree/master/v1.34/rke2"}


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    """One certify run of dra_support and a declared-absent cluster autoscaler, with a submission directory."""
    tmp = tmp_path_factory.mktemp("submission")
    with FakeKubeAPI() as fake:
        node = fixture_response("k8s-fixtures", "objects", "node-gpu-node-1.final.json")
        for key in ("resourceVersion", "uid", "creationTimestamp", "managedFields"):
            node["metadata"].pop(key, None)
        fake.put_object(node)
        kubeconfig = fake.write_kubeconfig(str(tmp / "kubeconfig"), context="lab")
        extra = {"conformance_kubeconfig": kubeconfig, "conformance_report_dir": str(tmp / "report"),
                 "conformance_requirements": ["dra_support", "cluster_autoscaling"], "cluster_autoscaling_provided": False,
                 "conformance_submission_dir": str(tmp / "cncf"), "conformance_product": METADATA,
                 "conformance_checklist_file": CHECKLIST}
        rc, out, dummy = playbook.certify(tmp, extra)
        rc_strict, out_strict, dummy = playbook.certify(tmp, dict(extra, conformance_fail_on_unready=True))
    return {"tmp": tmp, "rc": rc, "out": out, "rc_strict": rc_strict, "out_strict": out_strict}


def test_readiness_lists_the_unmet_musts_without_changing_the_exit_status(run):
    assert run["rc"] == 0, run["out"]
    out = " ".join(run["out"].split())
    assert "report in %s; submission in %s" % (run["tmp"] / "report", run["tmp"] / "cncf" / "v1.34" / "rke2") in out
    assert "Not ready to submit: 8 blocking problem(s): ai_inference is a MUST but its status is 'Not Implemented'" in out
    results = json.loads((run["tmp"] / "report" / "results.json").read_text())
    assert [r["status"] for r in results["requirements"]] == ["passed", "not_applicable"]
    assert results["readiness"]["checked"] == "v1.34/rke2/PRODUCT.yaml" and results["readiness"]["warnings"] == []
    blocking = results["readiness"]["blocking"]
    assert {p["rule"] for p in blocking} == {"must_not_implemented"}
    assert [p["requirement"] for p in blocking] == ["ai_inference", "gang_scheduling", "cluster_autoscaling", "pod_autoscaling",
                                                    "accelerator_metrics", "ai_service_metrics", "secure_accelerator_access",
                                                    "robust_controller"]
    autoscaling = [p for p in blocking if p.get("requirement") == "cluster_autoscaling"][0]
    assert "azure_autoscaler" in autoscaling["fix"] and "cluster_autoscaling_scale_test: true" in autoscaling["fix"]
    not_run = [p for p in blocking if p.get("requirement") == "gang_scheduling"][0]
    assert "select it (conformance_requirements" in not_run["fix"]
    md = (run["tmp"] / "report" / "report.md").read_text()
    assert md.index("**Not ready to submit.**") < md.index("## Summary")


def test_the_submission_directory_is_laid_out_for_the_cncf_repository(run):
    product_dir = run["tmp"] / "cncf" / "v1.34" / "rke2"
    assert sorted(p.name for p in product_dir.iterdir()) == [
        "PRODUCT.yaml", "README.md", "ai-conformance-results.json", "evidence", "junit.xml"]
    product = yaml.safe_load((product_dir / "PRODUCT.yaml").read_text())
    assert product["metadata"]["platformVersion"] == "v1.34.9+rke2r1"  # from the node, the server says v1.34.9
    assert product["metadata"]["kubernetesVersion"] == "v1.34"
    with open(CHECKLIST) as handle:
        official = yaml.safe_load(handle)
    assert product["spec"]["accelerators"][0]["description"] == official["spec"]["accelerators"][0]["description"]
    for items in product["spec"].values():
        for item in items:
            for link in item["evidence"]:
                assert (product_dir / link).is_file(), link
    readme = (product_dir / "README.md").read_text()
    assert "version 0.1.0" in readme and "-e conformance_version=1.34 -e conformance_requirements=dra_support,cluster_autoscaling" in readme
    assert "| Cluster platform version | v1.34.9+rke2r1 |" in readme


def test_fail_on_unready_fails_the_play_after_writing_everything(run):
    assert run["rc_strict"] != 0
    out = " ".join(run["out_strict"].split())
    assert "Not ready to submit" in out and "See the top of" in out and "report.md for what to do" in out


def test_checklist_137_reports_workload_sandboxing_skipped_without_a_verifier(tmp_path):
    with FakeKubeAPI() as fake:
        kubeconfig = fake.write_kubeconfig(str(tmp_path / "kubeconfig"), context="lab")
        rc, out, dummy = playbook.certify(tmp_path, {"conformance_kubeconfig": kubeconfig, "conformance_version": "1.37",
                                                     "conformance_report_dir": str(tmp_path / "report"),
                                                     "conformance_requirements": ["workload_sandboxing"]})
    assert rc == 0, out
    results = json.loads((tmp_path / "report" / "results.json").read_text())
    (sandboxing,) = results["requirements"]
    assert sandboxing["requirement"] == "workload_sandboxing" and sandboxing["status"] == "skipped"
    assert "no verifier for workload_sandboxing yet" in sandboxing["checks"][0]["message"]
    product = yaml.safe_load((tmp_path / "report" / "PRODUCT.yaml").read_text())
    entry = [i for i in product["spec"]["security"] if i["id"] == "workload_sandboxing"][0]
    assert entry["level"] == "SHOULD" and entry["status"] == "" and entry["evidence"] == []  # left for the vendor
