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
"""

RETURN = r"""
files:
  description: Paths of the written files.
  returned: always
  type: list
  elements: str
summary:
  description: Counts per status and C(unmet_must), the MUST requirements neither passed nor not applicable.
  returned: always
  type: dict
"""

import os

from ansible.module_utils.basic import AnsibleModule, missing_required_lib

from ansible_collections.ai_conformance.rke2.plugins.module_utils.report import HAS_YAML, render_all
from ansible_collections.ai_conformance.rke2.plugins.module_utils.result import utc_now, validate_result


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
    files, summary = render_all(
        params["cluster"], params["checklist"], params["catalogue"], results, requested, params["product"], utc_now()
    )
    paths = [os.path.join(params["report_dir"], rel) for rel in sorted(files)]
    if not module.check_mode:
        for rel, text in files.items():
            path = os.path.join(params["report_dir"], rel)
            if not os.path.isdir(os.path.dirname(path)):
                os.makedirs(os.path.dirname(path))
            with open(path, "w") as handle:
                handle.write(text)
    module.exit_json(changed=not module.check_mode, files=paths, summary=summary, report_dir=params["report_dir"])


if __name__ == "__main__":
    main()
