# -*- coding: utf-8 -*-
# Copyright: ai_conformance.rke2 contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Pure: is a written PRODUCT.yaml ready for a CNCF pull request?

Applies, offline, every rule of cncf/k8s-ai-conformance ``scripts/validate.go`` (and its
PR #141 for test artifacts) that needs no network; lists the network rules as things to
confirm. Each problem names its rule, what is wrong and what to do.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import json
import posixpath
import re
import xml.etree.ElementTree as ET

try:
    import yaml
except ImportError:  # the report module checks for PyYAML first
    yaml = None

BLOCKING = "blocking"
WARNING = "warning"
TO_CONFIRM = "to_confirm"

CNCF_STATUSES = ("Implemented", "Not Implemented", "Partially Implemented", "N/A")
# metadata field -> required (validate.go metadataFields); snake_case spellings are accepted too.
METADATA_FIELDS = (
    ("kubernetesVersion", True),
    ("platformName", True),
    ("platformVersion", True),
    ("vendorName", True),
    ("websiteUrl", True),
    ("repoUrl", False),
    ("documentationUrl", True),
    ("productLogoUrl", True),
    ("description", True),
    ("contactEmailAddress", True),
    ("k8sConformanceUrl", True),
)
LOGO_EXTENSIONS = (".svg", ".eps", ".ai")
K8S_CONFORMANCE_URL = re.compile(r"^https://github\.com/cncf/k8s-conformance/tree/(master|main)/v(\d+\.\d+)/[^/]+/?$")
# Files the validator parses as test output when evidence points at them (basename, case-insensitive).
TEST_ARTIFACTS = ("junit.xml", "results.json", "e2e.log")
SUBMISSION_PATH = re.compile(r"^(?:.*/)?v(\d+\.\d+)/([^/]+)/PRODUCT\.yaml$")

FIX_METADATA = "set it in conformance_product (e.g. -e '{\"conformance_product\": {\"%s\": \"...\"}}') and re-run"
AUTOSCALING_FIX = (
    "The validator rejects N/A for a MUST (the conditional MUST is disputed in cncf/k8s-ai-conformance#145). "
    "RKE2's own submissions (vendor SUSE, v1.33/rke2, v1.34/rke2, v1.35/rke2) mark cluster_autoscaling Implemented, "
    "with notes that RKE2 ships no cluster autoscaler and that the upstream cluster-autoscaler was tested with it. "
    "The evidence for that comes from this collection: install the upstream cluster-autoscaler with the "
    "ai_conformance.rke2.azure_autoscaler role (playbooks/provision.yml with azure_autoscaler_enabled: true and "
    "azure_autoscaler_node_groups) and certify with cluster_autoscaling_provided: true and "
    "cluster_autoscaling_scale_test: true; PRODUCT.yaml says Implemented only after that scale test passed."
)


def snake_case(name):
    """validate.go's toSnakeCase: k8sConformanceUrl -> k8s_conformance_url."""
    name = re.sub(r"(.)([A-Z][a-z]+)", r"\1_\2", name)
    return re.sub(r"([a-z0-9])([A-Z])", r"\1_\2", name).lower()


def _item(rule, severity, message, fix, requirement=None):
    item = {"rule": rule, "severity": severity, "message": message, "fix": fix}
    if requirement:
        item["requirement"] = requirement
    return item


def check_metadata(metadata):
    """Problems of the metadata section (presence, type, emptiness, placeholders, logo, k8sConformanceUrl)."""
    if not isinstance(metadata, dict):
        return [_item("metadata_section", BLOCKING, "PRODUCT.yaml has no 'metadata' section", "write the metadata section")]
    problems = []
    for field, required in METADATA_FIELDS:
        snake = snake_case(field)
        key = field if field in metadata else snake
        value = metadata.get(key)
        fix = FIX_METADATA % field
        if value is None:
            if required:
                problems.append(_item("metadata_missing", BLOCKING, "metadata field %s (or %s) is missing" % (field, snake), fix))
            continue
        if not isinstance(value, str):
            problems.append(_item("metadata_not_string", BLOCKING, "metadata field %s is not a string: %r" % (field, value),
                                  "quote the value of %s in conformance_product" % field))
            continue
        if value == "":
            if required:
                problems.append(_item("metadata_empty", BLOCKING, "metadata field %s is empty" % field, fix))
            continue
        if value.startswith("[") and value.endswith("]"):
            problems.append(_item("metadata_placeholder", BLOCKING, "metadata field %s has the placeholder %s" % (field, value), fix))
            continue
        if field == "productLogoUrl" and not value.lower().endswith(LOGO_EXTENSIONS):
            problems.append(_item("logo_format", BLOCKING, "productLogoUrl must link to an SVG, EPS or AI file: %s" % value,
                                  "point productLogoUrl at the logo in .svg (or .eps/.ai), e.g. the logo file of the CNCF landscape"))
        if field == "k8sConformanceUrl":
            problems.extend(_check_k8s_conformance_url(value))
    return problems


def _check_k8s_conformance_url(value):
    match = K8S_CONFORMANCE_URL.match(value)
    if not match:
        return [_item("k8s_conformance_url", BLOCKING, "k8sConformanceUrl %s is not of the form "
                      "https://github.com/cncf/k8s-conformance/tree/main/vX.Y/<product>" % value,
                      "link the product's Kubernetes conformance directory, "
                      "e.g. https://github.com/cncf/k8s-conformance/tree/master/v1.34/rke2")]
    return []


def check_k8s_conformance_version(metadata, version):
    """Warning when k8sConformanceUrl names another Kubernetes version than the checklist."""
    value = (metadata or {}).get("k8sConformanceUrl") or (metadata or {}).get("k8s_conformance_url")
    match = K8S_CONFORMANCE_URL.match(value) if isinstance(value, str) else None
    if match and match.group(2) != version:
        return [_item("k8s_conformance_version", WARNING, "k8sConformanceUrl is the v%s Kubernetes conformance submission, "
                      "the checklist is %s" % (match.group(2), version),
                      "link the v%s directory of cncf/k8s-conformance if the product is certified for it" % version)]
    return []


def evidence_target(link, product_dir=None):
    """(relative path, fragment) a local evidence link points at (file:// and a vX.Y/<dir>/ prefix resolved)."""
    path = link[len("file://"):] if link.startswith("file://") else link
    fragment = None
    if "#" in path and link.startswith("file://"):
        path, fragment = path.split("#", 1)
    if product_dir and path.startswith(product_dir.rstrip("/") + "/"):
        path = path[len(product_dir.rstrip("/")) + 1:]
    return path, fragment


def _escapes(path):
    return path.startswith("/") or ".." in path.split("/")


def check_spec(spec, schema, files, product_dir=None, explain=None):
    """Problems of the spec section against the checklist (``schema``: [{id, category, level}])."""
    if not isinstance(spec, dict):
        return [_item("spec_section", BLOCKING, "PRODUCT.yaml has no 'spec' section", "write the spec section")]
    problems = []
    categories = []
    for req in schema:
        if req["category"] not in categories:
            categories.append(req["category"])
    for category in categories:
        items = spec.get(category)
        if not isinstance(items, list):
            problems.append(_item("category_missing", BLOCKING, "spec category %s is missing" % category,
                                  "write every category of the checklist (the report does unless the file was edited)"))
            continue
        by_id = dict((i.get("id"), i) for i in items if isinstance(i, dict))
        for req in [r for r in schema if r["category"] == category]:
            item = by_id.get(req["id"])
            if item is None:
                problems.append(_item("requirement_missing", BLOCKING, "requirement %s is missing in category %s" % (req["id"], category),
                                      "add %s under spec.%s" % (req["id"], category), req["id"]))
                continue
            problems.extend(_check_item(req, item, files, product_dir, explain))
    return problems


def _check_item(req, item, files, product_dir, explain):
    req_id = req["id"]
    status = item.get("status") or ""
    evidence = item.get("evidence") or []
    notes = item.get("notes") or ""
    problems = []
    if req["level"] == "SHOULD" and status == "" and not evidence:
        return problems  # the validator skips an unanswered SHOULD
    if status not in CNCF_STATUSES:
        problems.append(_item("status_invalid", BLOCKING, "%s has the status %r; the validator accepts %s" % (req_id, status, ", ".join(CNCF_STATUSES)),
                              "set a valid status, or leave a SHOULD with an empty status and no evidence", req_id))
    if req["level"] == "MUST" and status != "Implemented":
        fix = explain(req_id, status) if explain else "make %s pass and re-run" % req_id
        problems.append(_item("must_not_implemented", BLOCKING, "%s is a MUST but its status is %r; it must be Implemented" % (req_id, status),
                              fix, req_id))
    if status == "N/A" and not notes:
        problems.append(_item("na_without_notes", BLOCKING, "%s is N/A without notes" % req_id, "say in notes why %s does not apply" % req_id, req_id))
    for link in evidence:
        problems.extend(check_evidence_link(req_id, link, files, product_dir))
    return problems


def check_evidence_link(req_id, link, files, product_dir=None):
    """One evidence entry: local files exist inside the product directory; test artifacts parse without failures."""
    if not isinstance(link, str) or not link or link.startswith(("http://", "https://")):
        return []
    path, fragment = evidence_target(link, product_dir)
    if _escapes(path):
        return [_item("evidence_escapes", BLOCKING, "evidence %s of %s leaves the product directory" % (link, req_id),
                      "copy the file into the product directory and link it relatively", req_id)]
    path = posixpath.normpath(path)
    if path not in files:
        return [_item("evidence_missing", BLOCKING, "evidence %s of %s does not exist beside PRODUCT.yaml" % (link, req_id),
                      "write %s relative to PRODUCT.yaml or remove the link" % path, req_id)]
    if posixpath.basename(path).lower() in TEST_ARTIFACTS:
        return check_test_artifact(req_id, link, path, files[path], fragment)
    return []


def check_test_artifact(req_id, link, path, text, fragment=None):
    """A junit.xml / results.json / e2e.log the validator parses: readable, no failing test, fragment present."""
    name = posixpath.basename(path).lower()
    parser = {"junit.xml": junit_outcomes, "results.json": go_test_json_outcomes, "e2e.log": go_test_log_outcomes}[name]
    rename = "rename it (the validator parses only files named exactly %s) and link the new name" % name
    try:
        outcomes = parser(text or "")
    except ValueError as exc:
        return [_item("test_artifact_format", BLOCKING, "%s (evidence of %s) is not in the format the validator parses as %s: %s"
                      % (path, req_id, name, exc), rename, req_id)]
    problems = []
    failing = sorted(t for t, outcome in outcomes.items() if outcome == "fail")
    if failing:
        problems.append(_item("test_artifact_failures", BLOCKING, "%s (evidence of %s) contains failing tests: %s" % (path, req_id, ", ".join(failing)),
                              "make those tests pass and re-run, or do not link a test artifact with failures", req_id))
    if fragment and not any(t == fragment or t.startswith(fragment + "/") for t in outcomes):
        problems.append(_item("test_artifact_fragment", BLOCKING, "%s: no test %s in %s" % (link, fragment, path),
                              "link an existing test name after #", req_id))
    return problems


def junit_outcomes(text):
    """{testcase name: pass|fail|skip} of JUnit XML (failure and error count as fail)."""
    try:
        root = ET.fromstring(text.encode("utf-8") if isinstance(text, str) else text)
    except ET.ParseError as exc:
        raise ValueError("not XML (%s)" % exc)
    if root.tag not in ("testsuites", "testsuite"):
        raise ValueError("root element is <%s>, not <testsuites> or <testsuite>" % root.tag)
    outcomes = {}
    for case in root.iter("testcase"):
        if case.find("failure") is not None or case.find("error") is not None:
            outcomes[case.get("name", "")] = "fail"
        elif case.find("skipped") is not None:
            outcomes.setdefault(case.get("name", ""), "skip")
        else:
            outcomes.setdefault(case.get("name", ""), "pass")
    return outcomes


def go_test_json_outcomes(text):
    """{test: pass|fail|skip} of ``go test -json`` output (one JSON event per line)."""
    outcomes = {}
    for number, line in enumerate(text.splitlines(), 1):
        if not line.strip():
            continue
        try:
            event = json.loads(line)
        except ValueError:
            raise ValueError("line %d is not a go test -json event" % number)
        if not isinstance(event, dict) or "Action" not in event:
            raise ValueError("line %d is not a go test -json event (no Action)" % number)
        if event.get("Test") and event["Action"] in ("pass", "fail", "skip"):
            outcomes[event["Test"]] = event["Action"]
    return outcomes


_GO_RESULT = re.compile(r"^\s*--- (PASS|FAIL|SKIP): (\S+)")


def go_test_log_outcomes(text):
    """{test: pass|fail|skip} of ``go test -v`` output."""
    outcomes = {}
    for line in text.splitlines():
        match = _GO_RESULT.match(line)
        if match:
            outcomes[match.group(2)] = match.group(1).lower()
    if not outcomes and not re.search(r"^(ok|PASS|FAIL)\b", text, re.M):
        raise ValueError("no go test -v results (--- PASS/--- FAIL lines)")
    if re.search(r"^FAIL\b", text, re.M) and "fail" not in outcomes.values():
        outcomes["(package)"] = "fail"
    return outcomes


def network_rules(metadata, spec):
    """What needs the network, to confirm before submitting."""
    items = []
    metadata = metadata if isinstance(metadata, dict) else {}
    vendor = metadata.get("vendorName", metadata.get("vendor_name"))
    if isinstance(vendor, str) and vendor.strip():
        items.append(_item("vendor_cncf_member", TO_CONFIRM, "vendorName %r must equal exactly an organization name in the "
                           "CNCF landscape's 'CNCF Members' category" % vendor.strip(),
                           "compare it with https://landscape.cncf.io/members (spelling, suffixes such as Inc.)"))
    urls = []
    for field, dummy in METADATA_FIELDS:
        value = metadata.get(field, metadata.get(snake_case(field)))
        if isinstance(value, str) and value.startswith("http") and not (value.startswith("[") and value.endswith("]")):
            urls.append(value)
    for items_of in (spec or {}).values() if isinstance(spec, dict) else []:
        for item in items_of if isinstance(items_of, list) else []:
            for link in (item.get("evidence") or []) if isinstance(item, dict) else []:
                if isinstance(link, str) and link.startswith(("http://", "https://")):
                    urls.append(link)
    for url in sorted(set(urls)):
        items.append(_item("url_reachable", TO_CONFIRM, "%s must answer HEAD or GET with a status below 400" % url,
                           "open it without logging in (the validator sends no credentials)"))
    return items


def check_location(location, version):
    """The validator takes the checklist version from the path vX.Y/<product>/PRODUCT.yaml."""
    match = SUBMISSION_PATH.match(location or "")
    if not match:
        return [_item("submission_path", WARNING, "%s is not at vX.Y/<product>/PRODUCT.yaml, where the validator reads the "
                      "checklist version from" % (location or "PRODUCT.yaml"),
                      "set conformance_submission_dir to lay out v%s/<product>/ (or copy the directory there)" % version)]
    if match.group(1) != version:
        return [_item("submission_path", BLOCKING, "%s is in v%s/, the checklist is %s" % (location, match.group(1), version),
                      "put it under v%s/" % version)]
    return []


def check_product(text, version, schema, files, location=None, explain=None, official=True, extra=()):
    """Readiness of one PRODUCT.yaml: {ready, blocking, warnings, to_confirm}.

    ``files``: {path relative to PRODUCT.yaml: text or None} of the files beside it (the text of test
    artifacts is needed, others may be None); ``location``: its path, ideally ``.../vX.Y/<product>/PRODUCT.yaml``;
    ``explain(req_id, status)``: what to do about a MUST that is not Implemented; ``official``: whether
    ``schema`` is the official checklist file; ``extra``: problems found elsewhere (loading the checklist).
    """
    problems = list(extra)
    try:
        doc = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        doc = None
        problems.append(_item("product_yaml", BLOCKING, "PRODUCT.yaml is not valid YAML: %s" % exc, "re-run the report"))
    if doc is not None and not isinstance(doc, dict):
        problems.append(_item("product_yaml", BLOCKING, "PRODUCT.yaml is not a mapping", "re-run the report"))
        doc = None
    if doc is not None:
        match = SUBMISSION_PATH.match(location or "")
        product_dir = "v%s/%s" % match.groups() if match else None
        problems += check_metadata(doc.get("metadata"))
        problems += check_k8s_conformance_version(doc.get("metadata"), version)
        problems += check_spec(doc.get("spec"), schema, files, product_dir, explain)
        problems += network_rules(doc.get("metadata"), doc.get("spec"))
    problems += check_location(location, version)
    if not official:
        problems.append(_item("checklist_wording", WARNING, "id, description and level come from this collection's catalogue, "
                              "not from the official checklist; CNCF forbids changing the official wording",
                              "set conformance_checklist_file to docs/AIConformance-%s.yaml of your cncf/k8s-ai-conformance checkout" % version))
    return summarize(problems)


def summarize(problems):
    """Group problems by severity; ready means nothing blocking."""
    blocking = [p for p in problems if p["severity"] == BLOCKING]
    return {
        "ready": not blocking,
        "blocking": blocking,
        "warnings": [p for p in problems if p["severity"] == WARNING],
        "to_confirm": [p for p in problems if p["severity"] == TO_CONFIRM],
    }


def headline(readiness):
    """One sentence for the play's closing message and the top of report.md."""
    if readiness["ready"]:
        return "Ready to submit (offline checks pass; %d item(s) to confirm before submitting)." % len(readiness["to_confirm"])
    return "Not ready to submit: %d blocking problem(s): %s." % (
        len(readiness["blocking"]), "; ".join(p["message"] for p in readiness["blocking"]))


def load_checklist(doc):
    """[{id, category, level, description}] of an official docs/AIConformance-X.Y.yaml; raises ValueError."""
    if not isinstance(doc, dict) or not isinstance(doc.get("spec"), dict):
        raise ValueError("it has no 'spec' mapping of categories")
    items = []
    for category, reqs in doc["spec"].items():
        if not isinstance(reqs, list):
            raise ValueError("spec.%s is not a list" % category)
        for req in reqs:
            if not isinstance(req, dict) or not all(isinstance(req.get(k), str) and req.get(k) for k in ("id", "description", "level")):
                raise ValueError("an item of spec.%s lacks id, description or level" % category)
            items.append({"id": req["id"], "category": category, "level": req["level"], "description": req["description"]})
    if not items:
        raise ValueError("its spec lists no requirement")
    return items


def checklist_version(doc):
    """X.Y of an official checklist file (metadata.kubernetesVersion vX.Y), or None."""
    value = str(((doc or {}).get("metadata") or {}).get("kubernetesVersion") or "")
    match = re.match(r"^v?(\d+\.\d+)", value)
    return match.group(1) if match else None


def compare_checklists(official, catalogue):
    """Warnings for ids, categories or levels that differ between the official checklist and our catalogue."""
    ours = dict((r["id"], r) for r in catalogue)
    theirs = dict((r["id"], r) for r in official)
    problems = []
    for req_id in [r["id"] for r in official if r["id"] not in ours]:
        problems.append(_item("catalogue_mismatch", WARNING, "%s is in the official checklist but not in this collection's catalogue" % req_id,
                              "it is written as the official file says, unverified; report it to the collection", req_id))
    for req_id in [r["id"] for r in catalogue if r["id"] not in theirs]:
        problems.append(_item("catalogue_mismatch", WARNING, "%s is in this collection's catalogue but not in the official checklist" % req_id,
                              "it is left out of PRODUCT.yaml; check that the checklist file matches conformance_version", req_id))
    for req_id in [r["id"] for r in official if r["id"] in ours]:
        for key in ("category", "level"):
            if ours[req_id][key] != theirs[req_id][key]:
                problems.append(_item("catalogue_mismatch", WARNING, "%s: %s is %s in the official checklist, %s in the catalogue"
                                      % (req_id, key, theirs[req_id][key], ours[req_id][key]),
                                      "PRODUCT.yaml follows the official file; report it to the collection", req_id))
    return problems


def choose_checklist(doc, catalogue, version, source=None, error=None):
    """(official items or None, problems) from the parsed conformance_checklist_file ``doc`` read from ``source``."""
    if not source:
        return None, []
    fix = "point conformance_checklist_file at docs/AIConformance-%s.yaml of a cncf/k8s-ai-conformance checkout" % version
    if error:
        return None, [_item("checklist_file", BLOCKING, "cannot read %s (%s); the catalogue's wording was used" % (source, error), fix)]
    try:
        items = load_checklist(doc)
    except ValueError as exc:
        return None, [_item("checklist_file", BLOCKING, "%s is not a checklist file (%s); the catalogue's wording was used" % (source, exc), fix)]
    found = checklist_version(doc)
    if found != version:
        return None, [_item("checklist_file", BLOCKING, "%s is the checklist of %s, not %s; the catalogue's wording was used"
                            % (source, found or "an unknown version", version), fix)]
    return items, compare_checklists(items, catalogue)
