# -*- coding: utf-8 -*-
# Copyright: ai_conformance.rke2 contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Pure helpers describing the cluster under test (version, platform, access)."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import os
import re

try:
    import yaml
except ImportError:  # the modules check for PyYAML before calling
    yaml = None

_VERSION_RE = re.compile(r"^v?(\d+)\.(\d+)\.(\d+)")


def describe_version(version):
    """From a /version document: gitVersion, Kubernetes version, minor, platform."""
    git_version = version.get("gitVersion") or ""
    match = _VERSION_RE.match(git_version)
    if not match:
        return {"git_version": git_version, "kubernetes_version": git_version, "kubernetes_minor": "", "platform": "kubernetes"}
    major, minor, patch = match.groups()
    if "+rke2" in git_version:
        platform = "rke2"
    elif "+k3s" in git_version:
        platform = "k3s"
    else:
        platform = "kubernetes"
    return {
        "git_version": git_version,
        "kubernetes_version": "v%s.%s.%s" % (major, minor, patch),
        "kubernetes_minor": "%s.%s" % (major, minor),
        "platform": platform,
    }


def _platform_of(version):
    if "+rke2" in version:
        return "rke2"
    if "+k3s" in version:
        return "k3s"
    return "kubernetes"


def describe_nodes(info, nodes):
    """``info`` (describe_version) completed from the nodes: kubelet versions, platform and its version.

    The distribution's version is what the kubelets report (v1.34.9+rke2r1), also where the server's
    gitVersion has no suffix; with several versions (an upgrade under way) the oldest is the platform's.
    """
    versions = sorted(set(
        ((n.get("status") or {}).get("nodeInfo") or {}).get("kubeletVersion") for n in nodes
        if ((n.get("status") or {}).get("nodeInfo") or {}).get("kubeletVersion")), key=_version_key)
    info = dict(info, node_versions=versions)
    distro = [v for v in versions if _platform_of(v) != "kubernetes"]
    if distro:
        info["platform_version"] = distro[0]
        info["platform"] = _platform_of(distro[0])
    else:
        info["platform_version"] = info.get("git_version", "")
    return info


def _version_key(version):
    return [int(n) for n in re.findall(r"\d+", version)]


def access_problems(answers):
    """Sentences for every denied SelfSubjectAccessReview ([(attributes, status)])."""
    problems = []
    for attrs, status in answers:
        if not status.get("allowed"):
            what = attrs["resource"] if not attrs.get("group") else "%s.%s" % (attrs["resource"], attrs["group"])
            reason = status.get("reason") or status.get("evaluationError")
            problems.append("cannot %s %s%s" % (attrs["verb"], what, (" (%s)" % reason) if reason else ""))
    return problems


def kubeconfig_cluster_name(path, context=None):
    """(cluster name of the context, current-context) from a kubeconfig file; (None, None) if unknown."""
    path = os.path.expanduser((path or "~/.kube/config").split(os.pathsep)[0])
    try:
        with open(path) as handle:
            config = yaml.safe_load(handle) or {}
    except (IOError, OSError, yaml.YAMLError):
        return None, None
    current = config.get("current-context")
    wanted = context or current
    for item in config.get("contexts") or []:
        if isinstance(item, dict) and item.get("name") == wanted:
            return (item.get("context") or {}).get("cluster"), current
    return None, current
