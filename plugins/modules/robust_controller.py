#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: ai_conformance.rke2 contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r"""
module: robust_controller
short_description: Verify a robust AI operator (CNCF AI conformance C(robust_controller))
version_added: 0.1.0
author:
  - ai_conformance.rke2 maintainers (@ai-conformance)
description:
  - Verifies that a complex AI operator with CRDs works, by default the Kubeflow Training Operator.
  - Its CRDs (C(tfjobs), C(pytorchjobs), C(mpijobs), C(xgboostjobs), C(paddlejobs), C(mxjobs) before v1.9,
    C(jaxjobs) from v1.9, all C(kubeflow.org)) are fetched by name and must be C(Established) and C(NamesAccepted).
  - Its Deployment must be Available, its ValidatingWebhookConfiguration must cover TFJob creation with
    C(failurePolicy=Fail) and its webhook Service must have ready endpoints.
  - Admission is inspected with server-side dry-run (C(dryRun=All), nothing is stored) - a TFJob whose container
    lacks C(image) must be denied by the operator's webhook (the denial message is the evidence; a rejection by the
    CRD schema instead, or an acceptance, fails), and the same TFJob with an image must be accepted. A denial by
    another webhook (Kyverno, Gatekeeper, ...) is an C(error) naming that webhook, not a failure of the operator.
    An object of the probe's name that already exists is never touched (the probe takes another name).
  - Reconciliation is exercised by running a one-replica PyTorchJob in a temporary namespace (Pod Security
    C(restricted)) until the controller reports C(Succeeded) and its pod's container exited 0; its conditions, pods
    and log are the evidence. The replica's pod template comes from the collection's test-pod builder (restricted,
    requests and limits, O(tolerations), the mirrored test image).
  - Without the job (O(run_job=false)) or in check mode nothing is exercised and the requirement is C(skipped).
  - Everything the module created is deleted before it returns, also when a check fails.
options:
  operator:
    description:
      - The operator to verify.
    type: str
    choices: [kubeflow_training]
    default: kubeflow_training
  operator_version:
    description:
      - Installed version of the operator; selects which CRDs and webhooks must exist. Default is the version the
        C(training_operator) role pins (v1.8.1).
    type: str
  operator_namespace:
    description:
      - Namespace of the operator's Deployment and webhook Service (default C(kubeflow)).
    type: str
  webhook_configuration:
    description:
      - Name of the operator's ValidatingWebhookConfiguration (default C(validator.training-operator.kubeflow.org)).
    type: str
  run_job:
    description:
      - Run the reconciliation job. When false the C(reconciliation) check is skipped with that reason, and so is the
        requirement (nothing was exercised).
    type: bool
    default: true
  job_image:
    description:
      - Image of the reconciliation job's only container (named C(pytorch)); it must provide C(sh).
      - The operator does not care whether it is a PyTorch image, only that the container exits 0.
      - By default the C(busybox) entry of the collection's test image table; O(image_registry) rewrites it too.
      - Also used as the image of the valid TFJob in the dry-run (never pulled).
    type: str
extends_documentation_fragment:
  - kubernetes.core.k8s_auth_options
  - ai_conformance.rke2.common
"""

EXAMPLES = r"""
- name: Verify the Kubeflow Training Operator of the cluster in ~/.kube/config
  ai_conformance.rke2.robust_controller:
  register: robust

- name: Admission only (no job, so the requirement is skipped), test images from a mirror
  ai_conformance.rke2.robust_controller:
    kubeconfig: /etc/rancher/rke2/rke2.yaml
    run_job: false
    image_registry: registry.example.com
"""

RETURN = r"""
result:
  description: The requirement's result; see the collection's result schema.
  returned: always
  type: dict
  sample:
    requirement: robust_controller
    status: passed
    checks:
      - name: admission_rejects_invalid
        status: passed
        message: >-
          the invalid TFJob was rejected by admission webhook "validator.tfjob.training-operator.kubeflow.org":
          spec.tfReplicaSpecs[Chief].template.spec.containers[0].image: Required value: must be required
"""

import re

from ansible_collections.kubernetes.core.plugins.module_utils.k8s.core import AnsibleK8SModule

from ansible_collections.ai_conformance.rke2.plugins.module_utils import status as k8s_status
from ansible_collections.ai_conformance.rke2.plugins.module_utils import pods, policy, training
from ansible_collections.ai_conformance.rke2.plugins.module_utils.kube import (
    KubeError,
    ResourceNotServed,
    Stuck,
    WaitTimeout,
    api_path,
    common_argument_spec,
    run_requirement,
)
from ansible_collections.ai_conformance.rke2.plugins.module_utils.testpods import PodBuilder

REQUIREMENT = "robust_controller"
CRD_API = "apiextensions.k8s.io/v1"
VWC_API = "admissionregistration.k8s.io/v1"


def check_crds(kube, profile, version, result):
    """The operator's CRDs, fetched by name; returns {plural: established}."""
    names = training.expected_crds(profile, version)
    found = dict((name, kube.get(CRD_API, "CustomResourceDefinition", name)) for name in names)
    outcome = training.evaluate_crds(names, found)
    result.add_evidence("crds", outcome["rows"])
    observed = {"missing": outcome["missing"], "not_ready": outcome["not_ready"],
                "versions": dict((r["name"], r.get("served_versions")) for r in outcome["rows"] if r["present"])}
    expected = "%s Established and NamesAccepted" % ", ".join(names)
    if outcome["ok"]:
        result.passed("crds_established", "all %d CRDs of %s %s are Established: %s" % (
            len(names), profile["title"], version, ", ".join(
                "%s (%s)" % (r["name"], "/".join(r["served_versions"])) for r in outcome["rows"])), observed, expected)
    else:
        problems = ["%s missing" % n for n in outcome["missing"]]
        problems += ["%s: %s" % (r["name"], "; ".join(r["problems"])) for r in outcome["rows"] if r.get("problems")]
        result.failed("crds_established", "CRDs of %s %s not ready: %s" % (profile["title"], version, "; ".join(problems)),
                      observed, expected, cause="not_installed" if outcome["missing"] else "capability")
    good = set(r["name"] for r in outcome["rows"] if r["present"] and not r.get("problems"))
    return dict((item["plural"], "%s.%s" % (item["plural"], profile["group"]) in good) for item in profile["crds"])


def check_deployment(kube, profile, namespace, result):
    deployment = kube.get("apps/v1", "Deployment", profile["deployment"], namespace)
    available, summary = k8s_status.deployment_available(deployment)
    where = "%s/%s" % (namespace, profile["deployment"])
    if available:
        result.passed("operator_deployment", "Deployment %s is Available (%s)" % (where, summary), summary, "Available")
    else:
        result.failed("operator_deployment", "Deployment %s is not Available: %s" % (where, summary), summary, "Available")


def _vwc_evidence(vwc):
    """The VWC without its (long, public) caBundle."""
    if not vwc:
        return None
    hooks = []
    for hook in vwc.get("webhooks") or []:
        client = dict(hook.get("clientConfig") or {})
        if client.get("caBundle"):
            client["caBundle"] = "<%d bytes>" % len(client["caBundle"])
        hooks.append(dict(hook, clientConfig=client))
    return {"name": vwc["metadata"]["name"], "webhooks": hooks}


def check_webhook(kube, profile, version, namespace, vwc_name, result):
    """The VWC; returns its evaluation (service reference used for the endpoints)."""
    vwc = kube.get(VWC_API, "ValidatingWebhookConfiguration", vwc_name)
    plural = profile["probe"]["plural"]
    expected_name = training.expected_webhooks(profile, version).get(plural)
    group, api = profile["api_version"].split("/", 1)
    outcome = training.evaluate_webhook_configuration(vwc, group, api, plural, expected_name,
                                                      namespace, profile["webhook_service"])
    result.add_evidence("webhook-configuration", _vwc_evidence(vwc) or "ValidatingWebhookConfiguration %s not found" % vwc_name)
    expected = {"configuration": vwc_name, "webhook": expected_name, "failurePolicy": "Fail",
                "service": "%s/%s" % (namespace, profile["webhook_service"])}
    observed = dict((k, outcome[k]) for k in ("webhook", "failure_policy", "service", "url", "side_effects"))
    if outcome["ok"]:
        result.passed("webhook_configuration", 'ValidatingWebhookConfiguration %s: webhook "%s" covers CREATE of %s '
                      "(failurePolicy %s)" % (vwc_name, outcome["webhook"], plural, outcome["failure_policy"]),
                      observed, expected)
    else:
        result.failed("webhook_configuration", "ValidatingWebhookConfiguration %s: %s" % (
            vwc_name, "; ".join(outcome["problems"])), observed, expected)
    return outcome


def check_endpoints(kube, profile, namespace, webhook, result):
    """Ready endpoints behind the webhook's Service (EndpointSlices, else core Endpoints)."""
    if webhook.get("url"):
        result.skipped("webhook_endpoints", "the webhook is called by URL (%s), not through a Service" % webhook["url"])
        return
    service = webhook.get("service") or {"namespace": namespace, "name": profile["webhook_service"]}
    where = "%s/%s" % (service["namespace"], service["name"])
    if kube.get("v1", "Service", service["name"], service["namespace"]) is None:
        result.failed("webhook_endpoints", "the webhook Service %s does not exist" % where, None, "ready endpoints")
        return
    try:
        slices = kube.list("discovery.k8s.io/v1", "EndpointSlice", namespace=service["namespace"],
                           label_selector="kubernetes.io/service-name=%s" % service["name"])
        endpoints = training.evaluate_endpoint_slices(slices)
    except ResourceNotServed:
        endpoints = training.evaluate_endpoints(kube.get("v1", "Endpoints", service["name"], service["namespace"]))
    if endpoints["ready"]:
        result.passed("webhook_endpoints", "the webhook Service %s has %d ready endpoint(s): %s" % (
            where, len(endpoints["ready"]), ", ".join(endpoints["ready"])), endpoints, "ready endpoints")
    else:
        result.failed("webhook_endpoints", "the webhook Service %s has no ready endpoints (not ready: %s)" % (
            where, ", ".join(endpoints["not_ready"]) or "none"), endpoints, "ready endpoints")


def dry_run_create(kube, obj):
    """Server-side dry-run create; returns (classified answer, evidence).

    Only what this run stored is removed again: an object of that name that
    existed before the request is never touched.
    """
    kind, meta = obj["kind"], obj["metadata"]
    plural = kube.resource_for(obj["apiVersion"], kind)[0]
    existed = kube.get(obj["apiVersion"], kind, meta["name"], meta["namespace"]) is not None
    request = {"method": "POST", "path": api_path(obj["apiVersion"], plural, namespace=meta["namespace"]),
               "query": {"dryRun": "All"}, "body": obj}
    try:
        body = kube.create(obj, dry_run=True)
        code = 201
    except KubeError as exc:
        if exc.status is None:
            raise
        body, code = exc.body, exc.status
    answer = training.classify_admission(code, body, kind)
    # Server-side dry-run must store nothing; if it did, remove what it stored and say so.
    stored = None if existed else kube.get(obj["apiVersion"], kind, meta["name"], meta["namespace"])
    if stored is not None:
        kube.track(stored)
    answer["persisted"] = stored is not None
    return answer, {"request": request, "response": {"code": code, "body": body}, "persisted": stored is not None,
                    "existed_before": existed}


def probe_name(kube, profile, base, namespace):
    """``base``, or ``base-<run id>`` when an object of that name already exists (never ours to touch)."""
    if kube.get(profile["api_version"], profile["probe"]["kind"], base, namespace) is None:
        return base
    suffix = re.sub(r"[^a-z0-9-]+", "-", kube.run_id.lower())
    return ("%s-%s" % (base, suffix))[:63].rstrip("-")


def record_probe(result, name, answer, cause, message, expected):
    if answer["persisted"]:
        cause, message = "api_unavailable", "the API server stored the object of a dryRun=All create (removed again); " + message
    if cause is None:
        result.passed(name, message, answer, expected)
    else:
        result.outcome(name, cause, message, answer, expected)


def check_invalid_probe(kube, profile, version, namespace, result):
    """Dry-run create of the invalid object: the operator's webhook must deny it."""
    kind = profile["probe"]["kind"]
    webhooks = [training.expected_webhooks(profile, version)[profile["probe"]["plural"]]]
    name = probe_name(kube, profile, profile["probe"]["template"]["metadata"]["name"], namespace)
    answer, evidence = dry_run_create(kube, training.render_probe(profile, namespace, name=name))
    result.add_evidence("admission-invalid", evidence)
    if answer["message"]:
        result.add_evidence("admission-invalid-answer", answer["message"], "text")
    cause, message = training.evaluate_invalid_probe(answer, webhooks, kind)
    record_probe(result, "admission_rejects_invalid", answer, cause, message, 'denied by admission webhook "%s"' % webhooks[0])


def check_valid_probe(kube, profile, version, namespace, image, result):
    """Dry-run create of the same object with an image: it must be accepted."""
    kind = profile["probe"]["kind"]
    webhooks = [training.expected_webhooks(profile, version)[profile["probe"]["plural"]]]
    name = probe_name(kube, profile, "aic-valid-%s" % kind.lower(), namespace)
    answer, evidence = dry_run_create(kube, training.render_probe(profile, namespace, name=name, image=image))
    result.add_evidence("admission-valid", evidence)
    cause, message = training.evaluate_valid_probe(answer, webhooks, kind)
    record_probe(result, "admission_accepts_valid", answer, cause, message, "accepted by server-side dry-run")


def check_reconciliation(kube, profile, namespace, builder, timeout, result):
    job_spec = profile["job"]
    job = kube.create(training.render_job(profile, namespace, builder, labels=kube.labels(REQUIREMENT)))
    name = job["metadata"]["name"]
    kind = job_spec["kind"]
    selector = job_spec["pod_selector"].format(name=name)
    expected = "%s %s/%s Succeeded, its pod's container %s exited 0" % (kind, namespace, name, job_spec["container"]["name"])
    seen = {"job": None, "pods": []}

    def probe():
        current = kube.get(job["apiVersion"], kind, name, namespace)
        found = kube.list("v1", "Pod", namespace=namespace, label_selector=selector)
        seen["job"], seen["pods"] = current, found
        state, summary = training.job_state(profile, current)
        summary["state"] = state
        for pod in found:
            problem = pods.pod_problem(pod)
            if problem and problem["kind"] in ("image", "config", "unschedulable"):
                classified = policy.classify_pod(pod)
                raise Stuck("pod %s cannot run: %s" % (pod["metadata"]["name"], classified[1] if classified else problem["message"]),
                            kind=problem["kind"], state=summary, cause=classified[0] if classified else None)
        return state in (training.SUCCEEDED, training.FAILED), summary

    try:
        summary = kube.wait_for(probe, timeout, what=expected)
    except Stuck as exc:
        _job_evidence(kube, namespace, exc.state, seen["pods"], result)
        result.outcome("reconciliation", exc.cause, "the %s could not run: %s" % (kind, exc), exc.state, expected, exercised=True)
        return
    except WaitTimeout:
        state, summary = training.job_state(profile, seen["job"])
        _job_evidence(kube, namespace, summary, seen["pods"], result)
        cause, message = _timeout_verdict(kube, namespace, kind, name, timeout, summary, seen["pods"])
        result.outcome("reconciliation", cause, message, summary, expected, exercised=True)
        return
    _job_evidence(kube, namespace, summary, seen["pods"], result)
    last = summary["conditions"][-1] if summary["conditions"] else {}
    if summary["state"] == training.FAILED:
        failed = next((c for c in summary["conditions"] if c.get("type") == "Failed"), last)
        result.failed("reconciliation", "%s %s/%s failed: %s" % (kind, namespace, name, failed.get("message") or failed.get("reason")),
                      summary, expected, exercised=True)
        return
    cause, pods_message = training.evaluate_job_pods(seen["pods"], job_spec["container"]["name"])
    if cause is not None:
        result.outcome("reconciliation", cause, "%s %s/%s reports Succeeded (%s), but %s" % (
            kind, namespace, name, last.get("reason") or "no reason", pods_message), summary, expected, exercised=True)
        return
    result.exercised("reconciliation", "%s %s/%s reached Succeeded (%s) after the controller ran %d pod(s): %s" % (
        kind, namespace, name, last.get("reason") or "no reason", len(seen["pods"]), pods_message), summary, expected)


def _timeout_verdict(kube, namespace, kind, name, timeout, summary, found):
    """(cause, message) when the job did not finish in time: the environment when a pod or event says so."""
    for pod in found:
        classified = policy.classify_pod(pod)
        if classified:
            return classified[0], "%s %s/%s did not finish within %ss: %s" % (kind, namespace, name, timeout, classified[1])
    try:  # e.g. the operator's pod creation rejected by Pod Security, a quota or a policy webhook
        events = kube.list("v1", "Event", namespace=namespace, field_selector="type=Warning")
    except KubeError:
        events = []
    for event in events:
        cause = policy.classify_message(event.get("message"))
        if cause:
            return cause, "%s %s/%s did not finish within %ss: %s %s: %s" % (
                kind, namespace, name, timeout, event.get("reason"), (event.get("involvedObject") or {}).get("name"),
                event.get("message"))
    if not summary["conditions"]:
        return "capability", "the controller did not reconcile %s %s/%s within %ss: it has no status conditions" % (
            kind, namespace, name, timeout)
    return "capability", "%s %s/%s did not finish within %ss; last conditions: %s" % (
        kind, namespace, name, timeout, ", ".join("%s=%s" % (c["type"], c["status"]) for c in summary["conditions"]))


def _job_evidence(kube, namespace, summary, found, result):
    result.add_evidence("reconciliation-job", summary or {})
    result.add_evidence("reconciliation-pods", training.summarize_pods(found))
    for pod in found[:1]:
        try:
            log = kube.pod_logs(namespace, pod["metadata"]["name"], tail_lines=50)
        except KubeError as exc:
            log = "log not available: %s" % exc
        result.add_evidence("reconciliation-log", log, "text")


def guarded(result, name, fn, *args):
    """Run one check; an API error becomes a check of that name with the cause the policy reads from it."""
    try:
        return fn(*args)
    except KubeError as exc:
        result.from_exception(name, exc)
        return None


def verify(kube, params, result):
    profile = training.operator_profile(params["operator"])
    version = params.get("operator_version") or profile["default_version"]
    try:
        training.parse_version(version)
    except ValueError as exc:
        result.error("robust_controller_input", "operator_version: %s" % exc)
        return None
    namespace = params.get("operator_namespace") or profile["namespace"]
    vwc_name = params.get("webhook_configuration") or profile["webhook_configuration"]
    result.note("operator: %s %s (namespace %s)" % (profile["title"], version, namespace))
    image_key = profile["job"]["container"]["image"]
    builder = PodBuilder(params, image_overrides={image_key: params.get("job_image")})

    established = guarded(result, "crds_established", check_crds, kube, profile, version, result) or {}
    guarded(result, "operator_deployment", check_deployment, kube, profile, namespace, result)
    webhook = guarded(result, "webhook_configuration", check_webhook, kube, profile, version, namespace, vwc_name, result)
    if webhook is not None:
        guarded(result, "webhook_endpoints", check_endpoints, kube, profile, namespace, webhook, result)
    else:
        result.skipped("webhook_endpoints", "not checked: the webhook configuration could not be read")

    probe_ready = established.get(profile["probe"]["plural"])
    job_ready = established.get(profile["job"]["plural"])
    check_mode = kube.module.check_mode
    run_job = params["run_job"] and not check_mode and job_ready
    test_namespace = None
    if check_mode:
        test_namespace = "default"  # dry-runs only: nothing is stored, no namespace is created
    elif probe_ready or run_job:
        test_namespace = guarded(result, "test_namespace", kube.temp_namespace, REQUIREMENT)

    if not probe_ready or test_namespace is None:
        why = ("the %s CRD is not established" % profile["probe"]["kind"]) if not probe_ready else "no test namespace"
        for name in ("admission_rejects_invalid", "admission_accepts_valid"):
            result.skipped(name, "not run: %s" % why)
    else:
        guarded(result, "admission_rejects_invalid", check_invalid_probe, kube, profile, version, test_namespace, result)
        guarded(result, "admission_accepts_valid", check_valid_probe, kube, profile, version, test_namespace,
                builder.image(image_key), result)

    if not params["run_job"]:
        result.skipped("reconciliation", "reconciliation job disabled (run_job=false)")
    elif check_mode:
        result.skipped("reconciliation", "check mode: the %s was not run" % profile["job"]["kind"])
    elif not job_ready:
        result.skipped("reconciliation", "not run: the %s CRD is not established" % profile["job"]["kind"])
    elif test_namespace is None:
        result.skipped("reconciliation", "not run: no test namespace")
    else:
        guarded(result, "reconciliation", check_reconciliation, kube, profile, test_namespace, builder,
                params["timeout"], result)
    return None


def main():
    argument_spec = common_argument_spec(
        {
            "operator": {"type": "str", "choices": sorted(training.OPERATORS), "default": "kubeflow_training"},
            "operator_version": {"type": "str"},
            "operator_namespace": {"type": "str"},
            "webhook_configuration": {"type": "str"},
            "run_job": {"type": "bool", "default": True},
            "job_image": {"type": "str"},
        }
    )
    module = AnsibleK8SModule(argument_spec=argument_spec, supports_check_mode=True)
    run_requirement(module, REQUIREMENT, verify)


if __name__ == "__main__":
    main()
