# -*- coding: utf-8 -*-
# Copyright: ai_conformance.rke2 contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function

__metaclass__ = type


class ModuleDocFragment(object):
    """Options shared by every requirement module."""

    DOCUMENTATION = r"""
options:
  timeout:
    description:
      - Upper bound in seconds for each wait of the check (pods running, controllers reconciling).
      - A wait that cannot succeed (image pull failure, unschedulable pod) stops earlier with the real reason.
    type: int
    default: 180
  request_timeout:
    description:
      - Timeout in seconds of each single API request.
    type: int
    default: 20
  run_id:
    description:
      - Identifier of this certification run, put in the C(ai-conformance.rke2/run-id) label of every object the
        module creates. A random one is used when not given.
      - When the run lock (O(lock_namespace)/O(lock_name)) is held by this run id, the module renews it when it starts
        and during its waits; it stops with an error when another run took it over.
    type: str
  cleanup_timeout:
    description:
      - Upper bound in seconds of waiting, at the end, until the namespaces the module deleted are gone. A namespace
        still there (e.g. C(Terminating) because of a finalizer) is an C(error) check naming it and its conditions.
    type: int
    default: 60
  lock_namespace:
    description: Namespace of the run lock, a C(coordination.k8s.io/v1) Lease (see M(ai_conformance.rke2.run_lock)).
    type: str
    default: kube-system
  lock_name:
    description: Name of the run lock Lease.
    type: str
    default: ai-conformance-rke2
  tolerations:
    description:
      - Tolerations every test pod carries (for example of tainted GPU nodes), besides the toleration of the
        accelerator resource's own taint that test pods requesting it always get.
    type: list
    elements: dict
    default: []
  image_registry:
    description:
      - Registry host (optionally with a path) that replaces the registry of every test image, for air-gapped
        mirrors, for example C(mirror.example.com:5000). Images are pinned in the collection's table of test images.
    type: str
  image_pull_secrets:
    description:
      - Image pull Secrets (type C(kubernetes.io/dockerconfigjson)) the test pods use, as C(namespace/name) or C(name)
        (namespace C(default)). Test pods run in temporary namespaces, so the module copies each Secret into them and
        deletes the copy with the namespace.
    type: list
    elements: str
    default: []
  images:
    description:
      - Overrides of single entries of the table of test images (key to image reference), applied before I(image_registry).
    type: dict
    default: {}
notes:
  - Every object the module creates is labelled C(app.kubernetes.io/managed-by=ai-conformance-rke2) and deleted before
    the module returns, also when a check fails. Leftovers of an interrupted run are removed by M(ai_conformance.rke2.cleanup).
  - The module never changes the cluster permanently and always reports C(changed=false).
  - In check mode the module runs only read-only checks; checks that must create objects are reported as skipped.
requirements:
  - kubernetes >= 24.2.0
  - PyYAML >= 3.11
"""

    RETURN = r"""
result:
  description: The requirement's result in the collection's result schema.
  returned: always
  type: dict
  contains:
    requirement:
      description: Catalogue id of the requirement.
      type: str
    status:
      description: C(passed), C(failed) (capability missing), C(error) (check could not run), C(skipped) or C(not_applicable).
      type: str
    checks:
      description: Checks with C(name), C(status), C(message), C(observed) and C(expected).
      type: list
      elements: dict
    evidence:
      description: Named evidence items with C(name), C(format) and C(content).
      type: list
      elements: dict
    notes:
      description: Free-text notes.
      type: list
      elements: str
    started:
      description: UTC start time (ISO 8601).
      type: str
    duration_s:
      description: Duration in seconds.
      type: float
"""
