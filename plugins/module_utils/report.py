# -*- coding: utf-8 -*-
# Copyright: ai_conformance.rke2 contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Pure report rendering: results.json, report.md, junit.xml, PRODUCT.yaml and evidence files.

Every function returns text (or {relative path: text}); writing is the module's job.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import json
import re
import xml.etree.ElementTree as ET

try:
    import yaml

    HAS_YAML = True
except ImportError:
    HAS_YAML = False

# CNCF PRODUCT.yaml statuses (validated by cncf/k8s-ai-conformance scripts/validate.go).
IMPLEMENTED = "Implemented"
NOT_IMPLEMENTED = "Not Implemented"
PARTIALLY_IMPLEMENTED = "Partially Implemented"
NOT_APPLICABLE = "N/A"
PRODUCT_METADATA_FIELDS = (
    "kubernetesVersion",
    "platformName",
    "platformVersion",
    "vendorName",
    "websiteUrl",
    "repoUrl",
    "documentationUrl",
    "productLogoUrl",
    "description",
    "contactEmailAddress",
    "k8sConformanceUrl",
)
STATUS_ICON = {"passed": "PASS", "failed": "FAIL", "error": "ERROR", "skipped": "SKIP", "not_applicable": "N/A", "not_run": "NOT RUN"}


def _slug(text):
    return re.sub(r"[^A-Za-z0-9_.-]+", "-", text).strip("-") or "item"


def evidence_files(result):
    """{relative path: text} of a requirement's evidence: one Markdown page plus one raw file per item."""
    req = result["requirement"]
    files = {}
    for item in result.get("evidence") or []:
        ext = {"json": "json", "yaml": "yaml", "markdown": "md"}.get(item["format"], "txt")
        files["evidence/%s/%s.%s" % (req, _slug(item["name"]), ext)] = _render_content(item)
    files["evidence/%s.md" % req] = requirement_markdown(result, heading_level=1, link_prefix="%s/" % req)
    return files


def _render_content(item):
    if item["format"] == "json":
        return json.dumps(item["content"], indent=2, sort_keys=True) + "\n"
    if item["format"] == "yaml":
        return item["content"] if isinstance(item["content"], str) else yaml.safe_dump(item["content"], sort_keys=False)
    text = item["content"] if isinstance(item["content"], str) else json.dumps(item["content"], indent=2)
    return text if text.endswith("\n") else text + "\n"


def _cell(value):
    text = "" if value is None else str(value)
    return text.replace("|", "\\|").replace("\n", " ")


def _fence(text):
    longest = max([len(m) for m in re.findall(r"`+", text)] + [0])
    return "`" * max(3, longest + 1)


def requirement_markdown(result, heading_level=2, link_prefix=None):
    """One requirement: status, checks table, notes, evidence."""
    h = "#" * heading_level
    lines = [
        "%s %s: %s" % (h, result["requirement"], STATUS_ICON.get(result["status"], result["status"])),
        "",
        "Started %s, took %ss." % (result.get("started", "?"), result.get("duration_s", "?")),
        "",
    ]
    checks = result.get("checks") or []
    if checks:
        lines += ["| Check | Status | Message |", "|---|---|---|"]
        lines += ["| %s | %s | %s |" % (_cell(c["name"]), STATUS_ICON.get(c["status"], c["status"]), _cell(c["message"])) for c in checks]
        lines.append("")
        for check in checks:
            if check.get("observed") is not None or check.get("expected") is not None:
                lines += ["%s# %s" % (h, check["name"]), ""]
                for key in ("expected", "observed"):
                    if check.get(key) is not None:
                        body = json.dumps(check[key], indent=2, sort_keys=True, default=str)
                        lines += ["%s:" % key.capitalize(), "", "```json", body, "```", ""]
    for note in result.get("notes") or []:
        lines += ["> %s" % note, ""]
    for item in result.get("evidence") or []:
        content = _render_content(item)
        lang = {"json": "json", "yaml": "yaml"}.get(item["format"], "")
        fence = _fence(content)
        lines += ["%s# Evidence: %s" % (h, item["name"]), ""]
        if link_prefix is not None:
            ext = {"json": "json", "yaml": "yaml", "markdown": "md"}.get(item["format"], "txt")
            lines += ["File: [%s%s.%s](%s%s.%s)" % (link_prefix, _slug(item["name"]), ext, link_prefix, _slug(item["name"]), ext), ""]
        lines += [fence + lang, content.rstrip("\n"), fence, ""]
    return "\n".join(lines) + "\n"


def summarize(results, catalogue, requested):
    """Counts and the MUST requirements that are not met (passed or not_applicable)."""
    levels = dict((r["id"], r["level"]) for r in catalogue)
    by_id = dict((r["requirement"], r) for r in results)
    counts = {}
    unmet = []
    for req_id in requested:
        status = by_id[req_id]["status"] if req_id in by_id else "not_run"
        counts[status] = counts.get(status, 0) + 1
        if levels.get(req_id) == "MUST" and status not in ("passed", "not_applicable"):
            unmet.append(req_id)
    return {"counts": counts, "unmet_must": unmet, "total": len(requested)}


def results_json(cluster, checklist, results, summary, generated):
    return json.dumps(
        {"cluster": cluster, "checklist": checklist, "generated": generated, "summary": summary, "requirements": results},
        indent=2,
        sort_keys=False,
        default=str,
    ) + "\n"


def report_markdown(cluster, checklist, results, catalogue, requested, summary, generated):
    """The readable report: cluster, summary table, one section per requirement."""
    defs = dict((r["id"], r) for r in catalogue)
    by_id = dict((r["requirement"], r) for r in results)
    lines = [
        "# CNCF Kubernetes AI Conformance %s: %s" % (checklist, cluster.get("name", "cluster")),
        "",
        "Generated %s by ai_conformance.rke2." % generated,
        "",
        "| Cluster | |",
        "|---|---|",
    ]
    for key in ("name", "server", "context", "git_version", "platform", "user"):
        if cluster.get(key):
            lines.append("| %s | %s |" % (key, _cell(cluster[key])))
    lines += ["", "## Summary", ""]
    unmet = summary["unmet_must"]
    lines.append("All MUST requirements met." if not unmet else "MUST requirements not met: %s." % ", ".join(unmet))
    lines += ["", "| Requirement | Level | Status | Checks passed | Duration (s) |", "|---|---|---|---|---|"]
    for req_id in requested:
        res = by_id.get(req_id)
        level = defs.get(req_id, {}).get("level", "")
        if res is None:
            lines.append("| %s | %s | NOT RUN | | |" % (req_id, level))
            continue
        checks = res.get("checks") or []
        passed = len([c for c in checks if c["status"] == "passed"])
        lines.append(
            "| %s | %s | %s | %d/%d | %s |"
            % (req_id, level, STATUS_ICON.get(res["status"], res["status"]), passed, len(checks), res.get("duration_s", ""))
        )
    lines.append("")
    for req_id in requested:
        if req_id in by_id:
            lines.append(requirement_markdown(by_id[req_id], heading_level=2, link_prefix="evidence/%s/" % req_id))
    return "\n".join(lines) + "\n"


def junit_xml(results, checklist, requested, generated):
    """JUnit XML: one testsuite per requirement, one testcase per check."""
    by_id = dict((r["requirement"], r) for r in results)
    root = ET.Element("testsuites", name="ai-conformance-%s" % checklist, timestamp=generated)
    totals = {"tests": 0, "failures": 0, "errors": 0, "skipped": 0}
    for req_id in requested:
        res = by_id.get(req_id)
        suite = ET.SubElement(root, "testsuite", name=req_id)
        counts = {"tests": 0, "failures": 0, "errors": 0, "skipped": 0}
        checks = (res or {}).get("checks") or []
        if res is None:
            checks = [{"name": req_id, "status": "skipped", "message": "requirement was not run"}]
        elif not checks:
            checks = [{"name": req_id, "status": "skipped", "message": "; ".join(res.get("notes") or []) or res["status"]}]
        for check in checks:
            case = ET.SubElement(suite, "testcase", classname="ai_conformance.%s" % req_id, name=check["name"])
            counts["tests"] += 1
            if check["status"] == "failed":
                ET.SubElement(case, "failure", message=check["message"], type="failed").text = _detail(check)
                counts["failures"] += 1
            elif check["status"] == "error":
                ET.SubElement(case, "error", message=check["message"], type="error").text = _detail(check)
                counts["errors"] += 1
            elif check["status"] == "skipped":
                ET.SubElement(case, "skipped", message=check["message"])
                counts["skipped"] += 1
            else:
                ET.SubElement(case, "system-out").text = check["message"]
        if res is not None:
            suite.set("time", str(res.get("duration_s", 0)))
            suite.set("timestamp", res.get("started", generated))
        for key, value in counts.items():
            suite.set(key, str(value))
            totals[key] += value
    for key, value in totals.items():
        root.set(key, str(value))
    return '<?xml version="1.0" encoding="UTF-8"?>\n' + ET.tostring(root, encoding="unicode") + "\n"


def _detail(check):
    return json.dumps({"expected": check.get("expected"), "observed": check.get("observed")}, indent=2, default=str)


def product_status(result, level):
    """(CNCF status, notes) for one requirement's result (None: not run)."""
    if result is None:
        return (NOT_IMPLEMENTED if level == "MUST" else ""), "Not verified: the requirement was not selected or not run."
    status = result["status"]
    messages = ["%s: %s" % (c["name"], c["message"]) for c in result.get("checks") or []]
    notes = list(result.get("notes") or [])
    if status == "passed":
        skipped = [c for c in result.get("checks") or [] if c["status"] == "skipped"]
        text = "Verified by ai_conformance.rke2: " + "; ".join(m for m, c in zip(messages, result["checks"]) if c["status"] == "passed")
        if skipped:
            text += ". Not exercised: " + "; ".join("%s (%s)" % (c["name"], c["message"]) for c in skipped)
        return IMPLEMENTED, " ".join(notes + [text])
    if status == "not_applicable":
        return NOT_APPLICABLE, " ".join(notes + messages) or "Not applicable to this platform."
    if status == "failed":
        failed = [m for m, c in zip(messages, result["checks"]) if c["status"] == "failed"]
        return NOT_IMPLEMENTED, " ".join(notes + ["Verification failed: " + "; ".join(failed)])
    if status == "error":
        return NOT_IMPLEMENTED, " ".join(
            notes + ["NOT VERIFIED, the check could not be carried out: " + "; ".join(m for m, c in zip(messages, result["checks"]) if c["status"] == "error")]
        )
    return (NOT_IMPLEMENTED if level == "MUST" else ""), " ".join(notes + ["Not verified: " + "; ".join(messages)])


def product_yaml(catalogue, results, metadata, cluster):
    """A draft CNCF PRODUCT.yaml; evidence paths are relative to the file."""
    by_id = dict((r["requirement"], r) for r in results)
    meta = dict((key, metadata.get(key) or "") for key in PRODUCT_METADATA_FIELDS)
    if not meta["kubernetesVersion"]:
        minor = cluster.get("kubernetes_minor")
        meta["kubernetesVersion"] = ("v%s" % minor) if minor else cluster.get("kubernetes_version", "")
    if not meta["platformVersion"]:
        meta["platformVersion"] = cluster.get("git_version", "")
    spec = {}
    for req in catalogue:
        res = by_id.get(req["id"])
        status, notes = product_status(res, req["level"])
        evidence = ["evidence/%s.md" % req["id"]] if res is not None else []
        spec.setdefault(req["category"], []).append(
            {"id": req["id"], "description": req["description"].strip(), "level": req["level"], "status": status, "evidence": evidence, "notes": notes}
        )
    header = (
        "# Draft CNCF Kubernetes AI Conformance submission written by ai_conformance.rke2.\n"
        "# Review every field; evidence paths are relative to this file.\n"
    )
    return header + yaml.safe_dump({"metadata": meta, "spec": spec}, sort_keys=False, width=1000, allow_unicode=True)


def render_all(cluster, checklist, catalogue, results, requested, metadata, generated):
    """{relative path: text} of every file the report directory gets."""
    summary = summarize(results, catalogue, requested)
    files = {
        "results.json": results_json(cluster, checklist, results, summary, generated),
        "report.md": report_markdown(cluster, checklist, results, catalogue, requested, summary, generated),
        "junit.xml": junit_xml(results, checklist, requested, generated),
        "PRODUCT.yaml": product_yaml(catalogue, results, metadata, cluster),
    }
    for result in results:
        files.update(evidence_files(result))
    return files, summary
