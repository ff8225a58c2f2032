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
