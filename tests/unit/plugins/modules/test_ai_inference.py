"""The ai_inference module over HTTP against the fake API server.

The fake serves the recorded discovery (gateway.networking.k8s.io v1 + v1beta1 from the v1.4.1 CRDs);
a hook applies the status defaults of the real CRDs on create (as the apiserver does: the recorded
GatewayClass fixture shows Accepted=Unknown/Pending), and a reconciler plays Traefik, the Deployment
controller, the kubelet and the client pod's output.
"""

import time

import pytest

from ansible_collections.ai_conformance.rke2.plugins.module_utils import gateway as gw
from ansible_collections.ai_conformance.rke2.plugins.module_utils import testpods
from ansible_collections.ai_conformance.rke2.plugins.modules import ai_inference
from tests.support.fakeapi import FakeKubeAPI
from tests.support.modrun import checks, run_module
from tests.support.gateway_cluster import Cluster, client_log, cond, leftovers
from tests.support.shared import fixture_response


@pytest.fixture()
def fake():
    with FakeKubeAPI() as server:
        yield server


def run_raw(fake, tmp_path, capsys, check_mode=False, **options):
    args = {"kubeconfig": fake.write_kubeconfig(str(tmp_path / "kubeconfig")), "timeout": 2, "run_id": "t1"}
    args.update(options)
    return run_module(ai_inference, args, capsys, check_mode=check_mode)


def run(fake, tmp_path, capsys, check_mode=False, **options):
    out = run_raw(fake, tmp_path, capsys, check_mode=check_mode, **options)
    assert out["changed"] is False
    return out["result"]


def evidence(result, name):
    for item in result["evidence"]:
        if item["name"] == name:
            return item["content"]
    raise AssertionError("no evidence %s in %s" % (name, [e["name"] for e in result["evidence"]]))


def test_traffic_through_traefik_passes_and_cleans_up(fake, tmp_path, capsys):
    cluster = Cluster(fake)
    result = run(fake, tmp_path, capsys)
    found = checks(result)
    assert result["status"] == "passed", found
    assert [c["status"] for c in result["checks"]] == ["passed"] * 8
    # routed traffic exercises the capability; the status checks only inspect
    assert [c["name"] for c in result["checks"] if c["kind"] == "exercise"] == ["gateway_routes_traffic", "header_routing", "weighted_split"]
    assert evidence(result, "traffic")["control"]["ok"] is True
    assert "Handled by Traefik controller" in found["gatewayclass_accepted"]["message"]
    assert found["header_routing"]["message"] == "all 200 requests with header x-ai-model: model-b reached backend b"
    assert "a=161 b=39" in found["weighted_split"]["message"]
    assert "referencegrants" in evidence(result, "api-resources")
    traffic = evidence(result, "traffic")
    assert traffic["targets"] == ["10.43.0.10:80", "rke2-traefik.kube-system.svc:80"]
    assert traffic["weighted"]["a"] == 161
    assert evidence(result, "gatewayclass")["created_by_check"] is True
    # what the client pod was told: the Gateway's address first, the route's own hostname, N requests
    pod = cluster.client_pods[0]
    env = dict((e["name"], e["value"]) for e in pod["spec"]["containers"][0]["env"])
    assert env["AIC_TARGETS"].split() == traffic["targets"] and env["AIC_REQUESTS"] == "200"
    assert env["AIC_HOST"] == "%s.ai-conformance.test" % pod["metadata"]["namespace"]
    # the route that was created carries both rules and the configured weights
    route_posts = fake.requests_to("POST", "/httproutes$")
    assert len(route_posts) == 1
    assert leftovers(fake) == []
    # the temporary class and the namespace were deleted by the module, not left to anyone else
    assert fake.requests_to("DELETE", "/gatewayclasses/aic-ai-inference-")
    assert fake.requests_to("DELETE", "/api/v1/namespaces/aic-ai-inference-")


def test_existing_accepted_class_is_used_and_kept(fake, tmp_path, capsys):
    cluster = Cluster(fake, log=client_log(header=(0, 300), weighted=(156, 144)))
    accepted = [cond("Accepted", "True", "Handled", "Handled by Traefik controller")]
    fake.put_object({"apiVersion": gw.V1, "kind": "GatewayClass", "metadata": {"name": "traefik"},
                     "spec": {"controllerName": gw.DEFAULT_CONTROLLER}, "status": {"conditions": accepted}})
    result = run(fake, tmp_path, capsys, weights=[50, 50], requests=300)
    assert result["status"] == "passed", checks(result)
    assert "a=156 b=144 (b 48.0%, expected 50.0%" in checks(result)["weighted_split"]["message"]
    assert evidence(result, "gatewayclass") == {"name": "traefik", "controllerName": gw.DEFAULT_CONTROLLER,
                                                "created_by_check": False, "conditions": accepted}
    assert fake.get_object(gw.V1, "gatewayclasses", "traefik") is not None
    assert not fake.requests_to("POST", "/gatewayclasses$")
    assert [g["spec"]["gatewayClassName"] for g in cluster.seen["gateways"]] == ["traefik"]
    route = cluster.seen["httproutes"][0]
    assert [b["weight"] for b in route["spec"]["rules"][1]["backendRefs"]] == [50, 50]
    assert leftovers(fake) == []


def test_client_counts_for_another_number_of_requests_are_rejected(fake, tmp_path, capsys):
    Cluster(fake)  # the client reports 200 requests per phase
    result = run(fake, tmp_path, capsys, requests=300)
    assert result["status"] == "failed"
    assert "client sent 200 of 300" in checks(result)["header_routing"]["message"]


def test_crds_but_no_controller_fails_within_the_timeout_naming_the_class_and_conditions(fake, tmp_path, capsys):
    """The issue's definition of done."""
    Cluster(fake, controller=False)
    started = time.monotonic()
    result = run(fake, tmp_path, capsys, timeout=3)
    elapsed = time.monotonic() - started
    found = checks(result)
    assert result["status"] == "failed"
    assert found["gateway_api_resources"]["status"] == "passed"
    message = found["gatewayclass_accepted"]["message"]
    assert found["gatewayclass_accepted"]["status"] == "failed"
    assert message.startswith("GatewayClass aic-ai-inference-")
    assert "not accepted after 3s" in message
    assert "conditions=[Accepted=Unknown (Pending: Waiting for controller)]" in message
    assert "traefik.io/gateway-controller controller running" in message
    assert all(found[name]["status"] == "skipped" for name in ai_inference.TRAFFIC_CHECKS)
    assert 3 <= elapsed < 3 + 10
    assert leftovers(fake) == []


def test_class_refused_by_the_controller_fails_at_once(fake, tmp_path, capsys):
    Cluster(fake, class_status=("False", "InvalidParameters", "parametersRef kube-system/traefik-params not found"))
    started = time.monotonic()
    result = run(fake, tmp_path, capsys, timeout=30)
    assert time.monotonic() - started < 10
    message = checks(result)["gatewayclass_accepted"]["message"]
    assert result["status"] == "failed"
    assert "rejected by its controller" in message
    assert "Accepted=False (InvalidParameters: parametersRef kube-system/traefik-params not found)" in message
    assert leftovers(fake) == []


def test_gateway_never_programmed_fails_with_its_conditions(fake, tmp_path, capsys):
    Cluster(fake, program_gateway=False)
    result = run(fake, tmp_path, capsys)
    found = checks(result)
    assert result["status"] == "failed"
    assert found["gatewayclass_accepted"]["status"] == "passed"
    assert found["traffic_backends"]["status"] == "passed"
    message = found["gateway_programmed"]["message"]
    assert found["gateway_programmed"]["status"] == "failed"
    assert "was not programmed within 2s" in message
    assert "Programmed=Unknown (Pending: Waiting for controller)" in message
    assert found["header_routing"]["status"] == "skipped"
    assert leftovers(fake) == []


def test_route_with_unresolved_backend_fails(fake, tmp_path, capsys):
    Cluster(fake, route_ok=False)
    result = run(fake, tmp_path, capsys)
    message = checks(result)["httproute_accepted"]["message"]
    assert result["status"] == "failed"
    assert "ResolvedRefs=False (BackendNotFound: Cannot find service" in message
    assert leftovers(fake) == []


def test_header_leak_fails_naming_the_count(fake, tmp_path, capsys):
    Cluster(fake, log=client_log(header=(7, 193)))
    result = run(fake, tmp_path, capsys)
    found = checks(result)
    assert result["status"] == "failed"
    assert found["header_routing"]["status"] == "failed"
    assert "7 reached backend a (header routing leak)" in found["header_routing"]["message"]
    assert found["weighted_split"]["status"] == "passed"
    assert leftovers(fake) == []


def test_weighted_split_outside_tolerance_fails(fake, tmp_path, capsys):
    Cluster(fake, log=client_log(weighted=(100, 100)))
    result = run(fake, tmp_path, capsys)
    found = checks(result)
    assert found["weighted_split"]["status"] == "failed"
    assert "split off by 30.0 points" in found["weighted_split"]["message"]
    assert found["header_routing"]["status"] == "passed"


def test_weighted_split_within_a_wider_tolerance_passes(fake, tmp_path, capsys):
    Cluster(fake, log=client_log(weighted=(130, 70)))  # b 35% for an expected 20%
    assert checks(run(fake, tmp_path, capsys))["weighted_split"]["status"] == "failed"
    assert checks(run(fake, tmp_path, capsys, tolerance=16))["weighted_split"]["status"] == "passed"


def test_all_requests_to_one_backend_fail_although_within_the_tolerance(fake, tmp_path, capsys):
    """200 of 200 requests on backend a at weights 80/20, tolerance 20: b's share is off by exactly 20 points,
    yet backend b got nothing, which a weighted split never does."""
    Cluster(fake, log=client_log(weighted=(200, 0)))
    result = run(fake, tmp_path, capsys, weights=[80, 20], tolerance=20)
    weighted = checks(result)["weighted_split"]
    assert (weighted["status"], weighted["kind"]) == ("failed", "exercise")
    assert "backend b (weight 20) received no request" in weighted["message"]
    assert result["status"] == "failed"


@pytest.mark.parametrize("options,message", [
    ({"tolerance": 30}, "tolerance must be above 0 and at most 25 percentage points"),
    ({"requests": 50}, "requests=50 is too few: a router that splits exactly 80/20 would pass only with probability 95.07% "
                       "at tolerance 10.0 points (exact binomial); a 99.9% chance needs at least 177 requests"),
    ({"weights": [50, 50], "requests": 200}, "a 99.9% chance needs at least 274 requests"),
    ({"weights": [0, 0]}, "weights must be non-negative and not both zero"),
])
def test_unusable_traffic_options_are_rejected_before_anything_is_created(fake, tmp_path, capsys, options, message):
    Cluster(fake)
    out = run_raw(fake, tmp_path, capsys, **options)
    assert out["failed"] is True
    assert message in out["msg"]
    assert not fake.requests


def test_gateway_that_routes_nothing_fails(fake, tmp_path, capsys):
    Cluster(fake, log=client_log(warmup_ok=False))
    result = run(fake, tmp_path, capsys)
    found = checks(result)
    assert result["status"] == "failed"
    assert found["gateway_routes_traffic"]["status"] == "failed"
    assert "no answer from a backend through the Gateway at 10.43.0.10:80, rke2-traefik.kube-system.svc:80" in (
        found["gateway_routes_traffic"]["message"])
    assert "http 404" in found["gateway_routes_traffic"]["message"]
    assert found["header_routing"]["status"] == "skipped"
    assert leftovers(fake) == []


def test_backend_image_not_pullable_is_an_error_not_a_failure(fake, tmp_path, capsys):
    Cluster(fake, backend_problem='Back-off pulling image "registry.example/agnhost:2.53"')
    result = run(fake, tmp_path, capsys, images={"agnhost": "registry.example/agnhost:2.53"}, timeout=30)
    found = checks(result)
    assert result["status"] == "error"
    assert (found["traffic_backends"]["status"], found["traffic_backends"]["cause"]) == ("error", "image_pull")
    assert "ImagePullBackOff" in found["traffic_backends"]["message"]
    assert "registry.example/agnhost:2.53" in found["traffic_backends"]["message"]
    assert leftovers(fake) == []


def test_unreadable_client_output_is_an_error(fake, tmp_path, capsys):
    Cluster(fake, log="sh: curl: not found\n")
    result = run(fake, tmp_path, capsys)
    found = checks(result)
    assert result["status"] == "error"
    assert found["gateway_routes_traffic"]["status"] == "error"
    assert "output is incomplete" in found["gateway_routes_traffic"]["message"]
    assert found["gateway_routes_traffic"]["cause"] == "test_tooling"
    assert evidence(result, "client-log") == "sh: curl: not found\n"
    assert leftovers(fake) == []


def test_api_failure_midway_still_cleans_up(fake, tmp_path, capsys):
    Cluster(fake)
    fake.fail("POST", "/httproutes$", status_code=500)
    result = run(fake, tmp_path, capsys)
    assert result["status"] == "error"
    assert "500" in checks(result)["ai_inference_run"]["message"]
    assert leftovers(fake) == []
    assert fake.requests_to("DELETE", "/gateways/aic-gateway")


def test_without_the_gateway_api_nothing_is_created(fake, tmp_path, capsys):
    Cluster(fake)
    fake.remove_group_version(gw.V1)
    fake.remove_group_version(gw.V1BETA1)
    result = run(fake, tmp_path, capsys)
    found = checks(result)
    assert result["status"] == "failed"
    assert found["gateway_api_resources"]["status"] == "failed"
    assert "none (group not served)" in found["gateway_api_resources"]["message"]
    assert found["gatewayclass_accepted"]["status"] == "skipped"
    assert not fake.requests_to("POST")
    assert leftovers(fake) == []


def test_missing_referencegrants_fails_discovery(fake, tmp_path, capsys):
    Cluster(fake)
    fake.remove_group_version(gw.V1BETA1)
    result = run(fake, tmp_path, capsys)
    assert checks(result)["gateway_api_resources"]["status"] == "failed"
    assert "missing: referencegrants" in checks(result)["gateway_api_resources"]["message"]
    assert result["status"] == "failed"


def test_check_mode_creates_nothing_and_does_not_pass(fake, tmp_path, capsys):
    Cluster(fake)
    result = run(fake, tmp_path, capsys, check_mode=True)
    assert result["status"] == "skipped"
    assert not fake.requests_to("POST") and not fake.requests_to("DELETE")
    assert checks(result)["gatewayclass_accepted"]["status"] == "skipped"


def test_traffic_test_disabled_is_not_a_pass(fake, tmp_path, capsys):
    Cluster(fake)
    result = run(fake, tmp_path, capsys, traffic_test=False)
    assert result["status"] == "skipped"
    assert checks(result)["gatewayclass_accepted"]["status"] == "passed"
    assert checks(result)["header_routing"]["status"] == "skipped"
    assert any("not exercised" in note for note in result["notes"])
    assert leftovers(fake) == []


def test_named_class_of_another_controller_is_an_error(fake, tmp_path, capsys):
    Cluster(fake)
    fake.put_recorded("objects/gatewayclass-fixture-gateway-class.json")
    result = run(fake, tmp_path, capsys, gateway_class="fixture-gateway-class")
    message = checks(result)["gatewayclass_accepted"]["message"]
    assert result["status"] == "error"
    assert "belongs to controller example.com/fixture-gateway-controller, not traefik.io/gateway-controller" in message
    assert fake.get_object(gw.V1, "gatewayclasses", "fixture-gateway-class") is not None


def test_recorded_pending_class_of_traefik_is_waited_for(fake, tmp_path, capsys):
    """An existing class of the controller that stays Pending (recorded shape) fails and is not deleted."""
    Cluster(fake, controller=False)
    recorded = fixture_response("k8s-fixtures", "objects", "gatewayclass-fixture-gateway-class.json")
    recorded["spec"]["controllerName"] = gw.DEFAULT_CONTROLLER
    fake.put_object(recorded)
    result = run(fake, tmp_path, capsys)
    message = checks(result)["gatewayclass_accepted"]["message"]
    assert message.startswith("GatewayClass fixture-gateway-class not accepted after 2s: ")
    assert "Accepted=Unknown (Pending: Waiting for controller)" in message
    assert fake.get_object(gw.V1, "gatewayclasses", "fixture-gateway-class") is not None
    assert not fake.requests_to("POST")


# --------------------------------------------------------------------------- control requests, test pods, causes


def test_default_deny_network_policy_is_an_error_not_a_routing_failure(fake, tmp_path, capsys):
    """A policy engine puts a default-deny NetworkPolicy into every new namespace: the client reaches nothing,
    not even a backend Service directly, so routing cannot be judged."""
    Cluster(fake, default_deny=True)
    result = run(fake, tmp_path, capsys)
    found = checks(result)
    assert result["status"] == "error", found
    for name in ("gateway_routes_traffic", "header_routing", "weighted_split"):
        assert (found[name]["status"], found[name]["cause"]) == ("error", "network_policy"), found[name]
    message = found["gateway_routes_traffic"]["message"]
    assert "control requests from the client pod straight to aic-model-a:8080 aic-model-b:8080" in message
    assert "curl exit 28" in message and "NetworkPolicies in namespace aic-ai-inference-" in message and "default-deny-all" in message
    assert found["gateway_programmed"]["status"] == "passed"
    assert leftovers(fake) == []


def test_client_without_curl_is_a_tooling_error(fake, tmp_path, capsys):
    Cluster(fake, log=client_log(control_error="curl exit 127"))
    found = checks(run(fake, tmp_path, capsys))
    assert (found["gateway_routes_traffic"]["status"], found["gateway_routes_traffic"]["cause"]) == ("error", "test_tooling")
    assert "cannot run curl" in found["gateway_routes_traffic"]["message"]


def test_backends_and_client_come_from_the_builder(fake, tmp_path, capsys):
    """Restricted (the fake Deployment controller refuses anything else, as PSA does), pinned image behind the mirror."""
    cluster = Cluster(fake)
    deployments = []
    fake.on_create("apps/v1", "deployments", lambda obj, server, dry_run: deployments.append(obj))
    result = run(fake, tmp_path, capsys, image_registry="mirror.example:5000", tolerations=[{"key": "dedicated", "operator": "Exists"}])
    assert result["status"] == "passed", checks(result)
    image = "mirror.example:5000/e2e-test-images/agnhost:2.53"
    specs = [d["spec"]["template"]["spec"] for d in deployments] + [cluster.client_pods[0]["spec"]]
    assert len(specs) == 3
    for spec in specs:
        assert testpods.hardening_problems(spec) == []
        assert spec["containers"][0]["image"] == image
        assert {"key": "dedicated", "operator": "Exists"} in spec["tolerations"]
    assert deployments[0]["spec"]["template"]["spec"]["restartPolicy"] == "Always"
    env = dict((e["name"], e["value"]) for e in cluster.client_pods[0]["spec"]["containers"][0]["env"])
    assert env["AIC_CONTROL_TARGETS"] == "aic-model-a:8080 aic-model-b:8080"
    assert evidence(result, "test-images") == {"agnhost": image}


def test_backend_pods_refused_by_a_quota_are_an_error_naming_it(fake, tmp_path, capsys):
    recorded = fixture_response("k8s-fixtures", "errors", "403-quota-exceeded-second-pod.json")["message"]
    Cluster(fake, backend_rejection=recorded)
    result = run(fake, tmp_path, capsys)
    backends = checks(result)["traffic_backends"]
    assert (backends["status"], backends["cause"]) == ("error", "resource_quota"), backends
    assert "ReplicaSet aic-model-a-5f7d8c9b6 could not create its pod" in backends["message"]
    assert "exceeded quota: compute-quota" in backends["message"]
    assert result["status"] == "error"
    assert leftovers(fake) == []


def test_backends_still_pulling_at_the_timeout_name_the_image(fake, tmp_path, capsys):
    Cluster(fake, backend_problem=("ContainerCreating", ""))
    result = run(fake, tmp_path, capsys)
    backends = checks(result)["traffic_backends"]
    assert (backends["status"], backends["cause"]) == ("error", "image_pull_timeout"), backends
    assert "still creating its containers: echo (registry.k8s.io/e2e-test-images/agnhost:2.53, ContainerCreating)" in backends["message"]
    assert result["status"] == "error"


def test_client_image_not_pullable_is_an_error_naming_it(fake, tmp_path, capsys):
    Cluster(fake, client_waiting=("ErrImagePull", 'failed to pull image "registry.k8s.io/e2e-test-images/agnhost:2.53"'))
    result = run(fake, tmp_path, capsys)
    client = checks(result)["gateway_routes_traffic"]
    assert (client["status"], client["cause"]) == ("error", "image_pull"), client
    assert "registry.k8s.io/e2e-test-images/agnhost:2.53" in client["message"]
    assert checks(result)["header_routing"]["status"] == "skipped"
    assert leftovers(fake) == []
