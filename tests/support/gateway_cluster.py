"""A fake Gateway API cluster for ai_inference tests: plays Traefik, the Deployment controller, the kubelet and the pod network.

Used with ``tests.support.fakeapi.FakeKubeAPI``: a create hook applies the status defaults of the real
v1.4.1 CRDs (as the apiserver does: the recorded GatewayClass fixture shows Accepted=Unknown/Pending),
and a reconciler plays the controllers and the client pod's output (``client_log``).

The pod network: with ``default_deny`` a policy engine (as a Kyverno generate rule does) puts a
default-deny NetworkPolicy into every new namespace; a client pod in a namespace with such a policy
gets no answer at all, not even straight from a backend Service, so its control requests fail.
The Deployment controller creates its pods through the fake's admission (``create_pod_for``: Pod
Security of the namespace, LimitRange, quota), so a refused template yields the real ``FailedCreate``
event; ``backend_rejection`` forces such a refusal with a given message.
"""

import json

import yaml

from ansible_collections.ai_conformance.rke2.plugins.module_utils import gateway as gw
from tests.support.fakeapi import PRESET_NAMESPACES
from tests.support.shared import shared_path

T0 = "2026-11-23T06:30:00Z"
GOOD_COUNTS = {"header": (0, 200), "weighted": (161, 39)}


def crd_status_defaults():
    """{plural: default status} from the real CRDs (what the apiserver fills in on create)."""
    defaults = {}
    for plural in ("gatewayclasses", "gateways"):
        with open(shared_path("crds", "gateway-api", "gateway.networking.k8s.io_%s.yaml" % plural)) as handle:
            crd = yaml.safe_load(handle)
        version = [v for v in crd["spec"]["versions"] if v["name"] == "v1"][0]
        defaults[plural] = version["schema"]["openAPIV3Schema"]["properties"]["status"]["default"]
    return defaults


def cond(type_, status, reason, message="", generation=1):
    return {"type": type_, "status": status, "reason": reason, "message": message,
            "observedGeneration": generation, "lastTransitionTime": T0}


def client_log(warmup_ok=True, header=GOOD_COUNTS["header"], weighted=GOOD_COUNTS["weighted"], errors=0, control_error=None):
    """The client's output; ``control_error`` (``curl exit 28``...) makes the control requests fail, as the script reports it."""
    lines = ["starting"]
    if control_error:
        lines.append('AIC ' + json.dumps({"phase": "control", "ok": False, "failed": " ".join(gw.control_targets()),
                                          "attempts": 2 * gw.CONTROL_ATTEMPTS, "last_error": control_error, "other_sample": ""}))
        lines.append('AIC {"phase":"done"}')
        return "\n".join(lines) + "\n"
    lines.append('AIC ' + json.dumps({"phase": "control", "ok": True, "targets": " ".join(gw.control_targets()), "attempts": 2}))
    if not warmup_ok:
        lines.append('AIC {"phase":"warmup","ok":false,"target":"","attempts":60,"seconds":60,'
                     '"last_error":"http 404","other_sample":""}')
    else:
        lines.append('AIC {"phase":"warmup","ok":true,"target":"10.43.0.10:80","attempts":2,"seconds":1}')
        for phase, (a, b) in (("header", header), ("weighted", weighted)):
            lines.append('AIC ' + json.dumps({"phase": phase, "target": "10.43.0.10:80", "total": a + b + errors,
                                              "a": a, "b": b, "other": 0, "errors": errors,
                                              "last_error": "curl exit 28" if errors else "", "other_sample": ""}))
    lines.append('AIC {"phase":"done"}')
    return "\n".join(lines) + "\n"


class Cluster:
    """Plays the apiserver's CRD defaulting, Traefik, the Deployment controller and the kubelet."""

    def __init__(self, fake, controller=True, class_status=("True", "Handled", "Handled by Traefik controller"),
                 program_gateway=True, route_ok=True, backend_problem=None, log=None, default_deny=False,
                 backend_rejection=None, client_waiting=None):
        self.fake = fake
        self.default_deny = default_deny
        self.backend_rejection = backend_rejection
        self.client_waiting = client_waiting
        self.controller = controller
        self.class_status = class_status
        self.program_gateway = program_gateway
        self.route_ok = route_ok
        self.backend_problem = backend_problem
        self.log = client_log() if log is None else log
        self.client_pods = []
        self.seen = {"gateways": [], "httproutes": []}
        defaults = crd_status_defaults()

        def default_status(plural):
            def hook(obj, fake, dry_run):
                obj["status"] = json.loads(json.dumps(defaults[plural]))
            return hook

        fake.on_create(gw.V1, "gatewayclasses", default_status("gatewayclasses"))
        fake.on_create(gw.V1, "gateways", default_status("gateways"))
        fake.add_reconciler(self.reconcile)

    def reconcile(self, fake):
        if self.default_deny:
            self.policy_engine(fake)
        if self.controller:
            self.traefik(fake)
        self.deployments(fake)
        self.clients(fake)

    def policy_engine(self, fake):
        """A generate rule: every new namespace gets a default-deny NetworkPolicy."""
        for ns in fake.objects("v1", "namespaces"):
            name = ns["metadata"]["name"]
            if name in PRESET_NAMESPACES or fake.get_object("networking.k8s.io/v1", "networkpolicies", "default-deny-all", name):
                continue
            fake.put_object({"apiVersion": "networking.k8s.io/v1", "kind": "NetworkPolicy",
                             "metadata": {"name": "default-deny-all", "namespace": name},
                             "spec": {"podSelector": {}, "policyTypes": ["Ingress", "Egress"]}})

    @staticmethod
    def denied(fake, namespace):
        """Whether a NetworkPolicy selecting every pod of the namespace denies all traffic."""
        return any(p["spec"].get("podSelector") == {} and not p["spec"].get("ingress") and not p["spec"].get("egress")
                   for p in fake.objects("networking.k8s.io/v1", "networkpolicies", namespace=namespace))

    def traefik(self, fake):
        accepted = set()
        for gc in fake.objects(gw.V1, "gatewayclasses"):
            if gc["spec"].get("controllerName") != gw.DEFAULT_CONTROLLER:
                continue
            status, reason, message = self.class_status
            fake.set_status(gw.V1, "gatewayclasses", gc["metadata"]["name"],
                            {"conditions": [cond("Accepted", status, reason, message)]})
            if status == "True":
                accepted.add(gc["metadata"]["name"])
        for plural in self.seen:
            known = [o["metadata"]["uid"] for o in self.seen[plural]]
            self.seen[plural].extend(o for o in fake.objects(gw.V1, plural) if o["metadata"]["uid"] not in known)
        for g in fake.objects(gw.V1, "gateways"):
            if g["spec"]["gatewayClassName"] not in accepted or not self.program_gateway:
                continue
            ns, name = g["metadata"]["namespace"], g["metadata"]["name"]
            fake.set_status(gw.V1, "gateways", name, {
                "addresses": [{"type": "IPAddress", "value": "10.43.0.10"}],
                "conditions": [cond("Accepted", "True", "Accepted"), cond("Programmed", "True", "Programmed")],
                "listeners": [{"name": "http", "attachedRoutes": 1,
                               "supportedKinds": [{"group": gw.GROUP, "kind": "HTTPRoute"}],
                               "conditions": [cond("Accepted", "True", "Accepted"), cond("Programmed", "True", "Programmed"),
                                              cond("ResolvedRefs", "True", "ResolvedRefs")]}]}, namespace=ns)
        for r in fake.objects(gw.V1, "httproutes"):
            ns, name = r["metadata"]["namespace"], r["metadata"]["name"]
            resolved = cond("ResolvedRefs", "True", "ResolvedRefs") if self.route_ok else cond(
                "ResolvedRefs", "False", "BackendNotFound", "Cannot find service %s/%s" % (ns, gw.BACKEND_B))
            fake.set_status(gw.V1, "httproutes", name, {"parents": [{
                "parentRef": r["spec"]["parentRefs"][0], "controllerName": gw.DEFAULT_CONTROLLER,
                "conditions": [cond("Accepted", "True", "Accepted"), resolved]}]}, namespace=ns)

    def deployments(self, fake):
        for d in fake.objects("apps/v1", "deployments"):
            ns, name = d["metadata"]["namespace"], d["metadata"]["name"]
            pod_name = "%s-5f7d8c9b6-x2k4q" % name
            if fake.get_object("v1", "pods", pod_name, ns) is not None:
                continue
            template = d["spec"]["template"]
            if self.backend_rejection:
                rs = "%s-5f7d8c9b6" % name
                fake.put_object({"apiVersion": "v1", "kind": "Event", "metadata": {"name": "%s.failedcreate" % rs, "namespace": ns},
                                 "involvedObject": {"kind": "ReplicaSet", "name": rs, "namespace": ns, "apiVersion": "apps/v1"},
                                 "reason": "FailedCreate", "type": "Warning", "message": "Error creating: %s" % self.backend_rejection,
                                 "source": {"component": "replicaset-controller"}})
                continue
            # through the API's create path (Pod Security, LimitRange, quota) as the ReplicaSet controller does
            if fake.create_pod_for(d, template, pod_name) is None:
                continue  # refused: FailedCreate event and ReplicaFailure condition on the Deployment
            pod = fake.get_object("v1", "pods", pod_name, ns)
            pod["spec"]["nodeName"] = "node-1"
            if self.backend_problem:
                # a message alone: ImagePullBackOff with it; a tuple: (waiting reason, message)
                reason, message = self.backend_problem if isinstance(self.backend_problem, tuple) else ("ImagePullBackOff", self.backend_problem)
                status = {"phase": "Pending", "containerStatuses": [{"name": "echo", "ready": False, "state": {
                    "waiting": {"reason": reason, "message": message}}}]}
            else:
                status = {"phase": "Running", "conditions": [{"type": "Ready", "status": "True"}],
                          "containerStatuses": [{"name": "echo", "ready": True, "state": {"running": {}}}]}
            pod["status"] = status
            fake.put_object(pod)

    def clients(self, fake):
        for pod in fake.objects("v1", "pods"):
            labels = pod["metadata"].get("labels") or {}
            if labels.get(gw.COMPONENT_LABEL) != "client" or pod["status"].get("phase") != "Pending":
                continue
            ns, name = pod["metadata"]["namespace"], pod["metadata"]["name"]
            if pod["metadata"]["uid"] in [p["metadata"]["uid"] for p in self.client_pods]:
                continue
            self.client_pods.append(pod)
            if self.client_waiting:
                container = pod["spec"]["containers"][0]
                fake.bind_pod(ns, name, "node-1")
                fake.set_status("v1", "pods", name, {"phase": "Pending", "containerStatuses": [
                    {"name": container["name"], "image": container["image"], "ready": False,
                     "state": {"waiting": {"reason": self.client_waiting[0], "message": self.client_waiting[1]}}}]}, namespace=ns)
                continue
            log = client_log(control_error="curl exit 28") if self.denied(fake, ns) else self.log
            fake.set_pod_log(ns, name, log)
            fake.set_status("v1", "pods", name, {"phase": "Succeeded"}, namespace=ns)


def leftovers(fake):
    """Objects the check created that are still in the fake (by label, and any extra namespace)."""
    ours = ["%s/%s" % (o["kind"], o["metadata"]["name"]) for o in fake.objects()
            if (o["metadata"].get("labels") or {}).get("app.kubernetes.io/managed-by") == "ai-conformance-rke2"]
    spaces = [o["metadata"]["name"] for o in fake.objects("v1", "namespaces") if o["metadata"]["name"] not in PRESET_NAMESPACES]
    return ours + ["Namespace/%s" % n for n in spaces if "Namespace/%s" % n not in ours]
