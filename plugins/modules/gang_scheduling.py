#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: ai_conformance.rke2 contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r"""
module: gang_scheduling
short_description: Verify all-or-nothing gang scheduling (CNCF AI conformance C(gang_scheduling))
version_added: 0.1.0
author:
  - ai_conformance.rke2 maintainers (@ai-conformance)
description:
  - Finds the gang scheduler - Volcano (C(batch.volcano.sh/v1alpha1) and C(scheduling.volcano.sh/v1beta1) served,
    deployments C(volcano-admission), C(volcano-controllers) and C(volcano-scheduler) Available) or Kueue
    (C(kueue.x-k8s.io) served, deployment C(kueue-controller-manager) Available) - and reports their versions.
    Without either the requirement fails at once, after a few discovery requests.
  - Measures the free capacity of the gang resource - allocatable minus the requests of non-terminated pods, on
    nodes the test pods can use (not cordoned, Ready, no untolerated NoSchedule/NoExecute taint, matching
    O(node_selector)). It lists the nodes, then the pods of each such node with C(fieldSelector=spec.nodeName=...),
    never all pods of the cluster.
  - Job A needs exactly the free capacity (equal pods that tile every node's free capacity, at most O(max_pods) - 1
    of them; when no equal size tiles all nodes, the jobs are pinned to the node with the most free capacity). All its
    pods must be bound and Running within O(timeout). Job A is then deleted and its pods awaited gone.
  - Job B has one pod more, so it needs more than is free while each of its pods alone would fit. For O(hold_seconds)
    not one of its pods may be bound (some bound is a failure naming them), and its PodGroup (Volcano) or Workload
    (Kueue) must say it lacks the gang resource; held back for another reason is an error, never a pass.
  - With Volcano the jobs are C(batch.volcano.sh/v1alpha1) Jobs with C(minAvailable) = their pod count. With Kueue a
    temporary ResourceFlavor, ClusterQueue (quota = the free capacity, only the test namespace) and LocalQueue admit
    suspended C(batch/v1) Jobs.
  - Evidence - scheduler versions, capacity per node, the plan, a timeline of pod phases and node assignments of both
    jobs, PodGroup/Workload status and events. Everything created is deleted afterwards, also on failure.
  - No free capacity (for example all GPUs busy) fails the requirement with the pods that hold it.
options:
  scheduler:
    description:
      - Gang scheduler to test; C(auto) takes Volcano when it is ready, else Kueue.
    type: str
    choices: [auto, volcano, kueue]
    default: auto
  resource:
    description:
      - The gang resource. C(auto) uses C(nvidia.com/gpu) when any node advertises it, otherwise C(cpu).
    type: str
    default: auto
  max_pods:
    description:
      - Most pods of a job (job B); at least 2.
    type: int
    default: 8
  hold_seconds:
    description:
      - How long job B must stay completely unscheduled.
    type: int
    default: 30
  image:
    description:
      - Image of the test pods; it only needs to run (the pods request nothing but the gang resource).
    type: str
    default: registry.k8s.io/pause:3.10
  node_selector:
    description:
      - Labels the nodes of the test must have; the pods get them as C(nodeSelector) and only those nodes count.
    type: dict
    default: {}
  tolerations:
    description:
      - Tolerations of the test pods (core/v1 Toleration dicts). For an extended resource such as C(nvidia.com/gpu)
        the pods also tolerate the taint named after it (as the ExtendedResourceToleration admission plugin adds).
    type: list
    elements: dict
    default: []
  volcano_namespace:
    description: Namespace of the Volcano deployments.
    type: str
    default: volcano-system
  volcano_queue:
    description: Volcano queue of the test jobs.
    type: str
    default: default
  kueue_namespace:
    description: Namespace of the Kueue deployment.
    type: str
    default: kueue-system
extends_documentation_fragment:
  - kubernetes.core.k8s_auth_options
  - ai_conformance.rke2.common
"""

EXAMPLES = r"""
- name: Verify gang scheduling with whatever gang scheduler is installed
  ai_conformance.rke2.gang_scheduling:
  register: gang

- name: Verify Kueue with CPU on the batch nodes only
  ai_conformance.rke2.gang_scheduling:
    kubeconfig: /etc/rancher/rke2/rke2.yaml
    scheduler: kueue
    resource: cpu
    node_selector:
      pool: batch
    hold_seconds: 60
"""

RETURN = r"""
result:
  description: The requirement's result; see the collection's result schema.
  returned: always
  type: dict
  sample:
    requirement: gang_scheduling
    status: passed
    checks:
      - name: gang_job_b_held
        status: passed
        message: "job B (3 pods of 1 nvidia.com/gpu, 3 in all, 2 free) stayed completely unscheduled for 30.0s: ..."
"""

import time

from ansible_collections.kubernetes.core.plugins.module_utils.k8s.core import AnsibleK8SModule

from ansible_collections.ai_conformance.rke2.plugins.module_utils import gang, pods
from ansible_collections.ai_conformance.rke2.plugins.module_utils.kube import (
    WaitTimeout,
    common_argument_spec,
    run_requirement,
)

REQUIREMENT = "gang_scheduling"
JOB_NAMES = {"a": "gang-a", "b": "gang-b"}


# --------------------------------------------------------------------------- detection


def _served(kube, api_version, kind):
    resources = kube.api_resources(api_version)
    return bool(resources) and any(r.get("kind") == kind and "/" not in r.get("name", "") for r in resources.get("resources", []))


def evaluate_volcano(kube, params):
    served = dict(("%s %s" % (api, kind), _served(kube, api, kind)) for api, kind in gang.SCHEDULERS[gang.VOLCANO]["apis"])
    return _evaluate(kube, gang.VOLCANO, served, params["volcano_namespace"], None)


def evaluate_kueue(kube, params):
    version = next((v for v in gang.KUEUE_VERSIONS if kube.api_resources("%s/%s" % (gang.KUEUE_GROUP, v))), gang.KUEUE_VERSIONS[0])
    api_version = "%s/%s" % (gang.KUEUE_GROUP, version)
    kinds = [item[1] for item in gang.SCHEDULERS[gang.KUEUE]["apis"]]
    served = dict(("%s %s" % (api_version, kind), _served(kube, api_version, kind)) for kind in kinds)
    return _evaluate(kube, gang.KUEUE, served, params["kueue_namespace"], api_version)


def _evaluate(kube, name, served, namespace, api_version):
    deployments = {}
    for dep in gang.SCHEDULERS[name]["deployments"]:
        # Deployments are only looked at when the APIs exist: without them the answer is quick.
        deployments[dep] = kube.get("apps/v1", "Deployment", dep, namespace) if all(served.values()) else None
    evaluation = gang.evaluate_scheduler(name, served, deployments, namespace)
    evaluation["api_version"] = api_version
    return evaluation


def detect_scheduler(kube, params, result):
    """The ready scheduler's evaluation, or None after recording why there is none."""
    wanted = params["scheduler"]
    evaluations = []
    if wanted in ("auto", gang.VOLCANO):
        evaluations.append(evaluate_volcano(kube, params))
    if wanted in ("auto", gang.KUEUE):
        evaluations.append(evaluate_kueue(kube, params))
    chosen, message = gang.choose_scheduler(evaluations, wanted)
    observed = dict((e["name"], {"ready": e["ready"], "versions": e["versions"], "deployments": e["deployments"],
                                 "missing_apis": e["missing_apis"]}) for e in evaluations)
    result.add_evidence("scheduler", observed)
    expected = "Volcano or Kueue installed with its controllers Available" if wanted == "auto" else "%s ready" % wanted
    if chosen is None:
        result.failed("gang_scheduler", message, observed, expected)
        return None
    result.passed("gang_scheduler", message, observed, expected)
    return chosen


# --------------------------------------------------------------------------- capacity


def measure_capacity(kube, params, result):
    """(capacity, plan); plan is None after recording why no test can run."""
    nodes = kube.list("v1", "Node")
    resource, why = gang.choose_resource(nodes, params["resource"])
    tolerations = gang.test_pod_tolerations(resource, params["tolerations"])
    candidates = gang.candidate_nodes(nodes, resource, tolerations, params["node_selector"])
    pods_by_node = {}
    for node in candidates[0]:
        name = node["metadata"]["name"]
        pods_by_node[name] = kube.list("v1", "Pod", field_selector="spec.nodeName=%s" % name)
    capacity = gang.cluster_capacity(nodes, pods_by_node, resource, tolerations, params["node_selector"])
    capacity["why_resource"] = why
    result.add_evidence("capacity", capacity)
    observed = {"resource": resource, "free": capacity["free"], "nodes": [(r["node"], r["free"]) for r in capacity["nodes"]],
                "excluded": capacity["excluded"]}
    try:
        plan = gang.plan_jobs(capacity, params["max_pods"])
    except gang.PlanError as exc:
        result.failed("gang_capacity", str(exc), observed, "free %s on schedulable nodes" % resource)
        return capacity, None
    result.add_evidence("plan", plan)
    result.passed(
        "gang_capacity",
        "%s %s free on %d node(s) (%s); job A: %d pods x %s, job B: %d pods x %s%s" % (
            plan["free"], resource, len(plan["nodes"]), why, plan["job_a_pods"], plan["request"], plan["job_b_pods"],
            plan["request"], "; %s" % plan["note"] if plan["pin_node"] else ""),
        observed, "free %s on schedulable nodes" % resource)
    return capacity, plan


# --------------------------------------------------------------------------- the two jobs


class GangRun:
    """Creates and observes the gang jobs of one scheduler in a temporary namespace."""

    def __init__(self, kube, params, scheduler, plan):
        self.kube = kube
        self.params = params
        self.scheduler = scheduler
        self.plan = plan
        self.timeline = gang.Timeline()
        self.t0 = time.monotonic()
        self.namespace = kube.temp_namespace(REQUIREMENT)
        self.labels = kube.labels(REQUIREMENT)
        self.queue_name = self.namespace  # unique: the cluster-scoped Kueue objects are named after it

    def now(self):
        return time.monotonic() - self.t0

    @property
    def is_volcano(self):
        return self.scheduler["name"] == gang.VOLCANO

    def setup(self):
        if not self.is_volcano:
            for obj in gang.render_kueue_queues(self.queue_name, self.namespace, self.plan, self.labels, self.scheduler["api_version"]):
                self.kube.create(obj)

    def create_job(self, job):
        name = JOB_NAMES[job]
        common = {"labels": self.labels, "image": self.params["image"], "tolerations": self.params["tolerations"],
                  "node_selector": self.params["node_selector"]}
        if self.is_volcano:
            manifest = gang.render_volcano_job(name, self.namespace, self.plan, job, queue=self.params["volcano_queue"], **common)
        else:
            manifest = gang.render_kueue_job(name, self.namespace, self.plan, job, self.queue_name, **common)
        self.kube.create(manifest)
        self.timeline.note(self.now(), job.upper(), "job %s created (%d pods of %s %s)" % (
            name, gang.job_pods(self.plan, job), self.plan["request"], self.plan["resource"]))

    def job_api(self):
        return gang.VOLCANO_JOB_API if self.is_volcano else "batch/v1"

    def observe(self, job):
        """(pods, group) of a job now, recorded in the timeline."""
        found = self.kube.list("v1", "Pod", namespace=self.namespace, label_selector=gang.pod_selector(job))
        group = self.group(job)
        self.timeline.observe(self.now(), job.upper(), found, gang.group_summary(group))
        return found, group

    def group(self, job):
        """The PodGroup (Volcano) or Workload (Kueue) of a job, or None."""
        if self.is_volcano:
            items = self.kube.list(gang.VOLCANO_PODGROUP_API, "PodGroup", namespace=self.namespace)
        else:
            items = self.kube.list(self.scheduler["api_version"], "Workload", namespace=self.namespace)
        owned = [i for i in items if gang.owned_by(i, "Job", JOB_NAMES[job])]
        return owned[0] if owned else None

    def events(self):
        return self.kube.list("v1", "Event", namespace=self.namespace)

    def hold_reason(self, job, group, found):
        label = "job %s" % job.upper()
        if self.is_volcano:
            return gang.volcano_hold_reason(group, self.events(), found, self.plan["resource"], job=label)
        return gang.kueue_hold_reason(group, self.events(), self.plan["resource"], job=label)

    def delete_job(self, job):
        """Delete a job and its pods; wait (bounded) until the pods and the PodGroup/Workload are gone."""
        self.kube.delete(self.job_api(), "Job", JOB_NAMES[job], self.namespace)
        for pod in self.kube.list("v1", "Pod", namespace=self.namespace, label_selector=gang.pod_selector(job)):
            self.kube.delete("v1", "Pod", pod["metadata"]["name"], self.namespace)

        def gone():
            found, group = self.observe(job)
            return not found and group is None, {"pods": pods.summarize(found), "group": gang.group_summary(group)}

        self.kube.wait_for(gone, self.params["timeout"], interval=self.interval(), what="job %s and its pods deleted" % JOB_NAMES[job])
        self.timeline.note(self.now(), job.upper(), "job %s and its pods deleted" % JOB_NAMES[job])

    def interval(self):
        return min(2.0, max(0.2, self.params["hold_seconds"] / 10.0))


def run_job_a(run, result):
    """Job A must be scheduled completely; True when it was."""
    name = "gang_job_a_scheduled"
    count = run.plan["job_a_pods"]
    expected = "all %d pods of job A (%s %s in all, exactly the free capacity) bound and Running" % (
        count, run.plan["job_a_total"], run.plan["resource"])
    run.create_job("a")
    state = {}

    def probe():
        found, group = run.observe("a")
        state.update(pods=found, group=group)
        return gang.all_running(found, count), {"pods": pods.summarize(found), "group": gang.group_summary(group)}

    try:
        run.kube.wait_for(probe, run.params["timeout"], interval=run.interval(), what="job A scheduled and Running")
    except WaitTimeout:
        found, group = state.get("pods", []), state.get("group")
        result.add_evidence("job-a-group", group or {}, "json")
        verdict = gang.evaluate_gang(found, count)
        observed = {"pods": pods.summarize(found), "group": gang.group_summary(group)}
        if verdict["state"] == "partial":
            result.failed(name, "job A: %s within %ss" % (verdict["message"], run.params["timeout"]), observed, expected)
        elif verdict["state"] == "all":
            problems = [p["problem"] for p in pods.summarize(found) if p["problem"]]
            result.error(name, "job A's pods were bound but not Running within %ss: %s" % (
                run.params["timeout"], "; ".join(problems) or "no pod problem reported"), observed, expected)
        else:
            why = run.hold_reason("a", group, found)
            if why["verdict"] == "none":
                result.failed(name, "the %s scheduler did not schedule job A, which fits the free capacity, within %ss, "
                              "and gave no reason" % (run.scheduler["name"], run.params["timeout"]), observed, expected)
            else:
                result.error(name, "job A, sized to the free capacity measured before, was not scheduled within %ss "
                             "(did the free capacity change?): %s" % (run.params["timeout"], why["message"]), observed, expected)
        return False
    observed = {"pods": pods.summarize(state["pods"]), "group": gang.group_summary(state["group"])}
    result.add_evidence("job-a-group", state["group"] or {}, "json")
    result.exercised(name, "job A: %s and Running" % gang.evaluate_gang(state["pods"], count)["message"], observed, expected)
    return True


def run_job_b(run, result):
    """Job B must stay completely unscheduled for hold_seconds, for lack of the gang resource."""
    name = "gang_job_b_held"
    count = run.plan["job_b_pods"]
    hold = run.params["hold_seconds"]
    expected = "none of the %d pods of job B (%s %s in all, %s free) bound for %ss, held back for lack of %s" % (
        count, run.plan["job_b_total"], run.plan["resource"], run.plan["free"], hold, run.plan["resource"])
    run.create_job("b")
    start = time.monotonic()
    deadline = start + hold
    settle = min(10.0, max(1.0, hold / 3.0))
    first_bound = None
    while True:
        found, group = run.observe("b")
        verdict = gang.evaluate_gang(found, count)
        now = time.monotonic()
        if verdict["state"] != "none" and first_bound is None:
            # Binding happens pod by pod: let it settle before judging partial against complete.
            first_bound = now
            deadline = max(deadline, now + settle) if verdict["state"] == "partial" else now
        if now >= deadline:
            break
        time.sleep(min(run.interval(), max(deadline - now, 0.05)))
    held_for = round(time.monotonic() - start, 1)
    observed = {"pods": pods.summarize(found), "group": gang.group_summary(group), "observed_seconds": held_for}
    result.add_evidence("job-b-group", group or {}, "json")
    if verdict["state"] == "partial":
        result.failed(name, "job B: %s" % verdict["message"], observed, expected)
        return
    if verdict["state"] == "all":
        result.error(name, "job B, one pod larger than the free capacity, was scheduled completely (%s); the free capacity "
                     "must have grown during the test, so it proves nothing" % verdict["message"], observed, expected)
        return
    why = run.hold_reason("b", group, found)
    observed["reasons"] = why["messages"]
    result.add_evidence("job-b-reasons", "\n".join(why["messages"]) + "\n" if why["messages"] else "(none reported)\n", "text")
    if why["verdict"] == "lack_of_resource":
        result.exercised(name, "job B (%d pods of %s %s, %s in all, %s free) stayed completely unscheduled for %ss: %s" % (
            count, run.plan["request"], run.plan["resource"], run.plan["job_b_total"], run.plan["free"], held_for,
            why["message"]), observed, expected)
    elif why["verdict"] == "admitted":
        result.failed(name, why["message"], observed, expected)
    else:
        result.error(name, "job B stayed unscheduled, but that proves nothing: %s" % why["message"], observed, expected)


def run_gang_test(kube, params, result, scheduler, plan):
    run = GangRun(kube, params, scheduler, plan)
    try:
        run.setup()
        if run_job_a(run, result):
            run.delete_job("a")
            run_job_b(run, result)
        else:
            result.skipped("gang_job_b_held", "not run: job A, which fits the free capacity, was not scheduled")
    finally:
        result.add_evidence("timeline", run.timeline.render(), "text")


def verify(kube, params, result):
    scheduler = detect_scheduler(kube, params, result)
    if scheduler is None:
        return None
    capacity, plan = measure_capacity(kube, params, result)
    if plan is None:
        return None
    if kube.module.check_mode:
        result.skipped("gang_job_a_scheduled", "check mode: the gang jobs were not run")
        result.skipped("gang_job_b_held", "check mode: the gang jobs were not run")
        return "skipped"
    run_gang_test(kube, params, result, scheduler, plan)
    return None


def main():
    argument_spec = common_argument_spec(
        {
            "scheduler": {"type": "str", "choices": ["auto", gang.VOLCANO, gang.KUEUE], "default": "auto"},
            "resource": {"type": "str", "default": "auto"},
            "max_pods": {"type": "int", "default": gang.DEFAULT_MAX_PODS},
            "hold_seconds": {"type": "int", "default": 30},
            "image": {"type": "str", "default": gang.DEFAULT_IMAGE},
            "node_selector": {"type": "dict", "default": {}},
            "tolerations": {"type": "list", "elements": "dict", "default": []},
            "volcano_namespace": {"type": "str", "default": "volcano-system"},
            "volcano_queue": {"type": "str", "default": "default"},
            "kueue_namespace": {"type": "str", "default": "kueue-system"},
        }
    )
    module = AnsibleK8SModule(argument_spec=argument_spec, supports_check_mode=True)
    if module.params["max_pods"] < 2:
        module.fail_json(msg="max_pods must be at least 2 (job B needs one pod more than job A), got %d" % module.params["max_pods"])
    if module.params["hold_seconds"] < 1:
        module.fail_json(msg="hold_seconds must be at least 1, got %d" % module.params["hold_seconds"])
    if not module.params["resource"]:
        module.fail_json(msg="resource must be auto or a resource name such as nvidia.com/gpu or cpu")
    run_requirement(module, REQUIREMENT, verify)


if __name__ == "__main__":
    main()
