"""robust_controller over HTTP against the fake API server, which plays the Kubeflow Training Operator
(tests/support/training_cluster.py).

Without the webhook the TFJob without image is accepted, as recorded
(objects/tfjob-no-image.dryrun-accepted-after-webhook-deleted.json).
"""

import json

import pytest

from ansible_collections.ai_conformance.rke2.plugins.module_utils.result import validate_result
from ansible_collections.ai_conformance.rke2.plugins.modules import robust_controller
from tests.support.fakeapi import FakeKubeAPI
from tests.support.modrun import checks, run_module as run_module_main
from tests.support.training_cluster import (
    GROUP_VERSION,
    REFERENCE_DENIAL,
    deny_tfjobs_without_image,
    install_crds,
    install_operator,
    leftovers,
    play_training_operator,
)


@pytest.fixture
def fake():
    with FakeKubeAPI() as server:
        yield server


def run_module(fake, tmp_path, capsys, check_mode=False, **args):
    kubeconfig = fake.write_kubeconfig(str(tmp_path / "kubeconfig"))
    params = dict({"kubeconfig": kubeconfig, "timeout": 20, "run_id": "test"}, **args)
    out = run_module_main(robust_controller, params, capsys, check_mode=check_mode)
    assert out["changed"] is False and not out.get("failed"), out
    return validate_result(out["result"])


def evidence(result, name):
    return next(e["content"] for e in result["evidence"] if e["name"] == name)


def assert_nothing_left(fake):
    """The module's own objects are gone: no test namespace, no jobs, no pods."""
    assert leftovers(fake) == []


def full_operator(fake, **kwargs):
    install_crds(fake)
    install_operator(fake)
    deny_tfjobs_without_image(fake)
    play_training_operator(fake, **kwargs)


# ---------------------------------------------------------------- the healthy operator


def test_webhook_denies_and_job_succeeds(fake, tmp_path, capsys):
    calls = []
    install_crds(fake)
    install_operator(fake)
    deny_tfjobs_without_image(fake, calls)
    play_training_operator(fake)
    result = run_module(fake, tmp_path, capsys)
    by_name = checks(result)
    assert result["status"] == "passed", json.dumps(result["checks"], indent=1)
    assert set(by_name) == {"crds_established", "operator_deployment", "webhook_configuration", "webhook_endpoints",
                            "admission_rejects_invalid", "admission_accepts_valid", "reconciliation"}
    assert all(c["status"] == "passed" for c in by_name.values())
    # The exact denial of the reference procedure is the evidence.
    assert evidence(result, "admission-invalid-answer") == REFERENCE_DENIAL
    assert by_name["admission_rejects_invalid"]["message"].endswith(
        "spec.tfReplicaSpecs[Chief].template.spec.containers[0].image: Required value: must be required")
    assert evidence(result, "admission-invalid")["response"]["code"] == 403
    # The webhook saw both probes as dry-run requests.
    assert calls == [{"name": "aic-invalid-tfjob", "dry_run": True}, {"name": "aic-valid-tfjob", "dry_run": True}]
    # CRD evidence lists versions.
    rows = evidence(result, "crds")
    assert {r["name"]: r["served_versions"] for r in rows}["tfjobs.kubeflow.org"] == ["v1"]
    assert len(rows) == 6
    # Reconciliation evidence: conditions and the pod.
    job = evidence(result, "reconciliation-job")
    assert [c["type"] for c in job["conditions"]] == ["Created", "Running", "Succeeded"]
    pods = evidence(result, "reconciliation-pods")
    assert pods[0]["name"] == "aic-reconcile-master-0" and pods[0]["containers"][0]["exitCode"] == 0
    assert evidence(result, "reconciliation-log") == "robust_controller reconciliation probe\n"
    assert "aic-reconcile-master-0" in by_name["reconciliation"]["message"]
    assert_nothing_left(fake)


def test_dry_run_is_honoured(fake, tmp_path, capsys):
    full_operator(fake)
    run_module(fake, tmp_path, capsys, run_job=False)
    posts = fake.requests_to("POST", r"/tfjobs$")
    assert len(posts) == 2
    assert all(r.query.get("dryRun") == "All" for r in posts), [r.query for r in posts]
    assert fake.objects(GROUP_VERSION, "tfjobs") == []
    # Nothing but the test namespace was really created, and it is gone.
    real_posts = [r for r in fake.requests_to("POST") if r.query.get("dryRun") != "All"]
    assert [r.path for r in real_posts] == ["/api/v1/namespaces"]
    assert_nothing_left(fake)


def test_job_image_is_configurable(fake, tmp_path, capsys):
    full_operator(fake)
    result = run_module(fake, tmp_path, capsys, job_image="registry.example.com/mirror/busybox:1.36.1")
    assert len(fake.requests_to("POST", r"/pytorchjobs$")) == 1
    assert evidence(result, "reconciliation-pods")[0]["containers"][0]["image"] == "registry.example.com/mirror/busybox:1.36.1"
    assert checks(result)["reconciliation"]["status"] == "passed"


# ---------------------------------------------------------------- the "Done when" case


def test_webhook_missing_fails_with_the_servers_answer(fake, tmp_path, capsys):
    """CRDs exist, no webhook registered: the invalid TFJob is accepted -> failed, with the server's answer."""
    install_crds(fake)
    result = run_module(fake, tmp_path, capsys, run_job=False)
    by_name = checks(result)
    assert result["status"] == "failed"
    invalid = by_name["admission_rejects_invalid"]
    assert invalid["status"] == "failed"
    assert invalid["message"] == ("the invalid TFJob was not rejected by any admission webhook: "
                                  "the server accepted it (HTTP 201)")
    answer = evidence(result, "admission-invalid")
    assert answer["response"]["code"] == 201
    assert answer["response"]["body"]["kind"] == "TFJob"
    assert answer["response"]["body"]["spec"]["tfReplicaSpecs"]["Chief"]["template"]["spec"]["containers"] == [
        {"name": "tensorflow"}]
    assert answer["request"]["query"] == {"dryRun": "All"}
    assert by_name["crds_established"]["status"] == "passed"
    assert by_name["webhook_configuration"]["status"] == "failed"
    assert "does not exist" in by_name["webhook_configuration"]["message"]
    assert by_name["admission_accepts_valid"]["status"] == "passed"
    assert by_name["reconciliation"]["status"] == "skipped"
    assert fake.objects(GROUP_VERSION, "tfjobs") == []
    assert_nothing_left(fake)


def test_invalid_accepted_although_webhook_is_registered(fake, tmp_path, capsys):
    """A VWC with ready endpoints whose webhook allows everything is still a failure."""
    install_crds(fake)
    install_operator(fake)
    play_training_operator(fake)
    result = run_module(fake, tmp_path, capsys)
    by_name = checks(result)
    assert result["status"] == "failed"
    assert by_name["webhook_configuration"]["status"] == "passed"
    assert by_name["webhook_endpoints"]["status"] == "passed"
    assert by_name["admission_rejects_invalid"]["status"] == "failed"
    assert by_name["reconciliation"]["status"] == "passed"


def test_schema_rejection_is_reported_as_such(fake, tmp_path, capsys):
    install_crds(fake)
    install_operator(fake)
    body = fake.recorded("errors/422-tfjob-missing-container-name.json")["response"]

    def schema(obj, fake_, dry_run):
        if obj["metadata"]["name"] == "aic-invalid-tfjob":
            raise fake_.Reject(422, body)

    fake.on_create(GROUP_VERSION, "tfjobs", schema)
    result = run_module(fake, tmp_path, capsys, run_job=False)
    invalid = checks(result)["admission_rejects_invalid"]
    assert invalid["status"] == "failed"
    assert "rejected by the CRD's OpenAPI schema, not by an admission webhook" in invalid["message"]
    assert invalid["observed"]["causes"][0]["field"] == "spec.tfReplicaSpecs.Chief.template.spec.containers[0].name"


def test_webhook_unreachable_is_an_error(fake, tmp_path, capsys):
    install_crds(fake)
    install_operator(fake)
    fake.fail("POST", r"/tfjobs$", fixture="webhook-unreachable-create-tfjob.json")
    result = run_module(fake, tmp_path, capsys, run_job=False)
    by_name = checks(result)
    assert result["status"] == "error"
    assert by_name["admission_rejects_invalid"]["status"] == "error"
    assert "could not call it" in by_name["admission_rejects_invalid"]["message"]
    assert by_name["admission_accepts_valid"]["status"] == "error"


def test_webhook_without_ready_endpoints_fails(fake, tmp_path, capsys):
    install_crds(fake)
    install_operator(fake, ready=False)
    deny_tfjobs_without_image(fake)
    result = run_module(fake, tmp_path, capsys, run_job=False)
    by_name = checks(result)
    assert by_name["webhook_endpoints"]["status"] == "failed"
    assert by_name["webhook_endpoints"]["message"] == (
        "the webhook Service kubeflow/training-operator has no ready endpoints (not ready: 10.42.0.17)")
    assert by_name["operator_deployment"]["status"] == "failed"


def test_server_that_stores_dry_run_objects_is_caught_and_cleaned(fake, tmp_path, capsys):
    full_operator(fake)

    def store_anyway(obj, fake_, dry_run):
        if dry_run and obj["spec"]["tfReplicaSpecs"]["Chief"]["template"]["spec"]["containers"][0].get("image"):
            fake_.put_object(obj)

    fake.on_create(GROUP_VERSION, "tfjobs", store_anyway)
    result = run_module(fake, tmp_path, capsys, run_job=False)
    valid = checks(result)["admission_accepts_valid"]
    assert valid["status"] == "error"
    assert valid["message"].startswith("the API server stored the object of a dryRun=All create")
    assert_nothing_left(fake)


# ---------------------------------------------------------------- reconciliation


def test_job_fails(fake, tmp_path, capsys):
    full_operator(fake, exit_code=1)
    result = run_module(fake, tmp_path, capsys)
    reconciliation = checks(result)["reconciliation"]
    assert result["status"] == "failed"
    assert reconciliation["status"] == "failed"
    assert "has failed because 1 Master replica(s) failed" in reconciliation["message"]
    assert evidence(result, "reconciliation-pods")[0]["containers"][0]["exitCode"] == 1
    assert_nothing_left(fake)


def test_image_pull_problem_is_an_error_and_cleaned_up(fake, tmp_path, capsys):
    full_operator(fake, waiting="ImagePullBackOff")
    result = run_module(fake, tmp_path, capsys)
    reconciliation = checks(result)["reconciliation"]
    assert reconciliation["status"] == "error" and reconciliation["cause"] == "image_pull"
    assert "ImagePullBackOff" in reconciliation["message"]
    assert "(registry registry.k8s.io)" in reconciliation["message"]
    assert result["status"] == "error"
    assert_nothing_left(fake)


def test_controller_that_never_reconciles_fails(fake, tmp_path, capsys):
    install_crds(fake)
    install_operator(fake)
    deny_tfjobs_without_image(fake)
    result = run_module(fake, tmp_path, capsys, timeout=3)
    reconciliation = checks(result)["reconciliation"]
    assert reconciliation["status"] == "failed" and reconciliation["cause"] == "capability"
    assert "did not reconcile PyTorchJob" in reconciliation["message"]
    assert "no status conditions" in reconciliation["message"]
    assert_nothing_left(fake)


def test_cleanup_after_an_api_failure_mid_check(fake, tmp_path, capsys):
    full_operator(fake)
    fake.fail("GET", r"/pytorchjobs/aic-reconcile$", status_code=500)
    result = run_module(fake, tmp_path, capsys)
    reconciliation = checks(result)["reconciliation"]
    assert reconciliation["status"] == "error"
    assert "500" in reconciliation["message"]
    assert fake.requests_to("DELETE", r"/api/v1/namespaces/aic-robust-controller-")
    assert_nothing_left(fake)


def test_run_job_disabled_is_skipped_with_reason(fake, tmp_path, capsys):
    full_operator(fake)
    result = run_module(fake, tmp_path, capsys, run_job=False)
    assert checks(result)["reconciliation"] == {
        "name": "reconciliation", "status": "skipped", "kind": "inspect", "cause": None,
        "message": "reconciliation job disabled (run_job=false)", "observed": None, "expected": None}
    # admission checks alone do not exercise the controller: nothing was reconciled
    assert result["status"] == "skipped"
    assert any(n.startswith("nothing was exercised") for n in result["notes"])
    assert fake.requests_to("POST", r"/pytorchjobs$") == []


def test_check_mode_creates_nothing(fake, tmp_path, capsys):
    full_operator(fake)
    result = run_module(fake, tmp_path, capsys, check_mode=True)
    by_name = checks(result)
    assert by_name["admission_rejects_invalid"]["status"] == "passed"
    assert by_name["admission_rejects_invalid"]["kind"] == by_name["admission_accepts_valid"]["kind"] == "inspect"
    assert by_name["reconciliation"]["status"] == "skipped"
    # admission inspected, nothing reconciled: never passed in check mode
    assert result["status"] == "skipped" and any(n.startswith("nothing was exercised") for n in result["notes"])
    posts = fake.requests_to("POST")
    assert posts and all(r.query.get("dryRun") == "All" for r in posts)
    assert all("/namespaces/default/" in r.path for r in posts)


def test_missing_crds_fail_and_skip_the_rest(fake, tmp_path, capsys):
    install_operator(fake)
    result = run_module(fake, tmp_path, capsys)
    by_name = checks(result)
    assert result["status"] == "failed"
    assert by_name["crds_established"]["status"] == "failed"
    assert "tfjobs.kubeflow.org missing" in by_name["crds_established"]["message"]
    assert by_name["admission_rejects_invalid"]["status"] == "skipped"
    assert by_name["reconciliation"]["status"] == "skipped"
    assert fake.requests_to("POST") == []


def test_rbac_forbidden_on_crds_is_an_error(fake, tmp_path, capsys):
    full_operator(fake)
    fake.forbid("GET", r"/customresourcedefinitions/")
    result = run_module(fake, tmp_path, capsys, run_job=False)
    crds = checks(result)["crds_established"]
    assert crds["status"] == "error"
    assert "forbidden" in crds["message"]


# ---------------------------------------------------------------- issue 9: verdicts through the status policy


KYVERNO_DENIAL = {"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure", "reason": "Forbidden", "code": 403,
                  "message": 'admission webhook "validate.kyverno.svc-fail" denied the request: \n\nresource TFJob/aic-robust/'
                             'aic-valid-tfjob was blocked due to the following policies\n\nrequire-labels: check-team: '
                             'validation error: label team is required'}


def test_valid_tfjob_denied_by_a_policy_webhook_is_an_error_naming_it(fake, tmp_path, capsys):
    """A Kyverno/Gatekeeper-style deny of the valid TFJob is the environment, not the operator failing."""
    full_operator(fake)

    def kyverno(obj, fake_, dry_run):
        if obj["metadata"]["name"] == "aic-valid-tfjob":
            raise fake_.Reject(403, KYVERNO_DENIAL)

    fake.on_create(GROUP_VERSION, "tfjobs", kyverno)
    result = run_module(fake, tmp_path, capsys, run_job=False)
    valid = checks(result)["admission_accepts_valid"]
    assert valid["status"] == "error" and valid["cause"] == "policy_webhook"
    assert 'admission webhook "validate.kyverno.svc-fail", which is not the operator\'s' in valid["message"]
    assert result["status"] == "error"
    assert_nothing_left(fake)


def test_check_mode_never_deletes_an_object_it_did_not_create(fake, tmp_path, capsys):
    """An existing aic-valid-tfjob (and aic-invalid-tfjob) in default survives a check-mode run."""
    full_operator(fake)
    for name in ("aic-valid-tfjob", "aic-invalid-tfjob"):
        fake.put_object({"apiVersion": GROUP_VERSION, "kind": "TFJob", "metadata": {"name": name, "namespace": "default"},
                         "spec": {"tfReplicaSpecs": {"Chief": {"replicas": 1, "template": {"spec": {"containers": [
                             {"name": "tensorflow", "image": "user/image:1"}]}}}}}})
    result = run_module(fake, tmp_path, capsys, check_mode=True)
    assert sorted(o["metadata"]["name"] for o in fake.objects(GROUP_VERSION, "tfjobs")) == ["aic-invalid-tfjob", "aic-valid-tfjob"]
    assert fake.requests_to("DELETE") == []
    by_name = checks(result)
    # the probes used names of their own instead of colliding with the user's objects
    assert "admission_rejects_invalid" in by_name, result["checks"]
    assert by_name["admission_rejects_invalid"]["status"] == "passed"
    assert by_name["admission_accepts_valid"]["status"] == "passed"
    assert evidence(result, "admission-valid")["request"]["body"]["metadata"]["name"] == "aic-valid-tfjob-test"
    # admission was only inspected; nothing was reconciled
    assert by_name["reconciliation"]["status"] == "skipped" and result["status"] == "skipped"


def test_job_succeeded_but_its_pod_did_not_exit_0_fails(fake, tmp_path, capsys):
    full_operator(fake, pod_exit_code=2)
    result = run_module(fake, tmp_path, capsys)
    reconciliation = checks(result)["reconciliation"]
    assert reconciliation["status"] == "failed" and reconciliation["cause"] == "capability"
    assert reconciliation["message"] == (
        "PyTorchJob %s/aic-reconcile reports Succeeded (PyTorchJobSucceeded), but aic-reconcile-master-0: "
        "container pytorch exited 2 (Error)" % evidence(result, "admission-invalid")["request"]["body"]["metadata"]["namespace"])
    assert_nothing_left(fake)


def test_job_pod_template_comes_from_the_builder(fake, tmp_path, capsys):
    from ansible_collections.ai_conformance.rke2.plugins.module_utils import testpods

    created = []
    install_crds(fake)
    install_operator(fake)
    deny_tfjobs_without_image(fake)
    play_training_operator(fake, created=created)
    toleration = {"key": "example.com/dedicated", "operator": "Exists", "effect": "NoSchedule"}
    result = run_module(fake, tmp_path, capsys, tolerations=[toleration], image_registry="mirror.example.com")
    assert result["status"] == "passed", result["checks"]
    template = created[0]["spec"]["pytorchReplicaSpecs"]["Master"]["template"]
    assert testpods.hardening_problems(template["spec"]) == []
    assert template["spec"]["tolerations"] == [toleration]
    assert template["spec"]["containers"][0]["image"] == "mirror.example.com/e2e-test-images/busybox:1.36.1-1"
    # the valid TFJob of the dry-run names the same mirrored image
    valid = evidence(result, "admission-valid")["request"]["body"]
    assert valid["spec"]["tfReplicaSpecs"]["Chief"]["template"]["spec"]["containers"][0]["image"] == (
        "mirror.example.com/e2e-test-images/busybox:1.36.1-1")


def test_job_pods_rejected_by_pod_security_is_an_error(fake, tmp_path, capsys):
    """The operator cannot create its pod (the recorded PodSecurity FailedCreate): the environment, not the operator."""
    install_crds(fake)
    install_operator(fake)
    deny_tfjobs_without_image(fake)
    recorded = fake.recorded("events/core-v1-events-replicaset-plain-deploy.psa-restricted.json")["response"]["items"][0]

    def operator_refused(server):
        for job in server.objects(GROUP_VERSION, "pytorchjobs"):
            ns = job["metadata"]["namespace"]
            if server.objects("v1", "events", namespace=ns):
                continue
            event = json.loads(json.dumps(recorded))
            event.update(apiVersion="v1", kind="Event")
            event["metadata"] = {"name": "aic-reconcile.18ed2ffc1ac3385e", "namespace": ns}
            event["involvedObject"] = {"kind": "PyTorchJob", "namespace": ns, "name": job["metadata"]["name"],
                                       "apiVersion": GROUP_VERSION}
            event["message"] = event["message"].replace("plain-deploy-5cfb4b4547-5x9v6", "aic-reconcile-master-0")
            server.put_object(event)

    fake.add_reconciler(operator_refused)
    result = run_module(fake, tmp_path, capsys, timeout=2)
    reconciliation = checks(result)["reconciliation"]
    assert reconciliation["status"] == "error" and reconciliation["cause"] == "pod_security"
    assert 'FailedCreate aic-reconcile: Error creating: pods "aic-reconcile-master-0" is forbidden: violates PodSecurity' in (
        reconciliation["message"])
    assert_nothing_left(fake)
