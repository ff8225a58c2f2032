#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: ai_conformance.rke2 contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r"""
module: report
short_description: Write the conformance report files (JSON, Markdown, JUnit, CNCF PRODUCT.yaml)
version_added: 0.1.0
author:
  - ai_conformance.rke2 maintainers (@ai-conformance)
description:
  - Writes C(results.json), C(report.md), C(junit.xml), a draft CNCF C(PRODUCT.yaml) and one evidence page
    per requirement (C(evidence/<id>.md) plus raw evidence files) into O(report_dir).
  - Checks the PRODUCT.yaml offline against the rules of the CNCF submission validator (readiness) and writes the
    verdict at the top of C(report.md), into C(results.json) and into the returned RV(summary).
  - With O(submission_dir) also lays out C(v<checklist>/<product>/) as the cncf/k8s-ai-conformance repository
    expects - C(PRODUCT.yaml), C(README.md), the evidence, the JUnit file and the results - and checks that one.
  - Returns the requirements at level MUST that are not met, so that the play can fail after everything is written.
options:
  report_dir:
    description: Directory to write into; created when missing.
    type: path
    required: true
  results:
    description: Results of the requirement modules (the collection's result schema).
    type: list
    elements: dict
    required: true
  requested:
    description: Requirement ids that were selected, in report order. Defaults to the ids of O(results).
    type: list
    elements: str
  catalogue:
    description: Requirements of the checklist version (C(id), C(category), C(level), C(description)).
    type: list
    elements: dict
    required: true
  checklist:
    description: Checklist version, e.g. C(1.34).
    type: str
    required: true
  cluster:
    description: What M(ai_conformance.rke2.cluster_info) returned.
    type: dict
    default: {}
  product:
    description:
      - CNCF PRODUCT.yaml metadata (C(platformName), C(vendorName), C(websiteUrl), C(repoUrl), C(documentationUrl),
        C(productLogoUrl), C(description), C(contactEmailAddress), C(k8sConformanceUrl), C(platformVersion),
        C(kubernetesVersion)). C(kubernetesVersion) and C(platformVersion) default to what the cluster reports.
    type: dict
    default: {}
  checklist_file:
    description:
      - The official C(docs/AIConformance-<checklist>.yaml) of a cncf/k8s-ai-conformance checkout. C(id), C(description)
        and C(level) in PRODUCT.yaml are copied from it verbatim and the catalogue is compared with it.
      - Without it the catalogue's own wording is used, and readiness says so.
    type: path
  submission_dir:
    description: Root of a submission (e.g. a cncf/k8s-ai-conformance checkout); the files go to C(v<checklist>/<product>/) in it.
    type: path
  submission_product:
    description:
      - Directory name of the product under C(v<checklist>/) (one name, no C(/)); defaults to C(platformName) of O(product),
        lower-cased.
    type: str
  run_info:
    description: How the evidence was produced, for the submission's C(README.md) (keys C(collection_version), C(command)).
    type: dict
    default: {}
requirements:
  - PyYAML
"""

EXAMPLES = r"""
- name: Write the report
  ai_conformance.rke2.report:
    report_dir: ./conformance-report/rke2-20261123T064000Z
    results: "{{ conformance_results }}"
    catalogue: "{{ conformance_catalogue.versions['1.34'].requirements }}"
    checklist: "1.34"
    cluster: "{{ preflight.cluster }}"

- name: Write the report and a submission directory from the official checklist
  ai_conformance.rke2.report:
    report_dir: ./conformance-report/rke2-20261123T064000Z
    results: "{{ conformance_results }}"
    catalogue: "{{ conformance_catalogue.versions['1.34'].requirements }}"
    checklist: "1.34"
    cluster: "{{ preflight.cluster }}"
    product: {vendorName: SUSE, contactEmailAddress: ai-conformance@example.com}
    checklist_file: ~/src/k8s-ai-conformance/docs/AIConformance-1.34.yaml
    submission_dir: ~/src/k8s-ai-conformance
    submission_product: rke2
"""

RETURN = r"""
files:
  description: Paths of the written files (in check mode, of the files that would be written).
  returned: always
  type: list
  elements: str
written:
  description: Whether the files were written (C(false) in check mode).
  returned: always
  type: bool
summary:
  description:
    - Counts per status and C(unmet_must), the MUST requirements neither passed nor not applicable.
    - C(readiness) - C(ready), C(headline), C(checked) (the PRODUCT.yaml checked) and the lists C(blocking), C(warnings)
      and C(to_confirm), each item with C(rule), C(message) and C(fix).
  returned: always
  type: dict
readiness:
  description: The same as C(summary.readiness).
  returned: always
  type: dict
report_dir:
  description: The report directory.
  returned: always
  type: str
submission_path:
  description: The product directory of the submission (C(<submission_dir>/v<checklist>/<product>)), or null.
  returned: always
  type: str
"""

import os

from ansible.module_utils.basic import AnsibleModule, missing_required_lib

from ansible_collections.ai_conformance.rke2.plugins.module_utils.readiness import TEST_ARTIFACTS, choose_checklist
from ansible_collections.ai_conformance.rke2.plugins.module_utils.report import (
    HAS_YAML,
    SUBMISSION_JUNIT,
    SUBMISSION_JUNIT_WITH_FAILURES,
    product_dir_name,
    render_report,
)
from ansible_collections.ai_conformance.rke2.plugins.module_utils.result import utc_now, validate_result

if HAS_YAML:
    import yaml


def read_checklist(path):
    """(parsed official checklist, error): a file that cannot be read becomes a readiness problem, not a failure."""
    if not path:
        return None, None
    try:
        with open(path) as handle:
            return yaml.safe_load(handle), None
    except (IOError, OSError, yaml.YAMLError) as exc:
        return None, str(exc)


def existing_files(root):
    """{relative path: text of test artifacts, None for others} of what a directory already holds."""
    found = {}
    for dirpath, dummy, names in os.walk(root):
        for name in names:
            path = os.path.join(dirpath, name)
            rel = os.path.relpath(path, root).replace(os.sep, "/")
            found[rel] = None
            if name.lower() in TEST_ARTIFACTS:
                try:
                    with open(path) as handle:
                        found[rel] = handle.read()
                except (IOError, OSError, UnicodeDecodeError):
                    found[rel] = ""
    return found


def write_files(root, files):
    for rel, text in files.items():
        path = os.path.join(root, rel)
        if not os.path.isdir(os.path.dirname(path)):
            os.makedirs(os.path.dirname(path))
        with open(path, "w") as handle:
            handle.write(text)


def main():
    module = AnsibleModule(
        argument_spec={
            "report_dir": {"type": "path", "required": True},
            "results": {"type": "list", "elements": "dict", "required": True},
            "requested": {"type": "list", "elements": "str"},
            "catalogue": {"type": "list", "elements": "dict", "required": True},
            "checklist": {"type": "str", "required": True},
            "cluster": {"type": "dict", "default": {}},
            "product": {"type": "dict", "default": {}},
            "checklist_file": {"type": "path"},
            "submission_dir": {"type": "path"},
            "submission_product": {"type": "str"},
            "run_info": {"type": "dict", "default": {}},
        },
        supports_check_mode=True,
    )
    if not HAS_YAML:
        module.fail_json(msg=missing_required_lib("PyYAML"))
    params = module.params
    try:
        results = [validate_result(r) for r in params["results"]]
    except ValueError as exc:
        module.fail_json(msg="a result does not follow the result schema: %s" % exc)
    requested = params["requested"] or [r["requirement"] for r in results]
    doc, error = read_checklist(params["checklist_file"])
    items, problems = choose_checklist(doc, params["catalogue"], params["checklist"], params["checklist_file"], error)
    submission_path = product = None
    existing = {}
    if params["submission_product"] is not None and (not params["submission_product"] or "/" in params["submission_product"]
                                                     or params["submission_product"] in (".", "..")):
        module.fail_json(msg="submission_product must be one directory name (the validator reads v<version>/<product>/PRODUCT.yaml), "
                             "not %r" % params["submission_product"])
    if params["submission_dir"]:
        product = params["submission_product"] or product_dir_name(params["product"])
        submission_path = os.path.join(params["submission_dir"], "v%s" % params["checklist"], product)
        existing = existing_files(submission_path) if os.path.isdir(submission_path) else {}
    files, submission, summary = render_report(
        params["cluster"], params["checklist"], params["catalogue"], results, requested, params["product"], utc_now(),
        checklist_items=items, checklist_problems=problems, submission_product=product, run_info=params["run_info"],
        existing=existing,
    )
    paths = [os.path.join(params["report_dir"], rel) for rel in sorted(files)]
    if submission is not None:
        paths += [os.path.join(submission_path, rel) for rel in sorted(submission)]
    if not module.check_mode:
        write_files(params["report_dir"], files)
        if submission is not None:
            write_files(submission_path, submission)
            # our JUnit has one name at a time: remove the other one an earlier run wrote
            for name in (SUBMISSION_JUNIT, SUBMISSION_JUNIT_WITH_FAILURES):
                if name not in submission and os.path.exists(os.path.join(submission_path, name)):
                    os.remove(os.path.join(submission_path, name))
    module.exit_json(changed=not module.check_mode, written=not module.check_mode, files=paths, summary=summary, readiness=summary["readiness"],
                     report_dir=params["report_dir"], submission_path=submission_path)


if __name__ == "__main__":
    main()
