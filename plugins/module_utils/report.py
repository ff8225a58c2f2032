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

from ansible_collections.ai_conformance.rke2.plugins.module_utils import readiness as ready_mod

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
# A requirement is Implemented only when this check passed too (cluster_autoscaling: scaling exercised).
REQUIRED_PASSING_CHECK = {"cluster_autoscaling": "scale_up"}
# Our JUnit in a submission: named junit.xml (parsed by the CNCF validator) only when free of failures.
SUBMISSION_JUNIT = "junit.xml"
SUBMISSION_JUNIT_WITH_FAILURES = "ai-conformance-junit.xml"
SUBMISSION_RESULTS = "ai-conformance-results.json"
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
        {"cluster": cluster, "checklist": checklist, "generated": generated,
         "summary": dict((k, v) for k, v in summary.items() if k != "readiness"),
         "readiness": summary.get("readiness"), "requirements": results},
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
    ]
    if summary.get("readiness"):
        lines += ["## Submission readiness (%s)" % summary["readiness"]["checked"], ""] + readiness_markdown(summary["readiness"])
    lines += [
        "| Cluster | |",
        "|---|---|",
    ]
    for key in ("name", "server", "context", "git_version", "platform_version", "platform", "user"):
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


def junit_xml(results, checklist, requested, generated, requirement_cases=False):
    """JUnit XML: one testsuite per requirement, one testcase per check.

    With ``requirement_cases`` each suite starts with a testcase named after the requirement (its verdict)
    and the checks are named ``<requirement>/<check>`` (Go subtest style), so ``junit.xml#<requirement>``
    names a test, as hybrid verification (checklist 1.37) links it.
    """
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
        if requirement_cases:
            checks = [_requirement_case(req_id, res)] + [dict(c, name="%s/%s" % (req_id, c["name"])) for c in checks if c["name"] != req_id]
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


def _requirement_case(req_id, res):
    """The requirement's verdict as one JUnit case."""
    if res is None:
        return {"name": req_id, "status": "skipped", "message": "requirement was not run"}
    status = res["status"]
    checks = res.get("checks") or []
    if status == "passed":
        return {"name": req_id, "status": "passed", "message": "passed: %s" % ", ".join(c["name"] for c in checks if c["status"] == "passed")}
    if status in ("failed", "error"):
        bad = [c for c in checks if c["status"] == status]
        return {"name": req_id, "status": status, "message": "; ".join("%s: %s" % (c["name"], c["message"]) for c in bad) or status,
                "observed": [c.get("observed") for c in bad], "expected": [c.get("expected") for c in bad]}
    return {"name": req_id, "status": "skipped", "message": " ".join(res.get("notes") or []) or status}


def junit_has_failures(text):
    """Whether a JUnit document has a failing or erroring testcase (what the CNCF validator rejects)."""
    return "fail" in ready_mod.junit_outcomes(text).values()


def _detail(check):
    return json.dumps({"expected": check.get("expected"), "observed": check.get("observed")}, indent=2, default=str)


def product_status(result, level):
    """(CNCF status, notes) for one requirement's result (None: not run)."""
    if result is None:
        return (NOT_IMPLEMENTED if level == "MUST" else ""), "Not verified: the requirement was not selected or not run."
    status = result["status"]
    messages = ["%s: %s" % (c["name"], c["message"]) for c in result.get("checks") or []]
    notes = list(result.get("notes") or [])
    required = REQUIRED_PASSING_CHECK.get(result["requirement"])
    if status == "passed" and required and not [c for c in result.get("checks") or [] if c["name"] == required and c["status"] == "passed"]:
        return NOT_IMPLEMENTED, " ".join(notes + ["Not verified: the %s check did not pass, so the capability was not exercised." % required])
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


def _version_tuple(version):
    return tuple(int(p) for p in re.findall(r"\d+", str(version))[:2])


def product_metadata(metadata, cluster):
    """PRODUCT.yaml metadata: the user's values over what the cluster reports."""
    meta = dict((key, metadata.get(key) or "") for key in PRODUCT_METADATA_FIELDS)
    if not meta["kubernetesVersion"]:
        minor = cluster.get("kubernetes_minor")
        meta["kubernetesVersion"] = ("v%s" % minor) if minor else cluster.get("kubernetes_version", "")
    if not meta["platformVersion"]:
        meta["platformVersion"] = cluster.get("platform_version") or cluster.get("git_version", "")
    return meta


def product_yaml(catalogue, results, metadata, cluster, checklist=None, junit_link=None):
    """A draft CNCF PRODUCT.yaml; evidence paths are relative to the file.

    ``catalogue``: the checklist items (the official file's, verbatim, when the user gave it);
    ``junit_link``: a JUnit file beside PRODUCT.yaml with one testcase per requirement, linked as
    ``file://<junit_link>#<id>`` from every Implemented requirement (hybrid verification, 1.37+).
    """
    by_id = dict((r["requirement"], r) for r in results)
    meta = product_metadata(metadata, cluster)
    hybrid = checklist is not None and _version_tuple(checklist) >= (1, 37)
    spec = {}
    for req in catalogue:
        res = by_id.get(req["id"])
        status, notes = product_status(res, req["level"])
        evidence = ["evidence/%s.md" % req["id"]] if res is not None and status else []
        if status == IMPLEMENTED and junit_link and hybrid:
            evidence.append("file://%s#%s" % (junit_link, req["id"]))
        if status == IMPLEMENTED and req["id"] == "cluster_autoscaling" and cluster.get("platform") == "rke2":
            notes = ("RKE2 ships no cluster autoscaler; the upstream cluster-autoscaler was tested with it. " + notes).strip()
        spec.setdefault(req["category"], []).append(
            {"id": req["id"], "description": req["description"], "level": req["level"], "status": status, "evidence": evidence, "notes": notes}
        )
    header = (
        "# Draft CNCF Kubernetes AI Conformance submission written by ai_conformance.rke2.\n"
        "# Review every field; evidence paths are relative to this file.\n"
    )
    return header + yaml.safe_dump({"metadata": meta, "spec": spec}, sort_keys=False, width=1000, allow_unicode=True)


def product_dir_name(metadata):
    """Directory of the product under vX.Y/: platformName lower-cased (RKE2 -> rke2)."""
    return re.sub(r"[^a-z0-9]+", "-", (metadata.get("platformName") or "product").lower()).strip("-") or "product"


def explain_unmet(results, known_ids=None):
    """explain(req_id, status) for readiness: what to do about a MUST that is not Implemented."""
    by_id = dict((r["requirement"], r) for r in results)

    def explain(req_id, status):
        res = by_id.get(req_id)
        if res is None and known_ids is not None and req_id not in known_ids:
            return ("this collection's catalogue has no %s, so nothing verified it: add your own evidence and set "
                    "Implemented by hand, and report the gap to the collection" % req_id)
        if res is None:
            return "it was not verified: select it (conformance_requirements, or leave that empty for all) and re-run"
        checks = res.get("checks") or []
        if req_id == "cluster_autoscaling" and res["status"] == "not_applicable":
            return ready_mod.AUTOSCALING_FIX
        if res["status"] == "failed":
            return "the cluster lacks the capability: %s; fix the cluster and re-run" % "; ".join(
                "%s: %s" % (c["name"], c["message"]) for c in checks if c["status"] == "failed")
        if res["status"] == "error":
            return "the check could not be carried out: %s; fix that and re-run" % "; ".join(
                "%s: %s" % (c["name"], c["message"]) for c in checks if c["status"] == "error")
        required = REQUIRED_PASSING_CHECK.get(req_id)
        if res["status"] == "passed" and required:
            if req_id == "cluster_autoscaling":
                return "scaling was not exercised: " + ready_mod.AUTOSCALING_FIX
            return "the %s check did not pass; re-run with it enabled" % required
        reasons = "; ".join(c["message"] for c in checks if c["status"] == "skipped") or " ".join(res.get("notes") or []) or res["status"]
        if req_id == "cluster_autoscaling":
            return "%s. %s" % (reasons, ready_mod.AUTOSCALING_FIX)
        return "nothing was exercised (%s): run it where it can be exercised, or add your own evidence and set Implemented by hand" % reasons

    return explain


def submission_readme(cluster, checklist, product_dir, results, requested, summary, generated, run_info, junit_name, readiness):
    """README.md of a submission directory: how the evidence was produced."""
    run_info = run_info or {}
    by_id = dict((r["requirement"], r) for r in results)
    lines = [
        "# %s: CNCF Kubernetes AI Conformance %s" % (product_dir, checklist),
        "",
        "The evidence in this directory was produced by the Ansible collection "
        "[ai_conformance.rke2](https://galaxy.ansible.com/ui/repo/published/ai_conformance/rke2/) "
        "version %s, which exercises each requirement on the live cluster." % (run_info.get("collection_version") or "unknown"),
        "",
        "| | |",
        "|---|---|",
        "| Date (UTC) | %s |" % generated,
        "| Command | `%s` |" % _cell(run_info.get("command") or "ansible-playbook ai_conformance.rke2.certify"),
    ]
    for key in ("name", "server", "git_version", "platform_version", "platform", "user"):
        if cluster.get(key):
            lines.append("| Cluster %s | %s |" % (key.replace("_", " "), _cell(cluster[key])))
    lines += ["", "## Results", "", "| Requirement | Status | Evidence |", "|---|---|---|"]
    for req_id in requested:
        res = by_id.get(req_id)
        status = STATUS_ICON.get(res["status"], res["status"]) if res else "NOT RUN"
        lines.append("| %s | %s | %s |" % (req_id, status, "[evidence/%s.md](evidence/%s.md)" % (req_id, req_id) if res else ""))
    lines += [
        "",
        "Test output: [%s](%s) (JUnit, one testcase per requirement, the checks as `<requirement>/<check>`)%s; "
        "all results: [%s](%s)." % (
            junit_name, junit_name,
            "" if junit_name == SUBMISSION_JUNIT else ", not named junit.xml because it records failing checks, "
            "which the CNCF validator rejects in a linked junit.xml",
            SUBMISSION_RESULTS, SUBMISSION_RESULTS),
        "",
        "## Submission readiness",
        "",
    ] + readiness_markdown(readiness)
    return "\n".join(lines) + "\n"


def readiness_markdown(readiness):
    """Markdown lines: the verdict, then each problem with what to do."""
    lines = [("**Ready to submit.** The offline checks of the CNCF validator pass." if readiness["ready"]
              else "**Not ready to submit.** Blocking problems:"), ""]
    for item in readiness["blocking"]:
        lines.append("- %s. **Fix:** %s" % (item["message"], item["fix"]))
    if readiness["blocking"]:
        lines.append("")
    if readiness["warnings"]:
        lines += ["Warnings:", ""] + ["- %s. **Fix:** %s" % (i["message"], i["fix"]) for i in readiness["warnings"]] + [""]
    if readiness["to_confirm"]:
        lines += ["To confirm before submitting (the validator checks these over the network):", ""]
        lines += ["- %s: %s." % (i["message"], i["fix"]) for i in readiness["to_confirm"]] + [""]
    return lines


def render_report(cluster, checklist, catalogue, results, requested, metadata, generated, checklist_items=None,
                  checklist_problems=(), submission_product=None, run_info=None, existing=None):
    """(report files, submission files or None, summary with ``readiness``).

    ``checklist_items``: the official checklist (PRODUCT.yaml takes id/description/level from it);
    ``checklist_problems``: readiness items found while loading it; ``submission_product``: the
    directory name under ``v<checklist>/`` of a submission; ``existing``: {path: text or None} of files
    already in the directory whose PRODUCT.yaml is checked (kept there, so they count).
    """
    items = checklist_items or catalogue
    summary = summarize(results, catalogue, requested)
    files = {
        "junit.xml": junit_xml(results, checklist, requested, generated),
        "PRODUCT.yaml": product_yaml(items, results, metadata, cluster, checklist),
    }
    for result in results:
        files.update(evidence_files(result))
    submission = None
    location = "PRODUCT.yaml"
    checked = files
    if submission_product:
        submission = dict((k, v) for k, v in files.items() if k.startswith("evidence/"))
        junit = junit_xml(results, checklist, requested, generated, requirement_cases=True)
        junit_name = SUBMISSION_JUNIT_WITH_FAILURES if junit_has_failures(junit) else SUBMISSION_JUNIT
        submission[junit_name] = junit
        submission["PRODUCT.yaml"] = product_yaml(items, results, metadata, cluster, checklist,
                                                  junit_name if junit_name == SUBMISSION_JUNIT else None)
        location = "v%s/%s/PRODUCT.yaml" % (checklist, submission_product)
        checked = submission
    present = dict(existing or {})
    present.update(checked)
    readiness = ready_mod.check_product(checked["PRODUCT.yaml"], checklist, items, present, location=location,
                                        explain=explain_unmet(results, [r["id"] for r in catalogue]),
                                        official=checklist_items is not None,
                                        extra=checklist_problems)
    readiness["checked"] = location
    readiness["headline"] = ready_mod.headline(readiness)
    summary["readiness"] = readiness
    files["results.json"] = results_json(cluster, checklist, results, summary, generated)
    files["report.md"] = report_markdown(cluster, checklist, results, catalogue, requested, summary, generated)
    if submission is not None:
        submission[SUBMISSION_RESULTS] = files["results.json"]
        submission["README.md"] = submission_readme(cluster, checklist, submission_product, results, requested, summary,
                                                    generated, run_info, junit_name, readiness)
    return files, submission, summary


def render_all(cluster, checklist, catalogue, results, requested, metadata, generated, **options):
    """{relative path: text} of every file the report directory gets, and the summary."""
    files, dummy, summary = render_report(cluster, checklist, catalogue, results, requested, metadata, generated, **options)
    return files, summary
