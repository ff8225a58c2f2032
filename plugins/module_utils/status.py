# -*- coding: utf-8 -*-
# Copyright: ai_conformance.rke2 contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Pure readers of Kubernetes status: conditions, node readiness, deployment availability."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type


def conditions(obj):
    """``obj.status.conditions`` (empty list when absent)."""
    return ((obj or {}).get("status") or {}).get("conditions") or []


def find_condition(items, type_):
    """The condition of ``type_`` in a list of conditions, or None."""
    for cond in items or []:
        if cond.get("type") == type_:
            return cond
    return None


def condition(obj, type_):
    """The condition of ``type_`` in ``obj.status.conditions``, or None."""
    return find_condition(conditions(obj), type_)


def condition_true(obj, type_):
    """True when ``obj`` has the condition ``type_`` with status True."""
    cond = condition(obj, type_)
    return bool(cond) and cond.get("status") == "True"


def format_condition(cond):
    """``Accepted=True (Handled: Handled by Traefik controller)`` for one condition."""
    text = "%s=%s" % (cond.get("type"), cond.get("status"))
    reason, message = cond.get("reason"), cond.get("message")
    if reason or message:
        text += " (%s)" % ": ".join(p for p in (reason, message) if p)
    return text


def format_conditions(items):
    """All conditions as ``[A=B (reason: message), ...]``; ``[]`` when there are none."""
    return "[%s]" % ", ".join(format_condition(c) for c in items or [])


def node_ready(node):
    """(ready, detail) of a Node from its Ready condition."""
    cond = condition(node, "Ready")
    if cond is None:
        return False, "no Ready condition"
    return cond.get("status") == "True", cond.get("reason") or cond.get("status")


def deployment_available(deployment):
    """(available, detail) of a Deployment: Available=True and at least one available replica."""
    if not deployment:
        return False, "not found"
    status = deployment.get("status") or {}
    available = status.get("availableReplicas") or 0
    detail = "%d/%s replicas available" % (available, (deployment.get("spec") or {}).get("replicas", 1))
    cond = condition(deployment, "Available")
    if cond is not None and cond.get("status") == "True" and available >= 1:
        return True, detail
    if cond is None:
        return False, "%s, no Available condition" % detail
    why = cond.get("message") or cond.get("status")
    return False, "%s, Available=%s: %s%s" % (detail, cond.get("status"), why, (" (%s)" % cond["reason"]) if cond.get("reason") else "")
