"""Pure evaluation of robust_controller (plugins/module_utils/training.py) on recorded shapes."""

import copy
import glob
import json
import os

import pytest
import yaml

from ansible_collections.ai_conformance.rke2.plugins.module_utils import policy, testpods, training
from tests.support.shared import fixture_response, load_json, shared_path

PROFILE = training.operator_profile("kubeflow_training")


# ---------------------------------------------------------------- profiles


def test_unknown_operator_names_the_choices():
    with pytest.raises(ValueError, match="kubeflow_training"):
        training.operator_profile("kuberay")


@pytest.mark.parametrize("text,expected", [("v1.8.1", (1, 8, 1)), ("1.9", (1, 9, 0)), ("v1.9.0-rc.1", (1, 9, 0))])
def test_parse_version(text, expected):
    assert training.parse_version(text) == expected


def test_parse_version_rejects_garbage():
    with pytest.raises(ValueError):
        training.parse_version("latest")


def test_expected_crds_v18_match_the_shipped_crd_files():
    """v1.8.1 ships exactly the CRDs in ../shared/crds/kubeflow-training-operator (no JAXJob)."""
    names = set()
    for path in glob.glob(os.path.join(shared_path("crds", "kubeflow-training-operator"), "*.yaml")):
        names.add(_crd_file(os.path.basename(path)[len("kubeflow.org_"):-len(".yaml")])["metadata"]["name"])
    assert set(training.expected_crds(PROFILE, "v1.8.1")) == names
    assert "jaxjobs.kubeflow.org" not in names


def test_expected_crds_v19_adds_jaxjobs_and_drops_mxjobs():
    crds = training.expected_crds(PROFILE, "v1.9.2")
    assert "jaxjobs.kubeflow.org" in crds
    assert "mxjobs.kubeflow.org" not in crds
    for plural in ("tfjobs", "pytorchjobs", "mpijobs", "xgboostjobs", "paddlejobs"):
        assert "%s.kubeflow.org" % plural in crds


def test_expected_webhooks_v18_are_five():
    """The reference procedure shows validator.training-operator.kubeflow.org with 5 webhooks for v1.8."""
    hooks = training.expected_webhooks(PROFILE, "v1.8.1")
    assert len(hooks) == 5
    assert hooks["tfjobs"] == "validator.tfjob.training-operator.kubeflow.org"
    assert "jaxjobs" not in hooks
    assert "jaxjobs" in training.expected_webhooks(PROFILE, "v1.9.0")


# ---------------------------------------------------------------- CRDs


_CRD_FILES = {}


def _crd_file(plural):
    if plural not in _CRD_FILES:
        with open(shared_path("crds", "kubeflow-training-operator", "kubeflow.org_%s.yaml" % plural)) as handle:
            _CRD_FILES[plural] = yaml.load(handle, Loader=getattr(yaml, "CSafeLoader", yaml.SafeLoader))
    return copy.deepcopy(_CRD_FILES[plural])


def _crd(plural, established="True", names_accepted="True"):
    """A real v1.8.1 CRD (../shared/crds) with the status the apiserver sets."""
    crd = _crd_file(plural)
    crd["status"] = {
        "acceptedNames": crd["spec"]["names"],
        "storedVersions": ["v1"],
        "conditions": [
            {"type": "NamesAccepted", "status": names_accepted,
             "reason": "NoConflicts" if names_accepted == "True" else "AlreadyInUse",
             "message": "no conflicts found" if names_accepted == "True" else '"%s" is already in use' % plural,
             "lastTransitionTime": "2026-11-23T06:19:40Z"},
            {"type": "Established", "status": established,
             "reason": "InitialNamesAccepted" if established == "True" else "NotAccepted",
             "message": "the initial names have been accepted" if established == "True" else "not all names are accepted",
             "lastTransitionTime": "2026-11-23T06:19:40Z"},
        ],
    }
    return crd


def test_crds_all_established():
    names = training.expected_crds(PROFILE, "v1.8.1")
    found = dict((name, _crd(name.split(".")[0])) for name in names)
    out = training.evaluate_crds(names, found)
    assert out["ok"] is True
    assert out["missing"] == [] and out["not_ready"] == []
    tf = next(row for row in out["rows"] if row["name"] == "tfjobs.kubeflow.org")
    assert tf["served_versions"] == ["v1"] and tf["storage_version"] == "v1" and tf["kind"] == "TFJob"


def test_crds_missing_one():
    names = training.expected_crds(PROFILE, "v1.8.1")
    found = dict((name, _crd(name.split(".")[0])) for name in names)
    found["paddlejobs.kubeflow.org"] = None
    out = training.evaluate_crds(names, found)
    assert out["ok"] is False
    assert out["missing"] == ["paddlejobs.kubeflow.org"]


def test_crds_names_not_accepted_reports_reason():
    names = ["tfjobs.kubeflow.org"]
    out = training.evaluate_crds(names, {"tfjobs.kubeflow.org": _crd("tfjobs", established="False", names_accepted="False")})
    assert out["ok"] is False
    assert out["not_ready"] == names
    problems = out["rows"][0]["problems"]
    assert "Established=False (NotAccepted: not all names are accepted)" in problems
    assert any(p.startswith("NamesAccepted=False (AlreadyInUse") for p in problems)


def test_crd_without_status_is_not_ready():
    crd = _crd("tfjobs")
    del crd["status"]
    out = training.evaluate_crds(["tfjobs.kubeflow.org"], {"tfjobs.kubeflow.org": crd})
    assert out["ok"] is False
    assert out["rows"][0]["problems"] == ["Established=absent", "NamesAccepted=absent"]


# ---------------------------------------------------------------- webhook configuration


def _recorded_vwc():
    return fixture_response("k8s-fixtures", "objects", "validatingwebhookconfiguration.create.json")


def _operator_vwc():
    """The recorded VWC reshaped as training-operator v1.8 installs it: service reference, not url."""
    vwc = copy.deepcopy(_recorded_vwc())
    vwc["metadata"]["name"] = PROFILE["webhook_configuration"]
    hook = vwc["webhooks"][0]
    hook["clientConfig"] = {"caBundle": hook["clientConfig"]["caBundle"],
                            "service": {"namespace": "kubeflow", "name": "training-operator",
                                        "path": "/validate-kubeflow-org-v1-tfjob", "port": 443}}
    return vwc


def test_recorded_vwc_covers_tfjobs_with_url():
    out = training.evaluate_webhook_configuration(
        _recorded_vwc(), "kubeflow.org", "v1", "tfjobs", expected_name=PROFILE["webhooks"]["tfjobs"])
    assert out["ok"] is True, out["problems"]
    assert out["webhook"] == "validator.tfjob.training-operator.kubeflow.org"
    assert out["failure_policy"] == "Fail"
    assert out["url"] == "https://127.0.0.1:9443/validate-kubeflow-org-v1-tfjob"
    assert out["service"] is None


def test_recorded_vwc_does_not_cover_pytorchjobs():
    out = training.evaluate_webhook_configuration(_recorded_vwc(), "kubeflow.org", "v1", "pytorchjobs")
    assert out["ok"] is False
    assert "covers CREATE of kubeflow.org/v1 pytorchjobs" in out["problems"][0]


def test_operator_vwc_service_reference():
    out = training.evaluate_webhook_configuration(
        _operator_vwc(), "kubeflow.org", "v1", "tfjobs", PROFILE["webhooks"]["tfjobs"], "kubeflow", "training-operator")
    assert out["ok"] is True, out["problems"]
    assert out["service"] == {"namespace": "kubeflow", "name": "training-operator", "port": 443,
                              "path": "/validate-kubeflow-org-v1-tfjob"}


def test_vwc_service_elsewhere_is_a_problem():
    vwc = _operator_vwc()
    vwc["webhooks"][0]["clientConfig"]["service"]["namespace"] = "opendatahub"
    out = training.evaluate_webhook_configuration(
        vwc, "kubeflow.org", "v1", "tfjobs", None, "kubeflow", "training-operator")
    assert out["ok"] is False
    assert out["problems"] == ["clientConfig.service is opendatahub/training-operator, expected kubeflow/training-operator"]


def test_vwc_failure_policy_ignore_is_a_problem():
    vwc = _operator_vwc()
    vwc["webhooks"][0]["failurePolicy"] = "Ignore"
    out = training.evaluate_webhook_configuration(vwc, "kubeflow.org", "v1", "tfjobs")
    assert out["ok"] is False
    assert "failurePolicy is Ignore" in out["problems"][0]


def test_vwc_without_ca_bundle_is_a_problem():
    vwc = _operator_vwc()
    del vwc["webhooks"][0]["clientConfig"]["caBundle"]
    out = training.evaluate_webhook_configuration(vwc, "kubeflow.org", "v1", "tfjobs")
    assert out["ok"] is False
    assert "caBundle is empty" in out["problems"][0]


def test_vwc_missing():
    out = training.evaluate_webhook_configuration(None, "kubeflow.org", "v1", "tfjobs")
    assert out["ok"] is False
    assert out["problems"] == ["the ValidatingWebhookConfiguration does not exist"]


def test_vwc_wildcard_rule_covers():
    vwc = _operator_vwc()
    vwc["webhooks"][0]["rules"] = [{"apiGroups": ["*"], "apiVersions": ["*"], "operations": ["*"], "resources": ["*"]}]
    out = training.evaluate_webhook_configuration(vwc, "kubeflow.org", "v1", "pytorchjobs")
    assert out["webhook"] == "validator.tfjob.training-operator.kubeflow.org"


def test_vwc_update_only_rule_does_not_cover_create():
    vwc = _operator_vwc()
    vwc["webhooks"][0]["rules"][0]["operations"] = ["UPDATE"]
    out = training.evaluate_webhook_configuration(vwc, "kubeflow.org", "v1", "tfjobs")
    assert out["ok"] is False and out["webhook"] is None


# ---------------------------------------------------------------- endpoints


def _slice(ready):
    return {"apiVersion": "discovery.k8s.io/v1", "kind": "EndpointSlice", "addressType": "IPv4",
            "metadata": {"name": "training-operator-abcde", "namespace": "kubeflow",
                         "labels": {"kubernetes.io/service-name": "training-operator"}},
            "ports": [{"name": "monitoring-port", "port": 8080, "protocol": "TCP"},
                      {"name": "webhook-server", "port": 9443, "protocol": "TCP"}],
            "endpoints": [{"addresses": ["10.42.0.17"], "conditions": {"ready": ready, "serving": ready, "terminating": False},
                           "targetRef": {"kind": "Pod", "name": "training-operator-f7d4b59f6-vdnh9", "namespace": "kubeflow"}}]}


def test_endpoint_slices_ready():
    out = training.evaluate_endpoint_slices([_slice(True)])
    assert out == {"ready": ["10.42.0.17"], "not_ready": [], "ports": [8080, 9443]}


def test_endpoint_slices_not_ready():
    out = training.evaluate_endpoint_slices([_slice(False)])
    assert out["ready"] == [] and out["not_ready"] == ["10.42.0.17"]


def test_endpoint_slices_empty():
    assert training.evaluate_endpoint_slices([])["ready"] == []


def test_core_endpoints_shape():
    endpoints = {"kind": "Endpoints", "subsets": [{"addresses": [{"ip": "10.42.0.17"}],
                                                   "notReadyAddresses": [{"ip": "10.42.1.3"}],
                                                   "ports": [{"name": "webhook-server", "port": 9443}]}]}
    assert training.evaluate_endpoints(endpoints) == {"ready": ["10.42.0.17"], "not_ready": ["10.42.1.3"], "ports": [9443]}
    assert training.evaluate_endpoints(None)["ready"] == []


# ---------------------------------------------------------------- admission answers


def _recorded(name):
    data = load_json("k8s-fixtures", "errors", name) if name.startswith(("webhook-", "422-", "403-", "404-")) \
        else load_json("k8s-fixtures", "objects", name)
    return data["status_code"], data["response"]


REFERENCE_DENIAL = ("spec.tfReplicaSpecs[Chief].template.spec.containers[0].image: Required value: must be required")


@pytest.mark.parametrize("name,code", [
    ("webhook-denied-create-tfjob-no-image.json", 403),
    ("webhook-denied-dryrun-create-tfjob-no-image.json", 403),
    ("webhook-denied-create-tfjob-no-image.plain-message.json", 400),
])
def test_webhook_denial_recorded(name, code):
    status_code, body = _recorded(name)
    answer = training.classify_admission(status_code, body, "TFJob")
    assert answer["outcome"] == training.WEBHOOK_DENIED
    assert answer["code"] == code
    assert answer["webhook"] == "validator.tfjob.training-operator.kubeflow.org"
    assert answer["denial"] == REFERENCE_DENIAL
    cause, message = training.evaluate_invalid_probe(answer, [PROFILE["webhooks"]["tfjobs"]], "TFJob")
    assert cause is None
    assert message.endswith(REFERENCE_DENIAL)


def test_plain_message_variant_has_no_reason():
    answer = training.classify_admission(*_recorded("webhook-denied-create-tfjob-no-image.plain-message.json"))
    assert answer["reason"] is None and answer["outcome"] == training.WEBHOOK_DENIED


def test_webhook_denial_multiple_errors_keeps_the_aggregate():
    answer = training.classify_admission(*_recorded("webhook-denied-create-tfjob-multiple-errors.json"))
    assert answer["outcome"] == training.WEBHOOK_DENIED
    assert answer["denial"].startswith("[") and answer["denial"].endswith("]")
    assert "must have at least one container with name tensorflow" in answer["denial"]


def test_denial_by_another_webhook_is_an_error_not_a_pass():
    status_code, body = _recorded("webhook-denied-create-tfjob-no-image.json")
    body = dict(body, message=body["message"].replace("validator.tfjob.training-operator.kubeflow.org",
                                                      "validate.kyverno.svc-fail"))
    answer = training.classify_admission(status_code, body)
    assert answer["webhook"] == "validate.kyverno.svc-fail"
    cause, message = training.evaluate_invalid_probe(answer, [PROFILE["webhooks"]["tfjobs"]], "TFJob")
    assert cause == "policy_webhook" and policy.status_for(cause) == "error"
    assert 'another admission webhook "validate.kyverno.svc-fail"' in message


@pytest.mark.parametrize("name", ["422-tfjob-missing-container-name.json", "422-tfjob-missing-tfReplicaSpecs.json"])
def test_schema_rejection_recorded(name):
    answer = training.classify_admission(*_recorded(name))
    assert answer["outcome"] == training.SCHEMA_REJECTED
    assert answer["code"] == 422 and answer["reason"] == "Invalid"
    assert answer["causes"][0]["reason"] == "FieldValueRequired"
    cause, message = training.evaluate_invalid_probe(answer, [PROFILE["webhooks"]["tfjobs"]], "TFJob")
    assert cause == "capability" and policy.status_for(cause) == "failed"
    assert "rejected by the CRD's OpenAPI schema, not by an admission webhook" in message
    assert 'is invalid: [spec.tfReplicaSpecs' in message


def test_webhook_unreachable_recorded_is_an_error():
    answer = training.classify_admission(*_recorded("webhook-unreachable-create-tfjob.json"))
    assert answer["outcome"] == training.WEBHOOK_UNREACHABLE
    assert answer["code"] == 500 and answer["reason"] == "InternalError"
    assert answer["webhook"] == "validator.tfjob.training-operator.kubeflow.org"
    cause, message = training.evaluate_invalid_probe(answer, [PROFILE["webhooks"]["tfjobs"]], "TFJob")
    assert cause == "network_policy" and policy.status_for(cause) == "error"
    assert "connection refused" in message
    # a webhook that is not the operator's and cannot be called is a policy webhook in the way
    assert training.evaluate_invalid_probe(answer, ["validator.other.example.com"], "TFJob")[0] == "policy_webhook"


@pytest.mark.parametrize("name", ["tfjob-no-image.accepted-without-webhook.json",
                                  "tfjob-no-image.dryrun-accepted-after-webhook-deleted.json"])
def test_invalid_accepted_recorded_is_a_failure(name):
    status_code, body = _recorded(name)
    answer = training.classify_admission(status_code, body, "TFJob")
    assert answer["outcome"] == training.ACCEPTED
    cause, message = training.evaluate_invalid_probe(answer, [PROFILE["webhooks"]["tfjobs"]], "TFJob")
    assert cause == "capability"
    assert message == "the invalid TFJob was not rejected by any admission webhook: the server accepted it (HTTP 201)"


def test_rbac_forbidden_recorded_is_an_error():
    answer = training.classify_admission(*_recorded("403-nobody-cert-create-tfjob.json"))
    assert answer["outcome"] == training.FORBIDDEN
    assert training.evaluate_invalid_probe(answer, [], "TFJob")[0] == "rbac"
    assert training.evaluate_valid_probe(answer, [], "TFJob")[0] == "rbac"


def test_unserved_resource_text_answer_is_an_error():
    answer = training.classify_admission(*_recorded("404-unknown-resource-in-served-group.json"))
    assert answer["outcome"] == training.NOT_SERVED
    assert answer["message"] == "404 page not found"
    assert training.evaluate_invalid_probe(answer, [], "TFJob")[0] == "not_installed"


def test_no_answer_at_all_is_an_error():
    answer = training.classify_admission(None, None)
    assert answer["outcome"] == training.OTHER_ERROR
    assert training.evaluate_invalid_probe(answer, [], "TFJob")[0] == "internal"


def test_valid_probe_accepted_recorded():
    answer = training.classify_admission(*_recorded("tfjob-mnist.create.json"), kind="TFJob")
    assert training.evaluate_valid_probe(answer, WEBHOOKS, "TFJob") == (None, "the valid TFJob was accepted by server-side dry-run")


WEBHOOKS = [PROFILE["webhooks"]["tfjobs"]]


def test_valid_probe_denied_by_the_operators_webhook_is_a_failure():
    answer = training.classify_admission(*_recorded("webhook-denied-create-tfjob-no-image.json"))
    cause, message = training.evaluate_valid_probe(answer, WEBHOOKS, "TFJob")
    assert cause == "capability" and REFERENCE_DENIAL in message


def test_valid_probe_denied_by_a_policy_webhook_is_an_error_naming_it():
    """Kyverno/Gatekeeper denying the valid TFJob: the environment, not the operator (issue 9)."""
    status_code, body = _recorded("webhook-denied-create-tfjob-no-image.json")
    for webhook in ("validate.kyverno.svc-fail", "validation.gatekeeper.sh"):
        denied = dict(body, message=body["message"].replace("validator.tfjob.training-operator.kubeflow.org", webhook))
        cause, message = training.evaluate_valid_probe(training.classify_admission(status_code, denied), WEBHOOKS, "TFJob")
        assert cause == "policy_webhook" and policy.status_for(cause) == "error"
        assert 'admission webhook "%s", which is not the operator\'s' % webhook in message


def test_valid_probe_rejected_by_quota_or_unreachable_is_the_environment():
    answer = training.classify_admission(*_recorded("webhook-unreachable-create-tfjob.json"))
    assert training.evaluate_valid_probe(answer, WEBHOOKS, "TFJob")[0] == "network_policy"
    quota = training.classify_admission(*_recorded("403-quota-exceeded-second-pod.json"))
    assert training.evaluate_valid_probe(quota, WEBHOOKS, "TFJob")[0] == "resource_quota"
    assert training.evaluate_invalid_probe(quota, WEBHOOKS, "TFJob")[0] == "resource_quota"


def test_admission_review_answers_match_the_apiserver_message():
    """What the webhook answered is what the apiserver wraps into its denial message."""
    review = load_json("k8s-fixtures", "webhook", "admissionreview-dryrun-create-denied.json")
    assert review["received"]["request"]["dryRun"] is True
    inner = review["answered"]["response"]["status"]["message"]
    body = _recorded("webhook-denied-dryrun-create-tfjob-no-image.json")[1]
    answer = training.classify_admission(403, body)
    assert answer["denial"] == inner
    multi = load_json("k8s-fixtures", "webhook", "admissionreview-create-multi-error-denied.json")
    multi_body = _recorded("webhook-denied-create-tfjob-multiple-errors.json")[1]
    assert training.classify_admission(403, multi_body)["denial"] == multi["answered"]["response"]["status"]["message"]


def test_kubectl_output_carries_the_same_denial():
    out = load_json("k8s-fixtures", "webhook", "kubectl-output-denied.json")
    for case in out.values():
        assert REFERENCE_DENIAL in case["stderr"]


# ---------------------------------------------------------------- job state


def _job(*conditions):
    job = json.loads(json.dumps(training.render_job(PROFILE, "ns", testpods.PodBuilder())))
    if conditions:
        job["status"] = {"conditions": [
            {"type": t, "status": s, "reason": "PyTorchJob%s" % t, "message": "PyTorchJob ns/aic-reconcile is %s." % t.lower(),
             "lastUpdateTime": "2026-11-23T07:00:00Z", "lastTransitionTime": "2026-11-23T07:00:00Z"}
            for t, s in conditions],
            "replicaStatuses": {"Master": {"succeeded": 1}}, "startTime": "2026-11-23T07:00:00Z"}
    return job


def test_job_without_status_is_pending():
    state, summary = training.job_state(PROFILE, _job())
    assert state == training.PENDING and summary["conditions"] == []


def test_recorded_tfjob_without_operator_is_pending():
    """tfjob-mnist.json: stored, never reconciled (no operator) -> no status."""
    assert training.kubeflow_job_state(fixture_response("k8s-fixtures", "objects", "tfjob-mnist.json"))[0] == training.PENDING


def test_job_created_is_pending():
    assert training.job_state(PROFILE, _job(("Created", "True")))[0] == training.PENDING


def test_job_running():
    assert training.job_state(PROFILE, _job(("Created", "True"), ("Running", "True")))[0] == training.RUNNING


def test_job_restarting_counts_as_running():
    assert training.job_state(PROFILE, _job(("Created", "True"), ("Restarting", "True")))[0] == training.RUNNING


def test_job_succeeded_with_running_superseded():
    state, summary = training.job_state(PROFILE, _job(("Created", "True"), ("Running", "False"), ("Succeeded", "True")))
    assert state == training.SUCCEEDED
    assert [c["type"] for c in summary["conditions"]] == ["Created", "Running", "Succeeded"]
    assert summary["conditions"][-1]["reason"] == "PyTorchJobSucceeded"
    assert summary["replicaStatuses"] == {"Master": {"succeeded": 1}}


def test_job_failed():
    assert training.job_state(PROFILE, _job(("Created", "True"), ("Running", "False"), ("Failed", "True")))[0] == training.FAILED


def test_job_succeeded_false_is_not_success():
    assert training.job_state(PROFILE, _job(("Created", "True"), ("Succeeded", "False")))[0] == training.PENDING


# ---------------------------------------------------------------- pods


def test_summarize_recorded_pods():
    pods = fixture_response("k8s-fixtures", "objects", "pods-ai-fixtures.list.final.json")["items"]
    rows = training.summarize_pods(pods)
    assert [r["name"] for r in rows] == ["gpu-inference-5cbd4f6f8b-p5knr", "gpu-pod-1", "gpu-pod-2", "gpu-pod-3"]
    assert all(r["phase"] == "Pending" for r in rows)


def _pod(state, name="aic-reconcile-master-0"):
    return {"metadata": {"name": name, "labels": {"training.kubeflow.org/replica-type": "master"}}, "spec": {"nodeName": "n1"},
            "status": {"phase": "Pending", "containerStatuses": [{"name": "pytorch", "image": "busybox", "restartCount": 0,
                                                                  "state": state}]}}


def test_terminated_container_exit_code():
    row = training.summarize_pods([_pod({"terminated": {"exitCode": 0, "reason": "Completed"}})])[0]
    assert row["containers"][0]["exitCode"] == 0 and row["node"] == "n1" and row["replica_type"] == "master"


def test_job_pods_must_have_exited_0():
    assert training.evaluate_job_pods([_pod({"terminated": {"exitCode": 0, "reason": "Completed"}})], "pytorch") == (
        None, "aic-reconcile-master-0/pytorch exited 0")
    cause, message = training.evaluate_job_pods([_pod({"terminated": {"exitCode": 3, "reason": "Error"}})], "pytorch")
    assert cause == "capability" and message == "aic-reconcile-master-0: container pytorch exited 3 (Error)"
    cause, message = training.evaluate_job_pods([_pod({"running": {"startedAt": "2026-11-23T07:00:00Z"}})], "pytorch")
    assert cause == "capability" and "has not terminated (running)" in message
    assert training.evaluate_job_pods([], "pytorch") == ("capability", "no pod of the job exists: nothing was run")
    # the recorded pods never ran (no kubelet): no container status at all
    pods = fixture_response("k8s-fixtures", "objects", "pods-ai-fixtures.list.final.json")["items"][1:2]
    assert training.evaluate_job_pods(pods, "pytorch") == ("capability", "gpu-pod-1: container pytorch has no status")
