"""Leftover cleanup over HTTP, and the report module writing its files."""

import datetime
import glob
import json
import os

import yaml

from ansible_collections.ai_conformance.rke2.plugins.module_utils import dra, gang, gateway
from ansible_collections.ai_conformance.rke2.plugins.module_utils.testpods import PodBuilder
from ansible_collections.ai_conformance.rke2.plugins.module_utils.kube import (
    INSTALLER_MANAGED_BY_VALUE, MANAGED_BY_VALUE, microtime, stuck_message)
from ansible_collections.ai_conformance.rke2.plugins.modules import cleanup, report
from tests.support.fakeapi import FakeKubeAPI
from tests.support.modrun import run_module
from tests.support.shared import REPO_ROOT

OURS = {"app.kubernetes.io/managed-by": "ai-conformance-rke2", "ai-conformance.rke2/run-id": "old"}


def test_cleanup_removes_only_labelled_leftovers(capsys, tmp_path):
    with FakeKubeAPI() as fake:
        kubeconfig = fake.write_kubeconfig(str(tmp_path / "kubeconfig"))
        fake.create_namespace("aic-dra-support-old", labels=OURS)
        fake.create_namespace("aic-dra-support-now", labels=dict(OURS, **{"ai-conformance.rke2/run-id": "now"}))
        fake.create_namespace("team-a")
        fake.put_object({"apiVersion": "gateway.networking.k8s.io/v1", "kind": "GatewayClass",
                         "metadata": {"name": "aic-old", "labels": OURS}, "spec": {"controllerName": "example.com/x"}})
        fake.put_object({"apiVersion": "gateway.networking.k8s.io/v1", "kind": "GatewayClass",
                         "metadata": {"name": "traefik"}, "spec": {"controllerName": "traefik.io/gateway-controller"}})
        fake.remove_group_version("kueue.x-k8s.io/v1beta1")  # kinds that are not served are skipped

        out = run_module(cleanup, {"kubeconfig": kubeconfig, "keep_run_id": "now"}, capsys)
        assert out["changed"] and sorted(out["deleted"]) == ["GatewayClass/aic-old", "Namespace/aic-dra-support-old"]
        names = {n["metadata"]["name"] for n in fake.objects("v1", "namespaces")}
        assert "team-a" in names and "aic-dra-support-now" in names and "aic-dra-support-old" not in names
        assert [g["metadata"]["name"] for g in fake.objects("gateway.networking.k8s.io/v1", "gatewayclasses")] == ["traefik"]
        # bounded: only label-selected lists, never an unfiltered list
        lists = [r for r in fake.requests if r.method == "GET" and r.path.endswith(("namespaces", "gatewayclasses"))]
        assert lists and all("app.kubernetes.io/managed-by=ai-conformance-rke2" in r.query.get("labelSelector", "") for r in lists)

        again = run_module(cleanup, {"kubeconfig": kubeconfig, "keep_run_id": "now"}, capsys)
        assert not again["changed"] and again["deleted"] == []


def run_lease(holder, seconds_ago):
    renewed = datetime.datetime.now(datetime.timezone.utc) - datetime.timedelta(seconds=seconds_ago)
    return {"apiVersion": "coordination.k8s.io/v1", "kind": "Lease",
            "metadata": {"name": "ai-conformance-rke2", "namespace": "kube-system",
                         "annotations": {"ai-conformance.rke2/host": "ci-1"}},
            "spec": {"holderIdentity": holder, "leaseDurationSeconds": 60,
                     "acquireTime": microtime(renewed), "renewTime": microtime(renewed)}}


def test_cleanup_never_deletes_the_objects_of_a_live_run(capsys, tmp_path):
    with FakeKubeAPI() as fake:
        kubeconfig = fake.write_kubeconfig(str(tmp_path / "kubeconfig"))
        fake.put_object(run_lease("live", seconds_ago=10))
        fake.create_namespace("aic-gang-live", labels=dict(OURS, **{"ai-conformance.rke2/run-id": "live"}))
        fake.create_namespace("aic-gang-dead", labels=dict(OURS, **{"ai-conformance.rke2/run-id": "dead"}))
        out = run_module(cleanup, {"kubeconfig": kubeconfig}, capsys)
        assert out["deleted"] == ["Namespace/aic-gang-dead"] and out["kept"] == ["Namespace/aic-gang-live (run live)"]
        assert out["live_run"]["run_id"] == "live" and out["live_run"]["host"] == "ci-1"
        assert fake.get_object("v1", "namespaces", "aic-gang-live") is not None
        # the same run's lease expired (it died): its objects are leftovers now
        fake.put_object(run_lease("live", seconds_ago=61))
        out = run_module(cleanup, {"kubeconfig": kubeconfig}, capsys)
        assert out["deleted"] == ["Namespace/aic-gang-live"] and out["live_run"] is None


def test_cleanup_waits_and_reports_a_namespace_stuck_terminating(capsys, tmp_path):
    with FakeKubeAPI() as fake:
        kubeconfig = fake.write_kubeconfig(str(tmp_path / "kubeconfig"))
        fake.create_namespace("aic-dra-support-old", labels=OURS)
        fake.put_object({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {
            "name": "held", "namespace": "aic-dra-support-old", "finalizers": ["example.com/hold"]}})
        out = run_module(cleanup, {"kubeconfig": kubeconfig, "cleanup_timeout": 1}, capsys)
        assert out["deleted"] == ["Namespace/aic-dra-support-old"]
        assert [s["namespace"] for s in out["stuck"]] == ["aic-dra-support-old"]
        assert any("example.com/hold in 1 resource instances" in c["message"] for c in out["stuck"][0]["conditions"])
        # the module warns with this sentence (module warnings are not in the result once a test imported controller code)
        assert "aic-dra-support-old (Terminating; SomeResourcesRemain" in stuck_message(out["stuck"], 1)
        # a later run waits for the already terminating namespace again, without deleting it twice
        fake.patch_object("v1", "configmaps", "held", {"metadata": {"finalizers": None}}, namespace="aic-dra-support-old")
        out = run_module(cleanup, {"kubeconfig": kubeconfig, "cleanup_timeout": 5}, capsys)
        assert out["deleted"] == [] and out["stuck"] == [] and fake.get_object("v1", "namespaces", "aic-dra-support-old") is None


def test_cleanup_default_kinds_are_the_versions_the_modules_create():
    created = set()
    for version in gang.KUEUE_VERSIONS:
        pods = PodBuilder({})
        template = pods.template([pods.container("w", "agnhost")])
        plan = {"resource": "cpu", "free": "1", "job_b_pods": 2}
        for obj in gang.render_kueue_queues("q", "ns", plan, template, api_version="kueue.x-k8s.io/" + version):
            if obj["kind"] != "LocalQueue":  # namespaced: goes with the namespace
                created.add((obj["apiVersion"], obj["kind"]))
    created.add((gateway.V1, "GatewayClass"))
    created.add((dra.API_VERSION, "DeviceClass"))
    defaults = set((k["apiVersion"], k["kind"]) for k in cleanup.DEFAULT_KINDS)
    assert created <= defaults, created - defaults
    documented = yaml.safe_load(cleanup.DOCUMENTATION)["options"]["kinds"]["default"]
    assert documented == cleanup.DEFAULT_KINDS


def test_installer_roles_use_a_label_cleanup_never_selects(capsys, tmp_path):
    values = {}
    for path in glob.glob(os.path.join(REPO_ROOT, "roles", "*", "vars", "main.yml")) + \
            glob.glob(os.path.join(REPO_ROOT, "roles", "*", "defaults", "main.yml")):
        with open(path) as handle:
            for name, value in (yaml.safe_load(handle) or {}).items():
                if name.endswith("_labels") and isinstance(value, dict) and "app.kubernetes.io/managed-by" in value:
                    values[name] = value["app.kubernetes.io/managed-by"]
    assert set(values) >= {"gateway_api_labels", "volcano_labels", "kueue_labels"}
    assert set(values.values()) == {INSTALLER_MANAGED_BY_VALUE} and MANAGED_BY_VALUE != INSTALLER_MANAGED_BY_VALUE
    with FakeKubeAPI() as fake:
        kubeconfig = fake.write_kubeconfig(str(tmp_path / "kubeconfig"))
        installed = {"app.kubernetes.io/managed-by": values["volcano_labels"], "ai-conformance.rke2/role": "volcano"}
        fake.create_namespace("volcano-system", labels=installed)
        fake.put_object({"apiVersion": "scheduling.volcano.sh/v1beta1", "kind": "Queue",
                         "metadata": {"name": "default", "labels": installed}, "spec": {"weight": 1}})
        out = run_module(cleanup, {"kubeconfig": kubeconfig}, capsys)
        assert out["deleted"] == [] and fake.get_object("v1", "namespaces", "volcano-system") is not None
        assert fake.get_object("scheduling.volcano.sh/v1beta1", "queues", "default") is not None


def test_report_module_writes_the_four_files_and_evidence(capsys, tmp_path):
    result = {"requirement": "dra_support", "status": "failed", "started": "2026-11-23T07:00:00Z", "duration_s": 1.0, "notes": [],
              "checks": [{"name": "dra_api_resources", "status": "failed", "message": "missing: resourceslices", "observed": None, "expected": None}],
              "evidence": [{"name": "api-resources", "format": "text", "content": "NAME\n"}]}
    catalogue = [{"id": "dra_support", "category": "accelerators", "level": "MUST", "title": "DRA", "description": "DRA APIs."}]
    out = run_module(report, {"report_dir": str(tmp_path / "r"), "results": [result], "catalogue": catalogue, "checklist": "1.34",
                              "cluster": {"name": "c", "git_version": "v1.34.9+rke2r1", "kubernetes_minor": "1.34"}}, capsys)
    assert out["changed"] and out["summary"]["unmet_must"] == ["dra_support"]
    written = sorted(os.path.relpath(p, str(tmp_path / "r")) for p in out["files"])
    assert written == ["PRODUCT.yaml", "evidence/dra_support.md", "evidence/dra_support/api-resources.txt", "junit.xml", "report.md", "results.json"]
    for rel in written:
        assert os.path.getsize(str(tmp_path / "r" / rel)) > 0
    product = yaml.safe_load((tmp_path / "r" / "PRODUCT.yaml").read_text())
    assert product["spec"]["accelerators"][0]["status"] == "Not Implemented"
    assert json.loads((tmp_path / "r" / "results.json").read_text())["requirements"][0]["requirement"] == "dra_support"


def test_report_module_rejects_results_outside_the_schema(capsys, tmp_path):
    out = run_module(report, {"report_dir": str(tmp_path / "r"), "results": [{"requirement": "x"}], "catalogue": [], "checklist": "1.34"}, capsys)
    assert out["failed"] and "result schema" in out["msg"]
    assert not (tmp_path / "r").exists()


ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))))
REALISTIC = {
    "platformName": "RKE2", "vendorName": "SUSE", "websiteUrl": "https://docs.rke2.io", "repoUrl": "https://github.com/rancher/rke2",
    "documentationUrl": "https://docs.rke2.io", "productLogoUrl": "https://example.com/rke2.svg",
    "description": "RKE2 with the CNCF AI Conformance components.", "contactEmailAddress": "ai@example.com",
    "k8sConformanceUrl": "https://github.com/cncf/k8s-conformance/tree/master/v1.34/rke2",
}


def passed(req_id):
    checks = [{"name": "exercised", "status": "passed", "message": "exercised", "observed": None, "expected": None}]
    if req_id == "cluster_autoscaling":
        checks.append({"name": "scale_up", "status": "passed", "message": "a node joined", "observed": None, "expected": None})
    return {"requirement": req_id, "status": "passed", "started": "2026-11-23T07:00:00Z", "duration_s": 1.0, "notes": [],
            "checks": checks, "evidence": []}


def test_report_module_lays_out_a_ready_submission_from_the_official_checklist(capsys, tmp_path):
    with open(os.path.join(ROOT, "roles", "conformance", "vars", "catalogue.yml")) as handle:
        catalogue = yaml.safe_load(handle)["conformance_catalogue"]["versions"]["1.34"]["requirements"]
    checklist = os.path.join(ROOT, "tests", "fixtures", "cncf", "AIConformance-1.34.yaml")
    product_dir = tmp_path / "k8s-ai-conformance" / "v1.34" / "rke2"
    product_dir.mkdir(parents=True)
    (product_dir / "ai-conformance-junit.xml").write_text("stale, from a failing run")
    args = {"report_dir": str(tmp_path / "r"), "results": [passed(r["id"]) for r in catalogue], "catalogue": catalogue,
            "checklist": "1.34", "cluster": {"name": "c", "git_version": "v1.34.9", "kubernetes_minor": "1.34", "platform_version": "v1.34.9+rke2r1"},
            "product": REALISTIC, "checklist_file": checklist, "submission_dir": str(tmp_path / "k8s-ai-conformance"),
            "run_info": {"collection_version": "0.1.0", "command": "ansible-playbook ai_conformance.rke2.certify"}}
    out = run_module(report, args, capsys)
    assert out["readiness"]["ready"], out["readiness"]["blocking"]
    assert out["readiness"]["warnings"] == [] and out["submission_path"] == str(product_dir)
    written = sorted(os.listdir(str(product_dir)))
    assert written == ["PRODUCT.yaml", "README.md", "ai-conformance-results.json", "evidence", "junit.xml"]
    product = yaml.safe_load((product_dir / "PRODUCT.yaml").read_text())
    assert product["metadata"]["platformVersion"] == "v1.34.9+rke2r1" and product["metadata"]["kubernetesVersion"] == "v1.34"
    with open(checklist) as handle:
        official = yaml.safe_load(handle)
    assert product["spec"]["operator"][0]["description"] == official["spec"]["operator"][0]["description"]
    readme = (product_dir / "README.md").read_text()
    assert "version 0.1.0" in readme and "`ansible-playbook ai_conformance.rke2.certify`" in readme and "**Ready to submit.**" in readme
    assert (tmp_path / "r" / "report.md").read_text().count("**Ready to submit.**") == 1

    # the same with a failing MUST and an unreadable checklist file: both are blocking, with what to do
    args["results"][0] = dict(args["results"][0], status="failed", checks=[
        {"name": "dra_api_resources", "status": "failed", "message": "missing: resourceslices", "observed": None, "expected": None}])
    args["checklist_file"] = str(tmp_path / "missing.yaml")
    out = run_module(report, args, capsys)
    assert not out["readiness"]["ready"]
    assert {p["rule"] for p in out["readiness"]["blocking"]} == {"must_not_implemented", "checklist_file"}
    assert sorted(os.listdir(str(product_dir))) == ["PRODUCT.yaml", "README.md", "ai-conformance-junit.xml", "ai-conformance-results.json", "evidence"]


def test_report_module_check_mode_writes_nothing_but_reports_readiness(capsys, tmp_path):
    args = {"report_dir": str(tmp_path / "r"), "results": [passed("dra_support")], "checklist": "1.34", "_ansible_check_mode": True,
            "catalogue": [{"id": "dra_support", "category": "accelerators", "level": "MUST", "description": "DRA APIs."}],
            "submission_dir": str(tmp_path / "s"), "product": REALISTIC, "cluster": {"kubernetes_minor": "1.34", "git_version": "v1.34.9+rke2r1"}}
    out = run_module(report, args, capsys)
    assert out["readiness"]["ready"], out["readiness"]["blocking"]
    assert not out["changed"] and not (tmp_path / "r").exists() and not (tmp_path / "s").exists()


def test_report_module_rejects_a_product_name_that_is_not_one_directory(capsys, tmp_path):
    args = {"report_dir": str(tmp_path / "r"), "results": [passed("dra_support")], "checklist": "1.34", "catalogue": [],
            "submission_dir": str(tmp_path / "s"), "submission_product": "../rke2"}
    out = run_module(report, args, capsys)
    assert out["failed"] and "one directory name" in out["msg"] and not (tmp_path / "r").exists()
