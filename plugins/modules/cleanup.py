#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: ai_conformance.rke2 contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r"""
module: cleanup
short_description: Remove what interrupted certification runs left behind
version_added: 0.1.0
author:
  - ai_conformance.rke2 maintainers (@ai-conformance)
description:
  - Deletes the namespaces and cluster-scoped objects labelled C(app.kubernetes.io/managed-by=ai-conformance-rke2)
    by the requirement modules, only those of runs that are over; the installer roles label what they install
    C(app.kubernetes.io/managed-by=ai-conformance-rke2-installer), which this module never selects.
  - Objects of a live run are never deleted - the run holding the run lock (a C(coordination.k8s.io/v1) Lease, see
    M(ai_conformance.rke2.run_lock)) whose C(renewTime) plus C(leaseDurationSeconds) has not passed - nor those of
    O(keep_run_id).
  - Waits (at most O(cleanup_timeout) seconds) until the namespaces it deleted, and those already terminating, are
    gone, and reports each namespace still C(Terminating) with its status conditions (e.g. a finalizer that nobody
    removes) in RV(stuck) and a warning.
  - Kinds whose API is not served are ignored. Lists use label selectors only, never all objects of the cluster.
options:
  kinds:
    description:
      - Cluster-scoped kinds to clean besides namespaces, as C(apiVersion) and C(kind); the defaults are the kinds
        and versions the requirement modules create (Kueue C(v1beta2), or C(v1beta1) on older Kueue).
    type: list
    elements: dict
    default:
      - {apiVersion: gateway.networking.k8s.io/v1, kind: GatewayClass}
      - {apiVersion: kueue.x-k8s.io/v1beta2, kind: ClusterQueue}
      - {apiVersion: kueue.x-k8s.io/v1beta2, kind: ResourceFlavor}
      - {apiVersion: kueue.x-k8s.io/v1beta1, kind: ClusterQueue}
      - {apiVersion: kueue.x-k8s.io/v1beta1, kind: ResourceFlavor}
      - {apiVersion: scheduling.volcano.sh/v1beta1, kind: Queue}
      - {apiVersion: resource.k8s.io/v1, kind: DeviceClass}
  keep_run_id:
    description: Do not delete objects whose C(ai-conformance.rke2/run-id) label has this value.
    type: str
  lock_namespace:
    description: Namespace of the run lock Lease.
    type: str
    default: kube-system
  lock_name:
    description: Name of the run lock Lease.
    type: str
    default: ai-conformance-rke2
  cleanup_timeout:
    description: Seconds to wait until the deleted namespaces are gone.
    type: int
    default: 120
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
    keep_run_id: "{{ conformance_run_id }}"
"""

RETURN = r"""
deleted:
  description: Objects deleted (in check mode - would be deleted), as C(Kind/name).
  returned: always
  type: list
  elements: str
kept:
  description: Labelled objects left alone because their run is live or is O(keep_run_id), as C(Kind/name (run ID)).
  returned: always
  type: list
  elements: str
live_run:
  description: The run holding the run lock (C(run_id), C(host), C(user), C(started), C(renewed), C(expires)), or null.
  returned: always
  type: dict
stuck:
  description: Namespaces still there after O(cleanup_timeout) seconds, each with C(namespace), C(phase) and C(conditions).
  returned: always
  type: list
  elements: dict
"""

from ansible.module_utils.common.text.converters import to_native
from ansible_collections.kubernetes.core.plugins.module_utils.k8s.core import AnsibleK8SModule

from ansible_collections.ai_conformance.rke2.plugins.module_utils.kube import (
    AUTH_ARG_SPEC,
    LOCK_ARG_SPEC,
    MANAGED_SELECTOR,
    RUN_ID_LABEL,
    Kube,
    KubeError,
    ResourceNotServed,
    lease_holder,
    stuck_message,
)

DEFAULT_KINDS = [
    {"apiVersion": "gateway.networking.k8s.io/v1", "kind": "GatewayClass"},
    {"apiVersion": "kueue.x-k8s.io/v1beta2", "kind": "ClusterQueue"},
    {"apiVersion": "kueue.x-k8s.io/v1beta2", "kind": "ResourceFlavor"},
    {"apiVersion": "kueue.x-k8s.io/v1beta1", "kind": "ClusterQueue"},
    {"apiVersion": "kueue.x-k8s.io/v1beta1", "kind": "ResourceFlavor"},
    {"apiVersion": "scheduling.volcano.sh/v1beta1", "kind": "Queue"},
    {"apiVersion": "resource.k8s.io/v1", "kind": "DeviceClass"},
]


def live_run(kube, params):
    """The holder of the run lock when it has not expired, else None."""
    lease = kube.read_lease(params["lock_namespace"], params["lock_name"])
    if lease is None:
        return None
    holder = lease_holder(lease)
    return None if holder["expired"] else holder


def main():
    spec = dict(AUTH_ARG_SPEC)
    spec.update(LOCK_ARG_SPEC)
    spec.update(
        {
            "kinds": {"type": "list", "elements": "dict", "default": DEFAULT_KINDS},
            "keep_run_id": {"type": "str"},
            "cleanup_timeout": {"type": "int", "default": 120},
            "request_timeout": {"type": "int", "default": 20},
        }
    )
    module = AnsibleK8SModule(argument_spec=spec, supports_check_mode=True)
    deleted, kept, namespaces, seen = [], [], [], set()
    holder = None
    try:
        kube = Kube(module)
        holder = live_run(kube, module.params)
        protected = set(r for r in (module.params["keep_run_id"], holder and holder["run_id"]) if r)
        targets = [{"apiVersion": "v1", "kind": "Namespace"}] + module.params["kinds"]
        for target in targets:
            try:
                found = kube.list(target["apiVersion"], target["kind"], label_selector=MANAGED_SELECTOR)
            except ResourceNotServed:
                continue
            for obj in found:
                meta = obj["metadata"]
                label = "%s/%s" % (target["kind"], meta["name"])
                run_id = (meta.get("labels") or {}).get(RUN_ID_LABEL)
                if label in seen:
                    continue  # the same object served at another version
                seen.add(label)
                if run_id in protected:
                    kept.append("%s (run %s)" % (label, run_id))
                    continue
                if target["kind"] == "Namespace":
                    namespaces.append(meta["name"])
                if meta.get("deletionTimestamp"):
                    continue  # already being deleted: only waited for
                if not module.check_mode:
                    kube.delete(target["apiVersion"], target["kind"], meta["name"])
                deleted.append(label)
        stuck = [] if module.check_mode else kube.wait_namespaces_gone(namespaces, module.params["cleanup_timeout"])
    except KubeError as exc:
        module.fail_json(msg="cleanup of earlier runs failed: %s" % to_native(exc), deleted=deleted, kept=kept)
    if stuck:
        module.warn("cleanup of earlier runs: %s" % stuck_message(stuck, module.params["cleanup_timeout"]))
    module.exit_json(changed=bool(deleted), deleted=deleted, kept=kept, live_run=holder, stuck=stuck)


if __name__ == "__main__":
    main()
