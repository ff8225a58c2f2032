"""Submission readiness: one test per rule of the CNCF validator (cncf/k8s-ai-conformance scripts/validate.go).

The baseline is the submission the report writes for a run where every requirement passed, with realistic
metadata and the official checklist file; each test breaks one rule of it and expects that rule, with a fix.
"""

import copy
import json
import os

import pytest
import yaml

from ansible_collections.ai_conformance.rke2.plugins.module_utils import readiness, report
from ansible_collections.ai_conformance.rke2.plugins.module_utils.result import ResultBuilder

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))))
GENERATED = "2026-12-01T20:00:00Z"
CLUSTER = {"name": "rke2-lab", "server": "https://192.0.2.10:6443", "git_version": "v1.34.9", "kubernetes_version": "v1.34.9",
           "kubernetes_minor": "1.34", "platform": "rke2", "platform_version": "v1.34.9+rke2r1"}
PRODUCT = {
    "platformName": "RKE2",
    "vendorName": "SUSE",
    "websiteUrl": "https://docs.rke2.io",
    "repoUrl": "https://github.com/rancher/rke2",
    "documentationUrl": "https://docs.rke2.io",
    "productLogoUrl": "https://raw.githubusercontent.com/rancher/rke2-docs/main/static/img/logo-horizontal-rke2.svg",
    "description": "RKE2, SUSE's security-focused Kubernetes distribution, with the components the CNCF AI Conformance program requires.",
    "contactEmailAddress": "ai-conformance@example.com",
    "k8sConformanceUrl": "https://github.com/cncf/k8s-conformance/tree/master/v1.34/rke2",
}


def catalogue(version):
    with open(os.path.join(ROOT, "roles", "conformance", "vars", "catalogue.yml")) as handle:
        return yaml.safe_load(handle)["conformance_catalogue"]["versions"][version]["requirements"]


def official_134():
    with open(os.path.join(ROOT, "tests", "fixtures", "cncf", "AIConformance-1.34.yaml")) as handle:
        return yaml.safe_load(handle)


def passing_result(req_id):
    builder = ResultBuilder(req_id)
    builder.exercised("exercised", "%s was exercised on the cluster" % req_id)
    if req_id == "cluster_autoscaling":
        builder.exercised("scale_up", "a GPU node joined and ran the pod")
    builder.add_evidence("log", "what happened\n")
    return builder.finish()


def submission(version="1.34", results=None, product=None, official=True):
    """(submission files, summary) of a run; by default every requirement of ``version`` passed."""
    items = catalogue(version)
    results = [passing_result(r["id"]) for r in items] if results is None else results
    checklist_items, problems = (readiness.choose_checklist(official_134(), items, version, "AIConformance-1.34.yaml")
                                 if official and version == "1.34" else (None, []))
    dummy, files, summary = report.render_report(
        CLUSTER, version, items, results, [r["id"] for r in items], dict(PRODUCT, **(product or {})), GENERATED,
        checklist_items=checklist_items, checklist_problems=problems, submission_product="rke2",
        run_info={"collection_version": "0.1.0", "command": "ansible-playbook ai_conformance.rke2.certify"})
    return files, summary


@pytest.fixture(scope="module")
def baseline():
    return submission()


def check(files, version="1.34", doc=None, location=None, official=True, schema=None):
    """Readiness of ``doc`` (default: the baseline's PRODUCT.yaml) beside ``files``."""
    text = yaml.safe_dump(doc, sort_keys=False) if doc is not None else files["PRODUCT.yaml"]
    schema = schema or readiness.load_checklist(official_134()) if version == "1.34" else catalogue(version)
    return readiness.check_product(text, version, schema, files, location or "v%s/rke2/PRODUCT.yaml" % version,
                                   official=official)


def rules(result, severity="blocking"):
    return sorted({p["rule"] for p in result[severity if severity != "warning" else "warnings"]})


def only(result, rule):
    found = [p for p in result["blocking"] + result["warnings"] + result["to_confirm"] if p["rule"] == rule]
    assert found, result
    for item in found:
        assert item["message"] and item["fix"]
    return found


def doc_of(files):
    return yaml.safe_load(files["PRODUCT.yaml"])


def item(doc, req_id):
    return [i for items in doc["spec"].values() for i in items if i["id"] == req_id][0]


def test_a_fully_passing_run_is_ready_to_submit(baseline):
    files, summary = baseline
    ready = summary["readiness"]
    assert ready["ready"], ready["blocking"]
    assert ready["blocking"] == [] and ready["warnings"] == []
    assert ready["checked"] == "v1.34/rke2/PRODUCT.yaml"
    assert ready["headline"].startswith("Ready to submit")
    doc = doc_of(files)
    assert all(i["status"] == "Implemented" for items in doc["spec"].values() for i in items)
    assert check(files)["ready"]


def test_metadata_section_missing(baseline):
    doc = doc_of(baseline[0])
    del doc["metadata"]
    assert "metadata_section" in rules(check(baseline[0], doc=doc))


def test_metadata_field_missing_and_snake_case_accepted(baseline):
    doc = doc_of(baseline[0])
    del doc["metadata"]["vendorName"]
    result = check(baseline[0], doc=doc)
    assert rules(result) == ["metadata_missing"]
    assert "vendorName (or vendor_name)" in only(result, "metadata_missing")[0]["message"]
    doc["metadata"]["vendor_name"] = "SUSE"
    doc["metadata"]["contact_email_address"] = doc["metadata"].pop("contactEmailAddress")
    doc["metadata"].pop("repoUrl")  # optional
    assert check(baseline[0], doc=doc)["ready"]


def test_metadata_field_not_a_string(baseline):
    doc = doc_of(baseline[0])
    doc["metadata"]["kubernetesVersion"] = 1.34
    assert rules(check(baseline[0], doc=doc)) == ["metadata_not_string"]


def test_metadata_field_empty_as_the_defaults_leave_it():
    files, summary = submission(product={"vendorName": "", "contactEmailAddress": ""})
    result = summary["readiness"]
    assert rules(result) == ["metadata_empty"]
    fixes = only(result, "metadata_empty")
    assert {f["message"] for f in fixes} == {"metadata field vendorName is empty", "metadata field contactEmailAddress is empty"}
    assert all("conformance_product" in f["fix"] for f in fixes)
    assert summary["readiness"]["headline"].startswith("Not ready to submit: 2 blocking problem(s)")


def test_metadata_placeholder(baseline):
    doc = doc_of(baseline[0])
    doc["metadata"]["vendorName"] = "[Vendor Name]"
    doc["metadata"]["repoUrl"] = "[Repository URL]"  # optional, but a placeholder is still rejected
    result = check(baseline[0], doc=doc)
    assert rules(result) == ["metadata_placeholder"] and len(result["blocking"]) == 2


def test_logo_must_be_svg_eps_or_ai(baseline):
    doc = doc_of(baseline[0])
    doc["metadata"]["productLogoUrl"] = "https://example.com/logo.png"
    assert rules(check(baseline[0], doc=doc)) == ["logo_format"]
    doc["metadata"]["productLogoUrl"] = "https://example.com/LOGO.EPS"
    assert check(baseline[0], doc=doc)["ready"]


def test_k8s_conformance_url_pattern_and_version(baseline):
    doc = doc_of(baseline[0])
    doc["metadata"]["k8sConformanceUrl"] = "https://github.com/cncf/k8s-conformance/blob/master/v1.34/rke2/PRODUCT.yaml"
    assert rules(check(baseline[0], doc=doc)) == ["k8s_conformance_url"]
    doc["metadata"]["k8sConformanceUrl"] = "https://github.com/cncf/k8s-conformance/tree/main/v1.33/rke2/"
    result = check(baseline[0], doc=doc)
    assert result["ready"] and rules(result, "warning") == ["k8s_conformance_version"]


def test_spec_section_missing(baseline):
    doc = doc_of(baseline[0])
    del doc["spec"]
    assert rules(check(baseline[0], doc=doc)) == ["spec_section"]


def test_category_missing(baseline):
    doc = doc_of(baseline[0])
    del doc["spec"]["operator"]
    assert rules(check(baseline[0], doc=doc)) == ["category_missing"]


def test_requirement_missing(baseline):
    doc = doc_of(baseline[0])
    doc["spec"]["schedulingOrchestration"] = [i for i in doc["spec"]["schedulingOrchestration"] if i["id"] != "pod_autoscaling"]
    result = check(baseline[0], doc=doc)
    assert rules(result) == ["requirement_missing"] and result["blocking"][0]["requirement"] == "pod_autoscaling"


def test_status_values():
    files, dummy = submission("1.36", official=False)
    doc = doc_of(files)
    item(doc, "gpu_sharing")["status"] = "Supported"
    result = check(files, "1.36", doc=doc, official=False)
    assert rules(result) == ["status_invalid"]
    # a SHOULD left with an empty status and no evidence is skipped by the validator...
    item(doc, "gpu_sharing").update({"status": "", "evidence": []})
    assert check(files, "1.36", doc=doc, official=False)["ready"]
    # ...but not one with evidence
    item(doc, "gpu_sharing")["evidence"] = ["evidence/gpu_sharing.md"]
    assert rules(check(files, "1.36", doc=doc, official=False)) == ["status_invalid"]


def test_a_must_not_implemented_is_blocking_with_what_to_do():
    results = [passing_result(r["id"]) for r in catalogue("1.34")]
    gang = ResultBuilder("gang_scheduling")
    gang.failed("gang_job_b", "gang violated: 2 of 3 pods bound")
    metrics = ResultBuilder("accelerator_metrics")
    metrics.error("exporter", "image nvcr.io/nvidia/k8s/dcgm-exporter not pullable")
    results = [r for r in results if r["requirement"] not in ("gang_scheduling", "accelerator_metrics")]
    results += [gang.finish(), metrics.finish()]
    dummy, summary = submission(results=results)
    result = summary["readiness"]
    assert rules(result) == ["must_not_implemented"]
    fixes = dict((p["requirement"], p["fix"]) for p in result["blocking"])
    assert fixes["gang_scheduling"].startswith("the cluster lacks the capability: gang_job_b: gang violated")
    assert fixes["accelerator_metrics"].startswith("the check could not be carried out: exporter: image")


def test_declared_na_cluster_autoscaling_is_blocking_with_the_path_to_evidence():
    results = [passing_result(r["id"]) for r in catalogue("1.34") if r["id"] != "cluster_autoscaling"]
    na = ResultBuilder("cluster_autoscaling")
    na.skipped("autoscaler_present", "no cluster-autoscaler deployment in kube-system, as declared (provided=false)")
    na.note("RKE2 as a distribution provides no cluster autoscaler.")
    results.append(na.finish("not_applicable"))
    files, summary = submission(results=results)
    assert item(doc_of(files), "cluster_autoscaling")["status"] == "N/A"  # the honest answer stays in the file
    blocking = summary["readiness"]["blocking"]
    assert [p["requirement"] for p in blocking] == ["cluster_autoscaling"] and blocking[0]["rule"] == "must_not_implemented"
    fix = blocking[0]["fix"]
    for words in ("RKE2's own submissions", "Implemented", "RKE2 ships no cluster autoscaler", "upstream cluster-autoscaler",
                  "azure_autoscaler", "cluster_autoscaling_scale_test: true"):
        assert words in fix


def test_cluster_autoscaling_is_never_implemented_without_a_passed_scale_test():
    results = [passing_result(r["id"]) for r in catalogue("1.34") if r["id"] != "cluster_autoscaling"]
    config_only = ResultBuilder("cluster_autoscaling")
    config_only.passed("autoscaler_deployment", "cluster-autoscaler is Available")
    results.append(config_only.finish("passed"))  # a result that claims passed without scale_up
    files, summary = submission(results=results)
    entry = item(doc_of(files), "cluster_autoscaling")
    assert entry["status"] == "Not Implemented" and "scale_up" in entry["notes"]
    assert "cluster_autoscaling_scale_test: true" in summary["readiness"]["blocking"][0]["fix"]
    passed = item(doc_of(submission()[0]), "cluster_autoscaling")
    assert passed["status"] == "Implemented" and passed["notes"].startswith("RKE2 ships no cluster autoscaler; the upstream cluster-autoscaler")


def test_na_needs_notes():
    files, dummy = submission("1.36", official=False)
    doc = doc_of(files)
    item(doc, "gpu_sharing").update({"status": "N/A", "notes": ""})
    assert rules(check(files, "1.36", doc=doc, official=False)) == ["na_without_notes"]


def test_evidence_must_exist_beside_product_yaml(baseline):
    doc = doc_of(baseline[0])
    item(doc, "ai_inference")["evidence"].append("evidence/ai_inference/screenshot.png")
    item(doc, "ai_inference")["evidence"].append("https://docs.rke2.io/networking")  # URLs: to confirm, not files
    result = check(baseline[0], doc=doc)
    assert rules(result) == ["evidence_missing"]
    assert "https://docs.rke2.io/networking must answer" in " ".join(p["message"] for p in result["to_confirm"])
    item(doc, "ai_inference")["evidence"][-2] = "file://v1.34/rke2/evidence/ai_inference.md"  # the product-dir prefix resolves
    assert check(baseline[0], doc=doc)["ready"]


def test_evidence_must_not_escape_the_product_directory(baseline):
    files = dict(baseline[0], **{"../shared.md": "x"})
    doc = doc_of(files)
    item(doc, "ai_inference")["evidence"] = ["../shared.md"]
    item(doc, "gang_scheduling")["evidence"] = ["file:///etc/passwd"]
    result = check(files, doc=doc)
    assert rules(result) == ["evidence_escapes"] and len(result["blocking"]) == 2


JUNIT_FAILING = ('<?xml version="1.0"?><testsuites><testsuite name="s"><testcase name="TestGangScheduling">'
                 '<failure message="x"/></testcase><testcase name="TestSecure"/></testsuite></testsuites>')
GO_JSON = "\n".join(json.dumps(e) for e in [
    {"Action": "run", "Test": "TestGangScheduling"}, {"Action": "fail", "Test": "TestGangScheduling"},
    {"Action": "pass", "Test": "TestSecureAcceleratorAccess"}, {"Action": "fail"}])
E2E_LOG = "=== RUN   TestGangScheduling\n--- FAIL: TestGangScheduling (3.10s)\n=== RUN   TestSecure\n--- PASS: TestSecure (1.00s)\nFAIL\n"


@pytest.mark.parametrize("name,text", [("junit.xml", JUNIT_FAILING), ("results.json", GO_JSON), ("e2e.log", E2E_LOG)])
def test_linked_test_artifacts_must_not_have_failures(baseline, name, text):
    files = dict(baseline[0], **{"upstream/" + name: text})
    doc = doc_of(files)
    item(doc, "gang_scheduling")["evidence"].append("file://upstream/%s#TestGangScheduling" % name)
    result = check(files, doc=doc)
    assert rules(result) == ["test_artifact_failures"]
    assert "TestGangScheduling" in result["blocking"][0]["message"]


@pytest.mark.parametrize("name,text", [("junit.xml", "not xml"), ("results.json", "{\"not\": \"go test\"}"),
                                       ("e2e.log", "Ginkgo ran 11 specs\n")])
def test_linked_test_artifacts_must_be_in_the_parsed_format(baseline, name, text):
    files = dict(baseline[0], **{name: text})
    doc = doc_of(files)
    item(doc, "gang_scheduling")["evidence"].append(name)
    result = check(files, doc=doc)
    assert rules(result) == ["test_artifact_format"] and "rename it" in result["blocking"][0]["fix"]
    # the same content under another name is only checked for existence
    files["e2e-results.log"] = text
    item(doc, "gang_scheduling")["evidence"][-1] = "e2e-results.log"
    assert check(files, doc=doc)["ready"]


def test_fragment_must_name_a_test_of_the_artifact():
    files, summary = submission("1.37", official=False)
    doc = doc_of(files)
    assert "file://junit.xml#gang_scheduling" in item(doc, "gang_scheduling")["evidence"]
    item(doc, "gang_scheduling")["evidence"].append("file://junit.xml#TestGangScheduling")
    result = check(files, "1.37", doc=doc, official=False)
    assert rules(result) == ["test_artifact_fragment"]


def test_network_rules_are_listed_to_confirm(baseline):
    confirm = baseline[1]["readiness"]["to_confirm"]
    assert {p["rule"] for p in confirm} == {"vendor_cncf_member", "url_reachable"}
    vendor = only(baseline[1]["readiness"], "vendor_cncf_member")[0]
    assert "'SUSE'" in vendor["message"] and "CNCF Members" in vendor["message"] and "landscape.cncf.io/members" in vendor["fix"]
    urls = {p["message"].split(" ")[0] for p in confirm if p["rule"] == "url_reachable"}
    assert urls == {PRODUCT[k] for k in ("websiteUrl", "repoUrl", "productLogoUrl", "k8sConformanceUrl")}


def test_submission_path_carries_the_version(baseline):
    assert rules(check(baseline[0], location="v1.33/rke2/PRODUCT.yaml")) == ["submission_path"]
    report_dir = check(baseline[0], location="PRODUCT.yaml")
    assert report_dir["ready"] and rules(report_dir, "warning") == ["submission_path"]
    assert "conformance_submission_dir" in report_dir["warnings"][0]["fix"]


def test_without_the_official_checklist_readiness_says_so():
    files, summary = submission(official=False)
    result = summary["readiness"]
    assert result["ready"] and rules(result, "warning") == ["checklist_wording"]
    assert "conformance_checklist_file" in result["warnings"][0]["fix"]


def test_official_checklist_wording_is_copied_and_compared():
    files, summary = submission()
    official = dict((r["id"], r) for r in readiness.load_checklist(official_134()))
    for entry in [i for items in doc_of(files)["spec"].values() for i in items]:
        assert entry["description"] == official[entry["id"]]["description"]
        assert entry["level"] == official[entry["id"]]["level"]
    changed = copy.deepcopy(official_134())
    changed["spec"]["security"].append({"id": "workload_sandboxing", "description": "d", "level": "SHOULD"})
    changed["spec"]["accelerators"] = []
    items, problems = readiness.choose_checklist(changed, catalogue("1.34"), "1.34", "AIConformance-1.34.yaml")
    assert items is not None and {(p["rule"], p["requirement"]) for p in problems} == {
        ("catalogue_mismatch", "workload_sandboxing"), ("catalogue_mismatch", "dra_support")}
    changed["spec"]["security"][-1]["level"] = "MUST"  # an official MUST the catalogue does not know
    results = [passing_result(r["id"]) for r in catalogue("1.34")]
    dummy, files, summary = report.render_report(CLUSTER, "1.34", catalogue("1.34"), results, [r["id"] for r in catalogue("1.34")],
                                                 PRODUCT, GENERATED, checklist_items=readiness.load_checklist(changed),
                                                 checklist_problems=problems, submission_product="rke2")
    assert "dra_support" not in files["PRODUCT.yaml"]
    blocking = summary["readiness"]["blocking"]
    assert [(p["rule"], p["requirement"]) for p in blocking] == [("must_not_implemented", "workload_sandboxing")]
    assert "catalogue has no workload_sandboxing" in blocking[0]["fix"]
    assert {p["rule"] for p in summary["readiness"]["warnings"]} == {"catalogue_mismatch"}


def test_a_wrong_or_unreadable_checklist_file_is_blocking():
    items, problems = readiness.choose_checklist(official_134(), catalogue("1.35"), "1.35", "AIConformance-1.34.yaml")
    assert items is None and problems[0]["rule"] == "checklist_file" and "checklist of 1.34, not 1.35" in problems[0]["message"]
    items, problems = readiness.choose_checklist(None, catalogue("1.34"), "1.34", "missing.yaml", "No such file")
    assert items is None and "cannot read missing.yaml" in problems[0]["message"]
    items, problems = readiness.choose_checklist({"spec": {"x": "y"}}, catalogue("1.34"), "1.34", "f.yaml")
    assert items is None and "not a checklist file" in problems[0]["message"]
    assert readiness.choose_checklist(None, catalogue("1.34"), "1.34") == (None, [])


def test_product_yaml_that_does_not_parse(baseline):
    result = readiness.check_product("metadata: [unclosed", "1.34", catalogue("1.34"), baseline[0], "v1.34/rke2/PRODUCT.yaml")
    assert rules(result) == ["product_yaml"]
