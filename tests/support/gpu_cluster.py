"""A fake GPU cluster for the accelerator verifiers: plays the scheduler, the device plugin and the kubelet.

Used with ``tests.support.fakeapi.FakeKubeAPI``. Nodes are the recorded GPU nodes of
``../shared/k8s-fixtures`` (``gpu-node-1``: 2 x ``nvidia.com/gpu``; ``gpu-node-2``: 2, tainted
``nvidia.com/gpu=present:NoSchedule``); GPUs get H100 names and UUIDs in the real ``nvidia-smi -L`` format.

The "scheduler" binds a pod when a node matches its nodeSelector, its taints are tolerated and enough
GPUs are free (allocatable minus the requests of bound, non-terminated pods) or, for DRA pods, devices of
the node's ResourceSlices can be allocated to its claims (``dra_driver()`` publishes them; claims of
templates are generated and allocated as the resourceclaim controller and the scheduler do), else it sets
``PodScheduled=False/Unschedulable`` with a message in the recorded scheduler format.

The "kubelet" runs every container's command for real (``sh -c``) in a sandbox: the device plugin's
allocation becomes files ``<root>/dev/nvidiaN`` and, for containers given a GPU, a fake ``nvidia-smi``
on PATH (the toolkit injects it) that prints the real ``nvidia-smi -L`` lines. Tests point the probe's
device glob at ``<root>/dev`` (profile override ``device_glob``). Knobs break the isolation the way a
misconfigured runtime would: ``bypass_leak`` (the bypass variable exposes every GPU), ``share_uuid``
(every allocation gets GPU 0), ``tool_missing`` (no ``nvidia-smi`` injected), ``ignore_gpus`` (the
scheduler does not account GPUs).
"""

import copy
import os
import shutil
import subprocess

from tests.support.fakeapi import PRESET_NAMESPACES

RESOURCE = "nvidia.com/gpu"
GPU_NAME = "NVIDIA H100 80GB HBM3"
# the real UUID of ../shared/gpu/h100-node-probe.txt first, then made-up ones of the same shape
UUIDS = ["GPU-1d4aa5ce-c219-9f97-a29b-d4298760dab3", "GPU-77c2b0e4-5a1d-4c3e-9f21-0b8e6d2a4c10",
         "GPU-a3f09c51-2e7b-4d86-b1c4-58e9f0d7a622", "GPU-c8d14e27-9b30-4f5a-8e62-d3a7c1b9f804"]
T0 = "2026-12-01T17:03:36Z"
DRA = "resource.k8s.io/v1"
DRA_DRIVER = "gpu.nvidia.com"


def dra_driver(fake, node_name="gpu-node-1", devices=2):
    """The NVIDIA DRA driver's DeviceClass and a node's ResourceSlice, in the recorded shapes (driver renamed)."""
    device_class = copy.deepcopy(fake.recorded("objects/deviceclass-gpu.example.com.json")["response"])
    resource_slice = copy.deepcopy(fake.recorded("objects/resourceslice-gpu-node-1-gpu.example.com.json")["response"])
    for obj in (device_class, resource_slice):
        for key in ("resourceVersion", "uid", "managedFields"):
            obj["metadata"].pop(key, None)
    device_class["metadata"]["name"] = DRA_DRIVER
    device_class["spec"]["selectors"][0]["cel"]["expression"] = 'device.driver == "%s"' % DRA_DRIVER
    resource_slice["metadata"]["name"] = "%s-%s" % (node_name, DRA_DRIVER)
    spec = resource_slice["spec"]
    spec.update(driver=DRA_DRIVER, nodeName=node_name)
    spec["pool"]["name"] = node_name
    template = spec["devices"][0]
    spec["devices"] = [dict(copy.deepcopy(template), name="gpu-%d" % i, attributes=dict(template["attributes"], index={"int": i}))
                       for i in range(devices)]
    fake.put_object(device_class)
    fake.put_object(resource_slice)


def recorded_node(fake, fixture, gpus=None, name=None):
    """Store a recorded Node (``objects/<fixture>``), optionally with another GPU count or name."""
    node = copy.deepcopy(fake.recorded("objects/%s" % fixture)["response"])
    for key in ("resourceVersion", "uid", "managedFields"):
        node["metadata"].pop(key, None)
    if name:
        node["metadata"]["name"] = name
        node["metadata"].setdefault("labels", {})["kubernetes.io/hostname"] = name
    if gpus is not None:
        for section in ("capacity", "allocatable"):
            node["status"][section][RESOURCE] = str(gpus)
    return fake.put_object(node)


def _selector_matches(pod, node):
    wanted = (pod.get("spec") or {}).get("nodeSelector") or {}
    labels = node["metadata"].get("labels") or {}
    return all(labels.get(k) == v for k, v in wanted.items())


def _tolerates(pod, node):
    tolerations = (pod.get("spec") or {}).get("tolerations") or []
    for taint in (node.get("spec") or {}).get("taints") or []:
        if taint.get("effect") not in ("NoSchedule", "NoExecute"):
            continue
        if not any(t.get("key") == taint["key"] and (t.get("operator") == "Exists" or t.get("value") == taint.get("value"))
                   and t.get("effect") in (None, "", taint["effect"]) for t in tolerations):
            return False
    return True


def _gpu_request(container):
    resources = container.get("resources") or {}
    return int((resources.get("limits") or {}).get(RESOURCE) or (resources.get("requests") or {}).get(RESOURCE) or 0)


def pod_gpus(pod):
    return sum(_gpu_request(c) for c in (pod.get("spec") or {}).get("containers") or [])


def unschedulable_message(reasons, total, claims=False):
    """The scheduler's message (recorded format) for {reason: node count} on ``total`` nodes (``claims``: DRA pod)."""
    parts = ", ".join("%d %s" % (count, reason) for reason, count in sorted(reasons.items()))
    insufficient = sum(c for r, c in reasons.items() if r.startswith("Insufficient"))
    if insufficient == total:
        preemption = "%d No preemption victims found for incoming pod." % total
    elif insufficient:
        preemption = "%d No preemption victims found for incoming pod, %d Preemption is not helpful for scheduling." % (
            insufficient, total - insufficient)
    else:
        preemption = "%d Preemption is not helpful for scheduling." % total
    return "0/%d nodes are available: %s. %s, preemption: 0/%d nodes are available: %s" % (
        total, parts, "still not schedulable" if claims else "no new claims to deallocate", total, preemption)


class GpuCluster:
    """Plays the scheduler, the NVIDIA device plugin + toolkit and the kubelet on the fake API server."""

    def __init__(self, fake, root, bypass_leak=False, share_uuid=False, tool_missing=False, ignore_gpus=False,
                 runtime_class=True, waiting=None):
        self.fake = fake
        self.root = str(root)
        self.bypass_leak = bypass_leak
        self.share_uuid = share_uuid
        self.tool_missing = tool_missing
        self.ignore_gpus = ignore_gpus
        self.waiting = waiting  # containers stay waiting with this reason (ImagePullBackOff, ContainerCreating)
        self.allocations = {}  # (namespace, pod, container) -> [host GPU index]
        self.seen_pods = []
        os.makedirs(self.root, exist_ok=True)
        if runtime_class:
            fake.put_object({"apiVersion": "node.k8s.io/v1", "kind": "RuntimeClass", "metadata": {"name": "nvidia"},
                             "handler": "nvidia"})
        fake.add_reconciler(self.reconcile)

    @property
    def device_glob(self):
        return os.path.join(self.root, "dev", "nvidia[0-9]*")

    def reconcile(self, fake):
        nodes = fake.objects("v1", "nodes")
        for pod in fake.objects("v1", "pods"):
            if pod["metadata"]["namespace"] in PRESET_NAMESPACES:
                continue
            if not pod["spec"].get("nodeName"):
                self.schedule(fake, pod, nodes)
            elif (pod.get("status") or {}).get("phase") == "Pending":
                self.run(fake, pod)

    # -- scheduler -----------------------------------------------------------

    def used(self, fake, node_name):
        return sum(pod_gpus(p) for p in fake.objects("v1", "pods")
                   if p["spec"].get("nodeName") == node_name and p["status"].get("phase") not in ("Succeeded", "Failed"))

    def schedule(self, fake, pod, nodes):
        if any(c.get("type") == "PodScheduled" and c.get("status") == "False" for c in pod["status"].get("conditions") or []):
            return
        claims = self.generate_claims(fake, pod)
        pod = fake.get_object("v1", "pods", pod["metadata"]["name"], pod["metadata"]["namespace"])
        reasons = {}
        for node in nodes:
            name = node["metadata"]["name"]
            if not _selector_matches(pod, node):
                reason = "node(s) didn't match Pod's node affinity/selector"
            elif not _tolerates(pod, node):
                reason = "node(s) had untolerated taint(s)"
            elif not self.ignore_gpus and pod_gpus(pod) > int(node["status"]["allocatable"].get(RESOURCE, 0)) - self.used(fake, name):
                reason = "Insufficient %s" % RESOURCE
            elif claims and not self.allocate_claims(fake, pod, claims, name):
                reason = "cannot allocate all claims"
            else:
                fake.bind_pod(pod["metadata"]["namespace"], pod["metadata"]["name"], name)
                self.seen_pods.append(pod["metadata"]["name"])
                return
            reasons[reason] = reasons.get(reason, 0) + 1
        status = dict(pod["status"], conditions=[{"type": "PodScheduled", "observedGeneration": 1, "status": "False",
                                                  "lastProbeTime": None, "lastTransitionTime": T0, "reason": "Unschedulable",
                                                  "message": unschedulable_message(reasons, len(nodes), bool(claims))}])
        fake.set_status("v1", "pods", pod["metadata"]["name"], status, namespace=pod["metadata"]["namespace"])

    # -- DRA: the resourceclaim controller and the scheduler's allocation ------------

    def generate_claims(self, fake, pod):
        """Create the ResourceClaims of the pod's claim templates (as the resourceclaim controller); returns them."""
        namespace, name = pod["metadata"]["namespace"], pod["metadata"]["name"]
        claims, statuses = [], []
        for item in pod["spec"].get("resourceClaims") or []:
            claim_name = "%s-%s-x7k2q" % (name, item["name"])
            claim = fake.get_object(DRA, "resourceclaims", claim_name, namespace)
            if claim is None:
                template = fake.get_object(DRA, "resourceclaimtemplates", item["resourceClaimTemplateName"], namespace)
                claim = fake.put_object({
                    "apiVersion": DRA, "kind": "ResourceClaim",
                    "metadata": {"name": claim_name, "namespace": namespace,
                                 "annotations": {"resource.kubernetes.io/pod-claim-name": item["name"]},
                                 "ownerReferences": [{"apiVersion": "v1", "kind": "Pod", "name": name, "uid": pod["metadata"]["uid"],
                                                      "controller": True, "blockOwnerDeletion": True}]},
                    "spec": template["spec"]["spec"]})
            claims.append(claim)
            statuses.append({"name": item["name"], "resourceClaimName": claim_name})
        if statuses and pod["status"].get("resourceClaimStatuses") != statuses:
            fake.set_status("v1", "pods", name, dict(pod["status"], resourceClaimStatuses=statuses), namespace=namespace)
        return claims

    def allocate_claims(self, fake, pod, claims, node_name):
        """Allocate one device per claim request on ``node_name``; False when the node has too few free."""
        published = []
        for item in fake.objects(DRA, "resourceslices"):
            if item["spec"].get("nodeName") == node_name:
                published.extend((item["spec"]["driver"], item["spec"]["pool"]["name"], d["name"]) for d in item["spec"]["devices"])
        taken = set()
        for claim in fake.objects(DRA, "resourceclaims"):
            for result in (((claim.get("status") or {}).get("allocation") or {}).get("devices") or {}).get("results") or []:
                taken.add((result["driver"], result["pool"], result["device"]))
        free = [d for d in published if d not in taken]
        wanted = sum(len(c["spec"]["devices"]["requests"]) for c in claims if not (c.get("status") or {}).get("allocation"))
        if wanted > len(free):
            return False
        for claim in claims:
            if (claim.get("status") or {}).get("allocation"):
                continue
            results = []
            for request in claim["spec"]["devices"]["requests"]:
                driver, pool, device = free.pop(0)
                results.append({"request": request["name"], "driver": driver, "pool": pool, "device": device})
            fake.set_status(DRA, "resourceclaims", claim["metadata"]["name"], {
                "allocation": {"devices": {"results": results}, "nodeSelector": {"nodeSelectorTerms": [
                    {"matchFields": [{"key": "metadata.name", "operator": "In", "values": [node_name]}]}]}},
                "reservedFor": [{"resource": "pods", "name": pod["metadata"]["name"], "uid": pod["metadata"]["uid"]}]},
                namespace=claim["metadata"]["namespace"])
        return True

    def claimed_devices(self, fake, pod, container):
        """Host GPU indexes of the DRA devices allocated to the claims ``container`` uses."""
        names = [c["name"] for c in (container.get("resources") or {}).get("claims") or []]
        indexes = []
        for status in pod["status"].get("resourceClaimStatuses") or []:
            if status["name"] not in names:
                continue
            claim = fake.get_object(DRA, "resourceclaims", status["resourceClaimName"], pod["metadata"]["namespace"])
            for result in claim["status"]["allocation"]["devices"]["results"]:
                indexes.append(int(result["device"].rsplit("-", 1)[1]))
        return indexes

    def release_claims(self, fake, pod):
        """The resourceclaim controller deletes a finished pod's generated claims."""
        for status in pod["status"].get("resourceClaimStatuses") or []:
            fake.delete_object(DRA, "resourceclaims", status["resourceClaimName"], pod["metadata"]["namespace"])

    # -- device plugin, toolkit, kubelet ---------------------------------------

    def allocate(self, fake, pod, container):
        """Host GPU indexes the device plugin gives ``container`` (free ones of its node)."""
        count = _gpu_request(container)
        if not count:
            return []
        node = fake.get_object("v1", "nodes", pod["spec"]["nodeName"])
        total = int(node["status"]["allocatable"].get(RESOURCE, 0))
        live = set((p["metadata"]["namespace"], p["metadata"]["name"]) for p in fake.objects("v1", "pods")
                   if p["status"].get("phase") not in ("Succeeded", "Failed"))
        taken = set(i for key, idx in self.allocations.items() if key[:2] in live for i in idx)
        free = [i for i in range(total) if i not in taken]
        given = [0] * count if self.share_uuid else free[:count]
        self.allocations[(pod["metadata"]["namespace"], pod["metadata"]["name"], container["name"])] = given
        return given

    def visible(self, fake, pod, container, given):
        env = dict((e["name"], e.get("value")) for e in container.get("env") or [])
        if not given and self.bypass_leak and env.get("NVIDIA_VISIBLE_DEVICES") == "all":
            node = fake.get_object("v1", "nodes", pod["spec"]["nodeName"])
            return list(range(int(node["status"]["allocatable"].get(RESOURCE, 0))))
        return given

    def execute(self, container, gpus):
        """Run the container's command in the sandbox; returns its output."""
        dev = os.path.join(self.root, "dev")
        bin_dir = os.path.join(self.root, "bin")
        for path in (dev, bin_dir):
            shutil.rmtree(path, ignore_errors=True)
            os.makedirs(path)
        for index in gpus:
            open(os.path.join(dev, "nvidia%d" % index), "w").close()
        for control in ("nvidiactl", "nvidia-uvm", "nvidia-uvm-tools"):
            open(os.path.join(dev, control), "w").close()
        path = "/usr/bin:/bin"
        if gpus and not self.tool_missing:
            lines = ["GPU %d: %s (UUID: %s)" % (n, GPU_NAME, UUIDS[i]) for n, i in enumerate(gpus)]
            tool = os.path.join(bin_dir, "nvidia-smi")
            with open(tool, "w") as handle:
                handle.write("#!/bin/sh\ncat <<'EOF'\n%s\nEOF\n" % "\n".join(lines))
            os.chmod(tool, 0o755)
            path = bin_dir + ":" + path
        env = {"PATH": path}
        env.update((e["name"], e.get("value", "")) for e in container.get("env") or [] if e["name"] != "AIC_HOLD")
        command = (container.get("command") or []) + (container.get("args") or [])
        proc = subprocess.run(command, env=env, capture_output=True, text=True, timeout=20, check=False)
        return proc.stdout + proc.stderr

    def run(self, fake, pod):
        namespace, name = pod["metadata"]["namespace"], pod["metadata"]["name"]
        if self.waiting:
            message = ('Back-off pulling image "%s"' % pod["spec"]["containers"][0]["image"]
                       if self.waiting == "ImagePullBackOff" else None)
            statuses = [{"name": c["name"], "ready": False, "image": c["image"], "restartCount": 0,
                         "state": {"waiting": dict({"reason": self.waiting}, **({"message": message} if message else {}))}}
                        for c in pod["spec"]["containers"]]
            if pod["status"].get("containerStatuses") != statuses:
                fake.set_status("v1", "pods", name, dict(pod["status"], containerStatuses=statuses), namespace=namespace)
            return
        holds = False
        statuses = []
        for container in pod["spec"]["containers"]:
            given = self.allocate(fake, pod, container) + self.claimed_devices(fake, pod, container)
            fake.set_pod_log(namespace, name, self.execute(container, self.visible(fake, pod, container, given)),
                             container=container["name"])
            holds = holds or any(e["name"] == "AIC_HOLD" for e in container.get("env") or [])
            statuses.append({"name": container["name"], "ready": holds, "image": container["image"],
                             "state": {"running": {"startedAt": T0}} if holds else
                             {"terminated": {"exitCode": 0, "reason": "Completed"}}})
        status = dict(pod["status"], phase="Running" if holds else "Succeeded", containerStatuses=statuses)
        conditions = [c for c in status.get("conditions") or [] if c.get("type") != "Ready"]
        status["conditions"] = conditions + [{"type": "Ready", "status": "True" if holds else "False"}]
        fake.set_status("v1", "pods", name, status, namespace=namespace)
        if not holds:
            self.release_claims(fake, pod)


def leftovers(fake):
    """Objects of the check still in the fake (by label) and namespaces other than the preset ones."""
    ours = ["%s/%s" % (o["kind"], o["metadata"]["name"]) for o in fake.objects()
            if (o["metadata"].get("labels") or {}).get("app.kubernetes.io/managed-by") == "ai-conformance-rke2"]
    spaces = [o["metadata"]["name"] for o in fake.objects("v1", "namespaces") if o["metadata"]["name"] not in PRESET_NAMESPACES]
    return ours + ["Namespace/%s" % n for n in spaces if "Namespace/%s" % n not in ours]
