# -*- coding: utf-8 -*-
# Copyright: ai_conformance.rke2 contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The one status policy: which outcome is ``failed``, which is ``error``, when a requirement passes.

Modules never pick ``failed`` or ``error`` themselves: they name the *cause* of
an outcome (``capability``, ``image_pull``, ``rbac``, ...) and ``CAUSES`` maps it
to a status. ``failed`` means the cluster lacks the capability; ``error`` means
the environment kept the test from running (the split kubernetes-sigs/ai-conformance
calls VIOLATION vs ENVIRONMENT ERROR).

A requirement passes only when no check failed or errored and at least one
check that *exercised* the capability passed; checks that only inspected
(discovery, configuration, installed components) never make a pass alone.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import re

PASSED = "passed"
FAILED = "failed"
ERROR = "error"
SKIPPED = "skipped"
NOT_APPLICABLE = "not_applicable"

EXERCISE = "exercise"
INSPECT = "inspect"
CHECK_KINDS = (EXERCISE, INSPECT)

# cause -> (status, what it means). The table is documented in docs/development.md
# and unit tested row by row (tests/unit/plugins/module_utils/test_policy.py).
CAUSES = {
    # the capability itself
    "capability": (FAILED, "the cluster did not do what the requirement demands"),
    "not_installed": (FAILED, "the component or API the requirement needs is not installed or not served"),
    # the environment kept the test from running
    "image_pull": (ERROR, "a test image could not be pulled"),
    "image_pull_timeout": (ERROR, "a test pod was still pulling or creating its containers when the wait ended"),
    "no_capacity": (ERROR, "no free capacity (CPU, memory, pods, accelerators, devices) to run the test"),
    "untolerated_taint": (ERROR, "the test pods do not tolerate a taint of the nodes they need"),
    "no_test_target": (ERROR, "nothing to run the test on (e.g. no accelerator node)"),
    "pod_security": (ERROR, "Pod Security admission rejected a test workload"),
    "limit_range": (ERROR, "a LimitRange rejected a test workload"),
    "resource_quota": (ERROR, "a ResourceQuota rejected a test workload"),
    "policy_webhook": (ERROR, "an admission webhook that is not under test rejected the request or could not be called"),
    "rbac": (ERROR, "the identity lacks a permission (RBAC) or its credentials were rejected"),
    "network_policy": (ERROR, "the pod network or a NetworkPolicy blocks the test traffic"),
    "api_unavailable": (ERROR, "the API server was unreachable or kept answering 429/5xx after bounded retries"),
    "test_tooling": (ERROR, "a test container failed in a way that says nothing about the capability (tool missing, crash)"),
    "namespace_terminating": (ERROR, "a namespace the test uses is being deleted"),
    "timeout": (ERROR, "a wait ran out before the outcome could be judged"),
    "invalid_request": (ERROR, "the API server rejected a request of the test as invalid"),
    "internal": (ERROR, "an internal error of the collection"),
}


def status_for(cause):
    """The status an outcome of ``cause`` gets; unknown causes raise (a typo must not pass)."""
    if cause not in CAUSES:
        raise ValueError("unknown cause %r; known: %s" % (cause, ", ".join(sorted(CAUSES))))
    return CAUSES[cause][0]


def meaning(cause):
    """One phrase explaining ``cause``."""
    return CAUSES[cause][1]


# --------------------------------------------------------------------------- requirement status


def requirement_status(checks):
    """(status, reason) of a requirement from its checks.

    failed if any check failed; else error if any errored; else passed when a
    check of kind ``exercise`` passed; else skipped with "nothing was exercised".
    """
    statuses = [c["status"] for c in checks]
    if FAILED in statuses:
        return FAILED, None
    if ERROR in statuses:
        return ERROR, None
    if any(c["status"] == PASSED and c.get("kind") == EXERCISE for c in checks):
        return PASSED, None
    inspected = [c.get("name", "?") for c in checks if c["status"] == PASSED]
    skipped = ["%s (%s)" % (c.get("name", "?"), c.get("message")) for c in checks if c["status"] == SKIPPED]
    parts = []
    if inspected:
        parts.append("only inspected: %s" % ", ".join(inspected))
    if skipped:
        parts.append("not run: %s" % "; ".join(skipped))
    return SKIPPED, "nothing was exercised" + (": " + "; ".join(parts) if parts else "")


# --------------------------------------------------------------------------- classification

_RBAC = re.compile(r"cannot \w+ resource")
_LIMIT_RANGE = re.compile(r"(maximum|minimum) \S+ usage per (Container|Pod)|limit to request ratio per (Container|Pod)")


def classify_message(text):
    """Cause named by an API or event message about a rejected request, or None."""
    text = text or ""
    if "violates PodSecurity" in text:
        return "pod_security"
    if "exceeded quota" in text or "failed quota" in text:
        return "resource_quota"
    if _LIMIT_RANGE.search(text):
        return "limit_range"
    if "admission webhook" in text or "failed calling webhook" in text:
        return "policy_webhook"
    if "because it is being terminated" in text:
        return "namespace_terminating"
    if _RBAC.search(text):
        return "rbac"
    return None


def classify_api_error(exc):
    """Cause of a failed API call (a kube.KubeError or anything with ``status``/``message``)."""
    name = type(exc).__name__
    status = getattr(exc, "status", None)
    text = getattr(exc, "message", None) or str(exc)
    if name in ("Unreachable",):
        return "api_unavailable"
    if name == "ResourceNotServed":
        return "not_installed"
    if name == "WaitTimeout":
        return "timeout"
    if status == 401:
        return "rbac"
    by_text = classify_message(text)
    if by_text:
        return by_text
    if status == 403:
        return "rbac"
    if status == 429 or (isinstance(status, int) and status >= 500):
        return "api_unavailable"
    if status in (400, 422):
        return "invalid_request"
    if name == "ConfigError":
        return "api_unavailable"
    return "internal" if status is None else "api_unavailable"


def classify_scheduling(message):
    """Cause of an Unschedulable pod from the scheduler's message."""
    text = message or ""
    if "untolerated taint" in text:
        return "untolerated_taint"
    return "no_capacity"


_PULL_WAIT = ("ContainerCreating", "PodInitializing")
_IMAGE_REASONS = ("ImagePullBackOff", "ErrImagePull", "InvalidImageName", "ErrImageNeverPull")


def _container_statuses(pod):
    status = pod.get("status") or {}
    return (status.get("initContainerStatuses") or []) + (status.get("containerStatuses") or [])


def _images(pod):
    spec = pod.get("spec") or {}
    return dict((c.get("name"), c.get("image")) for c in (spec.get("initContainers") or []) + (spec.get("containers") or []))


def registry_of(image):
    """The registry host of an image reference (docker.io when none is named)."""
    first, sep, rest = (image or "").partition("/")
    if sep and ("." in first or ":" in first or first == "localhost"):
        return first
    return "docker.io"


def classify_pod(pod, events=None):
    """(cause, message) for a pod that did not reach its goal, or None when nothing explains it.

    Looks at container waiting reasons (image pulls), scheduling (capacity,
    taints) and, when given, the pod's events (FailedCreate of its owner is the
    caller's to pass). Used both when a wait stops early and when it times out.
    """
    name = (pod.get("metadata") or {}).get("name", "?")
    images = _images(pod)
    for cs in _container_statuses(pod):
        waiting = (cs.get("state") or {}).get("waiting") or {}
        reason = waiting.get("reason")
        image = cs.get("image") or images.get(cs.get("name"))
        if reason in _IMAGE_REASONS:
            return "image_pull", "pod %s: image %s (registry %s) cannot be pulled: %s%s" % (
                name, image, registry_of(image), reason, (" (%s)" % waiting["message"]) if waiting.get("message") else "")
    for event in events or []:
        reason = event.get("reason") or ""
        if reason in ("Failed",) and "pull" in (event.get("message") or "").lower():
            return "image_pull", "pod %s: %s" % (name, event.get("message"))
    status = pod.get("status") or {}
    for cond in status.get("conditions") or []:
        if cond.get("type") == "PodScheduled" and cond.get("status") == "False" and cond.get("reason") == "Unschedulable":
            cause = classify_scheduling(cond.get("message"))
            return cause, "pod %s is unschedulable: %s" % (name, cond.get("message") or "no message")
    if (pod.get("spec") or {}).get("nodeName") and status.get("phase") == "Pending":
        pulling = []
        for cs in _container_statuses(pod):
            waiting = (cs.get("state") or {}).get("waiting") or {}
            if waiting.get("reason") in _PULL_WAIT or not cs.get("state"):
                pulling.append("%s (%s, %s)" % (cs.get("name"), cs.get("image") or images.get(cs.get("name")), waiting.get("reason") or "no state"))
        pulled = [e.get("message") for e in events or [] if e.get("reason") in ("Pulling", "Pulled")]
        if pulling or not _container_statuses(pod):
            progress = "; last image event: %s" % pulled[-1] if pulled else "; no image pull event seen"
            what = ", ".join(pulling) or ", ".join("%s (%s)" % item for item in sorted(images.items()))
            return "image_pull_timeout", "pod %s on node %s is still creating its containers: %s%s" % (
                name, pod["spec"]["nodeName"], what, progress)
    return None


def classify_stuck(kind):
    """Cause of a kube.Stuck early stop (its ``kind``: image, crash, config, unschedulable, failed, ...)."""
    return {
        "image": "image_pull",
        "crash": "test_tooling",
        "config": "test_tooling",
        "failed": "test_tooling",
        "unschedulable": "no_capacity",
        "untolerated_taint": "untolerated_taint",
        "no_capacity": "no_capacity",
        "pod_security": "pod_security",
    }.get(kind, "timeout")
