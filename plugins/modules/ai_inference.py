#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: ai_conformance.rke2 contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r"""
module: ai_inference
short_description: Verify Gateway API traffic management (CNCF AI conformance C(ai_inference))
version_added: 0.1.0
author:
  - ai_conformance.rke2 maintainers (@ai-conformance)
description:
  - Checks through API discovery that C(gateway.networking.k8s.io/v1) serves C(gatewayclasses) (cluster-scoped),
    C(gateways), C(httproutes) and C(grpcroutes), and that C(referencegrants) is served (v1 or v1beta1); the
    C(kubectl api-resources) table is evidence.
  - Checks that a GatewayClass of O(controller_name) reaches C(Accepted=True) within O(timeout), using an existing
    class of that controller or a temporary one it creates (and deletes).
  - Sends real traffic through the Gateway - in a temporary namespace it creates two backends that answer with their
    own pod name, a Gateway with an HTTP listener and an HTTPRoute whose first rule sends requests with header
    C(x-ai-model=model-b) only to backend b and whose second rule splits all other requests by O(weights) between
    a and b; once the Gateway is C(Programmed) and the route C(Accepted) and C(ResolvedRefs), a client pod sends
    O(requests) requests of each kind to the Gateway's address and prints the counts.
  - Before that the client sends control requests straight to both backend Services (not through the Gateway); they
    prove the client image and the pod network work. When they get no answer the traffic checks are errors (cause
    C(network_policy), or C(test_tooling) when the client cannot run curl), never failures of routing.
  - Passes when every request with the header reached backend b and the weighted split is within O(tolerance)
    percentage points of the weights; with both weights above 0 each backend must receive traffic. Any header request
    reaching a, or any request that failed, fails the check. The routed traffic checks exercise the capability; the
    GatewayClass, Gateway and HTTPRoute status checks only inspect.
  - The backends and the client come from the collection's test-pod builder (Pod Security C(restricted),
    requests/limits, the common O(tolerations), image C(agnhost) of the table of test images, O(image_registry));
    the temporary namespace enforces C(restricted). Pods that cannot start are errors naming the cause (image pull,
    still pulling at the timeout, untolerated taint, Pod Security, quota, LimitRange, webhook).
  - Everything it created is deleted before it returns, also after a failure.
options:
  controller_name:
    description:
      - C(spec.controllerName) of the GatewayClass to verify. Traefik's is C(traefik.io/gateway-controller).
    type: str
    default: traefik.io/gateway-controller
  gateway_class:
    description:
      - Name of an existing GatewayClass (of O(controller_name)) to use.
      - By default an accepted class of O(controller_name) is used when there is one, else a temporary class is
        created for the check and deleted afterwards.
    type: str
  traffic_test:
    description:
      - Whether to send traffic through a temporary Gateway. Without it routing is not exercised, the traffic
        checks are skipped and the requirement is reported as C(skipped) even when discovery and the GatewayClass
        pass (the same happens in check mode).
    type: bool
    default: true
  requests:
    description:
      - Number of requests the client sends with the header, and again without it; at most 10000.
      - Must be large enough that a router splitting exactly by O(weights) passes the O(tolerance) with a probability
        of at least 99.9 % (exact binomial probabilities); a smaller number is rejected with the minimum, for example
        177 for the default weights and tolerance.
    type: int
    default: 200
  weights:
    description:
      - Weights of backend a and backend b in the weighted rule of the HTTPRoute.
    type: list
    elements: int
    default: [80, 20]
  tolerance:
    description:
      - How far, in percentage points, the observed share of backend b may be from its weight's share; above 0 and
        at most 25 (a wider tolerance would pass a router that ignores the weights).
    type: float
    default: 10
  listener_port:
    description:
      - Port of the Gateway's HTTP listener. Traefik only accepts a listener whose port is one of its entry
        points' ports; RKE2's Traefik has the C(web) entry point on 8000.
    type: int
    default: 8000
  gateway_port:
    description:
      - Port the client sends to on the Gateway's C(status.addresses). RKE2's Traefik publishes its C(web)
        entry point on port 80 (Service port and host port).
    type: int
    default: 80
  fallback_targets:
    description:
      - C(host:port) the client tries after the Gateway's addresses, for controllers that publish no address.
    type: list
    elements: str
    default: [rke2-traefik.kube-system.svc:80]
  warmup:
    description:
      - Seconds the client keeps trying until the Gateway answers with one of the backends before it gives up.
    type: int
    default: 60
  client_request_timeout:
    description:
      - Timeout in seconds of each HTTP request of the client.
    type: int
    default: 5
extends_documentation_fragment:
  - kubernetes.core.k8s_auth_options
  - ai_conformance.rke2.common
"""

EXAMPLES = r"""
- name: Verify the Gateway API with Traefik on the cluster of ~/.kube/config
  ai_conformance.rke2.ai_inference:
  register: ai_inference

- name: Another controller, a 90/10 split and a tighter tolerance
  ai_conformance.rke2.ai_inference:
    kubeconfig: /etc/rancher/rke2/rke2.yaml
    controller_name: gateway.envoyproxy.io/gatewayclass-controller
    listener_port: 80
    weights: [90, 10]
    tolerance: 5
    timeout: 300
"""

RETURN = r"""
result:
  description: The requirement's result; see the collection's result schema.
  returned: always
  type: dict
  sample:
    requirement: ai_inference
    status: passed
    checks:
      - name: header_routing
        status: passed
        message: "all 200 requests with header x-ai-model: model-b reached backend b"
"""

from ansible_collections.kubernetes.core.plugins.module_utils.k8s.core import AnsibleK8SModule

from ansible_collections.ai_conformance.rke2.plugins.module_utils import discovery, policy, testpods
from ansible_collections.ai_conformance.rke2.plugins.module_utils import gateway as gw
from ansible_collections.ai_conformance.rke2.plugins.module_utils.kube import (
    KubeError,
    Stuck,
    WaitTimeout,
    common_argument_spec,
    random_suffix,
    run_requirement,
)

REQUIREMENT = "ai_inference"
GATEWAY_NAME = "aic-gateway"
ROUTE_NAME = "aic-route"
CLIENT_NAME = "aic-client"
BACKEND_SELECTOR = "app.kubernetes.io/part-of=ai-conformance-ai-inference"
TRAFFIC_CHECKS = ("traffic_backends", "gateway_programmed", "httproute_accepted", "gateway_routes_traffic",
                  "header_routing", "weighted_split")


def skip_traffic(result, reason, after=None):
    """Mark the traffic checks after ``after`` as skipped with the reason."""
    start = TRAFFIC_CHECKS.index(after) + 1 if after else 0
    for name in TRAFFIC_CHECKS[start:]:
        result.skipped(name, "not run: %s" % reason)


def check_api_resources(kube, result):
    """Discovery of gateway.networking.k8s.io; returns the names of the served required resources."""
    versions = discovery.served_versions(kube.api_groups(), gw.GROUP)
    lists = dict(("%s/%s" % (gw.GROUP, v), None) for v in ("v1", "v1beta1"))
    for version in versions:
        lists["%s/%s" % (gw.GROUP, version)] = kube.api_resources("%s/%s" % (gw.GROUP, version))
    ok, message, rows = gw.evaluate_api_resources(lists)
    result.add_evidence("api-resources", gw.api_resources_table(rows), "text")
    expected = ["%s %s" % (" or ".join("%s/%s" % (gw.GROUP, v) for v in r["versions"]), r["name"]) for r in gw.REQUIRED_RESOURCES]
    observed = {"served_versions": versions, "found": ["%s %s" % (r["apiVersion"], r["name"]) for r in rows]}
    if ok:
        result.passed("gateway_api_resources", message, observed, expected)
    else:
        result.failed("gateway_api_resources", message, observed, expected, cause="not_installed")
    return set(r["name"] for r in rows)


def _class_evidence(gatewayclass, created):
    return {
        "name": gatewayclass["metadata"]["name"],
        "controllerName": (gatewayclass.get("spec") or {}).get("controllerName"),
        "created_by_check": created,
        "conditions": (gatewayclass.get("status") or {}).get("conditions") or [],
    }


def check_controller(kube, params, result, check_mode):
    """A GatewayClass of the controller reaches Accepted=True; returns its name or None."""
    name = "gatewayclass_accepted"
    controller = params["controller_name"]
    expected = "a GatewayClass with controllerName %s and Accepted=True within %ss" % (controller, params["timeout"])
    created = False
    if params.get("gateway_class"):
        gatewayclass = kube.get(gw.V1, "GatewayClass", params["gateway_class"])
        if gatewayclass is None:
            result.error(name, "GatewayClass %s (option gateway_class) does not exist" % params["gateway_class"], expected=expected,
                         cause="no_test_target")
            return None
        if (gatewayclass.get("spec") or {}).get("controllerName") != controller:
            result.error(name, "GatewayClass %s belongs to controller %s, not %s (option controller_name)" % (
                params["gateway_class"], gatewayclass["spec"].get("controllerName"), controller), expected=expected, cause="no_test_target")
            return None
    else:
        gatewayclass = gw.pick_gatewayclass(kube.list(gw.V1, "GatewayClass"), controller)
        if gatewayclass is None:
            if check_mode:
                result.skipped(name, "check mode: no GatewayClass of %s exists and none is created" % controller)
                return None
            manifest = gw.render_gatewayclass("aic-ai-inference-%s" % random_suffix(), controller, kube.labels(REQUIREMENT))
            gatewayclass = kube.create(manifest)
            created = True
    class_name = gatewayclass["metadata"]["name"]

    def probe():
        current = kube.get(gw.V1, "GatewayClass", class_name)
        if current is None:
            raise Stuck("GatewayClass %s disappeared while waiting for it" % class_name)
        rejected = gw.gatewayclass_rejected(current)
        if rejected:
            raise Stuck(rejected, kind="rejected", state=current)
        ok, message = gw.evaluate_gatewayclass(current, controller)
        return ok, {"object": current, "message": message}

    try:
        state = kube.wait_for(probe, params["timeout"], what="GatewayClass %s Accepted" % class_name)
    except Stuck as exc:
        result.add_evidence("gatewayclass", _class_evidence(exc.state or gatewayclass, created))
        result.failed(name, str(exc), observed=_class_evidence(exc.state or gatewayclass, created), expected=expected)
        return None
    except WaitTimeout as exc:
        last = (exc.body or {}).get("object") or gatewayclass
        conditions = gw.format_conditions((last.get("status") or {}).get("conditions"))
        hint = " (a temporary class created by the check; is the %s controller running?)" % controller if created else ""
        message = "GatewayClass %s not accepted after %ss%s: conditions=%s" % (class_name, params["timeout"], hint, conditions)
        result.add_evidence("gatewayclass", _class_evidence(last, created))
        result.failed(name, message, observed=_class_evidence(last, created), expected=expected)
        return None
    result.add_evidence("gatewayclass", _class_evidence(state["object"], created))
    result.passed(name, state["message"], observed=_class_evidence(state["object"], created), expected=expected)
    return class_name


def _wait_object(kube, params, kind, name, namespace, evaluate, rejected=None):
    """Wait until ``evaluate(obj)`` is ok; returns (ok, message, last object).

    When not ok the message reads after "was not ready": "within 120s; last status: ..." or ": <rejection>".
    """

    def probe():
        current = kube.get(gw.V1, kind, name, namespace)
        if current is None:
            raise Stuck("%s %s/%s disappeared while waiting for it" % (kind, namespace, name))
        refusal = rejected(current) if rejected else None
        if refusal:
            raise Stuck(refusal, kind="rejected", state=current)
        ok, message = evaluate(current)
        return ok, {"object": current, "message": message}

    try:
        state = kube.wait_for(probe, params["timeout"], what="%s %s/%s" % (kind, namespace, name))
    except Stuck as exc:
        return False, ": %s" % exc, exc.state
    except WaitTimeout as exc:
        last = exc.body or {}
        return False, " within %ss; last status: %s" % (params["timeout"], last.get("message") or exc), last.get("object")
    return True, state["message"], state["object"]


def create_traffic_objects(kube, params, class_name, builder):
    """Namespace, backends, Gateway and HTTPRoute; returns the namespace."""
    namespace = kube.temp_namespace(REQUIREMENT)
    labels = kube.labels(REQUIREMENT)
    for backend in (gw.BACKEND_A, gw.BACKEND_B):
        for obj in gw.render_backend(backend, namespace, builder, labels):
            kube.create(obj)
    kube.create(gw.render_gateway(GATEWAY_NAME, namespace, class_name, params["listener_port"], labels))
    kube.create(gw.render_httproute(ROUTE_NAME, namespace, GATEWAY_NAME, params["weights"], labels))
    return namespace


def explain_pods(kube, namespace, selector, owners=("ReplicaSet", "Deployment")):
    """(cause, message) for test pods that did not come up: pods the controllers could not create (admission:
    Pod Security, quota, LimitRange, webhook), then each pod's own state (image pull, taints, still pulling), or None."""
    events = kube.list("v1", "Event", namespace=namespace)
    for event in events:
        involved = event.get("involvedObject") or {}
        if involved.get("kind") in owners and event.get("reason") == "FailedCreate":
            cause = policy.classify_message(event.get("message"))
            if cause:
                return cause, "%s %s could not create its pod: %s" % (involved.get("kind"), involved.get("name"), event.get("message"))
    by_pod = {}
    for event in events:
        involved = event.get("involvedObject") or {}
        if involved.get("kind") == "Pod":
            by_pod.setdefault(involved.get("name"), []).append(event)
    for pod in kube.list("v1", "Pod", namespace=namespace, label_selector=selector):
        classified = policy.classify_pod(pod, by_pod.get(pod["metadata"]["name"], []))
        if classified:
            return classified
    return None


def _stopped(kube, result, name, what, exc, namespace, selector):
    """Record an error for pods that did not reach their goal, with the cause the policy names."""
    if isinstance(exc, Stuck) and policy.status_for(exc.cause) == "error":
        result.error(name, "%s: %s" % (what, exc), cause=exc.cause)
        return
    explained = explain_pods(kube, namespace, selector)
    if explained:
        result.error(name, "%s: %s" % (what, explained[1]), observed=str(exc), cause=explained[0])
    else:
        result.error(name, "%s: %s" % (what, exc), cause="timeout")


def wait_backends(kube, params, result, namespace, builder):
    name = "traffic_backends"
    try:
        state = kube.wait_for_pods(namespace, BACKEND_SELECTOR, 2, "Running", timeout=params["timeout"])
    except (Stuck, WaitTimeout) as exc:
        _stopped(kube, result, name, "the backend pods (image %s) did not become ready" % builder.image("agnhost"), exc,
                 namespace, BACKEND_SELECTOR)
        return False
    result.passed(name, "backends %s and %s are ready" % (gw.BACKEND_A, gw.BACKEND_B), observed=state)
    return True


def run_client(kube, params, result, namespace, targets, builder):
    """Run the client pod to completion; returns the parsed output or None (error recorded)."""
    hostname = gw.route_hostname(namespace)
    manifest = gw.render_client_pod(CLIENT_NAME, namespace, builder, targets, hostname, params["requests"],
                                    kube.labels(REQUIREMENT), params["warmup"], params["client_request_timeout"])
    try:
        kube.create(manifest)
    except KubeError as exc:
        result.from_exception("gateway_routes_traffic", exc, "the client pod was not admitted")
        return None
    deadline = gw.client_deadline(params["requests"], params["warmup"], params["client_request_timeout"])
    selector = "%s=client" % gw.COMPONENT_LABEL
    try:
        kube.wait_for_pods(namespace, selector, 1, "Succeeded", timeout=deadline + params["timeout"])
    except (Stuck, WaitTimeout) as exc:
        result.add_evidence("client-log", _client_log(kube, namespace), "text")
        _stopped(kube, result, "gateway_routes_traffic", "the client pod (image %s) did not complete" % builder.image("agnhost"),
                 exc, namespace, selector)
        return None
    log = _client_log(kube, namespace)
    result.add_evidence("client-log", log, "text")
    parsed = gw.parse_client_output(log)
    if not parsed["done"] or parsed["problems"]:
        result.error("gateway_routes_traffic", "the client's output is incomplete (%s); does the client image (%s) run /bin/sh "
                     "and curl?" % ("; ".join(parsed["problems"]) or "no final line", builder.image("agnhost")), cause="test_tooling")
        return None
    return parsed


def _client_log(kube, namespace):
    try:
        return kube.pod_logs(namespace, CLIENT_NAME, tail_lines=200)
    except Exception as exc:  # evidence only; the caller reports the real problem
        return "(log not available: %s)" % exc


def _network_policies(kube, namespace):
    """Names and pod selectors of the NetworkPolicies in the test namespace (evidence for a failed control)."""
    try:
        items = kube.list("networking.k8s.io/v1", "NetworkPolicy", namespace=namespace)
    except KubeError:
        return []
    return [{"name": p["metadata"]["name"], "podSelector": (p.get("spec") or {}).get("podSelector"),
             "policyTypes": (p.get("spec") or {}).get("policyTypes")} for p in items]


def check_control(kube, result, namespace, control):
    """The control requests answered; otherwise every traffic check is an error with the policy's cause."""
    ok, cause, message = gw.evaluate_control(control)
    if ok:
        return True
    policies = _network_policies(kube, namespace)
    if policies and cause == "network_policy":
        message += "; NetworkPolicies in namespace %s: %s" % (namespace, ", ".join(p["name"] for p in policies))
    observed = {"control": control, "network_policies": policies}
    result.error("gateway_routes_traffic", message, observed=observed, expected="answers from both backends straight through their Services",
                 cause=cause)
    for name in ("header_routing", "weighted_split"):
        result.error(name, "routing not judged: %s" % message, cause=cause)
    return False


def check_traffic(kube, params, result, class_name):
    """Route real requests through a temporary Gateway and evaluate the counts."""
    builder = testpods.PodBuilder(params)
    result.add_evidence("test-images", builder.images_used(["agnhost"]))
    namespace = create_traffic_objects(kube, params, class_name, builder)
    if not wait_backends(kube, params, result, namespace, builder):
        skip_traffic(result, "the backends are not ready", after="traffic_backends")
        return

    ok, message, gateway = _wait_object(kube, params, "Gateway", GATEWAY_NAME, namespace, gw.evaluate_gateway,
                                        gw.gateway_rejected)
    result.add_evidence("gateway", {"name": GATEWAY_NAME, "namespace": namespace, "gatewayClassName": class_name,
                                    "status": (gateway or {}).get("status")})
    expected = "Accepted=True and Programmed=True on Gateway %s/%s (class %s)" % (namespace, GATEWAY_NAME, class_name)
    if not ok:
        result.failed("gateway_programmed", "Gateway %s/%s was not programmed%s" % (namespace, GATEWAY_NAME, message),
                      expected=expected)
        skip_traffic(result, "the Gateway is not programmed", after="gateway_programmed")
        return
    result.passed("gateway_programmed", message, observed=gw.gateway_addresses(gateway), expected=expected)

    def evaluate_route(route):
        return gw.evaluate_httproute(route, GATEWAY_NAME, namespace, params["controller_name"])

    ok, message, route = _wait_object(kube, params, "HTTPRoute", ROUTE_NAME, namespace, evaluate_route)
    result.add_evidence("httproute", {"spec": (route or {}).get("spec"), "status": (route or {}).get("status")})
    expected = "Accepted=True and ResolvedRefs=True from %s for parent %s" % (params["controller_name"], GATEWAY_NAME)
    if not ok:
        result.failed("httproute_accepted", "HTTPRoute %s/%s was not accepted%s" % (namespace, ROUTE_NAME, message),
                      expected=expected)
        skip_traffic(result, "the HTTPRoute is not accepted", after="httproute_accepted")
        return
    result.passed("httproute_accepted", message, expected=expected)

    targets = gw.client_targets(gateway, params["gateway_port"], params["fallback_targets"])
    if not targets:
        result.failed("gateway_routes_traffic", "Gateway %s/%s has no status.addresses and no fallback_targets are set" % (
            namespace, GATEWAY_NAME), exercised=True)
        skip_traffic(result, "no address to send traffic to", after="gateway_routes_traffic")
        return
    parsed = run_client(kube, params, result, namespace, targets, builder)
    if parsed is None:
        skip_traffic(result, "the client did not run", after="gateway_routes_traffic")
        return
    phases = parsed["phases"]
    traffic = {"targets": targets, "hostname": gw.route_hostname(namespace), "requests": params["requests"],
               "weights": params["weights"], "tolerance": params["tolerance"], "control": phases.get("control"),
               "warmup": phases.get("warmup"), "header": phases.get("header"), "weighted": phases.get("weighted")}
    result.add_evidence("traffic", traffic)
    if not check_control(kube, result, namespace, phases.get("control")):
        return
    ok, message = gw.evaluate_warmup(phases.get("warmup"), targets)
    if not ok:
        result.failed("gateway_routes_traffic", message, observed=phases.get("warmup"),
                      expected="an answer from backend a or b through the Gateway", exercised=True)
        skip_traffic(result, "the Gateway routed no request", after="gateway_routes_traffic")
        return
    result.exercised("gateway_routes_traffic", message, observed=phases.get("warmup"))

    ok, message = gw.evaluate_header_counts(phases.get("header"), params["requests"])
    expected = "all %d requests with %s: %s on backend b" % (params["requests"], gw.HEADER_NAME, gw.HEADER_VALUE)
    if ok:
        result.exercised("header_routing", message, observed=phases.get("header"), expected=expected)
    else:
        result.failed("header_routing", message, observed=phases.get("header"), expected=expected, exercised=True)

    ok, message = gw.evaluate_weighted_counts(phases.get("weighted"), params["requests"], params["weights"], params["tolerance"])
    expected = "backend b share %.1f%% +/- %s points%s" % (gw.expected_share_b(params["weights"]), params["tolerance"],
                                                           ", each backend some" if all(w > 0 for w in params["weights"]) else "")
    if ok:
        result.exercised("weighted_split", message, observed=phases.get("weighted"), expected=expected)
    else:
        result.failed("weighted_split", message, observed=phases.get("weighted"), expected=expected, exercised=True)


def verify(kube, params, result):
    served = check_api_resources(kube, result)
    if "gatewayclasses" not in served:
        result.skipped("gatewayclass_accepted", "not run: gatewayclasses.%s/v1 is not served" % gw.GROUP)
        skip_traffic(result, "the Gateway API is not served")
        return None
    check_mode = kube.module.check_mode
    class_name = check_controller(kube, params, result, check_mode)
    if class_name is None:
        skip_traffic(result, "no accepted GatewayClass of %s" % params["controller_name"])
        return "skipped" if check_mode else None
    if not params["traffic_test"]:
        skip_traffic(result, "traffic test disabled (traffic_test=false)")
        result.note("Routing was not exercised (traffic_test=false), so the requirement is reported as skipped.")
        return "skipped"
    if check_mode:
        skip_traffic(result, "check mode creates nothing")
        result.note("Check mode: routing was not exercised, so the requirement is reported as skipped.")
        return "skipped"
    missing = set(("gateways", "httproutes")) - served
    if missing:
        skip_traffic(result, "%s not served in %s" % (", ".join(sorted(missing)), gw.V1))
        return None
    check_traffic(kube, params, result, class_name)
    return None


def main():
    argument_spec = common_argument_spec(
        {
            "controller_name": {"type": "str", "default": gw.DEFAULT_CONTROLLER},
            "gateway_class": {"type": "str"},
            "traffic_test": {"type": "bool", "default": True},
            "requests": {"type": "int", "default": 200},
            "weights": {"type": "list", "elements": "int", "default": [80, 20]},
            "tolerance": {"type": "float", "default": 10},
            "listener_port": {"type": "int", "default": 8000},
            "gateway_port": {"type": "int", "default": 80},
            "fallback_targets": {"type": "list", "elements": "str", "default": ["rke2-traefik.kube-system.svc:80"]},
            "warmup": {"type": "int", "default": 60},
            "client_request_timeout": {"type": "int", "default": 5},
        }
    )
    module = AnsibleK8SModule(argument_spec=argument_spec, supports_check_mode=True)
    problems = gw.validate_traffic_options(module.params["requests"], module.params["weights"], module.params["tolerance"])
    if problems:
        module.fail_json(msg="invalid options: %s" % "; ".join(problems))
    run_requirement(module, REQUIREMENT, verify)


if __name__ == "__main__":
    main()
