# -*- coding: utf-8 -*-
# Copyright: ai_conformance.rke2 contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Pure pod status helpers: has a pod reached a phase, and if not, why not."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

from ansible_collections.ai_conformance.rke2.plugins.module_utils import status as k8s_status

# Waiting reasons that will not resolve by waiting longer.
IMAGE_REASONS = ("ImagePullBackOff", "ErrImagePull", "InvalidImageName", "ErrImageNeverPull")
CRASH_REASONS = ("CrashLoopBackOff",)
CONFIG_REASONS = ("CreateContainerConfigError", "CreateContainerError", "RunContainerError", "ContainerCannotRun")


def _container_statuses(pod):
    status = pod.get("status") or {}
    return (status.get("initContainerStatuses") or []) + (status.get("containerStatuses") or [])


def pod_problem(pod, unschedulable_is_problem=True):
    """Why ``pod`` cannot make progress, or None.

    Returns {"kind": "image"|"crash"|"config"|"unschedulable"|"failed",
    "reason": ..., "message": ...}.
    """
    for cs in _container_statuses(pod):
        waiting = (cs.get("state") or {}).get("waiting") or {}
        reason = waiting.get("reason")
        detail = waiting.get("message") or ""
        for kind, reasons in (("image", IMAGE_REASONS), ("crash", CRASH_REASONS), ("config", CONFIG_REASONS)):
            if reason in reasons:
                return {
                    "kind": kind,
                    "reason": reason,
                    "message": "container %s: %s%s" % (cs.get("name"), reason, (" (%s)" % detail) if detail else ""),
                }
    status = pod.get("status") or {}
    if status.get("phase") == "Failed":
        exits = []
        for cs in _container_statuses(pod):
            term = (cs.get("state") or {}).get("terminated")
            if term:
                exits.append("%s exited %s (%s)" % (cs.get("name"), term.get("exitCode"), term.get("reason")))
        text = status.get("message") or status.get("reason") or "pod failed"
        return {"kind": "failed", "reason": status.get("reason") or "Failed", "message": "; ".join([text] + exits)}
    scheduled = k8s_status.condition(pod, "PodScheduled")
    if unschedulable_is_problem and scheduled and scheduled.get("status") == "False" and scheduled.get("reason") == "Unschedulable":
        return {"kind": "unschedulable", "reason": "Unschedulable", "message": "Unschedulable: %s" % scheduled.get("message", "")}
    return None


def is_ready(pod):
    cond = k8s_status.condition(pod, "Ready")
    return bool(cond and cond.get("status") == "True")


def reached(pod, phase):
    """True when the pod is in ``phase`` ('Running' also requires Ready, 'Scheduled' only binding)."""
    status = pod.get("status") or {}
    if phase == "Scheduled":
        return bool((pod.get("spec") or {}).get("nodeName"))
    if phase == "Running":
        return status.get("phase") == "Running" and is_ready(pod)
    return status.get("phase") == phase


def summarize(pods):
    """Compact per-pod state for messages and evidence."""
    out = []
    for pod in pods:
        status = pod.get("status") or {}
        problem = pod_problem(pod)
        out.append(
            {
                "name": pod["metadata"]["name"],
                "phase": status.get("phase"),
                "node": (pod.get("spec") or {}).get("nodeName"),
                "ready": is_ready(pod),
                "problem": problem["message"] if problem else None,
            }
        )
    return out
