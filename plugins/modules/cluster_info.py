#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: ai_conformance.rke2 contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r"""
module: cluster_info
short_description: Preflight of a certification run - reach the cluster and describe it
version_added: 0.1.0
author:
  - ai_conformance.rke2 maintainers (@ai-conformance)
description:
  - Checks that the kubeconfig exists and has the context, that the API server answers within a few seconds,
    that the credentials are accepted and that the identity may create the objects the checks need.
  - Fails with one message naming the kubeconfig and context it tried and what failed (file missing, context
    unknown, connection refused, time-out, TLS error, 401, 403).
  - Returns the server version, the platform (RKE2 is recognised from the version string) and the identity.
options:
  kubeconfig:
    description:
      - Path of the kubeconfig file. Defaults to C(K8S_AUTH_KUBECONFIG), then C(KUBECONFIG), then C(~/.kube/config).
      - Unlike the requirement modules this module takes only a path, so that its messages can name it.
    type: path
  connect_timeout:
    description:
      - Seconds to wait for the TCP connection to the API server.
    type: int
    default: 5
  required_access:
    description:
      - Access the certification needs, checked with SelfSubjectAccessReviews. Each item has C(verb), C(resource)
        and optionally C(group).
    type: list
    elements: dict
    default:
      - {verb: create, resource: namespaces}
      - {verb: create, resource: pods}
      - {verb: list, resource: nodes}
  request_timeout:
    description:
      - Timeout in seconds of each single API request.
    type: int
    default: 10
  lock_namespace:
    description: Namespace of the run lock; accepted so that module_defaults of the certify group can set it (unused here).
    type: str
    default: kube-system
  lock_name:
    description: Name of the run lock; accepted so that module_defaults of the certify group can set it (unused here).
    type: str
    default: ai-conformance-rke2
extends_documentation_fragment:
  - kubernetes.core.k8s_auth_options
"""

EXAMPLES = r"""
- name: Preflight
  ai_conformance.rke2.cluster_info:
    kubeconfig: ~/.kube/config
    context: rke2
  register: cluster
"""

RETURN = r"""
cluster:
  description: What the certification reports about the cluster.
  returned: success
  type: dict
  contains:
    name:
      description: Cluster name of the kubeconfig context (or the host).
      type: str
    context:
      description: The kubeconfig context used.
      type: str
    server:
      description: API server URL.
      type: str
    git_version:
      description: Server C(gitVersion), e.g. C(v1.34.9+rke2r1).
      type: str
    kubernetes_version:
      description: Kubernetes version without the distribution suffix, e.g. C(v1.34.9).
      type: str
    kubernetes_minor:
      description: Major.minor, e.g. C(1.34).
      type: str
    platform:
      description: C(rke2), C(k3s) or C(kubernetes), from the server's or else the nodes' version.
      type: str
    platform_version:
      description: Version of the distribution, e.g. C(v1.34.9+rke2r1), from the nodes' C(kubeletVersion) (the oldest
        when they differ), else the server's C(gitVersion).
      type: str
    node_versions:
      description: The distinct C(kubeletVersion)s the nodes report.
      type: list
      elements: str
    user:
      description: Username the API server sees (when SelfSubjectReview is served).
      type: str
"""

import os

from ansible.module_utils.common.text.converters import to_native
from ansible_collections.kubernetes.core.plugins.module_utils.k8s.core import AnsibleK8SModule

from ansible_collections.ai_conformance.rke2.plugins.module_utils.kube import (
    AUTH_ARG_SPEC,
    LOCK_ARG_SPEC,
    Kube,
    KubeError,
    describe_target,
    kubeconfig_path,
)
from ansible_collections.ai_conformance.rke2.plugins.module_utils.platform import (
    access_problems,
    describe_nodes,
    describe_version,
    kubeconfig_cluster_name,
)


def gather(kube, params):
    """Version, identity and access of the cluster; raises KubeError."""
    version = kube.version()
    info = describe_version(version)
    kube.api_groups()  # discovery: what every check needs, catches 401/403 early
    user = None
    try:
        review = kube.request(
            "POST",
            "/apis/authentication.k8s.io/v1/selfsubjectreviews",
            body={"apiVersion": "authentication.k8s.io/v1", "kind": "SelfSubjectReview"},
        )
        user = ((review.get("status") or {}).get("userInfo") or {}).get("username")
    except KubeError:
        user = None  # not served everywhere; identity is informative only
    answers = []
    for item in params["required_access"]:
        attrs = {"verb": item.get("verb"), "resource": item.get("resource"), "group": item.get("group", "")}
        review = kube.request(
            "POST",
            "/apis/authorization.k8s.io/v1/selfsubjectaccessreviews",
            body={"apiVersion": "authorization.k8s.io/v1", "kind": "SelfSubjectAccessReview", "spec": {"resourceAttributes": attrs}},
        )
        answers.append((attrs, review.get("status") or {}))
    info.update({"user": user, "access": [dict(a, allowed=bool(s.get("allowed"))) for a, s in answers]})
    try:
        info = describe_nodes(info, kube.list("v1", "Node", limit=500))
    except KubeError:
        info = describe_nodes(info, [])  # informative only; listing nodes is checked as access above
    return info, access_problems(answers)


def main():
    spec = dict(AUTH_ARG_SPEC)
    spec.update(LOCK_ARG_SPEC)
    spec.update(
        {
            "kubeconfig": {"type": "path"},
            "connect_timeout": {"type": "int", "default": 5},
            "request_timeout": {"type": "int", "default": 10},
            "required_access": {
                "type": "list",
                "elements": "dict",
                "default": [
                    {"verb": "create", "resource": "namespaces"},
                    {"verb": "create", "resource": "pods"},
                    {"verb": "list", "resource": "nodes"},
                ],
            },
        }
    )
    module = AnsibleK8SModule(argument_spec=spec, supports_check_mode=True)
    target = describe_target(module.params)
    try:
        kube = Kube(module)
        info, problems = gather(kube, module.params)
    except KubeError as exc:
        module.fail_json(msg="Cannot use the cluster (%s): %s" % (target, to_native(exc)))
    if problems:
        module.fail_json(
            msg="Cannot certify the cluster (%s): the identity %s lacks access: %s"
            % (target, info.get("user") or "of the kubeconfig", "; ".join(problems)),
            cluster=info,
        )
    context = module.params.get("context") or os.environ.get("K8S_AUTH_CONTEXT")
    name, current = kubeconfig_cluster_name(kubeconfig_path(module.params), context)
    info.update({"name": name or kube.host, "context": context or current, "server": kube.host})
    module.exit_json(changed=False, cluster=info)


if __name__ == "__main__":
    main()
