#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: ai_conformance.rke2 contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r"""
module: cluster_autoscaling
short_description: Verify accelerator node autoscaling (CNCF AI conformance C(cluster_autoscaling))
version_added: 0.1.0
author:
  - ai_conformance.rke2 maintainers (@ai-conformance)
description:
  - When the platform declares no autoscaler (O(provided=false)) and none is found, the requirement is
    C(not_applicable), with notes citing the checklist's condition and the CNCF AI conformance FAQ.
  - Otherwise checks that every node has a C(spec.providerID) of the cloud provider, that the cluster-autoscaler
    deployment is Available, and that its status ConfigMap lists a node group whose nodes carry the accelerator and
    that can scale up (a group with min = max = desired cannot show scaling and fails).
  - With O(scale_test=true) it exercises scaling - it costs money, a VM is added - a pod requesting the accelerator
    that no current node may take (node affinity C(kubernetes.io/hostname NotIn) the current nodes) must stay
    Pending, cluster-autoscaler must scale a node group up (C(TriggeredScaleUp)), a new node must join within
    O(scale_up_timeout) and the pod must run on it. With O(check_scale_down=true) the added node must then be
    removed within O(scale_down_timeout) after the pod is deleted. The pod comes from the collection's test-pod builder
    (Pod Security C(restricted), requests and limits, tolerations, the mirrored test image).
  - No node joining within the timeout fails the requirement; a test the environment prevents (the pod not admitted
    by Pod Security, a quota or a policy webhook, its image not pullable on the new node, a taint it does not
    tolerate) is an C(error) naming the cause.
  - Without the scale test the requirement is reported C(skipped) even when every other check passed, because
    scaling was not exercised.
options:
  provided:
    description:
      - Whether the platform provides a cluster autoscaler. C(false) makes the requirement C(not_applicable) unless
        an autoscaler is found after all (then it is verified).
    type: bool
    default: true
  provider_id_prefix:
    description: Prefix every node's C(spec.providerID) must have (set by the cloud provider's node manager).
    type: str
    default: "azure://"
  accelerator_resource:
    description: Extended resource of the accelerator.
    type: str
    default: nvidia.com/gpu
  accelerator_node_labels:
    description: Node labels that mark accelerator nodes whose resource is not advertised yet (all must match).
    type: dict
    default: {}
  node_group:
    description:
      - Name of the node group (Azure scale set) expected to carry the accelerator. Needed when that group has no
        node at the moment (scaled to zero); by default the group is found from its nodes' capacity or labels.
    type: str
  autoscaler_namespace:
    description: Namespace of the cluster-autoscaler deployment and its status ConfigMap.
    type: str
    default: kube-system
  autoscaler_deployment:
    description: Name of the cluster-autoscaler deployment; by default any deployment running the cluster-autoscaler image.
    type: str
  status_configmap:
    description: Name of the status ConfigMap cluster-autoscaler writes.
    type: str
    default: cluster-autoscaler-status
  scale_test:
    description: Run the scale-up test (adds a cloud VM, which costs money).
    type: bool
    default: false
  scale_test_accelerators:
    description: Accelerators the scale-test pod requests.
    type: int
    default: 1
  scale_test_tolerations:
    description:
      - Tolerations of the scale-test pod in addition to O(tolerations) and the accelerator's own taint
        (C(<accelerator_resource>:NoSchedule), always tolerated).
    type: list
    elements: dict
    default: []
  scale_up_timeout:
    description: Seconds to wait for the new node and the pod running on it.
    type: int
    default: 900
  check_scale_down:
    description: After the scale-up test, delete the pod and wait for the added node to be removed.
    type: bool
    default: false
  scale_down_timeout:
    description: Seconds to wait for the added node to be removed.
    type: int
    default: 1800
  image:
    description:
      - Image of the scale-test pod (needs C(sh) and C(sleep)).
      - By default the C(busybox) entry of the collection's test image table; O(image_registry) rewrites it too.
    type: str
extends_documentation_fragment:
  - kubernetes.core.k8s_auth_options
  - ai_conformance.rke2.common
"""

EXAMPLES = r"""
- name: RKE2 on bare metal declares no autoscaler
  ai_conformance.rke2.cluster_autoscaling:
    provided: false
  register: autoscaling

- name: Verify the Azure cluster-autoscaler and exercise a GPU scale-up and scale-down
  ai_conformance.rke2.cluster_autoscaling:
    kubeconfig: ~/.kube/ai-conformance-rke2.yaml
    node_group: rke2-gpu-vmss
    scale_test: true
    check_scale_down: true
"""

RETURN = r"""
result:
  description: The requirement's result; see the collection's result schema.
  returned: always
  type: dict
  sample:
    requirement: cluster_autoscaling
    status: not_applicable
    checks:
      - name: autoscaler_present
        status: skipped
        message: no cluster-autoscaler deployment in kube-system and no cluster-autoscaler-status ConfigMap, as declared
    notes:
      - "Not applicable: the requirement is conditional ..."
"""

from ansible_collections.kubernetes.core.plugins.module_utils.k8s.core import AnsibleK8SModule

from ansible_collections.ai_conformance.rke2.plugins.module_utils import autoscaling, pods, policy
from ansible_collections.ai_conformance.rke2.plugins.module_utils.kube import (
    KubeError,
    Stuck,
    WaitTimeout,
    common_argument_spec,
    run_requirement,
)
from ansible_collections.ai_conformance.rke2.plugins.module_utils.testpods import PodBuilder

REQUIREMENT = "cluster_autoscaling"
SCALE_POD = "aic-scale-up"


def gather_autoscaler(kube, params):
    """The autoscaler deployments and status ConfigMap in its namespace (bounded: one namespace)."""
    namespace = params["autoscaler_namespace"]
    deployments = autoscaling.find_autoscaler_deployments(
        kube.list("apps/v1", "Deployment", namespace=namespace), params.get("autoscaler_deployment"))
    configmap = kube.get("v1", "ConfigMap", params["status_configmap"], namespace)
    return deployments, configmap


def check_provider_ids(nodes, params, result):
    outcome = autoscaling.provider_ids(nodes, params["provider_id_prefix"])
    observed = {"missing": outcome["missing"], "foreign": outcome["foreign"], "nodes": len(outcome["nodes"])}
    expected = "every node has a spec.providerID starting with %s" % params["provider_id_prefix"]
    if outcome["ok"]:
        result.passed("provider_ids", outcome["message"], observed, expected)
    else:
        result.failed("provider_ids", outcome["message"], observed, expected)


def check_deployment(deployments, params, result):
    namespace = params["autoscaler_namespace"]
    expected = "a cluster-autoscaler deployment Available in %s" % namespace
    if not deployments:
        what = params.get("autoscaler_deployment") or "running the cluster-autoscaler image"
        result.failed("autoscaler_deployment", "no deployment %s in namespace %s" % (what, namespace), expected=expected,
                      cause="not_installed")
        return
    ok, message = autoscaling.deployment_available(deployments[0])
    result.add_evidence("autoscaler-deployment", {"name": deployments[0]["metadata"]["name"], "status": deployments[0].get("status")})
    if ok:
        result.passed("autoscaler_deployment", message, expected=expected)
    else:
        result.failed("autoscaler_deployment", message, expected=expected)


def check_status(configmap, nodes, params, result):
    """Node groups from the status ConfigMap; True when one carries the accelerator and can scale up."""
    name = "accelerator_node_group"
    where = "%s/%s" % (params["autoscaler_namespace"], params["status_configmap"])
    expected = "a node group carrying %s that can scale up" % params["accelerator_resource"]
    if configmap is None:
        result.failed(name, "the status ConfigMap %s does not exist (cluster-autoscaler not running, or "
                            "--write-status-configmap=false)" % where, expected=expected, cause="not_installed")
        return False
    text = autoscaling.status_text(configmap)
    result.add_evidence("autoscaler-status", text, "text")
    try:
        status = autoscaling.parse_status(text)
    except ValueError as exc:
        result.error(name, "could not read %s: %s" % (where, exc), expected=expected)
        return False
    if status["autoscaler_status"] == "Initializing":
        result.failed(name, "cluster-autoscaler is still Initializing (%s)" % where, expected=expected)
        return False
    matched = autoscaling.match_node_groups(status["node_groups"], nodes, params["accelerator_resource"],
                                            params.get("accelerator_node_labels"))
    ok, message, observed = autoscaling.evaluate_node_groups(matched, params["accelerator_resource"], params.get("node_group"))
    observed = {"format": status["format"], "cluster_wide": status["cluster_wide"], "node_groups": observed}
    if ok:
        result.passed(name, message, observed, expected)
    else:
        result.failed(name, message, observed, expected)
    return ok


def scale_up(kube, params, result, nodes):
    """Exercise a scale-up; returns (names of the nodes it added, test namespace)."""
    name = "scale_up"
    resource = params["accelerator_resource"]
    before = [autoscaling.node_name(n) for n in nodes]
    expected = ("a pod requesting %d %s that no current node may take is Pending, a node joins within %ss and the pod "
                "runs on it" % (params["scale_test_accelerators"], resource, params["scale_up_timeout"]))
    builder = PodBuilder(dict(params, tolerations=list(params.get("tolerations") or []) + list(params["scale_test_tolerations"] or [])),
                         image_overrides={autoscaling.IMAGE_KEY: params.get("image")})
    namespace = kube.temp_namespace(REQUIREMENT)
    result.add_evidence("nodes-before", autoscaling.node_rows(nodes, resource))
    try:
        pod = kube.create(autoscaling.render_scale_test_pod(
            builder, SCALE_POD, namespace, resource, params["scale_test_accelerators"], before, kube.labels(REQUIREMENT)))
    except KubeError as exc:  # Pod Security, quota, LimitRange, a policy webhook: the test cannot start
        result.from_exception(name, exc, "the scale-test pod was not admitted", expected=expected)
        return [], namespace

    def observe():
        current = kube.get("v1", "Pod", SCALE_POD, namespace) or pod
        now = kube.list("v1", "Node")
        events = kube.list("v1", "Event", namespace=namespace, field_selector="involvedObject.name=%s" % SCALE_POD)
        return current, now, events

    def probe():
        current, now, events = observe()
        state, info = autoscaling.scale_up_state(before, current, now, events, resource)
        problem = pods.pod_problem(current, unschedulable_is_problem=False)
        if problem:
            classified = policy.classify_pod(current, events)
            raise Stuck(classified[1] if classified else problem["message"], kind=problem["kind"], state=info,
                        cause=classified[0] if classified else None)
        if state == "rejected":
            raise Stuck("cluster-autoscaler did not scale up: %s" % info["not_triggered"][-1]["message"], kind="rejected", state=info,
                        cause="capability")
        if state == "fit_existing":
            raise Stuck("the pod was placed on existing node %s although its node affinity excludes it" % info["pod_node"],
                        kind="fit_existing", state=info, cause="internal")
        return state == "done", info

    def record_after():
        current, after, events = observe()
        result.add_evidence("nodes-after", autoscaling.node_rows(after, resource))
        result.add_evidence("scale-up-events", autoscaling.scale_up_events(events))
        result.add_evidence("scale-test-pod", pods.summarize([current]))
        return current, after, events

    try:
        info = kube.wait_for(probe, params["scale_up_timeout"], interval=10, what="a new %s node running the pod" % resource)
    except Stuck as exc:
        result.add_evidence("scale-up-state", exc.state or {})
        record_after()
        if exc.cause == "capability":
            result.failed(name, str(exc), expected=expected, exercised=True)
        else:
            result.outcome(name, exc.cause, "the scale-up test could not be carried out: %s" % exc, expected=expected, exercised=True)
        return [], namespace
    except WaitTimeout as exc:
        result.add_evidence("scale-up-state", exc.body or {})
        current, after, events = record_after()
        new = [autoscaling.node_name(n) for n in after if autoscaling.node_name(n) not in before]
        cause, why = autoscaling.timeout_verdict(current, new, events)
        result.outcome(name, cause, "no %s node joined and ran the pod within %ss (%s): %s" % (
            resource, params["scale_up_timeout"], why, exc), expected=expected, exercised=True)
        return [], namespace
    record_after()
    added = [row["name"] for row in info["new_nodes"]]
    groups = ["%s %d->%d (max %d)" % (g["group"], g["current"], g["new"], g["max"])
              for event in info["triggered"] for g in event["groups"]]
    message = "cluster-autoscaler scaled up %s; node %s joined and runs the pod requesting %d %s" % (
        ", ".join(groups) or "a node group (no TriggeredScaleUp event seen)", info["pod_node"],
        params["scale_test_accelerators"], resource)
    result.exercised(name, message, observed=info, expected=expected)
    return added, namespace


def scale_down(kube, params, result, added, namespace):
    name = "scale_down"
    expected = "the node(s) added for the test pod are removed within %ss after it is deleted" % params["scale_down_timeout"]
    kube.delete("v1", "Pod", SCALE_POD, namespace)

    def probe():
        done, remaining = autoscaling.scale_down_state(added, kube.list("v1", "Node"))
        return done, {"remaining": remaining}

    try:
        kube.wait_for(probe, params["scale_down_timeout"], interval=15, what="removal of %s" % ", ".join(added))
    except WaitTimeout as exc:
        result.failed(name, "the added node(s) were not removed: %s" % exc, expected=expected, exercised=True)
        return
    result.add_evidence("nodes-after-scale-down", autoscaling.node_rows(kube.list("v1", "Node"), params["accelerator_resource"]))
    result.exercised(name, "cluster-autoscaler removed %s after the pod was deleted" % ", ".join(added), expected=expected)


def verify(kube, params, result):
    nodes = kube.list("v1", "Node")
    deployments, configmap = gather_autoscaler(kube, params)
    if not params["provided"]:
        if not deployments and configmap is None:
            result.skipped("autoscaler_present", "no cluster-autoscaler deployment in %s and no %s ConfigMap, as declared "
                                                 "(cluster_autoscaling provided=false)" % (params["autoscaler_namespace"],
                                                                                           params["status_configmap"]))
            result.add_evidence("nodes", autoscaling.node_rows(nodes, params["accelerator_resource"]))
            for note in autoscaling.NOT_APPLICABLE_NOTES:
                result.note(note)
            return "not_applicable"
        result.note("Declared without an autoscaler (provided=false), but a cluster-autoscaler was found; it is verified.")

    result.add_evidence("nodes", autoscaling.node_rows(nodes, params["accelerator_resource"]))
    check_provider_ids(nodes, params, result)
    check_deployment(deployments, params, result)
    group_ok = check_status(configmap, nodes, params, result)

    if not params["scale_test"]:
        result.skipped("scale_up", "scale-up test not run (it adds a VM, which costs money); enable it with scale_test=true "
                                   "(role variable cluster_autoscaling_scale_test)")
        result.note("Scaling was not exercised, so the requirement is reported skipped even if the configuration checks passed.")
        return None
    if kube.module.check_mode:
        result.skipped("scale_up", "check mode: the scale-up test was not run")
        return None
    if not group_ok:
        result.skipped("scale_up", "scale-up test not run: no node group carrying %s can scale up" % params["accelerator_resource"])
        return None
    added, namespace = scale_up(kube, params, result, nodes)
    if params["check_scale_down"] and added:
        scale_down(kube, params, result, added, namespace)
    elif params["check_scale_down"]:
        result.skipped("scale_down", "scale-down not checked: the scale-up did not add a node")
    else:
        result.skipped("scale_down", "scale-down not checked (check_scale_down=false); cluster-autoscaler removes the added "
                                     "node after its scale-down-unneeded-time")
    return None


def main():
    argument_spec = common_argument_spec(
        {
            "provided": {"type": "bool", "default": True},
            "provider_id_prefix": {"type": "str", "default": autoscaling.AZURE_PREFIX},
            "accelerator_resource": {"type": "str", "default": "nvidia.com/gpu"},
            "accelerator_node_labels": {"type": "dict", "default": {}},
            "node_group": {"type": "str"},
            "autoscaler_namespace": {"type": "str", "default": autoscaling.DEFAULT_NAMESPACE},
            "autoscaler_deployment": {"type": "str"},
            "status_configmap": {"type": "str", "default": autoscaling.STATUS_CONFIGMAP},
            "scale_test": {"type": "bool", "default": False},
            "scale_test_accelerators": {"type": "int", "default": 1},
            "scale_test_tolerations": {"type": "list", "elements": "dict", "default": []},
            "scale_up_timeout": {"type": "int", "default": 900},
            "check_scale_down": {"type": "bool", "default": False},
            "scale_down_timeout": {"type": "int", "default": 1800},
            "image": {"type": "str"},
        }
    )
    module = AnsibleK8SModule(argument_spec=argument_spec, supports_check_mode=True)
    run_requirement(module, REQUIREMENT, verify)


if __name__ == "__main__":
    main()
