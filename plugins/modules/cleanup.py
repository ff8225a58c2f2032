#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: ai_conformance.rke2 contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r"""
module: cleanup
short_description: Remove what an interrupted certification run left behind
version_added: 0.1.0
author:
  - ai_conformance.rke2 maintainers (@ai-conformance)
description:
  - Deletes the namespaces and cluster-scoped objects labelled C(app.kubernetes.io/managed-by=ai-conformance-rke2)
    by the requirement modules. Objects of a run still in progress can be spared with O(keep_run_id).
  - Kinds whose API is not served are ignored. Lists use label selectors only, never all objects of the cluster.
options:
  kinds:
    description: Cluster-scoped kinds to clean besides namespaces, as C(apiVersion) and C(kind).
    type: list
    elements: dict
    default:
      - {apiVersion: gateway.networking.k8s.io/v1, kind: GatewayClass}
      - {apiVersion: kueue.x-k8s.io/v1beta1, kind: ClusterQueue}
      - {apiVersion: kueue.x-k8s.io/v1beta1, kind: ResourceFlavor}
      - {apiVersion: scheduling.volcano.sh/v1beta1, kind: Queue}
      - {apiVersion: resource.k8s.io/v1, kind: DeviceClass}
  keep_run_id:
    description: Do not delete objects whose C(ai-conformance.rke2/run-id) label has this value.
    type: str
  request_timeout:
    description:
      - Timeout in seconds of each single API request.
    type: int
    default: 20
extends_documentation_fragment:
  - kubernetes.core.k8s_auth_options
"""

EXAMPLES = r"""
- name: Remove leftovers of earlier runs
  ai_conformance.rke2.cleanup:
    kubeconfig: ~/.kube/config
"""

RETURN = r"""
deleted:
  description: Objects deleted, as C(Kind/name).
  returned: always
  type: list
  elements: str
"""

from ansible.module_utils.common.text.converters import to_native
from ansible_collections.kubernetes.core.plugins.module_utils.k8s.core import AnsibleK8SModule

from ansible_collections.ai_conformance.rke2.plugins.module_utils.kube import (
    AUTH_ARG_SPEC,
    MANAGED_SELECTOR,
    RUN_ID_LABEL,
    Kube,
    KubeError,
    ResourceNotServed,
)


def main():
    spec = dict(AUTH_ARG_SPEC)
    spec.update(
        {
            "kinds": {
                "type": "list",
                "elements": "dict",
                "default": [
                    {"apiVersion": "gateway.networking.k8s.io/v1", "kind": "GatewayClass"},
                    {"apiVersion": "kueue.x-k8s.io/v1beta1", "kind": "ClusterQueue"},
                    {"apiVersion": "kueue.x-k8s.io/v1beta1", "kind": "ResourceFlavor"},
                    {"apiVersion": "scheduling.volcano.sh/v1beta1", "kind": "Queue"},
                    {"apiVersion": "resource.k8s.io/v1", "kind": "DeviceClass"},
                ],
            },
            "keep_run_id": {"type": "str"},
            "request_timeout": {"type": "int", "default": 20},
        }
    )
    module = AnsibleK8SModule(argument_spec=spec, supports_check_mode=True)
    selector = MANAGED_SELECTOR
    if module.params["keep_run_id"]:
        selector += ",%s!=%s" % (RUN_ID_LABEL, module.params["keep_run_id"])
    deleted = []
    try:
        kube = Kube(module)
        targets = [{"apiVersion": "v1", "kind": "Namespace"}] + module.params["kinds"]
        for target in targets:
            try:
                found = kube.list(target["apiVersion"], target["kind"], label_selector=selector)
            except ResourceNotServed:
                continue
            for obj in found:
                if obj["metadata"].get("deletionTimestamp"):
                    continue  # already being deleted
                if not module.check_mode:
                    kube.delete(target["apiVersion"], target["kind"], obj["metadata"]["name"])
                deleted.append("%s/%s" % (target["kind"], obj["metadata"]["name"]))
    except KubeError as exc:
        module.fail_json(msg="cleanup of earlier runs failed: %s" % to_native(exc), deleted=deleted)
    module.exit_json(changed=bool(deleted), deleted=deleted)


if __name__ == "__main__":
    main()
