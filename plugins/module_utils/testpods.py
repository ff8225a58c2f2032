# -*- coding: utf-8 -*-
# Copyright: ai_conformance.rke2 contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The one builder of every pod (and pod template) a verifier creates.

Every pod is Pod Security ``restricted`` compliant (numeric non-root UID, no
privilege escalation, all capabilities dropped, RuntimeDefault seccomp), has
CPU/memory requests and limits, tolerates what the user says
(``tolerations``) plus the accelerator's own taint, and pulls a pinned image
from ``IMAGES`` that ``image_registry`` redirects to a mirror. Modules never
write a pod spec by hand: they call ``PodBuilder(params)``.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import copy

# Every image a verifier runs, pinned. ``image_registry`` rewrites the registry
# host of each (air-gapped mirrors); ``images`` overrides single entries.
# Documented in docs/development.md ("Test images").
IMAGES = {
    # sh, ls, env, sleep, wget: probes that only look around
    "busybox": "registry.k8s.io/e2e-test-images/busybox:1.36.1-1",
    # netexec HTTP backends, curl client, generic test server
    "agnhost": "registry.k8s.io/e2e-test-images/agnhost:2.53",
    # sh, ls; nvidia-smi is injected by the NVIDIA Container Toolkit (NVIDIA_DRIVER_CAPABILITIES=utility)
    "cuda": "nvcr.io/nvidia/cuda:13.0.2-base-ubuntu24.04",
}

# Non-root numeric identity of every test container ("nobody").
RUN_AS_USER = 65534

DEFAULT_RESOURCES = {
    "requests": {"cpu": "10m", "memory": "16Mi"},
    "limits": {"cpu": "200m", "memory": "64Mi"},
}


def rewrite_image(reference, registry):
    """``reference`` pulled from ``registry`` instead of its own host (docker.io names get ``library/``)."""
    if not registry:
        return reference
    first, sep, rest = reference.partition("/")
    if sep and ("." in first or ":" in first or first == "localhost"):
        path = rest
    elif sep:
        path = reference
    else:
        path = "library/" + reference
    return "%s/%s" % (registry.rstrip("/"), path)


def pod_security_context():
    """Pod-level securityContext that ``restricted`` admits."""
    return {
        "runAsNonRoot": True,
        "runAsUser": RUN_AS_USER,
        "runAsGroup": RUN_AS_USER,
        "seccompProfile": {"type": "RuntimeDefault"},
    }


def container_security_context():
    """Container-level securityContext that ``restricted`` admits."""
    return {
        "allowPrivilegeEscalation": False,
        "capabilities": {"drop": ["ALL"]},
        "runAsNonRoot": True,
        "runAsUser": RUN_AS_USER,
        "seccompProfile": {"type": "RuntimeDefault"},
    }


def resource_toleration(resource):
    """The toleration of an extended resource's own taint (``nvidia.com/gpu:NoSchedule``), or None.

    This is what the ExtendedResourceToleration admission plugin would add;
    GPU nodes are commonly tainted with the resource name.
    """
    if "/" in resource and not resource.startswith("kubernetes.io/") and not resource.startswith("hugepages-"):
        return {"key": resource, "operator": "Exists", "effect": "NoSchedule"}
    return None


def merge_resources(extra=None):
    """Default requests/limits with ``extra`` ({"requests": {...}, "limits": {...}}) on top."""
    merged = copy.deepcopy(DEFAULT_RESOURCES)
    for section, values in (extra or {}).items():
        merged.setdefault(section, {}).update(values or {})
    return merged


class PodBuilder:
    """Builds test containers, pod specs, pods and pod templates from the module's params.

    Uses the common options ``tolerations``, ``image_registry``,
    ``image_pull_secrets`` and ``images`` (see ``kube.COMMON_ARG_SPEC``).
    """

    def __init__(self, params=None, image_overrides=None):
        """``image_overrides`` ({key: reference or None}) come from a module's own ``image`` options;
        set ones replace table entries like ``images`` does (and are mirrored by ``image_registry`` too)."""
        params = params or {}
        self.tolerations = [dict(t) for t in params.get("tolerations") or []]
        self.registry = params.get("image_registry") or None
        # copied into the temporary namespace under their own name (Kube.temp_namespace)
        self.pull_secrets = [ref.rpartition("/")[2] for ref in params.get("image_pull_secrets") or []]
        self.overrides = dict(params.get("images") or {})
        self.overrides.update((key, ref) for key, ref in (image_overrides or {}).items() if ref)

    def image(self, key):
        """The reference to pull for image ``key`` of ``IMAGES`` (override, then mirror)."""
        if key in self.overrides:
            reference = self.overrides[key]
        elif key in IMAGES:
            reference = IMAGES[key]
        else:
            raise KeyError("unknown test image %r; known: %s" % (key, ", ".join(sorted(IMAGES))))
        return rewrite_image(reference, self.registry)

    def images_used(self, keys):
        """{key: reference} for evidence and messages."""
        return dict((key, self.image(key)) for key in keys)

    def container(self, name, image, command=None, args=None, env=None, ports=None, resources=None,
                  readiness_probe=None, claims=None):
        """A restricted container running test image ``image`` (a key of ``IMAGES``).

        ``resources`` adds to the default requests/limits (e.g. an accelerator
        limit); ``claims`` names DRA claims of the pod the container uses.
        """
        item = {
            "name": name,
            "image": self.image(image),
            "imagePullPolicy": "IfNotPresent",
            "resources": merge_resources(resources),
            "securityContext": container_security_context(),
        }
        if command:
            item["command"] = list(command)
        if args:
            item["args"] = list(args)
        if env:
            item["env"] = [{"name": k, "value": str(v)} for k, v in sorted(env.items())] if isinstance(env, dict) else list(env)
        if ports:
            item["ports"] = list(ports)
        if readiness_probe:
            item["readinessProbe"] = readiness_probe
        if claims:
            item["resources"]["claims"] = [{"name": c} for c in claims]
        return item

    def tolerations_for(self, resources=()):
        """The user's tolerations plus the own taint of each extended resource in ``resources``."""
        result = [dict(t) for t in self.tolerations]
        for resource in resources or ():
            toleration = resource_toleration(resource)
            if toleration and toleration not in result:
                result.append(toleration)
        return result

    def pod_spec(self, containers, restart_policy="Never", node_name=None, node_selector=None,
                 accelerator_resources=(), resource_claims=None, affinity=None, runtime_class=None):
        """A restricted pod spec for ``containers`` (from ``container()``); ``runtime_class`` names a RuntimeClass."""
        resources = set(accelerator_resources or ())
        for item in containers:
            for section in ("requests", "limits"):
                resources.update(k for k in (item.get("resources") or {}).get(section, {}) if "/" in k)
        spec = {
            "restartPolicy": restart_policy,
            "terminationGracePeriodSeconds": 1,
            "automountServiceAccountToken": False,
            "enableServiceLinks": False,
            "securityContext": pod_security_context(),
            "containers": list(containers),
        }
        tolerations = self.tolerations_for(sorted(resources))
        if tolerations:
            spec["tolerations"] = tolerations
        if self.pull_secrets:
            spec["imagePullSecrets"] = [{"name": n} for n in self.pull_secrets]
        if node_name:
            spec["nodeName"] = node_name
        if node_selector:
            spec["nodeSelector"] = dict(node_selector)
        if affinity:
            spec["affinity"] = affinity
        if resource_claims:
            spec["resourceClaims"] = list(resource_claims)
        if runtime_class:
            spec["runtimeClassName"] = runtime_class
        return spec

    def pod(self, name, namespace, containers, labels=None, annotations=None, **spec_options):
        """A complete Pod object (``spec_options`` as for ``pod_spec``)."""
        metadata = {"name": name, "namespace": namespace, "labels": dict(labels or {})}
        if annotations:
            metadata["annotations"] = dict(annotations)
        return {"apiVersion": "v1", "kind": "Pod", "metadata": metadata, "spec": self.pod_spec(containers, **spec_options)}

    def template(self, containers, labels=None, **spec_options):
        """A pod template (Deployments, Jobs, Volcano/Kueue/training jobs)."""
        return {"metadata": {"labels": dict(labels or {})}, "spec": self.pod_spec(containers, **spec_options)}


def hardening_problems(pod_spec):
    """What ``pod_spec`` lacks of the builder's guarantees (``restricted`` fields, requests/limits).

    A self-check for tests and for modules that receive templates from data
    (e.g. a training operator profile); the fake API server enforces the real rules.
    """
    problems = []
    pod_ctx = pod_spec.get("securityContext") or {}
    for item in (pod_spec.get("initContainers") or []) + (pod_spec.get("containers") or []):
        ctx = item.get("securityContext") or {}
        name = item.get("name")
        if ctx.get("allowPrivilegeEscalation") is not False:
            problems.append("container %s: allowPrivilegeEscalation must be false" % name)
        if "ALL" not in ((ctx.get("capabilities") or {}).get("drop") or []):
            problems.append("container %s: capabilities.drop must contain ALL" % name)
        if not (ctx.get("runAsNonRoot") or pod_ctx.get("runAsNonRoot")):
            problems.append("container %s: runAsNonRoot must be true" % name)
        if ctx.get("runAsUser", pod_ctx.get("runAsUser")) == 0:
            problems.append("container %s: runAsUser must not be 0" % name)
        profile = (ctx.get("seccompProfile") or pod_ctx.get("seccompProfile") or {}).get("type")
        if profile not in ("RuntimeDefault", "Localhost"):
            problems.append("container %s: seccompProfile must be RuntimeDefault or Localhost" % name)
        resources = item.get("resources") or {}
        for section in ("requests", "limits"):
            for key in ("cpu", "memory"):
                if key not in (resources.get(section) or {}):
                    problems.append("container %s: %s.%s missing" % (name, section, key))
    return problems
