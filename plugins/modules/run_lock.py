#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: ai_conformance.rke2 contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r"""
module: run_lock
short_description: Hold or release the lock of a certification run (a coordination.k8s.io/v1 Lease)
version_added: 0.1.0
author:
  - ai_conformance.rke2 maintainers (@ai-conformance)
description:
  - A certification run holds a C(coordination.k8s.io/v1) Lease whose C(holderIdentity) is its run id, annotated
    with the host, the user and the start time. A second run against the same cluster stops at once with a message
    naming the holder (or waits up to O(wait) seconds for the lock).
  - The requirement modules renew the Lease while the run goes on (when they start and inside their waits). A Lease
    whose C(renewTime) plus C(leaseDurationSeconds) has passed is expired and is taken over.
  - O(state=absent) deletes the Lease when this run holds it, and leaves another run's Lease alone.
  - In check mode nothing is written; the module reports who holds the lock.
options:
  state:
    description: C(present) acquires (or renews) the lock, C(absent) releases it.
    type: str
    choices: [present, absent]
    default: present
  run_id:
    description: The run id, the Lease's C(holderIdentity).
    type: str
    required: true
  lock_namespace:
    description: Namespace of the Lease.
    type: str
    default: kube-system
  lock_name:
    description: Name of the Lease.
    type: str
    default: ai-conformance-rke2
  duration:
    description: C(leaseDurationSeconds); a run that stops renewing for this long loses the lock.
    type: int
    default: 300
  wait:
    description: Seconds to wait for a lock held by another live run; C(0) fails at once.
    type: int
    default: 0
  holder_host:
    description: Host recorded in the Lease annotations; defaults to the name of the host running the module.
    type: str
  holder_user:
    description: User recorded in the Lease annotations; defaults to the user running the module.
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
- name: Hold the run lock
  ai_conformance.rke2.run_lock:
    run_id: "{{ conformance_run_id }}"
    wait: 600

- name: Release the run lock
  ai_conformance.rke2.run_lock:
    run_id: "{{ conformance_run_id }}"
    state: absent
"""

RETURN = r"""
acquired:
  description: Whether this run holds the lock now (always false in check mode and after O(state=absent)).
  returned: always
  type: bool
holder:
  description: The lock holder seen last, with C(run_id), C(host), C(user), C(started), C(renewed), C(expires), C(expired).
  returned: always
  type: dict
previous_holder:
  description: The expired holder whose lock was taken over.
  returned: when an expired lock was taken over
  type: dict
msg:
  description: What happened.
  returned: always
  type: str
"""

import datetime
import getpass
import socket
import time

from ansible.module_utils.common.text.converters import to_native
from ansible_collections.kubernetes.core.plugins.module_utils.k8s.core import AnsibleK8SModule

from ansible_collections.ai_conformance.rke2.plugins.module_utils.kube import (
    AUTH_ARG_SPEC,
    LOCK_ARG_SPEC,
    LOCK_HOST_ANNOTATION,
    LOCK_STARTED_ANNOTATION,
    LOCK_USER_ANNOTATION,
    MANAGED_BY_LABEL,
    RUN_ID_LABEL,
    Conflict,
    Kube,
    KubeError,
    api_path,
    describe_holder,
    lease_holder,
    microtime,
)

LOCK_MANAGED_BY = "ai-conformance-rke2-lock"
POLL_INTERVAL = 5.0  # seconds between looks at a lock another run holds


def lease_body(params, run_id, now, transitions=0):
    """The Lease of this run."""
    return {
        "apiVersion": "coordination.k8s.io/v1",
        "kind": "Lease",
        "metadata": {
            "name": params["lock_name"],
            "namespace": params["lock_namespace"],
            "labels": {MANAGED_BY_LABEL: LOCK_MANAGED_BY, RUN_ID_LABEL: run_id},
            "annotations": {
                LOCK_HOST_ANNOTATION: params.get("holder_host") or socket.getfqdn(),
                LOCK_USER_ANNOTATION: params.get("holder_user") or _user(),
                LOCK_STARTED_ANNOTATION: now.strftime("%Y-%m-%dT%H:%M:%SZ"),
            },
        },
        "spec": {
            "holderIdentity": run_id,
            "leaseDurationSeconds": params["duration"],
            "acquireTime": microtime(now),
            "renewTime": microtime(now),
            "leaseTransitions": transitions,
        },
    }


def _user():
    try:
        return getpass.getuser()
    except Exception:  # no user name in the environment (containers)
        return "uid-unknown"


def held_message(params, holder):
    where = "%s/%s" % (params["lock_namespace"], params["lock_name"])
    return (
        "another certification run holds the cluster's run lock (Lease %s): %s. Wait for it to finish, set "
        "conformance_lock_wait to wait for it, or, when that run is dead, wait until the lease expires or delete it "
        "(kubectl -n %s delete lease %s)." % (where, describe_holder(holder), params["lock_namespace"], params["lock_name"])
    )


def acquire(kube, module):
    """Take the lock, renew ours, or take over an expired one; wait (bounded) while another live run holds it."""
    params = module.params
    run_id = params["run_id"]
    path = api_path("coordination.k8s.io/v1", "leases", params["lock_name"], params["lock_namespace"])
    collection = api_path("coordination.k8s.io/v1", "leases", namespace=params["lock_namespace"])
    deadline = time.monotonic() + max(params["wait"], 0)
    while True:
        now = datetime.datetime.now(datetime.timezone.utc)
        current = kube.read_lease(params["lock_namespace"], params["lock_name"])
        holder = lease_holder(current, now)
        if module.check_mode:
            mine_or_free = current is None or holder["expired"] or holder["run_id"] == run_id
            msg = "check mode: the run lock was not written (%s)" % (
                "it is free" if mine_or_free else "held by " + describe_holder(holder))
            if not mine_or_free:
                module.warn(held_message(params, holder))
            module.exit_json(changed=False, acquired=False, holder=holder if current else {}, msg=msg)
        try:
            if current is None:
                created = kube.request("POST", collection, body=lease_body(params, run_id, now))
                module.exit_json(changed=True, acquired=True, holder=lease_holder(created), msg="run lock acquired")
            if holder["run_id"] == run_id:
                current["spec"]["renewTime"] = microtime(now)
                current["spec"]["leaseDurationSeconds"] = params["duration"]
                renewed = kube.request("PUT", path, body=current)
                module.exit_json(changed=True, acquired=True, holder=lease_holder(renewed), msg="run lock renewed")
            if holder["expired"]:
                body = lease_body(params, run_id, now, (current["spec"].get("leaseTransitions") or 0) + 1)
                body["metadata"]["resourceVersion"] = current["metadata"]["resourceVersion"]
                taken = kube.request("PUT", path, body=body)
                module.exit_json(changed=True, acquired=True, holder=lease_holder(taken), previous_holder=holder,
                                 msg="expired run lock of run %s taken over" % holder["run_id"])
        except Conflict:
            continue  # another run was faster: look again
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            waited = " after waiting %ss" % params["wait"] if params["wait"] > 0 else ""
            module.fail_json(msg=held_message(params, holder) + waited, acquired=False, holder=holder)
        time.sleep(min(POLL_INTERVAL, remaining))


def release(kube, module):
    """Delete the Lease when this run holds it."""
    params = module.params
    current = kube.read_lease(params["lock_namespace"], params["lock_name"])
    holder = lease_holder(current)
    if current is None:
        module.exit_json(changed=False, acquired=False, holder={}, msg="no run lock to release")
    if holder["run_id"] != params["run_id"]:
        module.exit_json(changed=False, acquired=False, holder=holder,
                         msg="run lock not released: it is held by %s" % describe_holder(holder))
    if module.check_mode:
        module.exit_json(changed=False, acquired=False, holder=holder, msg="check mode: the run lock was not released")
    kube.delete("coordination.k8s.io/v1", "Lease", params["lock_name"], params["lock_namespace"])
    module.exit_json(changed=True, acquired=False, holder=holder, msg="run lock released")


def main():
    spec = dict(AUTH_ARG_SPEC)
    spec.update(LOCK_ARG_SPEC)
    spec.update(
        {
            "state": {"type": "str", "choices": ["present", "absent"], "default": "present"},
            "run_id": {"type": "str", "required": True},
            "duration": {"type": "int", "default": 300},
            "wait": {"type": "int", "default": 0},
            "holder_host": {"type": "str"},
            "holder_user": {"type": "str"},
            "request_timeout": {"type": "int", "default": 20},
        }
    )
    module = AnsibleK8SModule(argument_spec=spec, supports_check_mode=True)
    if module.params["duration"] < 15:
        module.fail_json(msg="duration must be at least 15 seconds, got %s" % module.params["duration"])
    try:
        kube = Kube(module)
        if module.params["state"] == "present":
            acquire(kube, module)
        release(kube, module)
    except KubeError as exc:
        module.fail_json(msg="run lock %s/%s: %s" % (module.params["lock_namespace"], module.params["lock_name"], to_native(exc)))


if __name__ == "__main__":
    main()
