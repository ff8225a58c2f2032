# -*- coding: utf-8 -*-
# Copyright: ai_conformance.rke2 contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The result schema every requirement module returns.

A result is a plain dict::

    {"requirement": "dra_support", "status": "passed",
     "checks": [{"name", "status", "message", "observed", "expected"}],
     "evidence": [{"name", "format", "content"}],
     "started": "2026-11-23T06:40:00Z", "duration_s": 1.2}

``failed`` means the cluster lacks the capability; ``error`` means the check
could not be carried out (API unreachable, RBAC forbidden, image not pullable).
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import datetime
import json
import time

PASSED = "passed"
FAILED = "failed"
ERROR = "error"
SKIPPED = "skipped"
NOT_APPLICABLE = "not_applicable"
STATUSES = (PASSED, FAILED, ERROR, SKIPPED, NOT_APPLICABLE)
CHECK_STATUSES = (PASSED, FAILED, ERROR, SKIPPED)
EVIDENCE_FORMATS = ("text", "json", "yaml", "markdown")


def utc_now():
    """Current UTC time as an ISO 8601 string with a Z suffix."""
    now = datetime.datetime.now(datetime.timezone.utc).replace(microsecond=0)
    return now.isoformat().replace("+00:00", "Z")


def make_check(name, status, message, observed=None, expected=None):
    """One check of a requirement, validated."""
    if status not in CHECK_STATUSES:
        raise ValueError("check status must be one of %s, not %r" % (", ".join(CHECK_STATUSES), status))
    if not message:
        raise ValueError("check %r needs a message" % name)
    return {"name": name, "status": status, "message": message, "observed": observed, "expected": expected}


def overall_status(checks):
    """Derive a requirement's status from its checks.

    Any failed check fails the requirement (the capability is missing even if
    another check could not run); otherwise any error makes it an error; it
    passes only when at least one check passed, so a requirement whose checks
    were all skipped is ``skipped``, never ``passed``.
    """
    statuses = [c["status"] for c in checks]
    if FAILED in statuses:
        return FAILED
    if ERROR in statuses:
        return ERROR
    if PASSED in statuses:
        return PASSED
    return SKIPPED


class ResultBuilder:
    """Collects checks and evidence for one requirement and times the run."""

    def __init__(self, requirement):
        self.requirement = requirement
        self.started = utc_now()
        self._t0 = time.monotonic()
        self.checks = []
        self.evidence = []
        self.notes = []

    def check(self, name, status, message, observed=None, expected=None):
        """Record a check and return it."""
        item = make_check(name, status, message, observed, expected)
        self.checks.append(item)
        return item

    def passed(self, name, message, observed=None, expected=None):
        return self.check(name, PASSED, message, observed, expected)

    def failed(self, name, message, observed=None, expected=None):
        return self.check(name, FAILED, message, observed, expected)

    def error(self, name, message, observed=None, expected=None):
        return self.check(name, ERROR, message, observed, expected)

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
            status = overall_status(self.checks)
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
    for item in result["evidence"]:
        if set(("name", "format", "content")) - set(item):
            raise ValueError("evidence item lacks name/format/content: %r" % item)
    return result
