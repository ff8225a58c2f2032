"""Every object the ai_inference verifier creates, rendered and checked.

Gateway API objects are validated against the real v1.4.1 standard-channel CRD schemas in
../shared/crds/gateway-api; built-in kinds (Deployment, Service, Pod) get structural checks.
"""

import json

import jsonschema
import pytest

from ansible_collections.ai_conformance.rke2.plugins.module_utils import gateway as gw
from ansible_collections.ai_conformance.rke2.plugins.module_utils import testpods
from tests.support import crdschema

NS = "aic-ai-inference-k3x9q"
LABELS = {"app.kubernetes.io/managed-by": "ai-conformance-rke2", "ai-conformance.rke2/requirement": "ai_inference",
          "ai-conformance.rke2/run-id": "20261123t064000"}
IMAGE = "registry.k8s.io/e2e-test-images/agnhost:2.53"
BUILDER = testpods.PodBuilder()


def gateway_api_objects(weights=(80, 20)):
    return [
        gw.render_gatewayclass("aic-ai-inference-k3x9q", gw.DEFAULT_CONTROLLER, LABELS),
        gw.render_gateway("aic-gateway", NS, "traefik", 8000, LABELS),
        gw.render_httproute("aic-route", NS, "aic-gateway", list(weights), LABELS),
    ]


@pytest.mark.parametrize("index", range(3))
def test_gateway_api_objects_validate_against_the_crds(index):
    manifest = gateway_api_objects()[index]
    crdschema.validate("gateway-api", manifest)
    assert manifest["metadata"]["labels"]["app.kubernetes.io/managed-by"] == "ai-conformance-rke2"


@pytest.mark.parametrize("weights", [(100, 0), (0, 100), (50, 50), (1000000, 1)])
def test_route_with_edge_weights_validates(weights):
    crdschema.validate("gateway-api", gw.render_httproute("aic-route", NS, "aic-gateway", list(weights), LABELS))


def test_route_with_a_weight_over_the_api_limit_is_rejected_by_the_schema():
    route = gw.render_httproute("aic-route", NS, "aic-gateway", [1000001, 1], LABELS)
    with pytest.raises(jsonschema.ValidationError):
        crdschema.validate("gateway-api", route)


def test_gatewayclass_with_invalid_controller_name_is_rejected_by_the_schema():
    # same case as the recorded 422 (errors/422-gatewayclass-invalid-controllername.json)
    with pytest.raises(jsonschema.ValidationError):
        crdschema.validate("gateway-api", gw.render_gatewayclass("x", "no-slash-here", LABELS))


def test_route_rules_route_the_header_to_b_and_split_the_rest():
    route = gw.render_httproute("aic-route", NS, "aic-gateway", [80, 20], LABELS)
    header_rule, weighted_rule = route["spec"]["rules"]
    assert header_rule["matches"] == [{"headers": [{"type": "Exact", "name": "x-ai-model", "value": "model-b"}]}]
    assert [b["name"] for b in header_rule["backendRefs"]] == [gw.BACKEND_B]
    assert [(b["name"], b["weight"]) for b in weighted_rule["backendRefs"]] == [(gw.BACKEND_A, 80), (gw.BACKEND_B, 20)]
    assert route["spec"]["hostnames"] == ["%s.ai-conformance.test" % NS]
    assert route["spec"]["parentRefs"][0]["name"] == "aic-gateway"


def test_route_hostname_is_a_valid_gateway_api_hostname_for_the_longest_namespace():
    ns = "n" * 63
    crdschema.validate("gateway-api", gw.render_httproute("r", ns, "g", [80, 20], LABELS))


def test_backends_answer_with_a_name_that_identifies_them():
    for name in (gw.BACKEND_A, gw.BACKEND_B):
        deployment, service = gw.render_backend(name, NS, BUILDER, LABELS)
        assert deployment["kind"] == "Deployment" and service["kind"] == "Service"
        assert deployment["metadata"]["name"] == name == service["metadata"]["name"]
        pod_spec = deployment["spec"]["template"]["spec"]
        container = pod_spec["containers"][0]
        assert container["image"] == IMAGE
        assert container["args"][0] == "netexec" and "--http-port=8080" in container["args"]
        # the one test-pod builder: restricted, requests/limits; a Deployment's pods restart Always
        assert testpods.hardening_problems(pod_spec) == []
        assert pod_spec["restartPolicy"] == "Always"
        selector = deployment["spec"]["selector"]["matchLabels"]
        assert all(deployment["spec"]["template"]["metadata"]["labels"][k] == v for k, v in selector.items())
        assert service["spec"]["selector"] == selector
        assert service["spec"]["ports"][0]["port"] == gw.BACKEND_PORT == container["ports"][0]["containerPort"]
        assert service["metadata"]["labels"]["ai-conformance.rke2/run-id"] == LABELS["ai-conformance.rke2/run-id"]
    # the selectors of a and b must not overlap, or a's Service would also reach b's pod
    sel_a = gw.render_backend(gw.BACKEND_A, NS, BUILDER, LABELS)[1]["spec"]["selector"]
    sel_b = gw.render_backend(gw.BACKEND_B, NS, BUILDER, LABELS)[1]["spec"]["selector"]
    assert sel_a != sel_b


def test_route_backend_refs_match_the_services():
    services = dict((s["metadata"]["name"], s) for s in
                    (gw.render_backend(n, NS, BUILDER, LABELS)[1] for n in (gw.BACKEND_A, gw.BACKEND_B)))
    route = gw.render_httproute("aic-route", NS, "aic-gateway", [80, 20], LABELS)
    for rule in route["spec"]["rules"]:
        for ref in rule["backendRefs"]:
            assert ref["port"] in [p["port"] for p in services[ref["name"]]["spec"]["ports"]]


def test_gateway_listener_and_class():
    g = gw.render_gateway("aic-gateway", NS, "traefik", 8000, LABELS)
    assert g["spec"]["gatewayClassName"] == "traefik"
    assert g["spec"]["listeners"] == [{"name": "http", "protocol": "HTTP", "port": 8000,
                                       "allowedRoutes": {"namespaces": {"from": "Same"}}}]


def test_client_pod_is_bounded_restricted_and_parametrised():
    builder = testpods.PodBuilder({"image_registry": "mirror.example:5000"})
    pod = gw.render_client_pod("aic-client", NS, builder, ["10.43.0.5:80", "rke2-traefik.kube-system.svc:80"],
                               gw.route_hostname(NS), 200, LABELS, warmup_seconds=60, request_timeout=5)
    spec = pod["spec"]
    assert spec["restartPolicy"] == "Never"
    # control requests (2 Services x 5 attempts x (5 s + 1 s pause)), warmup, 2 x 200 requests of 5 s, slack
    assert spec["activeDeadlineSeconds"] == gw.client_deadline(200, 60, 5) == 60 + 60 + 2 * 200 * 5 + 30
    assert testpods.hardening_problems(spec) == []
    assert spec["containers"][0]["image"] == "mirror.example:5000/e2e-test-images/agnhost:2.53"
    container = spec["containers"][0]
    env = dict((e["name"], e["value"]) for e in container["env"])
    assert env["AIC_TARGETS"] == "10.43.0.5:80 rke2-traefik.kube-system.svc:80"
    assert env["AIC_REQUESTS"] == "200" and env["AIC_HEADER"] == "x-ai-model: model-b"
    assert env["AIC_HOST"] == NS + ".ai-conformance.test"
    assert env["AIC_CONTROL_TARGETS"] == "aic-model-a:8080 aic-model-b:8080" and env["AIC_CONTROL_ATTEMPTS"] == "5"
    assert container["command"][:2] == ["/bin/sh", "-c"]
    sc = container["securityContext"]
    # Pod Security Standard "restricted"
    assert sc["runAsNonRoot"] and sc["allowPrivilegeEscalation"] is False
    assert sc["capabilities"] == {"drop": ["ALL"]} and sc["seccompProfile"] == {"type": "RuntimeDefault"}
    json.dumps(pod)  # plain JSON, sendable as is


def test_all_labels_passed_in_are_on_every_object():
    objs = gateway_api_objects() + gw.render_backend(gw.BACKEND_A, NS, BUILDER, LABELS) + [
        gw.render_client_pod("c", NS, BUILDER, ["x:80"], "h", 1, LABELS)]
    for obj in objs:
        for key, value in LABELS.items():
            assert obj["metadata"]["labels"][key] == value, obj["kind"]
