# -*- coding: utf-8 -*-
# Copyright: ai_conformance.rke2 contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Pure evaluation for ``robust_controller``: an AI operator with CRDs, an
admission webhook and a controller.

An operator is described by a *profile* (plain data, see ``OPERATORS``) plus
one small *job state adapter* (``JOB_STATE_ADAPTERS``) that reads the
reconciled job's status. Adding another operator (e.g. KubeRay's RayJob) means
adding a profile and, when its status shape differs, one adapter.

Profile keys:

``title``, ``default_version``
    Human name and the version the installer role pins.
``group``, ``api_version``
    API group and group/version of the custom resources.
``crds``
    ``[{"plural", "kind", "since"?, "until"?}]``; ``since``/``until``
    (``"1.9.0"``) bound the operator versions that ship the CRD.
``namespace``, ``deployment``, ``webhook_service``
    Where the operator runs and the Service its webhook is reached through.
``webhook_configuration``
    Name of its ValidatingWebhookConfiguration.
``webhooks``
    ``{plural: webhook name}`` (with the same ``since``/``until`` rule as
    ``crds`` in ``webhooks_versions``).
``probe``
    The admission probe: ``plural``, ``kind``, ``template`` (the *invalid*
    object: its container lacks ``image``) and ``container_path`` (where the
    valid variant gets its image).
``job``
    The reconciliation job: ``plural``, ``kind``, ``template`` (the job
    without pod template), ``replica_path`` (the replica whose ``template``
    the test-pod builder fills), ``container`` (``name``, ``image`` key of
    ``testpods.IMAGES``, ``command``), ``pod_selector`` (``{name}`` is the
    job name) and ``adapter`` (a key of ``JOB_STATE_ADAPTERS``).

Every verdict below is a *cause* of the status policy (``policy.CAUSES``),
``None`` when the check passed; the module records it with ``ResultBuilder.outcome``.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import copy
import re

from ansible_collections.ai_conformance.rke2.plugins.module_utils import policy
from ansible_collections.ai_conformance.rke2.plugins.module_utils import status as k8s_status

# --------------------------------------------------------------------------
# Operator profiles (data)
# --------------------------------------------------------------------------

# Webhook names and paths: kubebuilder markers of training-operator v1.8
# (pkg/webhooks/<framework>/<kind>_webhook.go), e.g.
# path=/validate-kubeflow-org-v1-tfjob, name=validator.tfjob.training-operator.kubeflow.org.
# v1.8.x registers five (mxjob, paddlejob, pytorchjob, tfjob, xgboostjob);
# v1.9 drops MXJob and adds JAXJob.
KUBEFLOW_TRAINING = {
    "title": "Kubeflow Training Operator",
    "default_version": "v1.8.1",
    "group": "kubeflow.org",
    "api_version": "kubeflow.org/v1",
    "crds": [
        {"plural": "tfjobs", "kind": "TFJob"},
        {"plural": "pytorchjobs", "kind": "PyTorchJob"},
        {"plural": "mpijobs", "kind": "MPIJob"},
        {"plural": "xgboostjobs", "kind": "XGBoostJob"},
        {"plural": "paddlejobs", "kind": "PaddleJob"},
        {"plural": "mxjobs", "kind": "MXJob", "until": "1.9.0"},
        {"plural": "jaxjobs", "kind": "JAXJob", "since": "1.9.0"},
    ],
    "namespace": "kubeflow",
    "deployment": "training-operator",
    "webhook_service": "training-operator",
    "webhook_configuration": "validator.training-operator.kubeflow.org",
    "webhooks": {
        "tfjobs": "validator.tfjob.training-operator.kubeflow.org",
        "pytorchjobs": "validator.pytorchjob.training-operator.kubeflow.org",
        "xgboostjobs": "validator.xgboostjob.training-operator.kubeflow.org",
        "paddlejobs": "validator.paddlejob.training-operator.kubeflow.org",
        "mxjobs": "validator.mxjob.training-operator.kubeflow.org",
        "jaxjobs": "validator.jaxjob.training-operator.kubeflow.org",
    },
    "webhooks_versions": {"mxjobs": {"until": "1.9.0"}, "jaxjobs": {"since": "1.9.0"}},
    # The reference procedure's invalid TFJob: the container has no image.
    # The CRD schema only requires containers[].name, so only the operator's
    # webhook can reject it (recorded: k8s-fixtures/objects/tfjob-no-image.*).
    "probe": {
        "plural": "tfjobs",
        "kind": "TFJob",
        "template": {
            "apiVersion": "kubeflow.org/v1",
            "kind": "TFJob",
            "metadata": {"name": "aic-invalid-tfjob"},
            "spec": {
                "tfReplicaSpecs": {
                    "Chief": {
                        "replicas": 1,
                        "restartPolicy": "OnFailure",
                        "template": {"spec": {"containers": [{"name": "tensorflow"}]}},
                    }
                }
            },
        },
        "container_path": ["spec", "tfReplicaSpecs", "Chief", "template", "spec", "containers", 0],
    },
    # One Master replica only: v1.8 adds its wait-for-master init container to
    # Worker pods only, so the job needs nothing but this one image. The
    # operator requires a container named "pytorch"; it does not care what the
    # image is, only that the container exits 0. The replica's pod template is
    # built by the test-pod builder (testpods.PodBuilder: restricted, requests
    # and limits, tolerations, the mirrored test image), see ``render_job``.
    "job": {
        "plural": "pytorchjobs",
        "kind": "PyTorchJob",
        "template": {
            "apiVersion": "kubeflow.org/v1",
            "kind": "PyTorchJob",
            "metadata": {"name": "aic-reconcile"},
            "spec": {
                "runPolicy": {"cleanPodPolicy": "None", "backoffLimit": 0},
                "pytorchReplicaSpecs": {"Master": {"replicas": 1, "restartPolicy": "Never"}},
            },
        },
        "replica_path": ["spec", "pytorchReplicaSpecs", "Master"],
        # image: key of the test image table (testpods.IMAGES); busybox has /bin/sh, all the job runs
        "container": {
            "name": "pytorch",
            "image": "busybox",
            "command": ["sh", "-c", "echo robust_controller reconciliation probe; exit 0"],
        },
        "pod_selector": "training.kubeflow.org/job-name={name}",
        "adapter": "kubeflow_job_conditions",
    },
}

OPERATORS = {"kubeflow_training": KUBEFLOW_TRAINING}


def operator_profile(name):
    """The profile of a supported operator; ValueError names the choices."""
    try:
        return OPERATORS[name]
    except KeyError:
        raise ValueError("unknown operator %r; supported: %s" % (name, ", ".join(sorted(OPERATORS))))


# --------------------------------------------------------------------------
# Versions
# --------------------------------------------------------------------------


def parse_version(text):
    """``"v1.8.1"`` / ``"1.9"`` / ``"v1.9.0-rc.1"`` -> ``(1, 9, 0)``."""
    match = re.match(r"^\s*v?(\d+)(?:\.(\d+))?(?:\.(\d+))?", str(text or ""))
    if not match:
        raise ValueError("not a version: %r" % (text,))
    return tuple(int(part or 0) for part in match.groups())


def _in_range(item, version):
    """True when ``version`` is within an item's ``since`` / ``until`` bounds."""
    current = parse_version(version)
    if item.get("since") and current < parse_version(item["since"]):
        return False
    if item.get("until") and current >= parse_version(item["until"]):
        return False
    return True


def expected_crds(profile, version):
    """CRD names (``plural.group``) the given operator version installs."""
    return ["%s.%s" % (item["plural"], profile["group"]) for item in profile["crds"] if _in_range(item, version)]


def expected_webhooks(profile, version):
    """``{plural: webhook name}`` for the given operator version."""
    bounds = profile.get("webhooks_versions", {})
    return dict((plural, name) for plural, name in profile["webhooks"].items() if _in_range(bounds.get(plural, {}), version))


# --------------------------------------------------------------------------
# CRDs
# --------------------------------------------------------------------------


def evaluate_crds(expected_names, crds_by_name):
    """Evaluate CRDs fetched one by one by name.

    ``crds_by_name`` maps each expected name to the CRD object or None (404).
    A CRD is good when both ``Established`` and ``NamesAccepted`` are True.
    Returns ``{"ok", "rows", "missing", "not_ready"}``; ``rows`` is the
    evidence table (name, served versions, storage version, conditions).
    """
    rows, missing, not_ready = [], [], []
    for name in expected_names:
        crd = crds_by_name.get(name)
        if not crd:
            missing.append(name)
            rows.append({"name": name, "present": False})
            continue
        versions = (crd.get("spec") or {}).get("versions") or []
        row = {
            "name": name,
            "present": True,
            "kind": ((crd.get("spec") or {}).get("names") or {}).get("kind"),
            "served_versions": [v.get("name") for v in versions if v.get("served")],
            "storage_version": next((v.get("name") for v in versions if v.get("storage")), None),
            "established": k8s_status.condition_true(crd, "Established"),
            "names_accepted": k8s_status.condition_true(crd, "NamesAccepted"),
        }
        if not (row["established"] and row["names_accepted"]):
            bad = [c for c in ("Established", "NamesAccepted") if not k8s_status.condition_true(crd, c)]
            row["problems"] = ["%s=%s%s" % (c, (k8s_status.condition(crd, c) or {}).get("status", "absent"),
                                            _reason_suffix(k8s_status.condition(crd, c))) for c in bad]
            not_ready.append(name)
        rows.append(row)
    return {"ok": not missing and not not_ready, "rows": rows, "missing": missing, "not_ready": not_ready}


def _reason_suffix(cond):
    if not cond:
        return ""
    text = cond.get("reason") or ""
    if cond.get("message"):
        text = "%s: %s" % (text, cond["message"]) if text else cond["message"]
    return " (%s)" % text if text else ""


# --------------------------------------------------------------------------
# Validating webhook configuration and its endpoints
# --------------------------------------------------------------------------


def _matches(values, wanted):
    values = values or []
    return "*" in values or wanted in values


def webhook_covers(webhook, group, version, plural, operation="CREATE"):
    """True when one of the webhook's rules matches group/version/resource/operation."""
    for rule in webhook.get("rules") or []:
        resources = rule.get("resources") or []
        resource_ok = "*" in resources or plural in resources or "%s/*" % plural in resources
        if (_matches(rule.get("apiGroups"), group) and _matches(rule.get("apiVersions"), version)
                and resource_ok and _matches(rule.get("operations"), operation)):
            return True
    return False


def evaluate_webhook_configuration(vwc, group, version, plural, expected_name=None,
                                   service_namespace=None, service_name=None):
    """Evaluate a ValidatingWebhookConfiguration for one resource.

    Good when a webhook covers CREATE of ``group/version/plural`` with
    ``failurePolicy: Fail`` (the API default when absent; with ``Ignore``
    invalid objects are admitted whenever the webhook is down) and, when
    ``service_*`` are given, its ``clientConfig.service`` points there.
    Returns ``{"ok", "problems", "webhook", "failure_policy", "service", "url",
    "side_effects"}``.
    """
    result = {"ok": False, "problems": [], "webhook": None, "failure_policy": None,
              "service": None, "url": None, "side_effects": None}
    if not vwc:
        result["problems"].append("the ValidatingWebhookConfiguration does not exist")
        return result
    covering = [w for w in vwc.get("webhooks") or [] if webhook_covers(w, group, version, plural)]
    if not covering:
        names = [w.get("name") for w in vwc.get("webhooks") or []]
        result["problems"].append("none of its webhooks (%s) covers CREATE of %s/%s %s"
                                  % (", ".join(names) or "none", group, version, plural))
        return result
    chosen = next((w for w in covering if w.get("name") == expected_name), covering[0])
    result["webhook"] = chosen.get("name")
    if expected_name and chosen.get("name") != expected_name:
        result["problems"].append("the webhook covering %s is %r, expected %r" % (plural, chosen.get("name"), expected_name))
    result["failure_policy"] = chosen.get("failurePolicy") or "Fail"
    if result["failure_policy"] != "Fail":
        result["problems"].append("failurePolicy is %s: invalid %s are admitted whenever the webhook is down"
                                  % (result["failure_policy"], plural))
    result["side_effects"] = chosen.get("sideEffects")
    if result["side_effects"] not in ("None", "NoneOnDryRun"):
        result["problems"].append("sideEffects is %s: the apiserver will not call it for a dry-run request"
                                  % result["side_effects"])
    client = chosen.get("clientConfig") or {}
    if client.get("service"):
        svc = client["service"]
        result["service"] = {"namespace": svc.get("namespace"), "name": svc.get("name"),
                             "port": svc.get("port", 443), "path": svc.get("path")}
        if service_name and (svc.get("namespace"), svc.get("name")) != (service_namespace, service_name):
            result["problems"].append("clientConfig.service is %s/%s, expected %s/%s"
                                      % (svc.get("namespace"), svc.get("name"), service_namespace, service_name))
    elif client.get("url"):
        result["url"] = client["url"]
    else:
        result["problems"].append("clientConfig has neither service nor url")
    if not client.get("caBundle"):
        result["problems"].append("clientConfig.caBundle is empty (the operator has not injected its certificate yet)")
    result["ok"] = not result["problems"]
    return result


def evaluate_endpoint_slices(slices):
    """Ready addresses of a Service from its EndpointSlices (discovery.k8s.io/v1).

    ``conditions.ready`` unset means unknown, which the API says consumers
    should treat as ready.
    """
    ready, not_ready, ports = [], [], set()
    for item in slices or []:
        for port in item.get("ports") or []:
            ports.add(port.get("port"))
        for endpoint in item.get("endpoints") or []:
            is_ready = ((endpoint.get("conditions") or {}).get("ready"))
            addresses = endpoint.get("addresses") or []
            (ready if is_ready in (True, None) else not_ready).extend(addresses)
    return {"ready": sorted(ready), "not_ready": sorted(not_ready), "ports": sorted(p for p in ports if p is not None)}


def evaluate_endpoints(endpoints):
    """Ready addresses of a Service from its core/v1 Endpoints object."""
    ready, not_ready, ports = [], [], set()
    for subset in (endpoints or {}).get("subsets") or []:
        ready.extend(a.get("ip") for a in subset.get("addresses") or [])
        not_ready.extend(a.get("ip") for a in subset.get("notReadyAddresses") or [])
        for port in subset.get("ports") or []:
            ports.add(port.get("port"))
    return {"ready": sorted(ready), "not_ready": sorted(not_ready), "ports": sorted(p for p in ports if p is not None)}


# --------------------------------------------------------------------------
# Admission answers
# --------------------------------------------------------------------------

WEBHOOK_DENIED = "webhook_denied"
SCHEMA_REJECTED = "schema_rejected"
WEBHOOK_UNREACHABLE = "webhook_unreachable"
ACCEPTED = "accepted"
FORBIDDEN = "forbidden"
NOT_SERVED = "not_served"
OTHER_ERROR = "other_error"

_DENIED = re.compile(r'^admission webhook "(?P<webhook>[^"]+)" denied the request(?:: (?P<reason>.*))?$', re.S)
_CALL_FAILED = re.compile(r'failed calling webhook "(?P<webhook>[^"]+)"')


def classify_admission(status_code, body, kind=None):
    """Classify the apiserver's answer to a (dry-run) create.

    ``status_code`` is the HTTP code (None when nothing was answered) and
    ``body`` the parsed answer (a Status for errors, the object on success,
    or text). Returns ``{"outcome", "code", "reason", "message", "webhook",
    "denial", "causes"}`` with ``outcome`` one of:

    * ``webhook_denied``: ``admission webhook "<name>" denied the request: <why>``
      (403 Forbidden when the webhook set a code, 400 without reason when it
      sent only a message; any code when the webhook chose one);
    * ``schema_rejected``: 422 Invalid from the CRD's OpenAPI schema / CEL rules;
    * ``webhook_unreachable``: ``failed calling webhook`` (500 InternalError):
      the webhook is registered but could not be called;
    * ``accepted``: 200/201 with the object;
    * ``forbidden``: 403 without a webhook (RBAC);
    * ``not_served``: 404 (resource not served / namespace missing);
    * ``other_error``.
    """
    info = {"outcome": OTHER_ERROR, "code": status_code, "reason": None, "message": None,
            "webhook": None, "denial": None, "causes": []}
    if isinstance(body, dict) and body.get("kind") == "Status":
        info["reason"] = body.get("reason")
        info["message"] = body.get("message")
        info["code"] = body.get("code", status_code)
        info["causes"] = [dict((k, c.get(k)) for k in ("reason", "field", "message") if c.get(k) is not None)
                          for c in ((body.get("details") or {}).get("causes") or [])]
    elif isinstance(body, str):
        info["message"] = body.strip()
    code = info["code"]
    message = info["message"] or ""

    if status_code in (200, 201) and isinstance(body, dict) and body.get("kind") != "Status":
        if kind is None or body.get("kind") == kind:
            info["outcome"] = ACCEPTED
            info["message"] = "%s %s was accepted (HTTP %s)" % (
                body.get("kind"), (body.get("metadata") or {}).get("name"), status_code)
        return info
    denied = _DENIED.match(message)
    if denied:
        info.update(outcome=WEBHOOK_DENIED, webhook=denied.group("webhook"), denial=denied.group("reason"))
        return info
    failed_call = _CALL_FAILED.search(message)
    if failed_call:
        info.update(outcome=WEBHOOK_UNREACHABLE, webhook=failed_call.group("webhook"))
        return info
    if code == 422 and info["reason"] == "Invalid":
        info["outcome"] = SCHEMA_REJECTED
    elif code == 403:
        info["outcome"] = FORBIDDEN
    elif code == 404:
        info["outcome"] = NOT_SERVED
    return info


def environment_cause(answer):
    """Policy cause of an admission answer that says nothing about the operator (RBAC, quota, 5xx, ...)."""
    by_text = policy.classify_message(answer.get("message"))
    if by_text:
        return by_text
    outcome, code = answer["outcome"], answer.get("code")
    if outcome == FORBIDDEN:
        return "rbac"
    if outcome == NOT_SERVED:
        return "not_installed"
    if code == 429 or (isinstance(code, int) and code >= 500):
        return "api_unavailable"
    if code in (400, 422):
        return "invalid_request"
    return "api_unavailable" if code else "internal"


def _unreachable(answer, kind, expected_webhooks):
    """(cause, message) when a registered webhook could not be called."""
    if expected_webhooks and answer["webhook"] not in expected_webhooks:
        return "policy_webhook", ('admission webhook "%s" (not the operator\'s) could not be called for the %s: %s'
                                  % (answer["webhook"], kind, answer["message"]))
    # the operator's endpoints are checked separately (webhook_endpoints): the apiserver cannot reach them
    return "network_policy", 'admission webhook "%s" is registered but the apiserver could not call it: %s' % (
        answer["webhook"], answer["message"])


def evaluate_invalid_probe(answer, expected_webhooks, kind="object"):
    """Verdict on the classified answer to the invalid probe: ``(cause, message)``, cause None = passed.

    Passed only when one of ``expected_webhooks`` denied it; an acceptance or a
    rejection by the CRD schema is ``capability``; a denial by another webhook
    (Kyverno, Gatekeeper, ...) is ``policy_webhook``; the rest is the environment.
    """
    outcome = answer["outcome"]
    if outcome == WEBHOOK_DENIED:
        if not expected_webhooks or answer["webhook"] in expected_webhooks:
            return None, 'the invalid %s was rejected by admission webhook "%s": %s' % (
                kind, answer["webhook"], answer["denial"])
        return "policy_webhook", ('the invalid %s was denied by another admission webhook "%s" (%s), so the operator\'s '
                                  'webhook (%s) could not be shown to reject it' % (
                                      kind, answer["webhook"], answer["denial"], ", ".join(expected_webhooks)))
    if outcome == ACCEPTED:
        return "capability", ("the invalid %s was not rejected by any admission webhook: the server accepted it "
                              "(HTTP %s)" % (kind, answer["code"]))
    if outcome == SCHEMA_REJECTED:
        return "capability", ("the invalid %s was rejected by the CRD's OpenAPI schema, not by an admission webhook: %s"
                              % (kind, answer["message"]))
    if outcome == WEBHOOK_UNREACHABLE:
        return _unreachable(answer, kind, expected_webhooks)
    if outcome == FORBIDDEN and not policy.classify_message(answer["message"]):
        return "rbac", "not allowed to create the %s (RBAC): %s" % (kind, answer["message"])
    return environment_cause(answer), "the invalid %s could not be submitted (HTTP %s): %s" % (
        kind, answer["code"], answer["message"])


def evaluate_valid_probe(answer, expected_webhooks, kind="object"):
    """Verdict on the dry-run create of the valid probe: ``(cause, message)``, cause None = passed.

    A denial by the operator's own webhook or a rejection by its CRD schema is
    ``capability``; a denial by any other webhook (a policy engine) is
    ``policy_webhook``, naming it.
    """
    outcome = answer["outcome"]
    if outcome == ACCEPTED:
        return None, "the valid %s was accepted by server-side dry-run" % kind
    if outcome == WEBHOOK_DENIED:
        if expected_webhooks and answer["webhook"] not in expected_webhooks:
            return "policy_webhook", ('the valid %s was denied by admission webhook "%s", which is not the operator\'s '
                                      '(%s): %s' % (kind, answer["webhook"], ", ".join(expected_webhooks), answer["denial"]))
        return "capability", 'the valid %s was denied by admission webhook "%s": %s' % (kind, answer["webhook"], answer["denial"])
    if outcome == SCHEMA_REJECTED:
        return "capability", "the valid %s was rejected by the CRD schema: %s" % (kind, answer["message"])
    if outcome == WEBHOOK_UNREACHABLE:
        return _unreachable(answer, kind, expected_webhooks)
    return environment_cause(answer), "the valid %s could not be submitted (HTTP %s): %s" % (
        kind, answer["code"], answer["message"])


# --------------------------------------------------------------------------
# Probe and job manifests
# --------------------------------------------------------------------------


def _at(obj, path):
    for key in path:
        obj = obj[key]
    return obj


def render_probe(profile, namespace, name=None, image=None):
    """The admission probe: without ``image`` the invalid object, with it the valid one."""
    obj = copy.deepcopy(profile["probe"]["template"])
    obj["metadata"] = {"name": name or obj["metadata"]["name"], "namespace": namespace}
    if image:
        _at(obj, profile["probe"]["container_path"])["image"] = image
    return obj


def render_job(profile, namespace, builder, name=None, labels=None):
    """The reconciliation job: one replica whose pod template comes from the test-pod builder."""
    spec = profile["job"]["container"]
    obj = copy.deepcopy(profile["job"]["template"])
    obj["metadata"] = {"name": name or obj["metadata"]["name"], "namespace": namespace}
    if labels:
        obj["metadata"]["labels"] = dict(labels)
    container = builder.container(spec["name"], spec["image"], command=spec["command"])
    replica = _at(obj, profile["job"]["replica_path"])
    replica["template"] = builder.template([container], labels=labels, restart_policy=replica.get("restartPolicy", "Never"))
    return obj


# --------------------------------------------------------------------------
# Job state (adapters)
# --------------------------------------------------------------------------

SUCCEEDED = "succeeded"
FAILED = "failed"
RUNNING = "running"
PENDING = "pending"

# Kubeflow common JobStatus (pkg/apis/kubeflow.org/v1/common_types.go):
# status.conditions[] = {type, status, reason, message, lastUpdateTime,
# lastTransitionTime}, types Created, Running, Restarting, Succeeded, Failed
# (and Suspended since v1.7); superseded conditions stay with status False.
KUBEFLOW_CONDITION_TYPES = ("Created", "Running", "Restarting", "Suspended", "Succeeded", "Failed")


def kubeflow_job_state(job):
    """``(state, summary)`` of a Kubeflow training job from its conditions.

    ``state`` is ``succeeded``/``failed`` when that condition is True,
    ``running`` when Running or Restarting is True, otherwise ``pending``
    (Created only, or no status yet: the controller has not reconciled it).
    """
    conditions = ((job or {}).get("status") or {}).get("conditions") or []
    true_types = [c.get("type") for c in conditions if c.get("status") == "True"]
    summary = {
        "conditions": [dict((k, c.get(k)) for k in ("type", "status", "reason", "message", "lastTransitionTime")
                            if c.get(k) is not None) for c in conditions],
        "replicaStatuses": ((job or {}).get("status") or {}).get("replicaStatuses") or {},
        "startTime": ((job or {}).get("status") or {}).get("startTime"),
        "completionTime": ((job or {}).get("status") or {}).get("completionTime"),
    }
    if "Failed" in true_types:
        state = FAILED
    elif "Succeeded" in true_types:
        state = SUCCEEDED
    elif "Running" in true_types or "Restarting" in true_types:
        state = RUNNING
    else:
        state = PENDING
    return state, summary


JOB_STATE_ADAPTERS = {"kubeflow_job_conditions": kubeflow_job_state}


def job_state(profile, job):
    """Read the reconciliation job's state with the profile's adapter."""
    return JOB_STATE_ADAPTERS[profile["job"]["adapter"]](job)


def summarize_pods(pods):
    """Evidence rows for the pods a job created: name, phase, node, exit codes, waiting reasons."""
    rows = []
    for pod in pods or []:
        status = pod.get("status") or {}
        containers = []
        for cs in status.get("containerStatuses") or []:
            state = cs.get("state") or {}
            entry = {"name": cs.get("name"), "image": cs.get("image"), "restartCount": cs.get("restartCount", 0)}
            if state.get("terminated"):
                entry["exitCode"] = state["terminated"].get("exitCode")
                entry["reason"] = state["terminated"].get("reason")
            elif state.get("waiting"):
                entry["waiting"] = state["waiting"].get("reason")
                if state["waiting"].get("message"):
                    entry["message"] = state["waiting"]["message"]
            elif state.get("running"):
                entry["running"] = True
            containers.append(entry)
        labels = (pod.get("metadata") or {}).get("labels") or {}
        rows.append({
            "name": (pod.get("metadata") or {}).get("name"),
            "replica_type": labels.get("training.kubeflow.org/replica-type"),
            "phase": status.get("phase"),
            "node": (pod.get("spec") or {}).get("nodeName"),
            "containers": containers,
        })
    return rows


def evaluate_job_pods(pods, container_name):
    """Did the job's pods really run? ``(cause, message)``; cause None when every ``container_name`` exited 0.

    A controller that reports Succeeded while no pod ran, or while its pod did
    not exit 0, has not reconciled the job (``capability``).
    """
    if not pods:
        return "capability", "no pod of the job exists: nothing was run"
    bad = []
    for row in summarize_pods(pods):
        entry = next((c for c in row["containers"] if c["name"] == container_name), None)
        if entry is None:
            bad.append("%s: container %s has no status" % (row["name"], container_name))
        elif entry.get("exitCode") is None:
            bad.append("%s: container %s has not terminated (%s)" % (
                row["name"], container_name, entry.get("waiting") or ("running" if entry.get("running") else "no state")))
        elif entry["exitCode"] != 0:
            bad.append("%s: container %s exited %s (%s)" % (row["name"], container_name, entry["exitCode"], entry.get("reason")))
    if bad:
        return "capability", "; ".join(bad)
    return None, "%s exited 0" % ", ".join("%s/%s" % (p["metadata"]["name"], container_name) for p in pods)
