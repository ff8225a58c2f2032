"""Report writers: PRODUCT.yaml (CNCF field names), JUnit XML, Markdown, evidence files."""

import json
import os
import xml.etree.ElementTree as ET

import pytest
import yaml

from ansible_collections.ai_conformance.rke2.plugins.module_utils import report
from ansible_collections.ai_conformance.rke2.plugins.module_utils.result import ResultBuilder

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))))
CNCF_STATUSES = {"Implemented", "Not Implemented", "Partially Implemented", "N/A"}


@pytest.fixture(scope="module")
def catalogue():
    with open(os.path.join(ROOT, "roles", "conformance", "vars", "catalogue.yml")) as handle:
        return yaml.safe_load(handle)["conformance_catalogue"]["versions"]["1.34"]["requirements"]


def sample_results():
    ok = ResultBuilder("dra_support")
    ok.passed("dra_api_resources", "resource.k8s.io serves all 4 required resources")
    ok.exercised("dra_dry_run", "the API accepted v1 DeviceClass, ResourceClaim and ResourceClaimTemplate")
    ok.skipped("dra_allocation", "allocation test not run: no DeviceClass exists")
    ok.add_evidence("api-resources", "NAME   APIVERSION\n")
    bad = ResultBuilder("gang_scheduling")
    bad.failed("gang_job_b", 'gang violated: 2 of 3 pods bound <&"|>', observed={"bound": 2}, expected={"bound": 0})
    err = ResultBuilder("ai_inference")
    err.error("traffic", "image registry.k8s.io/x not pullable")
    na = ResultBuilder("cluster_autoscaling")
    na.note("RKE2 as a distribution provides no cluster autoscaler (CNCF FAQ).")
    return [ok.finish(), bad.finish(), err.finish(), na.finish("not_applicable")]


CLUSTER = {"name": "rke2-test", "git_version": "v1.34.9+rke2r1", "kubernetes_minor": "1.34", "kubernetes_version": "v1.34.9"}


def render(catalogue, results=None, requested=None):
    results = sample_results() if results is None else results
    requested = requested or [r["requirement"] for r in results]
    return report.render_all(CLUSTER, "1.34", catalogue, results, requested, {"vendorName": "ACME"}, "2026-11-23T07:00:00Z")


def test_product_yaml_round_trips_with_cncf_field_names(catalogue):
    files, dummy = render(catalogue)
    doc = yaml.safe_load(files["PRODUCT.yaml"])
    assert list(doc) == ["metadata", "spec"]
    assert set(doc["metadata"]) == set(report.PRODUCT_METADATA_FIELDS)
    assert doc["metadata"]["kubernetesVersion"] == "v1.34"
    assert doc["metadata"]["platformVersion"] == "v1.34.9+rke2r1"
    assert doc["metadata"]["vendorName"] == "ACME"
    assert set(doc["spec"]) == {"accelerators", "networking", "schedulingOrchestration", "observability", "security", "operator"}
    items = {item["id"]: item for cat in doc["spec"].values() for item in cat}
    assert set(items) == {r["id"] for r in catalogue}
    for item in items.values():
        assert set(item) == {"id", "description", "level", "status", "evidence", "notes"}
        assert item["status"] in CNCF_STATUSES
        for path in item["evidence"]:
            assert path in files, "evidence %s must be written beside PRODUCT.yaml" % path
    assert items["dra_support"]["status"] == "Implemented"
    assert "Not exercised: dra_allocation" in items["dra_support"]["notes"]
    assert items["gang_scheduling"]["status"] == "Not Implemented"
    assert items["ai_inference"]["notes"].startswith("NOT VERIFIED")
    assert items["cluster_autoscaling"]["status"] == "N/A" and items["cluster_autoscaling"]["notes"]
    assert items["pod_autoscaling"]["evidence"] == [] and "not run" in items["pod_autoscaling"]["notes"]


def test_junit_is_valid_xml_with_one_case_per_check(catalogue):
    files, dummy = render(catalogue)
    root = ET.fromstring(files["junit.xml"].split("\n", 1)[1])
    assert root.tag == "testsuites"
    cases = root.findall(".//testcase")
    assert [c.get("name") for c in cases] == ["dra_api_resources", "dra_dry_run", "dra_allocation", "gang_job_b", "traffic",
                                              "cluster_autoscaling"]
    failure = cases[3].find("failure")
    assert failure is not None and failure.get("message") == 'gang violated: 2 of 3 pods bound <&"|>'
    assert cases[4].find("error") is not None
    assert cases[2].find("skipped") is not None
    assert root.get("tests") == "6" and root.get("failures") == "1" and root.get("errors") == "1" and root.get("skipped") == "2"


def test_summary_unmet_must_and_markdown(catalogue):
    files, summary = render(catalogue, requested=["dra_support", "gang_scheduling", "ai_inference", "cluster_autoscaling", "robust_controller"])
    assert summary["unmet_must"] == ["gang_scheduling", "ai_inference", "robust_controller"]
    assert summary["counts"]["not_run"] == 1
    md = files["report.md"]
    assert "MUST requirements not met: gang_scheduling, ai_inference, robust_controller." in md
    assert "| robust_controller | MUST | NOT RUN |" in md
    assert "\\|" in md  # pipes in messages are escaped inside tables
    data = json.loads(files["results.json"])
    assert data["checklist"] == "1.34" and len(data["requirements"]) == 4 and data["cluster"]["name"] == "rke2-test"


def test_evidence_files_hold_the_content(catalogue):
    files, dummy = render(catalogue)
    assert files["evidence/dra_support/api-resources.txt"] == "NAME   APIVERSION\n"
    page = files["evidence/dra_support.md"]
    assert page.startswith("# dra_support: PASS")
    assert "api-resources" in page and "NAME   APIVERSION" in page


def test_should_item_not_run_is_left_blank_for_the_vendor():
    status, notes = report.product_status(None, "SHOULD")
    assert status == "" and "not run" in notes
    assert report.product_status(None, "MUST")[0] == "Not Implemented"


def passing(req_id):
    builder = ResultBuilder(req_id)
    builder.exercised("exercised", "exercised on the cluster")
    if req_id == "cluster_autoscaling":
        builder.exercised("scale_up", "a GPU node joined")
    return builder.finish()


def test_report_md_and_results_json_carry_readiness(catalogue):
    files, summary = render(catalogue)
    md = files["report.md"]
    top = md.split("| Cluster | |")[0]
    assert "## Submission readiness (PRODUCT.yaml)" in top and "**Not ready to submit.** Blocking problems:" in top
    assert "- gang_scheduling is a MUST but its status is 'Not Implemented'; it must be Implemented. **Fix:** the cluster lacks" in top
    assert "metadata field contactEmailAddress is empty" in top
    data = json.loads(files["results.json"])
    assert data["readiness"]["ready"] is False and data["readiness"] == summary["readiness"]
    assert "readiness" not in data["summary"]
    assert {p["rule"] for p in data["readiness"]["blocking"]} >= {"must_not_implemented", "metadata_empty"}


def test_submission_of_a_failing_run_does_not_link_its_junit(catalogue):
    results = sample_results()
    dummy, sub, summary = report.render_report(CLUSTER, "1.37", catalogue, results, [r["requirement"] for r in results],
                                               {"vendorName": "ACME"}, "2026-11-23T07:00:00Z", submission_product="rke2")
    assert "junit.xml" not in sub and report.SUBMISSION_JUNIT_WITH_FAILURES in sub
    assert report.junit_has_failures(sub[report.SUBMISSION_JUNIT_WITH_FAILURES])
    doc = yaml.safe_load(sub["PRODUCT.yaml"])
    links = [link for items in doc["spec"].values() for i in items for link in i["evidence"]]
    assert links and not [link for link in links if "junit" in link]
    assert "not named junit.xml because it records failing checks" in sub["README.md"]
    assert summary["readiness"]["checked"] == "v1.37/rke2/PRODUCT.yaml"


def test_submission_junit_has_one_case_per_requirement(catalogue):
    results = [passing(r["id"]) for r in catalogue]
    dummy, sub, summary = report.render_report(CLUSTER, "1.37", catalogue, results, [r["id"] for r in catalogue],
                                               {"vendorName": "ACME"}, "2026-11-23T07:00:00Z", submission_product="acme-ai")
    root = ET.fromstring(sub["junit.xml"].split("\n", 1)[1])
    names = [c.get("name") for c in root.iter("testcase")]
    assert names[:2] == ["dra_support", "dra_support/exercised"] and root.get("failures") == "0"
    doc = yaml.safe_load(sub["PRODUCT.yaml"])
    assert doc["spec"]["operator"][0]["evidence"] == ["evidence/robust_controller.md", "file://junit.xml#robust_controller"]
    # below 1.37 (no hybrid verification) the JUnit file is not linked
    dummy, sub134, dummy2 = report.render_report(CLUSTER, "1.34", catalogue, results, [r["id"] for r in catalogue],
                                                 {"vendorName": "ACME"}, "2026-11-23T07:00:00Z", submission_product="acme-ai")
    assert yaml.safe_load(sub134["PRODUCT.yaml"])["spec"]["operator"][0]["evidence"] == ["evidence/robust_controller.md"]


def test_product_dir_name():
    assert report.product_dir_name({"platformName": "RKE2"}) == "rke2"
    assert report.product_dir_name({"platformName": "ACME AI Platform!"}) == "acme-ai-platform"
    assert report.product_dir_name({}) == "product"


def test_a_skipped_should_is_left_unanswered_without_evidence():
    items = [{"id": "gpu_sharing", "category": "accelerators", "level": "SHOULD", "description": "d"}]
    skipped = ResultBuilder("gpu_sharing")
    skipped.skipped("verifier", "no verifier yet")
    doc = yaml.safe_load(report.product_yaml(items, [skipped.finish()], {}, CLUSTER, "1.36"))
    assert doc["spec"]["accelerators"][0]["status"] == "" and doc["spec"]["accelerators"][0]["evidence"] == []
