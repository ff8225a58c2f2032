# -*- coding: utf-8 -*-
# Copyright: ai_conformance.rke2 contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The result schema every requirement module returns.

A result is a plain dict::

    {"requirement": "dra_support", "status": "passed",
     "checks": [{"name", "status", "kind", "cause", "message", "observed", "expected"}],
     "evidence": [{"name", "format", "content"}],
     "started": "2026-11-23T06:40:00Z", "duration_s": 1.2}

``failed`` means the cluster lacks the capability; ``error`` means the check
could not be carried out (API unreachable, RBAC forbidden, image not pullable).
Which is which, and when a requirement passes, is decided by ``policy.py``.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import datetime
import json
import time

from ansible_collections.ai_conformance.rke2.plugins.module_utils import policy
from ansible_collections.ai_conformance.rke2.plugins.module_utils.policy import (  # noqa: F401 (re-exported)
    CHECK_KINDS,
    ERROR,
    EXERCISE,
    FAILED,
    INSPECT,
    NOT_APPLICABLE,
    PASSED,
    SKIPPED,
)
STATUSES = (PASSED, FAILED, ERROR, SKIPPED, NOT_APPLICABLE)
CHECK_STATUSES = (PASSED, FAILED, ERROR, SKIPPED)
EVIDENCE_FORMATS = ("text", "json", "yaml", "markdown")


def utc_now():
    """Current UTC time as an ISO 8601 string with a Z suffix."""
    now = datetime.datetime.now(datetime.timezone.utc).replace(microsecond=0)
    return now.isoformat().replace("+00:00", "Z")


def make_check(name, status, message, observed=None, expected=None, kind=INSPECT, cause=None):
    """One check of a requirement, validated.

    ``kind`` says whether the check exercised the capability (``exercise``) or
    only inspected the cluster (``inspect``); ``cause`` names why a check
    failed or errored (a key of ``policy.CAUSES``).
    """
    if status not in CHECK_STATUSES:
        raise ValueError("check status must be one of %s, not %r" % (", ".join(CHECK_STATUSES), status))
    if kind not in CHECK_KINDS:
        raise ValueError("check kind must be one of %s, not %r" % (", ".join(CHECK_KINDS), kind))
    if not message:
        raise ValueError("check %r needs a message" % name)
    if cause is not None and policy.status_for(cause) != status:
        raise ValueError("check %r: cause %s means %s, not %s" % (name, cause, policy.status_for(cause), status))
    return {"name": name, "status": status, "kind": kind, "cause": cause, "message": message,
            "observed": observed, "expected": expected}


def overall_status(checks):
    """A requirement's status from its checks (see ``policy.requirement_status``).

    Any failed check fails the requirement; otherwise any error makes it an
    error; it passes only when a check that exercised the capability passed,
    so checks that only inspected, or were all skipped, give ``skipped``.
    """
    return policy.requirement_status(checks)[0]


def _require(name, cause, status):
    if policy.status_for(cause) != status:
        raise ValueError("check %r: cause %s means %s, not %s" % (name, cause, policy.status_for(cause), status))


class ResultBuilder:
    """Collects checks and evidence for one requirement and times the run."""

    def __init__(self, requirement):
        self.requirement = requirement
        self.started = utc_now()
        self._t0 = time.monotonic()
        self.checks = []
        self.evidence = []
        self.notes = []

    def check(self, name, status, message, observed=None, expected=None, kind=INSPECT, cause=None):
        """Record a check and return it."""
        item = make_check(name, status, message, observed, expected, kind, cause)
        self.checks.append(item)
        return item

    def passed(self, name, message, observed=None, expected=None, exercised=False):
        """A passed check; ``exercised=True`` when the cluster was made to do the thing."""
        return self.check(name, PASSED, message, observed, expected, EXERCISE if exercised else INSPECT)

    def exercised(self, name, message, observed=None, expected=None):
        """A passed check that exercised the capability (allocate, route, schedule, scale...)."""
        return self.passed(name, message, observed, expected, exercised=True)

    def outcome(self, name, cause, message, observed=None, expected=None, exercised=False):
        """A negative outcome: its status comes from the policy's table for ``cause``."""
        kind = EXERCISE if exercised else INSPECT
        return self.check(name, policy.status_for(cause), message, observed, expected, kind, cause)

    def failed(self, name, message, observed=None, expected=None, cause="capability", exercised=False):
        """The cluster lacks the capability (``cause`` must be a failing one)."""
        _require(name, cause, FAILED)
        return self.outcome(name, cause, message, observed, expected, exercised)

    def error(self, name, message, observed=None, expected=None, cause="internal"):
        """The check could not be carried out; name the environment ``cause``."""
        _require(name, cause, ERROR)
        return self.outcome(name, cause, message, observed, expected)

    def from_exception(self, name, exc, context=None, observed=None, expected=None):
        """Record a failed API call with the cause the policy reads from it."""
        cause = policy.classify_api_error(exc)
        message = "%s: %s" % (context, exc) if context else str(exc)
        return self.outcome(name, cause, message, observed, expected)

    def skipped(self, name, message, observed=None, expected=None):
        return self.check(name, SKIPPED, message, observed, expected)

    def add_evidence(self, name, content, fmt=None):
        """Attach evidence; dicts and lists are stored as JSON, text as is."""
        if fmt is None:
            fmt = "text" if isinstance(content, str) else "json"
        if fmt not in EVIDENCE_FORMATS:
            raise ValueError("evidence format must be one of %s" % ", ".join(EVIDENCE_FORMATS))
        if fmt == "json":
            # Round-trip so that what we return is plain JSON data.
            content = json.loads(json.dumps(content, default=str))
        self.evidence.append({"name": name, "format": fmt, "content": content})

    def note(self, text):
        """A free-text note carried into the reports (e.g. why N/A)."""
        self.notes.append(text)

    def has_failures(self):
        return any(c["status"] in (FAILED, ERROR) for c in self.checks)

    def finish(self, status=None):
        """Return the result dict; ``status`` overrides the derived one
        (used for ``not_applicable``)."""
        if status is None:
            status, reason = policy.requirement_status(self.checks)
            if reason and reason not in self.notes:
                self.notes.append(reason)
        if status not in STATUSES:
            raise ValueError("status must be one of %s" % ", ".join(STATUSES))
        return {
            "requirement": self.requirement,
            "status": status,
            "checks": list(self.checks),
            "evidence": list(self.evidence),
            "notes": list(self.notes),
            "started": self.started,
            "duration_s": round(time.monotonic() - self._t0, 3),
        }


def validate_result(result):
    """Raise ValueError when ``result`` does not follow the schema."""
    required = ("requirement", "status", "checks", "evidence", "started", "duration_s")
    missing = [k for k in required if k not in result]
    if missing:
        raise ValueError("result lacks %s" % ", ".join(missing))
    if result["status"] not in STATUSES:
        raise ValueError("unknown status %r" % result["status"])
    for item in result["checks"]:
        for key in ("name", "status", "message"):
            if key not in item:
                raise ValueError("check lacks %s: %r" % (key, item))
        if item["status"] not in CHECK_STATUSES:
            raise ValueError("unknown check status %r" % item["status"])
        if item.get("kind", INSPECT) not in CHECK_KINDS:
            raise ValueError("unknown check kind %r" % item.get("kind"))
    for item in result["evidence"]:
        if set(("name", "format", "content")) - set(item):
            raise ValueError("evidence item lacks name/format/content: %r" % item)
    return result
