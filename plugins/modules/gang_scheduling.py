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
    not one of its pods may be bound - a partial binding seen at any sample fails, with the timeline as evidence,
    even when it later disappears - and its PodGroup (Volcano) or Workload (Kueue) must say it lacks the gang
    resource. The result names the mechanism that held it - admission (Kueue quota, Volcano enqueue) or scheduling
    (the Volcano gang plugin); held back for any other resource or reason is an error naming it, never a pass.
  - The test pods come from the collection's test-pod builder - Pod Security C(restricted), CPU/memory requests and
    limits, the image C(agnhost) of the table of test images (C(pause)), the common O(tolerations) plus the gang
    resource's own taint; the temporary namespace enforces C(restricted).
  - With Volcano the jobs are C(batch.volcano.sh/v1alpha1) Jobs with C(minAvailable) = their pod count. With Kueue a
    temporary ResourceFlavor, ClusterQueue (quota = the free capacity, only the test namespace) and LocalQueue admit
    suspended C(batch/v1) Jobs.
  - Evidence - scheduler versions, capacity per node, the plan, a timeline of pod phases and node assignments of both
    jobs, PodGroup/Workload status and events. Everything created is deleted afterwards, also on failure.
  - No free capacity (for example all GPUs busy) is an error (the test could not run) naming the pods that hold it;
    so are test pods that cannot start (image pull, untolerated taint, admission policy).
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
  node_selector:
    description:
      - Labels the nodes of the test must have; the pods get them as C(nodeSelector) and only those nodes count.
    type: dict
    default: {}
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

from ansible_collections.ai_conformance.rke2.plugins.module_utils import gang, pods, policy, testpods
from ansible_collections.ai_conformance.rke2.plugins.module_utils.kube import (
    KubeError,
    Stuck,
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
        installed = any(e["found"] for e in evaluations)
        result.failed("gang_scheduler", message, observed, expected, cause="capability" if installed else "not_installed")
        return None
    result.passed("gang_scheduler", message, observed, expected)
    return chosen


# --------------------------------------------------------------------------- capacity


def measure_capacity(kube, params, result, builder):
    """(capacity, plan); plan is None after recording why no test can run."""
    nodes = kube.list("v1", "Node")
    resource, why = gang.choose_resource(nodes, params["resource"])
    tolerations = builder.tolerations_for([resource])
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
        # No free capacity keeps the test from running: the policy's error, never a failure of gang scheduling.
        result.outcome("gang_capacity", exc.cause, str(exc), observed, "free %s on schedulable nodes" % resource)
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

    def __init__(self, kube, params, scheduler, plan, builder):
        self.kube = kube
        self.params = params
        self.scheduler = scheduler
        self.plan = plan
        self.builder = builder
        self.timeline = gang.Timeline()
        self.t0 = time.monotonic()
        self.namespace = kube.temp_namespace(REQUIREMENT)
        self.labels = kube.labels(REQUIREMENT)
        self.queue_name = self.namespace  # unique: the cluster-scoped Kueue objects are named after it
        self.templates = dict((job, gang.pod_template(builder, plan, job, self.labels, params["node_selector"])) for job in "ab")
        # what the rendered pods request: an enqueue message naming no resource only counts when it is the gang resource alone
        self.requested = gang.requested_resources(self.templates["b"]["spec"])
        self.requests_only_resource = self.requested == [plan["resource"]]

    def now(self):
        return time.monotonic() - self.t0

    @property
    def is_volcano(self):
        return self.scheduler["name"] == gang.VOLCANO

    def setup(self):
        if not self.is_volcano:
            for obj in gang.render_kueue_queues(self.queue_name, self.namespace, self.plan, self.templates["b"], self.labels,
                                                self.scheduler["api_version"]):
                self.kube.create(obj)

    def create_job(self, job):
        name = JOB_NAMES[job]
        if self.is_volcano:
            manifest = gang.render_volcano_job(name, self.namespace, self.plan, job, self.templates[job], self.labels,
                                               queue=self.params["volcano_queue"])
        else:
            manifest = gang.render_kueue_job(name, self.namespace, self.plan, job, self.queue_name, self.templates[job], self.labels)
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

    def hold_reason(self, job, group, found, events=None):
        label = "job %s" % job.upper()
        events = self.events() if events is None else events
        if self.is_volcano:
            return gang.volcano_hold_reason(group, events, found, self.plan["resource"], self.requests_only_resource, job=label)
        return gang.kueue_hold_reason(group, events, self.plan["resource"], job=label)

    def creation_problem(self, job, events):
        """(cause, message) when the job's controller could not create its pods (admission), else None."""
        for event in events:
            involved = event.get("involvedObject") or {}
            if involved.get("kind") in ("Job", "PodGroup") and event.get("type") == "Warning":
                cause = policy.classify_message(event.get("message"))
                if cause:
                    return cause, "%s %s could not create its pods: %s" % (involved.get("kind"), involved.get("name"), event.get("message"))
        return None

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


def _pod_cause(found, events):
    """(cause, message) of the first test pod the policy can explain (image pull, taint, still pulling...)."""
    by_pod = {}
    for event in events:
        involved = event.get("involvedObject") or {}
        if involved.get("kind") == "Pod":
            by_pod.setdefault(involved.get("name"), []).append(event)
    for pod in sorted(found, key=gang.pod_name):
        classified = policy.classify_pod(pod, by_pod.get(gang.pod_name(pod), []))
        if classified:
            return classified
    return None


def run_job_a(run, result):
    """Job A must be scheduled completely (the exercise); True when it was."""
    name = "gang_job_a_scheduled"
    count = run.plan["job_a_pods"]
    expected = "all %d pods of job A (%s %s in all, exactly the free capacity) bound and Running" % (
        count, run.plan["job_a_total"], run.plan["resource"])
    try:
        run.create_job("a")
    except KubeError as exc:
        result.from_exception(name, exc, "job A could not be created")
        return False
    state = {}

    def probe():
        found, group = run.observe("a")
        state.update(pods=found, group=group)
        for pod in found:
            classified = policy.classify_pod(pod)
            if classified and classified[0] == "image_pull":
                raise Stuck(classified[1], kind="image", state=pods.summarize(found), cause="image_pull")
        return gang.all_running(found, count), {"pods": pods.summarize(found), "group": gang.group_summary(group)}

    try:
        run.kube.wait_for(probe, run.params["timeout"], interval=run.interval(), what="job A scheduled and Running")
    except Stuck as exc:
        result.add_evidence("job-a-group", state.get("group") or {}, "json")
        result.error(name, "job A's pods cannot start: %s" % exc, {"pods": exc.state}, expected, cause=exc.cause)
        return False
    except WaitTimeout:
        found, group = state.get("pods", []), state.get("group")
        result.add_evidence("job-a-group", group or {}, "json")
        events = run.events()
        verdict = gang.evaluate_gang(found, count)
        observed = {"pods": pods.summarize(found), "group": gang.group_summary(group)}
        if verdict["state"] == "partial":
            result.failed(name, "job A: %s within %ss" % (verdict["message"], run.params["timeout"]), observed, expected, exercised=True)
            return False
        if verdict["state"] == "all":
            cause, why = _pod_cause(found, events) or ("timeout", "; ".join(
                p["problem"] for p in pods.summarize(found) if p["problem"]) or "no pod problem reported")
            result.error(name, "job A's pods were bound but not Running within %ss: %s" % (run.params["timeout"], why),
                         observed, expected, cause=cause)
            return False
        created = run.creation_problem("a", events) if not found else None
        if created:
            result.error(name, "job A: %s" % created[1], observed, expected, cause=created[0])
            return False
        why = run.hold_reason("a", group, found, events)
        observed["mechanism"] = why["mechanism"]
        if why["verdict"] == "none":
            result.failed(name, "the %s scheduler did not schedule job A, which fits the free capacity, within %ss, "
                          "and gave no reason" % (run.scheduler["name"], run.params["timeout"]), observed, expected, exercised=True)
            return False
        pod_cause = _pod_cause(found, events)
        cause = pod_cause[0] if pod_cause and pod_cause[0] == "untolerated_taint" else (
            "no_capacity" if why["verdict"] == "lack_of_resource" or why["other_resources"] else "timeout")
        result.error(name, "job A, sized to the free capacity measured before, was not scheduled within %ss "
                     "(did the free capacity change?): %s" % (run.params["timeout"], why["message"]), observed, expected, cause=cause)
        return False
    observed = {"pods": pods.summarize(state["pods"]), "group": gang.group_summary(state["group"])}
    result.add_evidence("job-a-group", state["group"] or {}, "json")
    result.exercised(name, "job A: %s and Running" % gang.evaluate_gang(state["pods"], count)["message"], observed, expected)
    return True


def watch_job_b(run, count, hold):
    """Sample job B for ``hold`` seconds; returns (samples, pods, group) where samples are (seconds, evaluate_gang())."""
    start = time.monotonic()
    deadline = start + hold
    settle = min(10.0, max(1.0, hold / 3.0))
    samples = []
    extended = False
    while True:
        found, group = run.observe("b")
        now = time.monotonic()
        verdict = gang.evaluate_gang(found, count)
        samples.append((round(now - start, 1), verdict))
        if verdict["state"] == "partial" and not extended:
            # Binding happens pod by pod: watch a little longer to tell a partial gang from a complete one.
            extended = True
            deadline = max(deadline, now + settle)
        if now >= deadline:
            return samples, found, group
        time.sleep(min(run.interval(), max(deadline - now, 0.05)))


def run_job_b(run, result):
    """Job B must stay completely unscheduled for the whole hold window, for lack of the gang resource (the negative test)."""
    name = "gang_job_b_held"
    count = run.plan["job_b_pods"]
    hold = run.params["hold_seconds"]
    expected = "none of the %d pods of job B (%s %s in all, %s free) bound at any time during %ss, held back for lack of %s" % (
        count, run.plan["job_b_total"], run.plan["resource"], run.plan["free"], hold, run.plan["resource"])
    try:
        run.create_job("b")
    except KubeError as exc:
        result.from_exception(name, exc, "job B could not be created")
        return
    samples, found, group = watch_job_b(run, count, hold)
    window = gang.hold_window(samples)
    held_for = samples[-1][0]
    observed = {"pods": pods.summarize(found), "group": gang.group_summary(group), "observed_seconds": held_for,
                "samples": len(samples)}
    result.add_evidence("job-b-group", group or {}, "json")
    if window["state"] == "partial":
        observed["timeline"] = run.timeline.render()
        later = "" if window["last"]["state"] == "partial" else "; at the end of the window: %s" % window["last"]["message"]
        result.failed(name, "job B: %s (seen %ss after creation, during the %ss hold window%s); see the timeline" % (
            window["verdict"]["message"], window["at"], hold, later), observed, expected, exercised=True)
        return
    if window["state"] == "all":
        result.error(name, "job B, one pod larger than the free capacity, was scheduled completely (%s); the free capacity "
                     "must have grown during the test, so it proves nothing" % window["verdict"]["message"], observed, expected,
                     cause="timeout")
        return
    events = run.events()
    why = run.hold_reason("b", group, found, events)
    observed["reasons"] = why["messages"]
    observed["mechanism"] = why["mechanism"]
    result.add_evidence("job-b-reasons", "\n".join(why["messages"]) + "\n" if why["messages"] else "(none reported)\n", "text")
    result.add_evidence("job-b-held-by", {"scheduler": run.scheduler["name"], "mechanism": why["mechanism"], "verdict": why["verdict"],
                                          "requested_resources": run.requested, "other_resources": why["other_resources"]})
    if why["verdict"] == "lack_of_resource":
        result.exercised(name, "job B (%d pods of %s %s, %s in all, %s free) stayed completely unscheduled for %ss, held by %s: %s" % (
            count, run.plan["request"], run.plan["resource"], run.plan["job_b_total"], run.plan["free"], held_for,
            why["mechanism"], why["message"]), observed, expected)
    elif why["verdict"] == "admitted":
        result.failed(name, why["message"], observed, expected, exercised=True)
    elif why["other_resources"]:
        result.error(name, "job B stayed unscheduled, but for lack of %s, not of the gang resource %s, so that proves nothing: %s" % (
            ", ".join(why["other_resources"]), run.plan["resource"], why["message"]), observed, expected, cause="no_capacity")
    else:
        created = run.creation_problem("b", events) if not found else None
        pod_cause = _pod_cause(found, events)
        cause = created[0] if created else (pod_cause[0] if pod_cause and pod_cause[0] == "untolerated_taint" else "timeout")
        result.error(name, "job B stayed unscheduled, but that proves nothing: %s" % (created[1] if created else why["message"]),
                     observed, expected, cause=cause)


def run_gang_test(kube, params, result, scheduler, plan, builder):
    run = GangRun(kube, params, scheduler, plan, builder)
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
    builder = testpods.PodBuilder(params)
    capacity, plan = measure_capacity(kube, params, result, builder)
    if plan is None:
        return None
    if kube.module.check_mode:
        result.skipped("gang_job_a_scheduled", "check mode: the gang jobs were not run")
        result.skipped("gang_job_b_held", "check mode: the gang jobs were not run")
        return "skipped"
    result.add_evidence("test-images", builder.images_used(["agnhost"]))
    run_gang_test(kube, params, result, scheduler, plan, builder)
    return None


def main():
    argument_spec = common_argument_spec(
        {
            "scheduler": {"type": "str", "choices": ["auto", gang.VOLCANO, gang.KUEUE], "default": "auto"},
            "resource": {"type": "str", "default": "auto"},
            "max_pods": {"type": "int", "default": gang.DEFAULT_MAX_PODS},
            "hold_seconds": {"type": "int", "default": 30},
            "node_selector": {"type": "dict", "default": {}},
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
