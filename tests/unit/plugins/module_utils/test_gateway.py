"""Pure evaluation for ai_inference: Gateway API discovery, status conditions, traffic counts, client output.

Condition shapes not recorded in ../shared follow the Gateway API v1 spec (v1.4.1 CRDs):
GatewayClass ``status.conditions[]`` (type Accepted; reasons Accepted/InvalidParameters/Pending/Unsupported),
Gateway ``status.conditions[]`` (Accepted, Programmed; Programmed reasons Programmed/Invalid/NoResources/
AddressNotAssigned/Pending), ``status.listeners[].conditions`` and ``status.addresses[].{type,value}``,
HTTPRoute ``status.parents[].{parentRef,controllerName,conditions}`` (Accepted, ResolvedRefs; reasons
NotAllowedByListeners, BackendNotFound, ...), and ``conditions[].observedGeneration``.
"""

import copy

import pytest

from ansible_collections.ai_conformance.rke2.plugins.module_utils import gateway as gw
from tests.support.shared import fixture_response, load_json

T0 = "2026-11-23T06:30:00Z"


def cond(type_, status, reason, message, generation=1):
    return {"type": type_, "status": status, "reason": reason, "message": message,
            "observedGeneration": generation, "lastTransitionTime": T0}


def recorded_class():
    return fixture_response("k8s-fixtures", "objects", "gatewayclass-fixture-gateway-class.json")


def traefik_class(status="True", reason="Handled", message="Handled by Traefik controller", generation=1):
    return {
        "apiVersion": gw.V1, "kind": "GatewayClass",
        "metadata": {"name": "traefik", "generation": generation},
        "spec": {"controllerName": gw.DEFAULT_CONTROLLER},
        "status": {"conditions": [cond("Accepted", status, reason, message)]},
    }


def gateway_obj(accepted="True", programmed="True", programmed_reason="Programmed",
                programmed_message="", addresses=("10.43.12.7",), listener_ok=True, generation=1, observed=1):
    listener_conds = [
        cond("Accepted", "True", "Accepted", "", observed),
        cond("Programmed", "True" if listener_ok else "False", "Programmed" if listener_ok else "Invalid",
             "" if listener_ok else "Cannot find entryPoint for Gateway: no matching entryPoint for port 8001", observed),
        cond("ResolvedRefs", "True", "ResolvedRefs", "", observed),
    ]
    return {
        "apiVersion": gw.V1, "kind": "Gateway",
        "metadata": {"name": "aic-gateway", "namespace": "aic-ai-inference-x1", "generation": generation},
        "status": {
            "addresses": [{"type": "IPAddress", "value": a} for a in addresses],
            "conditions": [cond("Accepted", accepted, "Accepted" if accepted == "True" else "Invalid", "", observed),
                           cond("Programmed", programmed, programmed_reason, programmed_message, observed)],
            "listeners": [{"name": "http", "attachedRoutes": 1, "supportedKinds": [{"group": gw.GROUP, "kind": "HTTPRoute"}],
                           "conditions": listener_conds}],
        },
    }


def route_obj(parents):
    return {"apiVersion": gw.V1, "kind": "HTTPRoute",
            "metadata": {"name": "aic-route", "namespace": "aic-ai-inference-x1", "generation": 1},
            "status": {"parents": parents}}


def parent(accepted="True", accepted_reason="Accepted", resolved="True", resolved_reason="ResolvedRefs",
           message="", name="aic-gateway", controller=gw.DEFAULT_CONTROLLER):
    return {"parentRef": {"group": gw.GROUP, "kind": "Gateway", "name": name, "sectionName": "http"},
            "controllerName": controller,
            "conditions": [cond("Accepted", accepted, accepted_reason, message),
                           cond("ResolvedRefs", resolved, resolved_reason, message)]}


# ------------------------------------------------------------ discovery

def recorded_lists():
    return {
        gw.V1: load_json("k8s-fixtures", "discovery", "apis__gateway.networking.k8s.io__v1.json"),
        gw.V1BETA1: load_json("k8s-fixtures", "discovery", "apis__gateway.networking.k8s.io__v1beta1.json"),
    }


def test_recorded_discovery_serves_everything_with_referencegrants_from_v1beta1():
    ok, message, rows = gw.evaluate_api_resources(recorded_lists())
    assert ok, message
    assert message == "gateway.networking.k8s.io serves all 5 required resources"
    by_name = dict((r["name"], r) for r in rows)
    assert [r["name"] for r in rows] == ["gatewayclasses", "gateways", "grpcroutes", "httproutes", "referencegrants"]
    assert by_name["referencegrants"]["apiVersion"] == gw.V1BETA1
    assert by_name["gateways"]["apiVersion"] == gw.V1  # v1 preferred although v1beta1 serves it too
    assert by_name["gatewayclasses"]["namespaced"] is False
    assert by_name["gateways"]["shortNames"] == ["gtw"]


def test_recorded_discovery_table_matches_the_reference_output():
    rows = gw.evaluate_api_resources(recorded_lists())[2]
    lines = [line.split() for line in gw.api_resources_table(rows).splitlines()]
    # the reference procedure's expected `kubectl api-resources` output, column by column
    assert lines == [
        ["NAME", "SHORTNAMES", "APIVERSION", "NAMESPACED", "KIND"],
        ["gatewayclasses", "gc", gw.V1, "false", "GatewayClass"],
        ["gateways", "gtw", gw.V1, "true", "Gateway"],
        ["grpcroutes", gw.V1, "true", "GRPCRoute"],
        ["httproutes", gw.V1, "true", "HTTPRoute"],
        ["referencegrants", "refgrant", gw.V1BETA1, "true", "ReferenceGrant"],
    ]


def test_discovery_without_v1beta1_lacks_referencegrants():
    lists = recorded_lists()
    lists[gw.V1BETA1] = None
    ok, message, rows = gw.evaluate_api_resources(lists)
    assert not ok
    assert "missing: referencegrants" in message
    assert "serves: gateway.networking.k8s.io/v1" in message
    assert len(rows) == 4


def test_discovery_without_the_group_names_every_missing_resource():
    ok, message, rows = gw.evaluate_api_resources({gw.V1: None, gw.V1BETA1: None})
    assert not ok and rows == []
    for name in ("gatewayclasses", "gateways", "grpcroutes", "httproutes", "referencegrants"):
        assert name in message
    assert "none (group not served)" in message


def test_discovery_without_grpcroutes_fails():
    lists = recorded_lists()
    lists[gw.V1] = copy.deepcopy(lists[gw.V1])
    lists[gw.V1]["resources"] = [r for r in lists[gw.V1]["resources"] if not r["name"].startswith("grpcroutes")]
    ok, message = gw.evaluate_api_resources(lists)[:2]
    assert not ok and "missing: grpcroutes" in message and "httproutes" not in message


def test_discovery_wrong_scope_fails():
    lists = recorded_lists()
    lists[gw.V1] = copy.deepcopy(lists[gw.V1])
    for item in lists[gw.V1]["resources"]:
        if item["name"] == "gatewayclasses":
            item["namespaced"] = True
    ok, message = gw.evaluate_api_resources(lists)[:2]
    assert not ok and "gatewayclasses: namespaced=true, expected false" in message


# ------------------------------------------------------------ GatewayClass

def test_recorded_pending_class_is_not_accepted_and_message_has_its_conditions():
    gc = recorded_class()
    ok, message = gw.evaluate_gatewayclass(gc, "example.com/fixture-gateway-controller")
    assert not ok
    assert "GatewayClass fixture-gateway-class not accepted" in message
    assert "Accepted=Unknown (Pending: Waiting for controller)" in message
    # Unknown/Pending means nobody answered yet: keep waiting, it is not a rejection.
    assert gw.gatewayclass_rejected(gc) is None


def test_recorded_class_of_another_controller_is_named():
    ok, message = gw.evaluate_gatewayclass(recorded_class(), gw.DEFAULT_CONTROLLER)
    assert not ok
    assert "controllerName example.com/fixture-gateway-controller, not traefik.io/gateway-controller" in message


def test_traefik_accepted_class_passes_with_handled_message():
    ok, message = gw.evaluate_gatewayclass(traefik_class())
    assert ok, message
    assert "Accepted=True (Handled: Handled by Traefik controller)" in message


def test_class_rejected_with_invalid_parameters():
    gc = traefik_class("False", "InvalidParameters", "parametersRef points to a missing ConfigMap")
    ok, message = gw.evaluate_gatewayclass(gc)
    assert not ok and "InvalidParameters" in message
    assert "rejected" in gw.gatewayclass_rejected(gc)
    assert "parametersRef points to a missing ConfigMap" in gw.gatewayclass_rejected(gc)


def test_class_accepted_for_an_old_generation_is_stale():
    gc = traefik_class(generation=2)
    ok, message = gw.evaluate_gatewayclass(gc)
    assert not ok
    assert "observedGeneration 1 < generation 2" in message


def test_class_without_status_is_not_accepted():
    gc = traefik_class()
    del gc["status"]
    ok, message = gw.evaluate_gatewayclass(gc)
    assert not ok and "no Accepted condition" in message and "conditions=[]" in message


def test_pick_gatewayclass_prefers_accepted_classes_of_the_controller():
    pending = traefik_class("Unknown", "Pending", "Waiting for controller")
    pending["metadata"]["name"] = "a-pending"
    accepted = traefik_class()
    accepted["metadata"]["name"] = "z-traefik"
    other = recorded_class()
    assert gw.pick_gatewayclass([other, pending, accepted])["metadata"]["name"] == "z-traefik"
    assert gw.pick_gatewayclass([other, pending])["metadata"]["name"] == "a-pending"
    assert gw.pick_gatewayclass([other]) is None


# ------------------------------------------------------------ Gateway

def test_programmed_gateway_passes_and_reports_addresses():
    ok, message = gw.evaluate_gateway(gateway_obj())
    assert ok, message
    assert "10.43.12.7" in message and "Programmed=True" in message


def test_gateway_programmed_false_reports_reason_and_message():
    g = gateway_obj(programmed="False", programmed_reason="AddressNotAssigned",
                    programmed_message="No addresses have been assigned to the Gateway", addresses=())
    ok, message = gw.evaluate_gateway(g)
    assert not ok
    assert "Programmed=False (AddressNotAssigned: No addresses have been assigned to the Gateway)" in message
    assert gw.gateway_rejected(g) is None  # may still get an address: keep waiting


def test_gateway_programmed_false_invalid_is_a_rejection():
    g = gateway_obj(programmed="False", programmed_reason="Invalid", programmed_message="listener port not supported")
    assert not gw.evaluate_gateway(g)[0]
    assert "listener port not supported" in gw.gateway_rejected(g)


def test_gateway_crd_default_status_is_pending():
    g = gateway_obj()
    g["status"] = {"conditions": [
        {"type": "Accepted", "status": "Unknown", "reason": "Pending", "message": "Waiting for controller",
         "lastTransitionTime": "1970-01-01T00:00:00Z"},
        {"type": "Programmed", "status": "Unknown", "reason": "Pending", "message": "Waiting for controller",
         "lastTransitionTime": "1970-01-01T00:00:00Z"}]}
    ok, message = gw.evaluate_gateway(g)
    assert not ok
    assert "Accepted=Unknown (Pending: Waiting for controller)" in message
    assert gw.gateway_rejected(g) is None


def test_gateway_listener_not_programmed_fails_even_if_gateway_says_programmed():
    ok, message = gw.evaluate_gateway(gateway_obj(listener_ok=False))
    assert not ok
    assert "listener http Programmed=False (Invalid: Cannot find entryPoint" in message


def test_gateway_stale_status_is_not_programmed():
    ok, message = gw.evaluate_gateway(gateway_obj(generation=3, observed=2))
    assert not ok and "observedGeneration 2 < generation 3" in message


# ------------------------------------------------------------ HTTPRoute

def test_route_accepted_and_resolved():
    ok, message = gw.evaluate_httproute(route_obj([parent()]), "aic-gateway", controller_name=gw.DEFAULT_CONTROLLER)
    assert ok, message


def test_route_without_parent_status_names_the_gateway():
    ok, message = gw.evaluate_httproute(route_obj([]), "aic-gateway")
    assert not ok and "no status from any controller for parent Gateway aic-gateway" in message


def test_route_status_from_another_controller_or_gateway_does_not_count():
    r = route_obj([parent(controller="example.com/other"), parent(name="other-gateway")])
    ok, message = gw.evaluate_httproute(r, "aic-gateway", controller_name=gw.DEFAULT_CONTROLLER)
    assert not ok
    assert "aic-gateway by example.com/other" in message and "other-gateway by traefik.io/gateway-controller" in message


def test_route_backend_not_found():
    r = route_obj([parent(resolved="False", resolved_reason="BackendNotFound",
                          message="Cannot find service aic-ai-inference-x1/aic-model-b")])
    ok, message = gw.evaluate_httproute(r, "aic-gateway")
    assert not ok
    assert "ResolvedRefs=False (BackendNotFound: Cannot find service aic-ai-inference-x1/aic-model-b)" in message


def test_route_not_allowed_by_listeners():
    r = route_obj([parent(accepted="False", accepted_reason="NotAllowedByListeners")])
    ok, message = gw.evaluate_httproute(r, "aic-gateway")
    assert not ok and "Accepted=False (NotAllowedByListeners)" in message


# ------------------------------------------------------------ client output and counts

GOOD_LOG = """\
+ some shell noise
AIC {"phase":"warmup","ok":true,"target":"10.43.12.7:80","attempts":3,"seconds":2}
AIC {"phase":"header","target":"10.43.12.7:80","total":200,"a":0,"b":200,"other":0,"errors":0,"last_error":"","other_sample":""}
AIC {"phase":"weighted","target":"10.43.12.7:80","total":200,"a":161,"b":39,"other":0,"errors":0,"last_error":"","other_sample":""}
AIC {"phase":"done"}
"""


def counts(total=200, a=0, b=0, other=0, errors=0, last_error="", other_sample=""):
    return {"phase": "x", "total": total, "a": a, "b": b, "other": other, "errors": errors,
            "last_error": last_error, "other_sample": other_sample}


def test_parse_client_output_reads_phases_and_ignores_noise():
    parsed = gw.parse_client_output(GOOD_LOG)
    assert parsed["done"] is True and parsed["problems"] == []
    assert parsed["phases"]["weighted"]["a"] == 161
    assert parsed["phases"]["warmup"]["target"] == "10.43.12.7:80"


def test_parse_client_output_reports_broken_lines_and_missing_done():
    parsed = gw.parse_client_output('AIC {"phase":"header","total":\nAIC [1, 2]\nAIC {"phase":"warmup","ok":false}\n')
    assert parsed["done"] is False
    assert len(parsed["problems"]) == 2
    assert list(parsed["phases"]) == ["warmup"]


def test_header_all_to_b_passes():
    ok, message = gw.evaluate_header_counts(counts(b=200), 200)
    assert ok and "all 200 requests with header x-ai-model: model-b reached backend b" in message


def test_header_leak_of_one_request_fails_with_the_count():
    ok, message = gw.evaluate_header_counts(counts(a=1, b=199), 200)
    assert not ok
    assert "1 reached backend a (header routing leak)" in message and "only 199 reached backend b" in message


def test_header_all_errors_is_a_clear_failure():
    ok, message = gw.evaluate_header_counts(counts(errors=200, last_error="http 404"), 200)
    assert not ok
    assert "none of the 200 requests with header x-ai-model: model-b reached a backend: 200 errors" in message
    assert "last error: http 404" in message


def test_header_missing_or_short_result():
    assert "no result" in gw.evaluate_header_counts(None, 200)[1]
    ok, message = gw.evaluate_header_counts(counts(total=150, b=150), 200)
    assert not ok and "sent 150 of 200" in message


def test_header_errors_fail_even_without_leak():
    ok, message = gw.evaluate_header_counts(counts(b=198, errors=2, last_error="curl exit 28"), 200)
    assert not ok and "2 failed" in message and "curl exit 28" in message


@pytest.mark.parametrize("a,b", [(160, 40), (161, 39), (180, 20), (140, 60)])
def test_weighted_within_tolerance(a, b):
    ok, message = gw.evaluate_weighted_counts(counts(a=a, b=b), 200, [80, 20], 10)
    assert ok, message


@pytest.mark.parametrize("a,b", [(181, 19), (139, 61), (200, 0), (100, 100)])
def test_weighted_outside_tolerance(a, b):
    ok, message = gw.evaluate_weighted_counts(counts(a=a, b=b), 200, [80, 20], 10)
    assert not ok
    assert "split off by" in message and "a=%d b=%d" % (a, b) in message


def test_weighted_tolerance_is_configurable():
    assert not gw.evaluate_weighted_counts(counts(a=170, b=30), 200, [80, 20], 4)[0]
    assert gw.evaluate_weighted_counts(counts(a=170, b=30), 200, [80, 20], 5)[0]


def test_weighted_zero_responses_fails_clearly():
    ok, message = gw.evaluate_weighted_counts(counts(errors=200, last_error="curl exit 7"), 200, [80, 20], 10)
    assert not ok and "none of the 200 weighted requests reached a backend" in message and "curl exit 7" in message


def test_weighted_answers_from_elsewhere_fail():
    ok, message = gw.evaluate_weighted_counts(counts(a=150, b=40, other=10, other_sample="404 page not found"),
                                              200, [80, 20], 10)
    assert not ok and "10 got an answer from neither backend" in message and "404 page not found" in message


def test_warmup_evaluation():
    assert gw.evaluate_warmup({"phase": "warmup", "ok": True, "target": "1.2.3.4:80", "attempts": 2})[0]
    ok, message = gw.evaluate_warmup({"phase": "warmup", "ok": False, "target": "", "attempts": 30, "seconds": 60,
                                      "last_error": "http 404"}, ["1.2.3.4:80"])
    assert not ok and "1.2.3.4:80" in message and "http 404" in message
    assert not gw.evaluate_warmup(None)[0]


def test_validate_traffic_options():
    assert gw.validate_traffic_options(200, [80, 20], 10) == []
    assert gw.validate_traffic_options(0, [80, 20], 10)
    assert gw.validate_traffic_options(10, [80], 10)
    assert gw.validate_traffic_options(10, [0, 0], 10)
    assert gw.validate_traffic_options(10, [-1, 5], 10)
    assert gw.validate_traffic_options(10, [80, 20], 101)
    assert gw.validate_traffic_options(200, [80, 20], 25.5) == [
        "tolerance must be above 0 and at most 25 percentage points (a wider one would pass a router that ignores the weights), got 25.5"]
    assert gw.validate_traffic_options(200, [80, 20], 0)
    assert gw.validate_traffic_options(10001, [80, 20], 10) == ["requests must be at most 10000, got 10001"]
    # one weight 0: every request goes to one backend, any count passes
    assert gw.validate_traffic_options(1, [100, 0], 1) == []


def test_all_requests_on_one_backend_fail_when_both_have_weight():
    """Before: b off by exactly 20 points at tolerance 20 passed although b got nothing."""
    ok, message = gw.evaluate_weighted_counts(counts(a=200, b=0), 200, [80, 20], 20)
    assert not ok and "backend b (weight 20) received no request" in message
    ok, message = gw.evaluate_weighted_counts(counts(a=0, b=200), 200, [20, 80], 20)
    assert not ok and "backend a (weight 20) received no request" in message
    # a backend of weight 0 getting nothing is right
    assert gw.evaluate_weighted_counts(counts(a=200, b=0), 200, [100, 0], 5)[0]


@pytest.mark.parametrize("share,tolerance,minimum", [
    # smallest N from which on every count passes with >= 99.9 % (exact binomial, cross-checked below)
    (20.0, 10, 177), (50.0, 10, 274), (20.0, 20, 48), (20.0, 5, 708), (10.0, 5, 407), (50.0, 25, 42),
    # 99/1: the binding rule is that backend b (1 %) must get at least one request
    (1.0, 25, 688),
])
def test_minimum_requests(share, tolerance, minimum):
    assert gw.minimum_requests(share, tolerance) == minimum
    assert gw.pass_probability(minimum, share, tolerance) >= 0.999
    assert gw.pass_probability(minimum - 1, share, tolerance) < 0.999
    assert all(gw.pass_probability(n, share, tolerance) >= 0.999 for n in range(minimum, minimum + 60))


def _exact(n, share, tolerance):
    """Reference: the binomial sum term by term with math.comb."""
    import math
    p = share / 100.0
    return sum(math.comb(n, k) * p ** k * (1 - p) ** (n - k) for k in range(n + 1) if gw.split_accepted(k, n, share, tolerance))


@pytest.mark.parametrize("n,share,tolerance", [(200, 20.0, 10), (50, 20.0, 10), (200, 50.0, 10), (30, 1.0, 25), (177, 20.0, 10),
                                               (5, 20.0, 20)])
def test_pass_probability_is_the_exact_binomial_sum(n, share, tolerance):
    assert abs(gw.pass_probability(n, share, tolerance) - _exact(n, share, tolerance)) < 1e-9


def test_pass_probability_values():
    assert round(gw.pass_probability(200, 20.0, 10), 5) == 0.99968
    assert round(gw.pass_probability(50, 20.0, 10), 4) == 0.9507
    assert round(gw.pass_probability(200, 50.0, 10), 5) == 0.99637
    assert gw.pass_probability(10, 0.0, 1) == 1.0
    # a too small tolerance needs more than the most requests allowed
    assert gw.minimum_requests(20.0, 1) is None
    assert "more than 10000 requests; use a larger tolerance" in gw.validate_traffic_options(200, [80, 20], 1)[0]


def test_control_evaluation():
    assert gw.evaluate_control({"phase": "control", "ok": True, "targets": "aic-model-a:8080 aic-model-b:8080"})[0]
    ok, cause, message = gw.evaluate_control({"phase": "control", "ok": False, "failed": " aic-model-a:8080", "attempts": 5,
                                              "last_error": "curl exit 6"})
    assert (ok, cause) == (False, "network_policy") and "curl exit 6" in message and "aic-model-a:8080" in message
    assert gw.evaluate_control({"ok": False, "last_error": "curl exit 127"})[1] == "test_tooling"
    assert gw.evaluate_control(None)[1] == "test_tooling"


def test_client_targets_from_status_addresses():
    g = gateway_obj(addresses=("10.43.12.7", "fd00::7"))
    assert gw.client_targets(g, 80, ["rke2-traefik.kube-system.svc:80"]) == [
        "10.43.12.7:80", "[fd00::7]:80", "rke2-traefik.kube-system.svc:80"]
    assert gw.client_targets(gateway_obj(addresses=()), 80) == []
