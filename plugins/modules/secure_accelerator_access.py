#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: ai_conformance.rke2 contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r"""
module: secure_accelerator_access
short_description: Verify isolated, Kubernetes-mediated accelerator access (CNCF AI conformance C(secure_accelerator_access))
version_added: 0.1.0
author:
  - ai_conformance.rke2 maintainers (@ai-conformance)
description:
  - Everything vendor-specific (extended resource, DRA DeviceClass, device-node glob, listing command and its parser,
    bypass variable, GPU Operator objects) comes from the accelerator profile O(accelerator_profile).
  - Configuration evidence (inspect) - the GPU Operator's C(ClusterPolicy) and the env of its device-plugin and
    toolkit DaemonSets compared with the isolation profile O(isolation) (C(volume-mounts) or C(cdi)); with
    O(isolation=auto) the profile found is only reported. O(toolkit_configs) (the toolkit's C(config.toml) read on
    the accelerator hosts by the role) are reported with their two C(accept-nvidia-visible-devices-*) keys.
  - Active test (exercise) on one accelerator node with G free accelerators (allocatable minus the requests of the
    pods on that node, listed with C(fieldSelector=spec.nodeName=...); at most O(max_accelerators)) - G pods each
    requesting one accelerator run and each sees exactly one (device nodes matching the profile's glob and the
    listing command, C(nvidia-smi -L)), all with different UUIDs; pod G+1 stays Pending with the scheduler's
    C(Insufficient nvidia.com/gpu); a pod requesting none but setting the bypass variable (C(NVIDIA_VISIBLE_DEVICES=all)),
    pinned to the same node, sees none; in a two-container pod where only the first container requests one, the
    second sees none.
  - Verdicts come only from what the probe printed (device nodes, UUIDs), never from exit codes; a listing tool
    missing from the image (exit 127) where an accelerator was given is an C(error).
  - With DRA (O(mode=dra), or O(mode=auto) when no node advertises the extended resource) the same test uses
    ResourceClaims of the profile's DeviceClass (C(gpu.nvidia.com)).
  - No accelerator node, or none with a free accelerator, is an C(error) (the capability could not be tested), never a
    pass; a node labelled as an accelerator node that advertises no accelerator is a failure.
  - Every object it creates lives in a temporary namespace that is deleted afterwards, also on failure.
options:
  mode:
    description:
      - How accelerators are handed out - C(device_plugin) (the profile's extended resource), C(dra) (ResourceClaims of
        the profile's DeviceClass) or C(auto) (the device plugin when a node advertises the resource, else DRA).
    type: str
    choices: [auto, device_plugin, dra]
    default: auto
  accelerator_profile:
    description:
      - Name of a built-in accelerator profile (C(nvidia)).
    type: str
    default: nvidia
  accelerator_profile_overrides:
    description:
      - Keys merged recursively over the profile, for example C(resource) set to C(nvidia.com/mig-1g.10gb) or
        C(device_glob) for another device-node layout.
    type: dict
    default: {}
  isolation:
    description:
      - Isolation profile the configuration must match - C(volume-mounts) (toolkit accepts device lists only as volume
        mounts, device plugin C(DEVICE_LIST_STRATEGY=volume-mounts)), C(cdi), or C(auto) (report what is found, expect
        nothing). The active test decides the requirement either way.
    type: str
    choices: [auto, volume-mounts, cdi]
    default: auto
  toolkit_configs:
    description:
      - The toolkit's C(config.toml) as read on accelerator hosts - dicts with C(host), C(path), C(content)
        (null when it could not be read) and C(error) (why not). Empty skips that check.
    type: list
    elements: dict
    default: []
  node:
    description:
      - Accelerator node to test on; by default the one with the fewest free accelerators.
    type: str
  max_accelerators:
    description:
      - Most accelerator pods to start. When the node has more free accelerators, the exhaustion check is skipped.
    type: int
    default: 8
  runtime_class:
    description:
      - RuntimeClass of the probe pods. C(auto) uses the profile's (C(nvidia)) when it exists, an empty string none.
    type: str
    default: auto
extends_documentation_fragment:
  - kubernetes.core.k8s_auth_options
  - ai_conformance.rke2.common
"""

EXAMPLES = r"""
- name: Verify secure accelerator access of the cluster in ~/.kube/config
  ai_conformance.rke2.secure_accelerator_access:
  register: access

- name: Require the reference procedure's volume-mounts isolation, test on a given node
  ai_conformance.rke2.secure_accelerator_access:
    kubeconfig: /etc/rancher/rke2/rke2.yaml
    isolation: volume-mounts
    node: gpu-node-1
    max_accelerators: 4
    timeout: 300
"""

RETURN = r"""
result:
  description: The requirement's result; see the collection's result schema.
  returned: always
  type: dict
  sample:
    requirement: secure_accelerator_access
    status: passed
    checks:
      - name: exclusive_allocation
        status: passed
        kind: exercise
        message: "2 pod(s) each saw exactly one accelerator, all different: gpu-0=GPU-1d4a..., gpu-1=GPU-77c2..."
"""

from ansible.module_utils.common.text.converters import to_native
from ansible_collections.kubernetes.core.plugins.module_utils.k8s.core import AnsibleK8SModule

from ansible_collections.ai_conformance.rke2.plugins.module_utils import accelerator_profiles, accelerators as acc
from ansible_collections.ai_conformance.rke2.plugins.module_utils import dra, policy
from ansible_collections.ai_conformance.rke2.plugins.module_utils import pods as pod_status
from ansible_collections.ai_conformance.rke2.plugins.module_utils.kube import (
    KubeError,
    ResourceNotServed,
    Stuck,
    WaitTimeout,
    common_argument_spec,
    run_requirement,
)
from ansible_collections.ai_conformance.rke2.plugins.module_utils.testpods import PodBuilder

REQUIREMENT = "secure_accelerator_access"
ROLE_LABEL = "ai-conformance.rke2/probe"
HOSTNAME_LABEL = "kubernetes.io/hostname"


# --------------------------------------------------------------------------- configuration


def check_operator_config(kube, params, profile, result):
    """ClusterPolicy and the DaemonSets' env against the isolation profile (inspect)."""
    name = "gpu_operator_config"
    operator = profile.get("operator")
    if not operator:
        result.skipped(name, "the accelerator profile names no operator configuration to inspect")
        return
    policy_ref = operator["cluster_policy"]
    try:
        policies = kube.list(policy_ref["api_version"], policy_ref["kind"])
    except ResourceNotServed:
        result.skipped(name, "%s %s is not served: the GPU Operator is not installed, its configuration was not inspected"
                       % (policy_ref["api_version"], policy_ref["kind"]))
        return
    if not policies:
        result.skipped(name, "no %s exists: the GPU Operator manages nothing, its configuration was not inspected" % policy_ref["kind"])
        return
    cluster_policy = policies[0]
    namespace = ((cluster_policy.get("status") or {}).get("namespace")) or operator["namespace"]
    daemonsets = {}
    for key in ("device_plugin_daemonset", "toolkit_daemonset"):
        daemonsets[key] = kube.get("apps/v1", "DaemonSet", operator[key], namespace)
    toolkit_env = acc.container_env(daemonsets["toolkit_daemonset"])
    plugin_env = acc.container_env(daemonsets["device_plugin_daemonset"])
    detected = acc.detect_isolation(profile, cluster_policy, toolkit_env, plugin_env)
    wanted = params["isolation"]
    judged = detected if wanted == "auto" else wanted
    mismatches, table = acc.evaluate_isolation(profile, judged or "volume-mounts", cluster_policy, toolkit_env, plugin_env)
    spec = cluster_policy.get("spec") or {}
    observed = {
        "cluster_policy": cluster_policy["metadata"]["name"],
        "state": (cluster_policy.get("status") or {}).get("state"),
        "cdi": spec.get("cdi"),
        "toolkit_env": toolkit_env,
        "device_plugin_env": plugin_env,
        "daemonsets_found": dict((operator[k], v is not None) for k, v in daemonsets.items()),
        "isolation_detected": detected,
        "settings": table,
    }
    result.add_evidence("gpu-operator-config", observed)
    missing = [operator[k] for k, v in daemonsets.items() if v is None]
    where = "ClusterPolicy %s (state %s), namespace %s" % (observed["cluster_policy"], observed["state"], namespace)
    if wanted == "auto":
        if detected:
            result.passed(name, "%s configures the %s isolation profile" % (where, detected), observed)
        else:
            result.passed(name, "%s matches no known isolation profile (%s); the active test decides" % (
                where, "; ".join(mismatches)), observed)
        return
    if missing:
        result.failed(name, "%s: DaemonSet(s) %s not found, the %s settings cannot be in place" % (
            where, ", ".join(missing), wanted), observed, wanted, cause="not_installed")
    elif mismatches:
        result.failed(name, "%s does not configure the %s isolation profile: %s" % (where, wanted, "; ".join(mismatches)),
                      observed, wanted)
    else:
        result.passed(name, "%s configures the %s isolation profile" % (where, wanted), observed, wanted)


def check_toolkit_configs(params, profile, result):
    """The toolkit's config.toml as read on the accelerator hosts (inspect)."""
    name = "toolkit_config"
    files = params["toolkit_configs"]
    if not files:
        result.skipped(name, "no accelerator host's toolkit config.toml was read (no such hosts in the inventory)")
        return
    isolation = params["isolation"] if params["isolation"] == "volume-mounts" else None
    mismatches, rows, unreadable = acc.evaluate_toolkit_configs(files, profile, isolation)
    result.add_evidence("toolkit-config", rows)
    if len(unreadable) == len(rows):
        result.skipped(name, "the toolkit config.toml could not be read on any accelerator host: %s" % "; ".join(unreadable), rows)
        return
    hosts = ", ".join("%s: %s" % (r["host"], r.get("error") or ", ".join(
        "%s=%s" % (k, str(v).lower()) for k, v in sorted(r.items()) if k not in ("host", "path"))) for r in rows)
    expected = profile["isolation_profiles"]["volume-mounts"]["toolkit_config"] if isolation else None
    if mismatches:
        result.failed(name, "toolkit config.toml does not set the %s keys: %s" % (isolation, "; ".join(mismatches)),
                      rows, expected)
    else:
        result.passed(name, "toolkit config.toml on %d host(s): %s" % (len(rows), hosts), rows, expected)


# --------------------------------------------------------------------------- target


def find_target(kube, params, profile, result):
    """Mode, node and number of free accelerators for the active test; None after recording why not."""
    name = "accelerator_target"
    resource = profile["resource"]
    nodes = kube.list("v1", "Node")
    advertising, labelled_only = acc.accelerator_nodes(nodes, profile)
    mode = params["mode"]
    device_class = None
    dra_names = []
    slices = []
    if mode in ("dra", "auto") and not (mode == "auto" and advertising):
        try:
            device_class = kube.get(dra.API_VERSION, "DeviceClass", profile["dra_device_class"])
        except ResourceNotServed:
            device_class = None
        if device_class is not None:
            slices = kube.list(dra.API_VERSION, "ResourceSlice")
            dra_names = acc.dra_nodes(device_class, slices)
    if mode == "auto":
        mode = "device_plugin" if advertising or not dra_names else "dra"
    candidates = []
    if mode == "device_plugin":
        for node in advertising:
            node_name = node["metadata"]["name"]
            on_node = kube.list("v1", "Pod", field_selector="spec.nodeName=%s" % node_name)
            free, used, users = acc.free_count(node, on_node, resource)
            candidates.append({"node": node_name, "free": free, "allocatable": acc.allocatable(node, resource),
                               "detail": "%d allocatable, %d requested by %s" % (acc.allocatable(node, resource), used,
                                                                                 ", ".join(users) or "no pod")})
    else:
        if device_class is not None:
            claims = kube.list(dra.API_VERSION, "ResourceClaim")
            for node_name in dra_names:
                free, total, allocated = acc.dra_free_devices(node_name, device_class, slices, claims)
                candidates.append({"node": node_name, "free": free, "allocatable": total,
                                   "detail": "%d device(s), allocated %s" % (total, ", ".join(allocated) or "none")})
    observed = {"mode": mode, "resource": resource, "device_class": profile["dra_device_class"] if mode == "dra" else None,
                "candidates": candidates, "labelled_without_accelerators": labelled_only}
    result.add_evidence("accelerator-nodes", observed)
    if not candidates:
        what = ("no node advertises allocatable %s" % resource if mode == "device_plugin"
                else "no driver of DeviceClass %s publishes devices" % profile["dra_device_class"])
        if labelled_only:
            result.failed(name, "node(s) %s are labelled %s but %s: accelerators are not mediated by Kubernetes "
                          "(no device plugin or DRA driver; is the GPU Operator installed?)" % (
                              ", ".join(labelled_only), profile["node_label"], what), observed, cause="not_installed")
        else:
            result.error(name, "%s and no node is labelled %s: there is no accelerator node to test on" % (
                what, profile["node_label"]), observed, cause="no_test_target")
        return None
    target, reason = acc.choose_target(candidates, params.get("node"))
    if target is None:
        cause = "no_test_target" if params.get("node") and not any(c["node"] == params["node"] for c in candidates) else "no_capacity"
        result.error(name, "the test needs at least one free accelerator: %s" % reason, observed, cause=cause)
        return None
    count = min(target["free"], params["max_accelerators"])
    result.passed(name, "%s mode on %s: %s; testing with %d accelerator pod(s)" % (mode, target["node"], reason, count), observed)
    return {"mode": mode, "node": target["node"], "free": target["free"], "count": count}


# --------------------------------------------------------------------------- probe pods


class Probes:
    """Builds, starts and reads the probe pods of one run."""

    def __init__(self, kube, params, profile, target, namespace, runtime_class):
        self.kube = kube
        self.params = params
        self.profile = profile
        self.target = target
        self.namespace = namespace
        self.runtime_class = runtime_class
        self.builder = PodBuilder(params)
        self.script = acc.probe_script(profile)
        self.labels = kube.labels(REQUIREMENT)
        self.template = None
        if target["mode"] == "dra":
            template = dra.render_claim_template("accelerator", namespace, profile["dra_device_class"], self.labels)
            self.template = kube.create(template)["metadata"]["name"]

    def container(self, name, accelerator, env=None, hold=False):
        variables = dict(self.profile.get("probe_env") or {})
        variables.update(env or {})
        if hold:
            # past the log wait and the exhaustion wait (each bounded by timeout); cleanup deletes it earlier
            variables["AIC_HOLD"] = str(2 * self.params["timeout"] + 60)
        resources = dict((k, dict(v)) for k, v in (self.profile.get("probe_resources") or {}).items())
        claims = None
        if accelerator and self.target["mode"] == "device_plugin":
            for section in ("requests", "limits"):
                resources.setdefault(section, {})[self.profile["resource"]] = "1"
        elif accelerator:
            claims = [dra.CLAIM_NAME]
        return self.builder.container(name, self.profile["probe_image"], command=["sh", "-c", self.script],
                                      env=variables, resources=resources, claims=claims)

    def pod(self, name, containers, role):
        claims = None
        if self.target["mode"] == "dra" and any((c["resources"].get("claims")) for c in containers):
            claims = [{"name": dra.CLAIM_NAME, "resourceClaimTemplateName": self.template}]
        body = self.builder.pod(name, self.namespace, containers, labels=dict(self.labels, **{ROLE_LABEL: role}),
                                node_selector={HOSTNAME_LABEL: self.target["node"]}, resource_claims=claims,
                                accelerator_resources=[self.profile["resource"]], runtime_class=self.runtime_class)
        return self.kube.create(body)

    def wait_logs(self, names, containers_of, what, terminal=False):
        """Wait until every pod of ``names`` printed its whole probe; {pod: {container: parsed}}.

        ``terminal``: also wait until the pods completed (so that they no longer hold accelerators).
        """
        found = {}

        def look():
            for pod_name in names:
                if pod_name in found:
                    continue
                pod = self.kube.get("v1", "Pod", pod_name, self.namespace)
                if pod is None:
                    raise Stuck("probe pod %s disappeared" % pod_name, kind="failed")
                problem = pod_status.pod_problem(pod)
                if problem and problem["kind"] != "failed":
                    classified = policy.classify_pod(pod)
                    raise Stuck("pod %s: %s" % (pod_name, classified[1] if classified else problem["message"]),
                                kind=problem["kind"], state=pod_status.summarize([pod]),
                                cause=classified[0] if classified else None)
                phase = (pod.get("status") or {}).get("phase")
                if phase not in (("Succeeded", "Failed") if terminal else ("Running", "Succeeded", "Failed")):
                    continue
                logs = {}
                for container in containers_of:
                    try:
                        logs[container] = self.kube.pod_logs(self.namespace, pod_name, container=container)
                    except KubeError as exc:
                        if exc.status == 400:  # container not started yet
                            break
                        raise
                if len(logs) == len(containers_of) and all(("%s end" % acc.MARK) in text for text in logs.values()):
                    found[pod_name] = dict((c, acc.parse_probe(text, self.profile)) for c, text in logs.items())
                    found[pod_name]["_logs"] = logs
                elif (pod.get("status") or {}).get("phase") in ("Succeeded", "Failed"):
                    found[pod_name] = dict((c, acc.parse_probe(logs.get(c, ""), self.profile)) for c in containers_of)
                    found[pod_name]["_logs"] = logs
            return len(found) == len(names), {"read": sorted(found), "waiting": sorted(set(names) - set(found))}

        try:
            self.kube.wait_for(look, self.params["timeout"], what=what)
        except WaitTimeout as exc:
            # say why a pod is not there yet (still pulling the image, unschedulable) when the pod says it
            for pod_name in sorted(set(names) - set(found)):
                pod = self.kube.get("v1", "Pod", pod_name, self.namespace)
                classified = policy.classify_pod(pod) if pod else None
                if classified:
                    raise Stuck("%s (after %ss)" % (classified[1], self.params["timeout"]), kind="timeout",
                                state=exc.body, cause=classified[0])
            raise
        return found


def pods_output(found):
    """Per-pod, per-container probe output for evidence."""
    return "\n".join("### %s/%s\n%s" % (pod, container, text)
                     for pod in sorted(found) for container, text in sorted(found[pod]["_logs"].items()))


def record_stuck(result, names, exc, what):
    """The probe pods could not be read: an error of the cause the wait found (timeout when none)."""
    cause = getattr(exc, "cause", None) or "timeout"
    if policy.status_for(cause) != policy.ERROR:
        cause = "timeout"
    for name in names:
        result.outcome(name, cause, "%s: %s" % (what, exc), observed=getattr(exc, "state", None) or exc.body)


def run_isolation_pods(probes, result):
    """The bypass pod and the two-container pod (both complete)."""
    bypass_env = probes.profile.get("bypass_env") or {}
    bypass_text = ", ".join("%s=%s" % item for item in sorted(bypass_env.items()))
    probes.pod("bypass", [probes.container("probe", False, env=bypass_env)], "bypass")
    probes.pod("two-containers", [probes.container("first", True), probes.container("second", False, env=bypass_env)], "pair")
    try:
        found = probes.wait_logs(["bypass"], ["probe"], "probe output of pod bypass", terminal=True)
        found.update(probes.wait_logs(["two-containers"], ["first", "second"], "probe output of pod two-containers",
                                      terminal=True))
    except (Stuck, WaitTimeout) as exc:
        record_stuck(result, ["env_bypass_blocked", "container_isolation"], exc, "the isolation probe pods did not run")
        return
    result.add_evidence("isolation-probes", pods_output(found), "text")
    cause, message, observed = acc.judge_isolated(
        "pod bypass", found["bypass"]["probe"],
        "requests no accelerator, sets %s, runs on %s" % (bypass_text, probes.target["node"]))
    expected = "no device node, no accelerator listed"
    if cause:
        result.outcome("env_bypass_blocked", cause, message, observed, expected, exercised=True)
    else:
        result.exercised("env_bypass_blocked", message, observed, expected)
    first = found["two-containers"]["first"]
    cause, message, observed = acc.judge_allocated([("two-containers/first", first)], probes.profile)
    if cause:
        result.outcome("container_isolation", cause, "the container that requested one accelerator: %s" % message,
                       observed, "first container sees one accelerator, second sees none", exercised=True)
        return
    cause, message, observed = acc.judge_isolated(
        "container second of pod two-containers", found["two-containers"]["second"],
        "its pod's first container holds %s, it requested none and sets %s" % (first["uuids"][0], bypass_text))
    if cause:
        result.outcome("container_isolation", cause, message, observed, "second container sees none", exercised=True)
    else:
        result.exercised("container_isolation", "%s; the first container sees only %s" % (message, first["uuids"][0]),
                         observed, "second container sees none")


def run_allocation_pods(probes, result):
    """G pods each holding one accelerator, then one more that must stay Pending."""
    count = probes.target["count"]
    names = ["accelerator-%d" % index for index in range(count)]
    for name in names:
        probes.pod(name, [probes.container("probe", True, hold=True)], "allocated")
    try:
        found = probes.wait_logs(names, ["probe"], "probe output of %d accelerator pod(s)" % count)
    except (Stuck, WaitTimeout) as exc:
        record_stuck(result, ["exclusive_allocation"], exc, "the accelerator pods did not run")
        result.skipped("exhaustion_pending", "not run: the accelerator pods did not run")
        return
    result.add_evidence("allocation-probes", pods_output(found), "text")
    cause, message, observed = acc.judge_allocated([(n, found[n]["probe"]) for n in names], probes.profile)
    expected = "each pod sees exactly one accelerator; all UUIDs distinct"
    if cause:
        result.outcome("exclusive_allocation", cause, message, observed, expected, exercised=True)
    else:
        result.exercised("exclusive_allocation", message, observed, expected)
    check_exhaustion(probes, result)


def check_exhaustion(probes, result):
    """Pod G+1 must stay Pending for lack of accelerators while the G pods hold them."""
    name = "exhaustion_pending"
    target = probes.target
    if target["free"] > target["count"]:
        result.skipped(name, "node %s has %d free accelerators, more than max_accelerators=%d: one more pod would fit" % (
            target["node"], target["free"], target["count"]))
        return
    wanted = acc.insufficient_message(probes.profile, target["mode"])
    pod = probes.pod("one-too-many", [probes.container("probe", True)], "exhaustion")
    pod_name = pod["metadata"]["name"]
    expected = "Pending: %s" % wanted

    def look():
        current = probes.kube.get("v1", "Pod", pod_name, probes.namespace) or pod
        cause, message, done = acc.judge_exhaustion(current, wanted, target["node"])
        return done, {"cause": cause, "message": message, "pod": pod_status.summarize([current])}

    try:
        state = probes.kube.wait_for(look, probes.params["timeout"], what="the scheduler's decision on pod %s" % pod_name)
    except WaitTimeout as exc:
        result.error(name, str(exc), exc.body, expected, cause="timeout")
        return
    result.add_evidence("exhaustion-pod", state)
    if state["cause"]:
        result.outcome(name, state["cause"], state["message"], state["pod"], expected, exercised=True)
    else:
        result.exercised(name, state["message"], state["pod"], expected)


def runtime_class_for(kube, params, profile):
    """The RuntimeClass probe pods use: the option, or with auto the profile's when it exists."""
    wanted = params["runtime_class"]
    if wanted != "auto":
        return wanted or None
    name = profile.get("runtime_class")
    if not name:
        return None
    try:
        return name if kube.get("node.k8s.io/v1", "RuntimeClass", name) is not None else None
    except ResourceNotServed:
        return None


def verify(kube, params, result):
    try:
        profile = accelerator_profiles.resolve(params["accelerator_profile"], params["accelerator_profile_overrides"])
        acc.PARSERS[profile["probe_parser"]]
        acc.probe_script(profile)
    except (ValueError, KeyError) as exc:
        result.error("accelerator_profile", "the accelerator profile cannot be used: %s" % to_native(exc), cause="invalid_request")
        return None
    check_operator_config(kube, params, profile, result)
    check_toolkit_configs(params, profile, result)
    target = find_target(kube, params, profile, result)
    exercises = ("exclusive_allocation", "exhaustion_pending", "env_bypass_blocked", "container_isolation")
    if target is None:
        for name in exercises:
            result.skipped(name, "not run: no accelerator to test on")
        return None
    if kube.module.check_mode:
        for name in exercises:
            result.skipped(name, "check mode: not run (would start %d accelerator pod(s) on %s)" % (target["count"], target["node"]))
        return None
    runtime_class = runtime_class_for(kube, params, profile)
    namespace = kube.temp_namespace(REQUIREMENT)
    probes = Probes(kube, params, profile, target, namespace, runtime_class)
    result.add_evidence("test-plan", {"node": target["node"], "mode": target["mode"], "free": target["free"],
                                      "accelerator_pods": target["count"], "runtime_class": runtime_class,
                                      "image": probes.builder.image(profile["probe_image"]), "probe_script": probes.script})
    run_isolation_pods(probes, result)
    run_allocation_pods(probes, result)
    return None


def main():
    argument_spec = common_argument_spec(
        {
            "mode": {"type": "str", "choices": ["auto", "device_plugin", "dra"], "default": "auto"},
            "accelerator_profile": {"type": "str", "default": "nvidia"},
            "accelerator_profile_overrides": {"type": "dict", "default": {}},
            "isolation": {"type": "str", "choices": ["auto", "volume-mounts", "cdi"], "default": "auto"},
            "toolkit_configs": {"type": "list", "elements": "dict", "default": []},
            "node": {"type": "str"},
            "max_accelerators": {"type": "int", "default": 8},
            "runtime_class": {"type": "str", "default": "auto"},
        }
    )
    module = AnsibleK8SModule(argument_spec=argument_spec, supports_check_mode=True)
    run_requirement(module, REQUIREMENT, verify)


if __name__ == "__main__":
    main()
