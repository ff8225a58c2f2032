"""Tests of the fake API server (tests/support/fakeapi.py) with the real clients.

Everything the fake generates is compared with the recorded responses of a
real v1.34 apiserver in ../shared/k8s-fixtures.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import copy
import glob
import http.client
import json
import os
import signal
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request

import pytest
import yaml

from tests.support import fakeapi
from tests.support.fakeapi import FakeKubeAPI, Reject, SCENARIOS
from tests.support.shared import REPO_ROOT, shared_path

kubernetes = pytest.importorskip("kubernetes")
from kubernetes.dynamic.exceptions import (  # noqa: E402
    ConflictError, ForbiddenError, NotFoundError, ResourceNotFoundError, UnauthorizedError)

try:
    from ansible_collections.kubernetes.core.plugins.module_utils.k8s.client import get_api_client
except ImportError:  # pragma: no cover - .collections not set up
    get_api_client = None


# --------------------------------------------------------------------------
# helpers
# --------------------------------------------------------------------------

def recorded(name):
    """A recorded fixture wrapper ({"request", "status_code", "response"})."""
    with open(shared_path("k8s-fixtures", name)) as handle:
        return json.load(handle)


@pytest.fixture
def fake():
    with FakeKubeAPI() as api:
        yield api
        assert api.internal_errors == []


@pytest.fixture
def kubeconfig(fake, tmp_path):
    return fake.write_kubeconfig(str(tmp_path / "kubeconfig"))


@pytest.fixture
def core(kubeconfig):
    """kubernetes.core's K8SClient against the fake."""
    if get_api_client is None:
        pytest.skip(".collections/ansible_collections/kubernetes/core missing: run scripts/setup.sh")
    return get_api_client(kubeconfig=kubeconfig)


@pytest.fixture
def corev1(kubeconfig):
    """The plain kubernetes CoreV1Api against the fake."""
    api_client = kubernetes.config.new_client_from_config(config_file=kubeconfig)
    yield kubernetes.client.CoreV1Api(api_client)
    api_client.close()


def raw(fake, method, path, body=None, headers=None):
    """One HTTP request; returns (status, content type, body bytes)."""
    connection = http.client.HTTPConnection("127.0.0.1", fake.port, timeout=10)
    sent = {"Accept": "application/json"}
    if body is not None:
        sent["Content-Type"] = "application/json"
        if not isinstance(body, (bytes, str)):
            body = json.dumps(body)
    sent.update(headers or {})
    connection.request(method, path, body=body, headers=sent)
    response = connection.getresponse()
    data = response.read()
    connection.close()
    return response.status, response.getheader("Content-Type"), data


def status_and_body(fake, method, path, body=None, headers=None):
    """Like raw() without the content type."""
    answer = raw(fake, method, path, body, headers)
    return answer[0], answer[2]


def replay(fake, fixture):
    """Send a recorded request again; returns (status, parsed JSON or text)."""
    request = fixture["request"]
    headers = {}
    for name, value in (request.get("headers") or {}).items():
        if name.lower() in ("content-type", "impersonate-user", "authorization"):
            headers[name] = value
    status, content_type, data = raw(fake, request["method"], request["path"], request.get("body"), headers)
    if content_type.startswith("application/json"):
        return status, json.loads(data)
    return status, data.decode("utf-8")


def pod(name, namespace="default", **spec):
    spec.setdefault("containers", [{"name": "c", "image": "busybox:1.36"}])
    return {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": name, "namespace": namespace}, "spec": spec}


def configmap(name, namespace="default", labels=None, data=None):
    return {"apiVersion": "v1", "kind": "ConfigMap",
            "metadata": {"name": name, "namespace": namespace, "labels": labels or {}}, "data": data or {"k": "v"}}


def discovery_files():
    directory = shared_path("k8s-fixtures", "discovery")
    return sorted(os.path.basename(p) for p in glob.glob(os.path.join(directory, "*.json")))


def path_of(file_name):
    """discovery/<file> -> the URL path it was recorded from."""
    stem = file_name[:-len(".json")]
    return "/" + stem.replace("__", "/")


# --------------------------------------------------------------------------
# discovery
# --------------------------------------------------------------------------

def test_every_recorded_discovery_document_is_served_byte_equal(fake):
    files = discovery_files()
    assert len(files) == 43  # version, api, api/v1, apis + 39 group versions
    for name in files:
        status, content_type, data = raw(fake, "GET", path_of(name))
        with open(shared_path("k8s-fixtures", "discovery", name), "rb") as handle:
            assert (status, data) == (200, handle.read()), name
        assert content_type == "application/json"


def test_api_group_document_matches_the_group_list(fake):
    status, data = status_and_body(fake, "GET", "/apis/gateway.networking.k8s.io")
    doc = json.loads(data)
    groups = recorded_group_list()
    expected = [g for g in groups["groups"] if g["name"] == "gateway.networking.k8s.io"][0]
    assert status == 200
    assert doc["kind"] == "APIGroup"
    assert doc["versions"] == expected["versions"]
    assert doc["preferredVersion"] == {"groupVersion": "gateway.networking.k8s.io/v1", "version": "v1"}


def recorded_group_list():
    with open(shared_path("k8s-fixtures", "discovery", "apis.json")) as handle:
        return json.load(handle)


@pytest.mark.parametrize("name", ["404-unserved-group-custom-metrics.json", "404-unserved-group-metrics-k8s-io.json",
                                  "404-unknown-resource-in-served-group.json"])
def test_unserved_paths_answer_the_recorded_text_404(fake, name):
    fixture = recorded("errors/" + name)
    status, content_type, data = raw(fake, "GET", fixture["request"]["path"])
    assert (status, data.decode("utf-8")) == (fixture["status_code"], fixture["response"])
    assert content_type.startswith("text/plain")


def test_remove_group_version_drops_the_group_everywhere(fake, core):
    fake.remove_group_version("resource.k8s.io/v1")
    data = raw(fake, "GET", "/apis")[2]
    assert "resource.k8s.io" not in [g["name"] for g in json.loads(data)["groups"]]
    assert raw(fake, "GET", "/apis/resource.k8s.io/v1")[0] == 404
    assert raw(fake, "GET", "/apis/resource.k8s.io/v1/deviceclasses")[2] == b"404 page not found\n"
    with pytest.raises(ResourceNotFoundError):
        core.resource("DeviceClass", "resource.k8s.io/v1")
    with pytest.raises(ValueError):
        fake.remove_group_version("v1")


def test_dra_beta_only_scenario_serves_v1beta1_only(fake, core):
    v1_names = [r["name"] for r in fake.resource_list("resource.k8s.io/v1")["resources"]]
    SCENARIOS["dra-beta-only"](fake)
    group = json.loads(raw(fake, "GET", "/apis/resource.k8s.io")[2])
    assert [v["version"] for v in group["versions"]] == ["v1beta1"]
    assert group["preferredVersion"] == {"groupVersion": "resource.k8s.io/v1beta1", "version": "v1beta1"}
    beta = json.loads(raw(fake, "GET", "/apis/resource.k8s.io/v1beta1")[2])
    assert beta["groupVersion"] == "resource.k8s.io/v1beta1"
    assert [r["name"] for r in beta["resources"]] == v1_names
    assert raw(fake, "GET", "/apis/resource.k8s.io/v1")[0] == 404
    classes = core.resource("DeviceClass", "resource.k8s.io/v1beta1")
    created = classes.create({"apiVersion": "resource.k8s.io/v1beta1", "kind": "DeviceClass",
                              "metadata": {"name": "gpu.example.com"}, "spec": {}})
    assert created.apiVersion == "resource.k8s.io/v1beta1"
    assert [o["metadata"]["name"] for o in fake.objects("resource.k8s.io/v1beta1", "deviceclasses")] == [
        "gpu.example.com"]


def test_dra_missing_scenario(fake):
    SCENARIOS["dra-missing"](fake)
    names = [g["name"] for g in json.loads(raw(fake, "GET", "/apis")[2])["groups"]]
    assert "resource.k8s.io" not in names and len(names) == 33


def test_remove_resource_and_add_version_keep_apis_consistent(fake):
    fake.remove_resource("resource.k8s.io/v1", "resourceslices")
    doc = json.loads(raw(fake, "GET", "/apis/resource.k8s.io/v1")[2])
    assert not [r for r in doc["resources"] if r["name"].startswith("resourceslices")]
    assert raw(fake, "GET", "/apis/resource.k8s.io/v1/resourceslices")[0] == 404
    with pytest.raises(KeyError):
        fake.remove_resource("resource.k8s.io/v1", "resourceslices")
    fake.add_group_version("resource.k8s.io/v1beta2",
                           fakeapi.renamed_resource_list(fake.resource_list("resource.k8s.io/v1"), "x/y"))
    group = [g for g in json.loads(raw(fake, "GET", "/apis")[2])["groups"] if g["name"] == "resource.k8s.io"][0]
    assert [v["version"] for v in group["versions"]] == ["v1", "v1beta2"]
    assert group["preferredVersion"]["version"] == "v1"
    fake.add_group_version("example.com/v1alpha1", {"resources": []})
    group = [g for g in json.loads(raw(fake, "GET", "/apis")[2])["groups"] if g["name"] == "example.com"][0]
    assert group["preferredVersion"] == {"groupVersion": "example.com/v1alpha1", "version": "v1alpha1"}


def test_version_priority_orders_like_the_apiserver():
    versions = ["v1alpha1", "v1beta1", "v2", "v1", "v1beta2", "foo"]
    assert sorted(versions, key=fakeapi.version_priority) == ["v2", "v1", "v1beta2", "v1beta1", "v1alpha1", "foo"]


def test_client_discovery_cache_is_forgotten_on_stop(tmp_path):
    if get_api_client is None:
        pytest.skip(".collections missing")
    with FakeKubeAPI() as api:
        client = get_api_client(kubeconfig=api.write_kubeconfig(str(tmp_path / "kc")))
        client.resource("Pod", "v1")
        cache_file = client.client.resources._Discoverer__cache_file  # where kubernetes.core caches discovery
        assert os.path.exists(cache_file)
    assert not os.path.exists(cache_file)


# --------------------------------------------------------------------------
# CRUD through kubernetes.core's client
# --------------------------------------------------------------------------

def test_pod_create_get_list_delete_round_trip(fake, core):
    pods = core.resource("Pod", "v1")
    created = pods.create(pod("p1")).to_dict()
    meta = created["metadata"]
    assert meta["uid"] and meta["creationTimestamp"].endswith("Z") and meta["generation"] == 1
    assert created["status"] == {"phase": "Pending", "qosClass": "BestEffort"}
    assert pods.get(name="p1", namespace="default").to_dict() == created
    listed = pods.get(namespace="default").to_dict()
    assert listed["kind"] == "PodList" and int(listed["metadata"]["resourceVersion"]) >= int(meta["resourceVersion"])
    assert [i["metadata"]["name"] for i in listed["items"]] == ["p1"]
    raw_items = json.loads(raw(fake, "GET", "/api/v1/namespaces/default/pods")[2])["items"]
    assert list(raw_items[0]) == ["metadata", "spec", "status"]  # as recorded: built-in list items have no kind
    second = pods.create(pod("p2")).to_dict()
    assert int(second["metadata"]["resourceVersion"]) > int(meta["resourceVersion"])
    deleted = pods.delete(name="p1", namespace="default").to_dict()
    assert deleted["kind"] == "Pod" and deleted["metadata"]["name"] == "p1"
    with pytest.raises(NotFoundError):
        pods.get(name="p1", namespace="default")
    assert [o["metadata"]["name"] for o in fake.objects("v1", "pods")] == ["p2"]


def test_pod_create_matches_the_recorded_defaulting(fake, core):
    fixture = recorded("objects/pod-gpu-pod-1.create.json")
    fake.create_namespace("ai-fixtures")
    created = core.resource("Pod", "v1").create(fixture["request"]["body"]).to_dict()
    want = fixture["response"]
    assert created["spec"]["containers"][0]["resources"] == want["spec"]["containers"][0]["resources"]
    assert created["status"] == want["status"]
    for key in ("restartPolicy", "schedulerName", "tolerations", "priority", "dnsPolicy", "serviceAccountName"):
        assert created["spec"][key] == want["spec"][key], key
    assert list(created["metadata"])[:6] == list(want["metadata"])[:6]


def test_custom_resource_delete_answers_the_recorded_status(fake, core):
    fixture = recorded("objects/tfjob-no-image.accepted-without-webhook.json")
    fake.create_namespace("ai-fixtures")
    tfjobs = core.resource("TFJob", "kubeflow.org/v1")
    created = tfjobs.create(fixture["request"]["body"]).to_dict()
    assert created["apiVersion"] == "kubeflow.org/v1" and "status" not in created
    status, body = replay(fake, recorded("objects/tfjob-no-image.delete.json"))
    want = recorded("objects/tfjob-no-image.delete.json")["response"]
    want["details"]["uid"] = created["metadata"]["uid"]
    assert (status, body) == (200, want)
    assert fake.objects("kubeflow.org/v1", "tfjobs") == []


def test_custom_resource_list_items_keep_kind(fake, core):
    fake.create_namespace("ai-fixtures")
    tfjobs = core.resource("TFJob", "kubeflow.org/v1")
    tfjobs.create(recorded("objects/tfjob-mnist.create.json")["request"]["body"])
    listed = tfjobs.get(namespace="ai-fixtures").to_dict()
    assert listed["kind"] == "TFJobList"
    assert listed["items"][0]["kind"] == "TFJob" and listed["items"][0]["apiVersion"] == "kubeflow.org/v1"


def test_generate_name_and_cluster_scoped_objects(fake, core):
    namespaces = core.resource("Namespace", "v1")
    created = namespaces.create({"apiVersion": "v1", "kind": "Namespace",
                                 "metadata": {"generateName": "aic-test-", "labels": {"a": "b"}}}).to_dict()
    name = created["metadata"]["name"]
    assert name.startswith("aic-test-") and len(name) == len("aic-test-") + 5
    assert created["metadata"]["labels"] == {"a": "b", "kubernetes.io/metadata.name": name}
    assert created["status"] == {"phase": "Active"} and "generation" not in created["metadata"]
    names = [i["metadata"]["name"] for i in namespaces.get().to_dict()["items"]]
    assert names == sorted(["default", "kube-node-lease", "kube-public", "kube-system", name])
    classes = core.resource("GatewayClass", "gateway.networking.k8s.io/v1")
    classes.create({"apiVersion": "gateway.networking.k8s.io/v1", "kind": "GatewayClass",
                    "metadata": {"name": "gc", "namespace": "ignored"}, "spec": {"controllerName": "a.b/c"}})
    assert "namespace" not in fake.get_object("gateway.networking.k8s.io/v1", "gatewayclasses", "gc")["metadata"]


def test_put_replaces_and_keeps_status_of_status_subresource(fake, core):
    deployments = core.resource("Deployment", "apps/v1")
    body = {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "d", "namespace": "default"},
            "spec": {"selector": {"matchLabels": {"app": "d"}}, "template": {"metadata": {"labels": {"app": "d"}}}}}
    created = deployments.create(body).to_dict()
    assert created["spec"]["replicas"] == 1 and created["status"] == {}
    fake.set_status("apps/v1", "deployments", "d", {"replicas": 1, "readyReplicas": 1}, namespace="default")
    current = deployments.get(name="d", namespace="default").to_dict()
    changed = copy.deepcopy(current)
    changed["spec"]["replicas"] = 3
    changed["status"] = {"replicas": 99}
    replaced = deployments.replace(changed).to_dict()
    assert replaced["spec"]["replicas"] == 3 and replaced["status"] == {"replicas": 1, "readyReplicas": 1}
    assert replaced["metadata"]["generation"] == 2
    same = deployments.replace(replaced).to_dict()
    assert same["metadata"]["resourceVersion"] == replaced["metadata"]["resourceVersion"]  # no-op keeps it
    status = deployments.status.replace(dict(replaced, status={"replicas": 3})).to_dict()
    assert status["status"] == {"replicas": 3} and status["metadata"]["generation"] == 2
    with pytest.raises(ConflictError):
        deployments.replace(replaced)  # stale resourceVersion now


def test_stale_update_conflict_matches_recorded(fake):
    fixture = recorded("errors/409-update-stale-resourceversion.json")
    fake.create_namespace("ai-fixtures")
    status, first = replay(fake, recorded("objects/configmap-cm-conflict.create.json"))
    assert status == 201
    body = dict(fixture["request"]["body"])
    body["metadata"] = dict(body["metadata"], resourceVersion=first["metadata"]["resourceVersion"])
    assert raw(fake, "PUT", fixture["request"]["path"], dict(body, data={"k": "v2"}))[0] == 200
    status, data = status_and_body(fake, "PUT", fixture["request"]["path"], body)
    assert (status, json.loads(data)) == (409, fixture["response"])


def test_patch_content_types(fake, core):
    configmaps = core.resource("ConfigMap", "v1")
    configmaps.create(configmap("cm", data={"a": "1", "b": "2"}))
    merged = configmaps.patch(name="cm", namespace="default", body={"data": {"a": "10", "b": None}},
                              content_type="application/merge-patch+json").to_dict()
    assert merged["data"] == {"a": "10"}
    strategic = configmaps.patch(name="cm", namespace="default", body={"data": {"c": "3"}}).to_dict()
    assert strategic["data"] == {"a": "10", "c": "3"}
    patched = configmaps.patch(name="cm", namespace="default",
                               body=[{"op": "replace", "path": "/data/a", "value": "11"},
                                     {"op": "add", "path": "/metadata/labels", "value": {"x": "y"}}],
                               content_type="application/json-patch+json").to_dict()
    assert patched["data"]["a"] == "11" and patched["metadata"]["labels"] == {"x": "y"}
    types = [r.headers.get("Content-Type") for r in fake.requests_to("PATCH")]
    assert types == ["application/merge-patch+json", "application/strategic-merge-patch+json",
                     "application/json-patch+json"]
    with pytest.raises(kubernetes.dynamic.exceptions.DynamicApiError) as error:
        configmaps.patch(name="cm", namespace="default", body=[{"op": "remove", "path": "/data/nope"}],
                         content_type="application/json-patch+json")
    assert error.value.status == 422
    with pytest.raises(NotFoundError):
        configmaps.patch(name="missing", namespace="default", body={"data": {}})


def test_server_side_apply_creates_then_updates_idempotently(fake, core):
    configmaps = core.resource("ConfigMap", "v1")
    body = configmap("ssa", data={"replicas": "2"})
    client = core.client
    first = client.server_side_apply(configmaps, body=body, field_manager="ansible").to_dict()
    again = client.server_side_apply(configmaps, body=body, field_manager="ansible").to_dict()
    assert first["data"] == {"replicas": "2"}
    assert again["metadata"]["resourceVersion"] == first["metadata"]["resourceVersion"]
    changed = client.server_side_apply(configmaps, body=configmap("ssa", data={"replicas": "3"}),
                                       field_manager="ansible").to_dict()
    assert changed["data"] == {"replicas": "3"}
    log = fake.requests_to("PATCH", "/configmaps/ssa$")
    assert log[0].headers["Content-Type"] == "application/apply-patch+yaml" and log[0].query["fieldManager"] == "ansible"
    status, data = status_and_body(fake, "PATCH", "/api/v1/namespaces/default/configmaps/ssa", body,
                                   {"Content-Type": "application/apply-patch+yaml"})
    assert status == 422 and json.loads(data)["message"] == (
        'PatchOptions.meta.k8s.io "" is invalid: fieldManager: Required value: is required for apply patch')


def test_apply_into_missing_namespace_is_404(fake):
    status, data = status_and_body(fake, "PATCH", "/api/v1/namespaces/nope/configmaps/x?fieldManager=t",
                                   configmap("x", "nope"), {"Content-Type": "application/apply-patch+yaml"})
    assert status == 404 and json.loads(data)["message"] == 'namespaces "nope" not found'


# --------------------------------------------------------------------------
# recorded error bodies
# --------------------------------------------------------------------------

@pytest.mark.parametrize("name", ["404-get-missing-pod.json", "404-get-missing-tfjob.json",
                                  "404-get-missing-gatewayclass.json", "404-get-object-in-missing-namespace.json",
                                  "404-create-in-missing-namespace.json"])
def test_not_found_bodies_equal_recorded(fake, name):
    fake.create_namespace("ai-fixtures")
    fixture = recorded("errors/" + name)
    assert replay(fake, fixture) == (fixture["status_code"], fixture["response"])


def test_already_exists_bodies_equal_recorded(fake):
    fake.create_namespace("ai-fixtures")
    fixture = recorded("errors/409-create-existing-namespace.json")
    assert replay(fake, fixture) == (409, fixture["response"])
    fixture = recorded("errors/409-create-existing-configmap.json")
    assert replay(fake, fixture)[0] == 201
    assert replay(fake, fixture) == (409, fixture["response"])


def test_dry_run_create_of_existing_object_still_conflicts(fake):
    fake.create_namespace("ai-fixtures")
    fixture = recorded("errors/409-dryrun-create-existing-tfjob.json")
    assert replay(fake, recorded("objects/tfjob-mnist.create.json"))[0] == 201
    assert replay(fake, fixture) == (409, fixture["response"])
    assert fake.requests[-1].query == {"dryRun": "All"}


@pytest.mark.parametrize("name", ["422-pod-missing-image.json", "422-pod-gpu-request-not-equal-limit.json"])
def test_pod_validation_bodies_equal_recorded(fake, name):
    fake.create_namespace("ai-fixtures")
    fixture = recorded("errors/" + name)
    assert replay(fake, fixture) == (422, fixture["response"])
    assert fake.objects("v1", "pods") == []


def test_invalid_builder_reproduces_recorded_custom_resource_bodies():
    for name in ("422-tfjob-missing-tfReplicaSpecs.json", "422-gatewayclass-invalid-controllername.json",
                 "422-volcano-job-invalid-2.json"):
        want = recorded("errors/" + name)["response"]
        details = want["details"]
        built = fakeapi.invalid(details["kind"], details.get("group"), details["name"], details["causes"])
        assert built == want, name


def test_invalid_names_are_rejected(fake):
    status, data = status_and_body(fake, "POST", "/api/v1/namespaces", {"metadata": {"name": "Bad_Name"}})
    body = json.loads(data)
    assert status == 422 and body["message"].startswith('Namespace "Bad_Name" is invalid: metadata.name: Invalid value')
    status, data = status_and_body(fake, "POST", "/api/v1/namespaces/default/configmaps", {"metadata": {}})
    assert status == 422 and json.loads(data)["message"] == (
        'ConfigMap "" is invalid: metadata.name: Required value: name or generateName is required')


@pytest.mark.parametrize("name,user", [
    ("403-nobody-cert-list-pods.json", "nobody"), ("403-nobody-cert-create-tfjob.json", "nobody"),
    ("403-nobody-cert-get-node.json", "nobody"), ("403-nobody-cert-list-crds.json", "nobody"),
    ("403-impersonate-nobody-create-gatewayclass.json", "nobody"),
    ("403-impersonate-nobody-list-pods.json", "nobody"), ("403-anonymous-list-pods.json", "system:anonymous")])
def test_forbid_generates_the_recorded_403(fake, name, user):
    fixture = recorded("errors/" + name)
    fake.forbid(user=user)
    assert replay(fake, fixture) == (403, fixture["response"])


def test_forbid_discovery_and_times(fake, core):
    rule = fake.forbid("GET", "^/apis$", times=1)
    status, data = status_and_body(fake, "GET", "/apis")
    assert status == 403 and json.loads(data)["message"] == 'forbidden: User "nobody" cannot get path "/apis"'
    assert raw(fake, "GET", "/apis")[0] == 200 and rule.hits == 1


def test_require_token_answers_the_recorded_401(fake, tmp_path):
    want = recorded("errors/401-invalid-bearer-token.json")
    fake.require_token("s3cret")
    for token in (None, "not-a-valid-token"):
        headers = {"Authorization": "Bearer %s" % token} if token else {}
        status, data = status_and_body(fake, "GET", "/api/v1/namespaces/default/pods", headers=headers)
        assert (status, json.loads(data)) == (401, want["response"])
    good = fake.write_kubeconfig(str(tmp_path / "good"), token="s3cret")
    bad = fake.write_kubeconfig(str(tmp_path / "bad"), token="wrong")
    assert kubernetes.client.CoreV1Api(kubernetes.config.new_client_from_config(good)).list_namespace().items
    assert fake.requests[-1].headers["Authorization"] == "Bearer s3cret"
    with pytest.raises(kubernetes.client.exceptions.ApiException) as error:
        kubernetes.client.CoreV1Api(kubernetes.config.new_client_from_config(bad)).list_namespace()
    assert error.value.status == 401 and json.loads(error.value.body) == want["response"]
    if get_api_client is not None:
        with pytest.raises(UnauthorizedError):
            get_api_client(kubeconfig=bad)
        assert get_api_client(kubeconfig=good).resource("Pod", "v1").get(namespace="default").items == []


def test_status_builders_match_recorded_shapes():
    want = recorded("errors/webhook-unreachable-create-tfjob.json")["response"]
    assert list(fakeapi.status_failure(500, "InternalError", "x", {})) == list(want)
    assert fakeapi.not_found("", "pods", "does-not-exist") == recorded("errors/404-get-missing-pod.json")["response"]
    assert fakeapi.already_exists("kubeflow.org", "tfjobs", "tfjob-mnist") == recorded(
        "errors/409-dryrun-create-existing-tfjob.json")["response"]
    assert fakeapi.conflict_modified("", "configmaps", "cm-conflict") == recorded(
        "errors/409-update-stale-resourceversion.json")["response"]


# --------------------------------------------------------------------------
# hooks, reconcilers, dry run
# --------------------------------------------------------------------------

def tfjob_without_image_is_denied(obj, fake, dry_run):
    """The recorded training-operator webhook, as an on_create hook."""
    for name, replica in sorted(obj["spec"].get("tfReplicaSpecs", {}).items()):
        for index, container in enumerate(replica["template"]["spec"]["containers"]):
            if not container.get("image"):
                raise fake.Reject(403, fakeapi.webhook_denied(
                    "validator.tfjob.training-operator.kubeflow.org",
                    "spec.tfReplicaSpecs[%s].template.spec.containers[%d].image: Required value: must be required"
                    % (name, index)))


def test_on_create_hook_plays_the_recorded_webhook(fake):
    fake.create_namespace("ai-fixtures")
    fake.on_create("kubeflow.org/v1", "tfjobs", tfjob_without_image_is_denied)
    for name in ("webhook-denied-create-tfjob-no-image.json", "webhook-denied-dryrun-create-tfjob-no-image.json"):
        fixture = recorded("errors/" + name)
        assert replay(fake, fixture) == (403, fixture["response"])
    assert fake.objects("kubeflow.org/v1") == []
    assert replay(fake, recorded("objects/tfjob-mnist.create.json"))[0] == 201
    plain = recorded("errors/webhook-denied-create-tfjob-no-image.plain-message.json")
    message = plain["response"]["message"].split("denied the request: ", 1)[1]
    assert fakeapi.webhook_denied("validator.tfjob.training-operator.kubeflow.org", message, code=None) == (
        plain["response"])


def test_on_create_hook_can_mutate_and_sees_dry_run(fake, core):
    seen = []

    def label_it(obj, api, dry_run):
        seen.append(dry_run)
        obj["metadata"].setdefault("labels", {})["mutated"] = "yes"

    fake.on_create("v1", "configmaps", label_it)
    configmaps = core.resource("ConfigMap", "v1")
    dry = configmaps.create(configmap("dry"), dry_run="All").to_dict()
    assert dry["metadata"]["labels"]["mutated"] == "yes" and "resourceVersion" not in dry["metadata"]
    assert dry["metadata"]["uid"]
    real = configmaps.create(configmap("real")).to_dict()
    assert real["metadata"]["labels"]["mutated"] == "yes"
    assert seen == [True, False]
    assert [o["metadata"]["name"] for o in fake.objects("v1", "configmaps")] == ["real"]


def test_dry_run_patch_and_delete_persist_nothing(fake, core):
    configmaps = core.resource("ConfigMap", "v1")
    before = configmaps.create(configmap("keep")).to_dict()
    patched = configmaps.patch(name="keep", namespace="default", body={"data": {"k": "changed"}},
                               dry_run="All").to_dict()
    assert patched["data"] == {"k": "changed"}
    configmaps.delete(name="keep", namespace="default", dry_run="All")
    assert fake.get_object("v1", "configmaps", "keep", "default") == before
    assert [r.query.get("dryRun") for r in fake.requests_to(None, "/configmaps/keep$")] == ["All", "All"]


def scheduler(fake):
    """A reconciler: binds pending pods to node-1 and runs them."""
    for item in fake.objects("v1", "pods"):
        meta = item["metadata"]
        if not item["spec"].get("nodeName"):
            item = fake.bind_pod(meta["namespace"], meta["name"], "node-1")
        if item["status"].get("phase", "Pending") == "Pending":
            fake.set_status("v1", "pods", meta["name"], dict(item["status"], phase="Running"), meta["namespace"])


def test_reconciler_runs_after_mutations_and_on_demand(fake, core):
    fake.add_reconciler(scheduler)
    pods = core.resource("Pod", "v1")
    pods.create(pod("p"))
    got = pods.get(name="p", namespace="default").to_dict()
    assert got["spec"]["nodeName"] == "node-1" and got["status"]["phase"] == "Running"
    assert [c["type"] for c in got["status"]["conditions"]] == ["PodScheduled"]
    fake.put_object(pod("seeded"))
    assert fake.get_object("v1", "pods", "seeded", "default").get("status") is None  # put_object: raw, no reconcile
    fake.reconcile()
    assert fake.get_object("v1", "pods", "seeded", "default")["status"]["phase"] == "Running"


def test_create_object_runs_the_api_create_path(fake):
    fake.on_create("v1", "pods", lambda obj, api, dry: obj["metadata"].setdefault("labels", {}).update(hooked="1"))
    created = fake.create_object(pod("made", containers=[{"name": "c", "image": "x:1",
                                                          "resources": {"limits": {"nvidia.com/gpu": 1}}}]))
    assert created["kind"] == "Pod" and created["metadata"]["labels"] == {"hooked": "1"}
    assert created["spec"]["containers"][0]["resources"]["requests"] == {"nvidia.com/gpu": "1"}
    assert created["status"] == {"phase": "Pending", "qosClass": "BestEffort"}
    with pytest.raises(Reject) as error:
        fake.create_object(pod("made"))
    assert error.value.status_code == 409 and error.value.body["reason"] == "AlreadyExists"
    with pytest.raises(Reject) as error:
        fake.create_object(pod("elsewhere", "no-such-namespace"))
    assert error.value.body == recorded("errors/404-create-in-missing-namespace.json")["response"]
    defaulted = fake.defaulted(pod("d"))
    assert defaulted["status"]["phase"] == "Pending" and fake.get_object("v1", "pods", "d", "default") is None


def test_reconciler_creating_children_and_owner_cleanup(fake, core):
    def job_controller(api):
        for job in api.objects("batch/v1", "jobs"):
            name = job["metadata"]["name"] + "-pod"
            if api.get_object("v1", "pods", name, job["metadata"]["namespace"]) is None:
                child = pod(name, job["metadata"]["namespace"])
                child["metadata"]["ownerReferences"] = [{"apiVersion": "batch/v1", "kind": "Job", "name": "j",
                                                         "uid": job["metadata"]["uid"], "controller": True}]
                api.put_object(child)

    fake.add_reconciler(job_controller)
    jobs = core.resource("Job", "batch/v1")
    jobs.create({"apiVersion": "batch/v1", "kind": "Job", "metadata": {"name": "j", "namespace": "default"},
                 "spec": {"template": {"spec": {"containers": [{"name": "c", "image": "x"}]}}}})
    assert [p["metadata"]["name"] for p in fake.objects("v1", "pods")] == ["j-pod"]
    jobs.delete(name="j", namespace="default")
    assert fake.objects("v1", "pods") == [] and fake.objects("batch/v1") == []


def test_on_update_and_on_delete_hooks(fake, core):
    calls = []
    fake.on_update("v1", "configmaps", lambda new, old, api, dry: calls.append(("update", old["data"], new["data"])))

    def protect(obj, api, dry_run):
        raise api.Reject(403, fakeapi.status_failure(403, "Forbidden", "protected"))

    fake.on_delete("v1", "configmaps", protect)
    configmaps = core.resource("ConfigMap", "v1")
    configmaps.create(configmap("c", data={"a": "1"}))
    configmaps.patch(name="c", namespace="default", body={"data": {"a": "2"}})
    assert calls == [("update", {"a": "1"}, {"a": "2"})]
    with pytest.raises(ForbiddenError):
        configmaps.delete(name="c", namespace="default")
    assert fake.get_object("v1", "configmaps", "c", "default") is not None


def test_hook_bug_is_a_loud_500(fake):
    fake.on_create("v1", "configmaps", lambda obj, api, dry: 1 / 0)
    status, data = status_and_body(fake, "POST", "/api/v1/namespaces/default/configmaps", configmap("x"))
    assert status == 500 and "ZeroDivisionError" in json.loads(data)["message"]
    assert len(fake.internal_errors) == 1
    del fake.internal_errors[:]


# --------------------------------------------------------------------------
# selectors, paging, deletion
# --------------------------------------------------------------------------

def test_label_selector_parsing_and_matching():
    labels = {"app": "web", "tier": "front", "env": "prod"}
    cases = {"app=web": True, "app==web": True, "app!=web": False, "app!=db": True, "missing!=x": True,
             "tier in (front,back)": True, "tier notin (front)": False, "env,app": True, "!env": False,
             "!missing": True, "app=web,tier in (back)": False, "": True}
    for text, expected in cases.items():
        assert fakeapi.labels_match(fakeapi.parse_label_selector(text), labels) is expected, text
    with pytest.raises(ValueError):
        fakeapi.parse_label_selector("a=(b")
    selector = {"matchLabels": {"app": "web"}, "matchExpressions": [{"key": "env", "operator": "In",
                                                                     "values": ["prod"]}]}
    assert fakeapi.selector_to_string(selector) == "app=web,env in (prod)"
    assert fakeapi.selector_matches(selector, labels) and not fakeapi.selector_matches(selector, {"app": "web"})


def test_list_with_label_and_field_selectors(fake, core):
    pods = core.resource("Pod", "v1")
    fake.create_namespace("other")
    for name, labels, node in (("a", {"app": "x", "v": "1"}, "n1"), ("b", {"app": "x"}, "n2"), ("c", {"app": "y"}, "")):
        body = pod(name)
        body["metadata"]["labels"] = labels
        pods.create(body)
        if node:
            fake.bind_pod("default", name, node)
    pods.create(pod("d", "other", nodeName="n1"))

    def names(**kw):
        return [i["metadata"]["name"] for i in pods.get(**kw).to_dict()["items"]]

    assert names(namespace="default", label_selector="app=x") == ["a", "b"]
    assert names(namespace="default", label_selector="app in (x,y),!v") == ["b", "c"]
    assert names(namespace="default", label_selector="v") == ["a"]
    assert names(field_selector="spec.nodeName=n1") == ["a", "d"]  # cluster-wide, per node
    assert names(namespace="default", field_selector="spec.nodeName=n1,metadata.name!=b") == ["a"]
    assert names(namespace="default", field_selector="status.phase=Pending") == ["a", "b", "c"]
    assert names(field_selector="metadata.namespace=other") == ["d"]
    with pytest.raises(kubernetes.dynamic.exceptions.BadRequestError) as error:
        pods.get(namespace="default", field_selector="spec.containers=x")
    assert json.loads(error.value.body)["message"] == "field label not supported: spec.containers"
    assert fake.requests_to("GET", "^/api/v1/pods$")[0].query == {"fieldSelector": "spec.nodeName=n1"}


def test_event_field_selectors_on_recorded_events(fake, core):
    stored = fake.put_recorded("events/core-v1-events-ai-fixtures.json")
    assert len(stored) > 5
    events = core.resource("Event", "v1")
    found = events.get(namespace="ai-fixtures",
                       field_selector="involvedObject.kind=Pod,involvedObject.name=gpu-pod-3").to_dict()["items"]
    want = recorded("events/core-v1-events-pod-gpu-pod-3.json")["response"]["items"]
    assert sorted(e["metadata"]["name"] for e in found) == sorted(e["metadata"]["name"] for e in want)
    warnings = events.get(namespace="ai-fixtures", field_selector="type=Warning").to_dict()["items"]
    assert warnings and {e["type"] for e in warnings} == {"Warning"}


def test_recorded_pods_listed_per_node(fake, core):
    fake.put_recorded("objects/pods-ai-fixtures.list.json")
    got = core.resource("Pod", "v1").get(field_selector="spec.nodeName=gpu-node-1").to_dict()["items"]
    want = recorded("objects/pods-on-gpu-node-1.list.json")["response"]["items"]
    assert sorted(p["metadata"]["name"] for p in got) == sorted(p["metadata"]["name"] for p in want)


def test_limit_and_continue(fake, core):
    configmaps = core.resource("ConfigMap", "v1")
    for index in range(5):
        configmaps.create(configmap("cm-%d" % index))
    seen, token, pages = [], None, 0
    while True:
        page = configmaps.get(namespace="default", limit=2, _continue=token).to_dict()
        pages += 1
        seen.extend(i["metadata"]["name"] for i in page["items"])
        token = page["metadata"].get("continue")
        if pages == 1:
            assert page["metadata"]["remainingItemCount"] == 3
        if not token:
            break
    assert pages == 3 and seen == ["cm-%d" % i for i in range(5)]
    assert raw(fake, "GET", "/api/v1/namespaces/default/configmaps?continue=garbage")[0] == 400


def test_namespace_delete_cascades(fake, core):
    fake.create_namespace("aic-x")
    core.resource("ConfigMap", "v1").create(configmap("c", "aic-x"))
    core.resource("Pod", "v1").create(pod("p", "aic-x"))
    fake.set_pod_log("aic-x", "p", "hello")
    fake.create_namespace("keep")
    core.resource("ConfigMap", "v1").create(configmap("c", "keep"))
    answer = core.resource("Namespace", "v1").delete(name="aic-x").to_dict()
    assert answer["status"] == {"phase": "Terminating"} and answer["metadata"]["deletionTimestamp"]
    assert fake.objects(namespace="aic-x") == [] and fake.get_object("v1", "namespaces", "aic-x") is None
    assert len(fake.objects(namespace="keep")) == 1
    with pytest.raises(NotFoundError):
        core.resource("ConfigMap", "v1").create(configmap("c2", "aic-x"))


def test_delete_collection_by_label(fake, core):
    configmaps = core.resource("ConfigMap", "v1")
    for name, owner in (("a", "us"), ("b", "us"), ("c", "them")):
        configmaps.create(configmap(name, labels={"owner": owner}))
    result = configmaps.delete(namespace="default", label_selector="owner=us").to_dict()
    assert result["kind"] == "ConfigMapList" and [i["metadata"]["name"] for i in result["items"]] == ["a", "b"]
    assert [o["metadata"]["name"] for o in fake.objects("v1", "configmaps")] == ["c"]


def test_finalizers_keep_object_terminating(fake, core):
    configmaps = core.resource("ConfigMap", "v1")
    body = configmap("f")
    body["metadata"]["finalizers"] = ["example.com/hold"]
    configmaps.create(body)
    answer = configmaps.delete(name="f", namespace="default").to_dict()
    assert answer["metadata"]["deletionTimestamp"] and answer["kind"] == "ConfigMap"
    assert fake.get_object("v1", "configmaps", "f", "default")["metadata"]["deletionTimestamp"]
    configmaps.patch(name="f", namespace="default", body={"metadata": {"finalizers": None}},
                     content_type="application/merge-patch+json")
    assert fake.get_object("v1", "configmaps", "f", "default") is None


def test_verbs_not_served_are_405(fake):
    assert raw(fake, "POST", "/api/v1/componentstatuses", {"metadata": {"name": "x"}})[0] == 405
    assert raw(fake, "GET", "/apis/authorization.k8s.io/v1/selfsubjectaccessreviews")[0] == 405


def test_review_resources_are_answered_not_stored(fake):
    fixture = recorded("objects/selfsubjectaccessreview-admin-create-tfjobs.json")
    status, body = replay(fake, fixture)
    assert status == 201 and body["status"] == fixture["response"]["status"] == {"allowed": True}
    assert fake.objects("authorization.k8s.io/v1") == []


# --------------------------------------------------------------------------
# subresources: scale, binding, logs, proxy
# --------------------------------------------------------------------------

def test_scale_subresource_matches_recorded(fake, core):
    fake.put_recorded("objects/deployment-gpu-inference.json")
    deployments = core.resource("Deployment", "apps/v1")
    scale = deployments.subresources["scale"].get(name="gpu-inference", namespace="ai-fixtures").to_dict()
    want = recorded("objects/deployment-gpu-inference.scale.json")["response"]
    stored = fake.get_object("apps/v1", "deployments", "gpu-inference", "ai-fixtures")
    want["metadata"]["resourceVersion"] = stored["metadata"]["resourceVersion"]
    assert scale == want
    scaled = deployments.subresources["scale"].patch(name="gpu-inference", namespace="ai-fixtures",
                                                     body={"spec": {"replicas": 3}},
                                                     content_type="application/merge-patch+json").to_dict()
    assert scaled["spec"]["replicas"] == 3
    after = fake.get_object("apps/v1", "deployments", "gpu-inference", "ai-fixtures")
    assert after["spec"]["replicas"] == 3 and after["metadata"]["generation"] == stored["metadata"]["generation"] + 1


def test_binding_subresource_and_eviction(fake, corev1):
    corev1.create_namespaced_pod("default", pod("p"))
    # the apiserver answers a Status the generated client cannot parse into V1Binding: read it raw
    answer = corev1.create_namespaced_binding("default", {"apiVersion": "v1", "kind": "Binding",
                                                          "metadata": {"name": "p"},
                                                          "target": {"kind": "Node", "name": "gpu-node-1"}},
                                              _preload_content=False)
    assert json.loads(answer.data)["status"] == "Success"
    assert fake.get_object("v1", "pods", "p", "default")["spec"]["nodeName"] == "gpu-node-1"
    assert raw(fake, "POST", "/api/v1/namespaces/default/pods/p/binding",
               {"target": {"kind": "Node", "name": "other"}})[0] == 409
    assert raw(fake, "POST", "/api/v1/namespaces/default/pods/p/eviction", {"metadata": {"name": "p"}})[0] == 201
    assert fake.get_object("v1", "pods", "p", "default") is None


def test_pod_logs(fake, corev1):
    corev1.create_namespaced_pod("default", pod("single"))
    with pytest.raises(kubernetes.client.exceptions.ApiException) as error:
        corev1.read_namespaced_pod_log("single", "default")
    assert error.value.status == 400 and "is waiting to start: ContainerCreating" in error.value.body
    fake.set_pod_log("default", "single", "one\ntwo\nthree\n")
    assert corev1.read_namespaced_pod_log("single", "default") == "one\ntwo\nthree\n"
    assert corev1.read_namespaced_pod_log("single", "default", tail_lines=2) == "two\nthree\n"
    two = pod("two", containers=[{"name": "a", "image": "x:1"}, {"name": "b", "image": "x:1"}])
    corev1.create_namespaced_pod("default", two)
    fake.set_pod_log("default", "two", "from b", container="b")
    assert corev1.read_namespaced_pod_log("two", "default", container="b") == "from b"
    with pytest.raises(kubernetes.client.exceptions.ApiException) as error:
        corev1.read_namespaced_pod_log("two", "default")
    assert "choose one of: [a b]" in error.value.body
    with pytest.raises(kubernetes.client.exceptions.ApiException) as error:
        corev1.read_namespaced_pod_log("missing", "default")
    assert json.loads(error.value.body)["message"] == 'pods "missing" not found'
    status, content_type = raw(fake, "GET", "/api/v1/namespaces/default/pods/single/log")[:2]
    assert status == 200 and content_type.startswith("text/plain")


def exposed_service(fake, name="prom", namespace="default", port=9090, port_name="web", ready=True, pod_ip="10.42.0.9"):
    """A Service, a pod with an IP behind it and the Endpoints the controller would keep."""
    service = fake.put_object({"apiVersion": "v1", "kind": "Service", "metadata": {"name": name, "namespace": namespace},
                               "spec": {"selector": {"app": name},
                                        "ports": [{"name": port_name, "port": port, "targetPort": port, "protocol": "TCP"}]}})
    backend = fake.put_object(dict(pod("%s-0" % name, namespace, nodeName="gpu-node-1"),
                                   status={"phase": "Running", "podIP": pod_ip}))
    fake.put_object(fake.endpoints_for(service, [backend], ready=ready))
    return service, backend


def test_service_proxy(fake, core):
    calls = []

    def metrics(method, path, query, body):
        calls.append((method, path, query))
        return 200, "gpu_utilization 42\n", "text/plain; version=0.0.4"

    exposed_service(fake, "prom", port=9090, port_name="web")
    exposed_service(fake, "web", port=80, port_name="")
    fake.set_service_proxy("default", "prom", 9090, metrics)
    fake.set_service_proxy("default", "web", None, "hello")
    request = core.client.request
    assert request("GET", "/api/v1/namespaces/default/services/prom:9090/proxy/metrics",
                   query_params=[("x", "1")]) == "gpu_utilization 42\n"
    assert calls == [("GET", "/metrics", {"x": "1"})]
    # the handler answers for the port name the number resolves to, and vice versa
    fake.set_service_proxy("default", "prom", "web", "by name")
    assert request("GET", "/api/v1/namespaces/default/services/prom:web/proxy/metrics") == "by name"
    assert request("GET", "/api/v1/namespaces/default/services/http:web:80/proxy/") == "hello"
    assert request("GET", "/api/v1/namespaces/default/services/web/proxy/any") == "hello"
    with pytest.raises(NotFoundError) as error:
        request("GET", "/api/v1/namespaces/default/services/nothing:80/proxy/")
    assert json.loads(error.value.body)["message"] == 'services "nothing" not found'


def test_service_proxy_reads_endpoints_not_handlers(fake):
    service, backend = exposed_service(fake, "exporter", port=9400, port_name="metrics", ready=False)
    fake.set_service_proxy("default", "exporter", None, "metrics text")
    path = "/api/v1/namespaces/default/services/exporter:metrics/proxy/metrics"
    # only notReadyAddresses: the apiserver skips the subset and names the whole id
    status, data = status_and_body(fake, "GET", path)
    assert status == 503 and json.loads(data)["message"] == 'no endpoints available for service "exporter:metrics"'
    fake.put_object(fake.endpoints_for(service, [backend]))
    assert status_and_body(fake, "GET", path) == (200, b"metrics text")
    # a port name no subset carries: 503 naming the id
    status, data = status_and_body(fake, "GET", "/api/v1/namespaces/default/services/exporter:other/proxy/metrics")
    assert status == 503 and json.loads(data)["message"] == 'no endpoints available for service "exporter:other"'
    # ready endpoints but nothing listening (no handler): the apiserver's dial error
    fake.set_service_proxy("default", "exporter", None, None)
    status, data = status_and_body(fake, "GET", path)
    assert status == 503 and json.loads(data) == {
        "kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
        "message": "error trying to reach service: dial tcp 10.42.0.9:9400: connect: connection refused",
        "reason": "ServiceUnavailable", "code": 503}
    # the Service without an Endpoints object (no selector, none written)
    fake.delete_object("v1", "endpoints", "exporter", "default")
    status, data = status_and_body(fake, "GET", path)
    assert status == 404 and json.loads(data)["message"] == 'endpoints "exporter" not found'


PROXY_RECORDINGS = [
    "503-proxy-service-no-endpoints", "503-proxy-service-no-endpoints-numeric-port", "503-proxy-service-no-endpoints-no-port",
    "503-proxy-service-https-scheme-no-endpoints", "503-proxy-service-unknown-port-name",
    "503-proxy-service-unknown-port-number", "404-proxy-service-missing", "404-proxy-pod-missing",
]


@pytest.mark.parametrize("name", PROXY_RECORDINGS)
def test_proxy_answers_equal_the_recorded_ones(fake, name):
    for obj in ("service-exporter.create", "endpoints-exporter.no-pods"):
        fake.put_recorded("objects/%s.json" % obj)
    fixture = recorded("errors/%s.json" % name)
    assert replay(fake, fixture) == (fixture["status_code"], fixture["response"])


@pytest.mark.parametrize("name", ["503-proxy-service-no-endpoints-pod-pending", "400-proxy-pod-pending-no-ip",
                                  "400-proxy-pod-pending-no-ip-port-name", "400-proxy-pod-pending-no-ip-no-port",
                                  "400-proxy-pod-bound-no-ip"])
def test_proxy_with_the_pending_exporter_pod_equals_the_recording(fake, name):
    for obj in ("service-exporter.create", "endpoints-exporter.pod-pending", "pod-exporter-pending.bound"):
        fake.put_recorded("objects/%s.json" % obj)
    fixture = recorded("errors/%s.json" % name)
    assert replay(fake, fixture) == (fixture["status_code"], fixture["response"])


def test_pod_proxy(fake):
    exposed_service(fake, "exporter", port=9400, port_name="metrics", pod_ip="10.42.0.7")
    path = "/api/v1/namespaces/default/pods/exporter-0:9400/proxy/metrics"
    status, data = status_and_body(fake, "GET", path)
    assert status == 503 and "dial tcp 10.42.0.7:9400" in json.loads(data)["message"]
    fake.set_pod_proxy("default", "exporter-0", 9400, lambda method, sub, query, body: (200, "up 1\n" + sub))
    assert status_and_body(fake, "GET", path) == (200, b"up 1\n/metrics")


def test_pod_proxy_answers_like_the_recorded_apiserver(fake, corev1):
    missing = recorded("errors/404-proxy-pod-missing.json")
    status, data = status_and_body(fake, "GET", "/api/v1/namespaces/default/pods/no-such-pod:9400/proxy/metrics")
    assert status == 404 and json.loads(data)["message"] == missing["response"]["message"]
    corev1.create_namespaced_pod("default", pod("exporter"))
    no_ip = recorded("errors/400-proxy-pod-pending-no-ip.json")
    status, data = status_and_body(fake, "GET", "/api/v1/namespaces/default/pods/exporter:9400/proxy/metrics")
    assert (status, json.loads(data)) == (no_ip["status_code"], no_ip["response"])
    fake.set_status("v1", "pods", "exporter", {"phase": "Running", "podIP": "10.42.0.9"}, namespace="default")
    status, data = status_and_body(fake, "GET", "/api/v1/namespaces/default/pods/exporter:9400/proxy/metrics")
    assert status == 503 and "connection refused" in json.loads(data)["message"]
    fake.set_pod_proxy("default", "exporter", None, lambda method, path, query, body: "up %s %s\n" % (path, query.get("v")))
    status, data = status_and_body(fake, "GET", "/api/v1/namespaces/default/pods/exporter:9400/proxy/cgi-bin/set?v=3")
    assert (status, data) == (200, b"up /cgi-bin/set 3\n")


def test_aggregated_api_serves_discovery_and_paths_and_goes_away(fake, core):
    doc = {"kind": "APIResourceList", "apiVersion": "v1", "groupVersion": "custom.metrics.k8s.io/v1beta1", "resources": []}
    assert raw(fake, "GET", "/apis/custom.metrics.k8s.io/v1beta1")[2] == b"404 page not found\n"

    def adapter(method, path, query):
        if path == "":
            return dict(doc, resources=[{"name": "pods/m", "singularName": "", "namespaced": True, "kind": "MetricValueList",
                                         "verbs": ["get"]}])
        return 404, {"kind": "Status", "apiVersion": "v1", "status": "Failure", "reason": "NotFound", "code": 404, "message": path}

    fake.set_aggregated_api("custom.metrics.k8s.io/v1beta1", adapter, doc)
    groups = json.loads(status_and_body(fake, "GET", "/apis")[1])["groups"]
    assert "custom.metrics.k8s.io" in [g["name"] for g in groups]
    listed = json.loads(status_and_body(fake, "GET", "/apis/custom.metrics.k8s.io/v1beta1")[1])
    assert [r["name"] for r in listed["resources"]] == ["pods/m"]
    status, data = status_and_body(fake, "GET", "/apis/custom.metrics.k8s.io/v1beta1/namespaces/x/pods/*/m")
    assert status == 404 and json.loads(data)["message"] == "/namespaces/x/pods/*/m"
    fake.set_aggregated_api("custom.metrics.k8s.io/v1beta1", None)
    assert raw(fake, "GET", "/apis/custom.metrics.k8s.io/v1beta1")[2] == b"404 page not found\n"


# --------------------------------------------------------------------------
# fault injection, request log, watch
# --------------------------------------------------------------------------

def test_fail_with_recorded_fixture_and_times(fake, core):
    pods = core.resource("Pod", "v1")
    rule = fake.fail("GET", r"/namespaces/ai-fixtures/pods$", fixture="403-nobody-cert-list-pods", times=1)
    with pytest.raises(ForbiddenError) as error:
        pods.get(namespace="ai-fixtures")
    assert json.loads(error.value.body) == recorded("errors/403-nobody-cert-list-pods.json")["response"]
    assert pods.get(namespace="ai-fixtures").items == [] and rule.hits == 1


def test_delay_rule_then_error_rule(fake):
    fake.fail("GET", "/configmaps$", delay=0.2)
    error = fake.fail("GET", "/configmaps$", 503, times=1)
    started = time.time()
    status, data = status_and_body(fake, "GET", "/api/v1/namespaces/default/configmaps")
    assert status == 503 and json.loads(data)["reason"] == "ServiceUnavailable" and error.hits == 1
    assert time.time() - started >= 0.2
    assert raw(fake, "GET", "/api/v1/namespaces/default/configmaps")[0] == 200


def test_fail_text_generic_and_delay(fake):
    fake.fail("GET", "^/apis/metrics.k8s.io", fixture="404-unserved-group-metrics-k8s-io.json")
    fake.fail("POST", "/configmaps$", 500)
    slow = fake.fail(None, "^/version$", delay=0.3)
    status, content_type, data = raw(fake, "GET", "/apis/metrics.k8s.io/v1beta1")
    assert (status, data) == (404, b"404 page not found\n") and content_type.startswith("text/plain")
    status, data = status_and_body(fake, "POST", "/api/v1/namespaces/default/configmaps", configmap("x"))
    assert status == 500 and json.loads(data)["reason"] == "InternalError"
    started = time.time()
    assert raw(fake, "GET", "/version")[0] == 200
    assert time.time() - started >= 0.3 and slow.hits == 1
    fake.clear_faults()
    assert raw(fake, "POST", "/api/v1/namespaces/default/configmaps", configmap("x"))[0] == 201


def test_request_log_records_method_path_query_headers(fake, core):
    core.resource("Pod", "v1").get(namespace="default", label_selector="a=b")
    last = fake.requests[-1]
    assert (last.method, last.path, last.query) == ("GET", "/api/v1/namespaces/default/pods", {"labelSelector": "a=b"})
    assert last.headers["Accept"] == "application/json"
    assert not fake.requests_to("GET", "^/api/v1/pods$")
    fake.clear_requests()
    assert fake.requests == []


def test_watch_streams_existing_and_new_events(fake, kubeconfig):
    api = kubernetes.client.CoreV1Api(kubernetes.config.new_client_from_config(kubeconfig))
    api.create_namespaced_config_map("default", configmap("before"))

    def later():
        time.sleep(0.3)
        fake.put_object(configmap("after"))

    thread = threading.Thread(target=later)
    thread.start()
    seen = []
    watcher = kubernetes.watch.Watch()
    for event in watcher.stream(api.list_namespaced_config_map, "default", timeout_seconds=3):
        seen.append((event["type"], event["object"].metadata.name))
        if len(seen) == 2:
            watcher.stop()
    thread.join()
    assert seen == [("ADDED", "before"), ("ADDED", "after")]


def test_watch_filters_by_selector_and_namespace(fake):
    fake.create_namespace("other")
    fake.put_object(configmap("old-match", labels={"a": "b"}))
    fake.put_object(configmap("old-other", labels={"a": "c"}))

    def later():
        time.sleep(0.2)
        fake.put_object(configmap("new-match", labels={"a": "b"}))
        fake.put_object(configmap("elsewhere", "other", labels={"a": "b"}))
        fake.delete_object("v1", "configmaps", "old-match", "default")

    thread = threading.Thread(target=later)
    thread.start()
    status, data = status_and_body(fake, "GET", "/api/v1/namespaces/default/configmaps?watch=true&labelSelector=a%3Db"
                                   "&timeoutSeconds=1")
    thread.join()
    events = [(e["type"], e["object"]["metadata"]["name"]) for e in map(json.loads, data.decode().splitlines())]
    assert status == 200
    assert events == [("ADDED", "old-match"), ("ADDED", "new-match"), ("DELETED", "old-match")]


def test_store_helpers(fake):
    fake.put_object(configmap("owner"))
    owner = fake.get_object("v1", "configmaps", "owner", "default")
    child = configmap("child")
    child["metadata"]["ownerReferences"] = [{"apiVersion": "v1", "kind": "ConfigMap", "name": "owner",
                                             "uid": owner["metadata"]["uid"]}]
    child["metadata"]["finalizers"] = ["x/y"]
    fake.put_object(child)
    patched = fake.patch_object("v1", "configmaps", "owner", {"data": {"k": "2"}}, "default")
    assert patched["data"] == {"k": "2"} and int(patched["metadata"]["resourceVersion"]) > int(
        owner["metadata"]["resourceVersion"])
    assert fake.resource_type("v1", "ConfigMap").plural == "configmaps"
    assert fake.resource_type("v1", "nonsense") is None
    fake.delete_object("v1", "configmaps", "owner", "default")
    terminating = fake.get_object("v1", "configmaps", "child", "default")
    assert terminating["metadata"]["deletionTimestamp"]  # garbage-collected, held by its finalizer
    assert fake.delete_object("v1", "configmaps", "child", "default", force=True)["metadata"]["name"] == "child"
    assert fake.objects("v1", "configmaps") == []
    with pytest.raises(KeyError):
        fake.set_status("v1", "pods", "missing", {}, "default")
    with pytest.raises(KeyError):
        fake.put_object({"apiVersion": "metrics.k8s.io/v1beta1", "kind": "PodMetrics", "metadata": {"name": "x"}})


def test_orphan_propagation_keeps_dependents(fake, core):
    configmaps = core.resource("ConfigMap", "v1")
    owner = configmaps.create(configmap("owner")).to_dict()
    child = configmap("child")
    child["metadata"]["ownerReferences"] = [{"apiVersion": "v1", "kind": "ConfigMap", "name": "owner",
                                             "uid": owner["metadata"]["uid"]}]
    configmaps.create(child)
    configmaps.delete(name="owner", namespace="default", propagation_policy="Orphan")
    assert [o["metadata"]["name"] for o in fake.objects("v1", "configmaps")] == ["child"]


def test_identity_mismatches_are_400(fake):
    fake.create_namespace("a")
    status, data = status_and_body(fake, "POST", "/api/v1/namespaces/default/configmaps", configmap("x", "a"))
    assert status == 400 and json.loads(data)["message"] == (
        "the namespace of the provided object does not match the namespace sent on the request")
    fake.put_object(configmap("x"))
    status, data = status_and_body(fake, "PUT", "/api/v1/namespaces/default/configmaps/x", configmap("y"))
    assert status == 400 and "does not match the name on the URL" in json.loads(data)["message"]
    status, data = status_and_body(fake, "POST", "/api/v1/namespaces/default/configmaps", b"{not json")
    assert status == 400 and json.loads(data)["reason"] == "BadRequest"


def test_concurrent_creates_are_consistent(fake, kubeconfig):
    errors = []

    def worker(index):
        try:
            client = kubernetes.config.new_client_from_config(kubeconfig)
            api = kubernetes.client.CoreV1Api(client)
            for item in range(15):
                api.create_namespaced_config_map("default", configmap("w%d-%d" % (index, item)))
            client.close()
        except Exception as exc:  # collected and asserted below
            errors.append(exc)

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    stored = fake.objects("v1", "configmaps")
    assert errors == [] and len(stored) == 90
    assert len({o["metadata"]["resourceVersion"] for o in stored}) == 90


# --------------------------------------------------------------------------
# kubeconfig, stop, standalone
# --------------------------------------------------------------------------

def test_kubeconfig_contents_and_extra_contexts(fake, tmp_path):
    down = fakeapi.unreachable_url()
    tls = fake.url.replace("http:", "https:")
    path = fake.write_kubeconfig(str(tmp_path / "sub" / "kc"), context="main", token="t",
                                 extra_contexts={"down": {"server": down}, "ns": {"namespace": "x"},
                                                 "tls": {"server": tls}})
    config = yaml.safe_load(open(path))
    assert fake.kubeconfig == path and config["current-context"] == "main"
    clusters = dict((c["name"], c["cluster"]["server"]) for c in config["clusters"])
    assert clusters == {"main": fake.url, "down": down, "ns": fake.url, "tls": tls}
    assert [u["user"] for u in config["users"]] == [{"token": "t"}, {}, {}, {}]
    assert config["contexts"][2]["context"]["namespace"] == "x"
    for context, words in (("down", "refused"), ("tls", "ssl")):
        client = kubernetes.config.new_client_from_config(path, context=context)
        client.configuration.retries = 0
        with pytest.raises(Exception) as error:
            kubernetes.client.CoreV1Api(client).list_namespace(_request_timeout=2)
        assert words in str(error.value).lower(), (context, error.value)


def test_stop_closes_kept_alive_connections(tmp_path):
    api = FakeKubeAPI().start()
    client = kubernetes.config.new_client_from_config(api.write_kubeconfig(str(tmp_path / "kc")))
    client.configuration.retries = 0
    core_v1 = kubernetes.client.CoreV1Api(client)
    assert core_v1.list_namespace().items
    api.stop()
    with pytest.raises(Exception):
        core_v1.list_namespace(_request_timeout=2)
    with pytest.raises(urllib.error.URLError):
        urllib.request.urlopen(api.url + "/version", timeout=2)


def _read_line(process, timeout):
    result = []
    reader = threading.Thread(target=lambda: result.append(process.stdout.readline()))
    reader.daemon = True
    reader.start()
    reader.join(timeout)
    return result[0] if result else ""


def test_standalone_mode_starts_serves_and_stops_on_sigterm(tmp_path):
    shared_path("k8s-fixtures", "discovery")
    kubeconfig, pidfile = str(tmp_path / "kc"), str(tmp_path / "pid")
    process = subprocess.Popen([sys.executable, "-m", "tests.support.fakeapi", "--kubeconfig", kubeconfig,
                                "--pidfile", pidfile, "--scenario", "dra-beta-only"],
                               cwd=REPO_ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, universal_newlines=True)
    try:
        url = _read_line(process, 20).strip()
        assert url.startswith("http://127.0.0.1:"), process.stderr.read() if process.poll() is not None else url
        assert yaml.safe_load(open(kubeconfig))["clusters"][0]["cluster"]["server"] == url
        assert open(pidfile).read().strip() == str(process.pid)
        groups = json.loads(urllib.request.urlopen(url + "/apis", timeout=5).read())["groups"]
        dra = [g for g in groups if g["name"] == "resource.k8s.io"][0]
        assert [v["version"] for v in dra["versions"]] == ["v1beta1"]
        process.send_signal(signal.SIGTERM)
        assert process.wait(timeout=10) == 0
        assert not os.path.exists(pidfile)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
        process.stdout.close()
        process.stderr.close()


def test_standalone_rejects_unknown_scenario(tmp_path):
    result = subprocess.run([sys.executable, "-m", "tests.support.fakeapi", "--kubeconfig", str(tmp_path / "kc"),
                             "--scenario", "nope"], cwd=REPO_ROOT, capture_output=True, universal_newlines=True,
                            timeout=20, check=False)
    assert result.returncode == 2 and "invalid choice: 'nope'" in result.stderr
    assert not os.path.exists(str(tmp_path / "kc"))


# --------------------------------------------------------------------------
# the real kubernetes.core modules, in-process (the pattern for module tests)
# --------------------------------------------------------------------------

def run_module(module, args, capsys):
    """Run an Ansible module's main() in-process; returns its JSON result."""
    from ansible.module_utils.testing import patch_module_args
    with patch_module_args(args):
        with pytest.raises(SystemExit):
            module.main()
    return json.loads(capsys.readouterr().out)


def deployment_controller(api):
    """A reconciler: every Deployment becomes available with spec.replicas replicas."""
    for item in api.objects("apps/v1", "deployments"):
        replicas = item["spec"].get("replicas", 1)
        api.set_status("apps/v1", "deployments", item["metadata"]["name"], {
            "observedGeneration": item["metadata"]["generation"], "replicas": replicas,
            "readyReplicas": replicas, "availableReplicas": replicas, "updatedReplicas": replicas,
            "conditions": [{"type": "Available", "status": "True", "reason": "MinimumReplicasAvailable"}]},
            item["metadata"]["namespace"])


def test_kubernetes_core_k8s_module_is_idempotent_against_the_fake(fake, kubeconfig, capsys):
    if get_api_client is None:
        pytest.skip(".collections missing")
    from ansible_collections.kubernetes.core.plugins.modules import k8s, k8s_info
    fake.add_reconciler(deployment_controller)
    deployment = {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "d", "namespace": "default"},
                  "spec": {"replicas": 2, "selector": {"matchLabels": {"app": "d"}},
                           "template": {"metadata": {"labels": {"app": "d"}},
                                        "spec": {"containers": [{"name": "c", "image": "x:1"}]}}}}
    args = {"kubeconfig": kubeconfig, "definition": deployment, "apply": True,
            "server_side_apply": {"field_manager": "ansible"}, "wait": True, "wait_timeout": 5}
    first = run_module(k8s, args, capsys)
    second = run_module(k8s, args, capsys)
    assert (first["changed"], second["changed"]) == (True, False), (first.get("msg"), second.get("msg"))
    assert first["result"]["status"]["availableReplicas"] == 2
    info = run_module(k8s_info, {"kubeconfig": kubeconfig, "kind": "Deployment", "namespace": "default",
                                 "label_selectors": []}, capsys)
    assert [r["metadata"]["name"] for r in info["resources"]] == ["d"]
    gone = run_module(k8s, {"kubeconfig": kubeconfig, "kind": "Deployment", "name": "d", "namespace": "default",
                            "state": "absent", "wait": True, "wait_timeout": 5}, capsys)
    assert gone["changed"] is True and fake.objects("apps/v1") == []
    assert {r.headers.get("Content-Type") for r in fake.requests_to("PATCH")} == {"application/apply-patch+yaml"}


def test_kubernetes_core_client_side_apply(fake, core):
    configmaps = core.resource("ConfigMap", "v1")
    first = core.apply(configmaps, configmap("ca", data={"a": "1"}), namespace="default").to_dict()
    again = core.apply(configmaps, configmap("ca", data={"a": "1"}), namespace="default").to_dict()
    assert "kubectl.kubernetes.io/last-applied-configuration" in first["metadata"]["annotations"]
    assert again["metadata"]["resourceVersion"] == first["metadata"]["resourceVersion"]
    changed = core.apply(configmaps, configmap("ca", data={"b": "2"}), namespace="default").to_dict()
    assert changed["data"] == {"b": "2"}  # the key dropped from the applied config is removed


# --------------------------------------------------------------------------
# Built-in admission and controllers (second recording)
# --------------------------------------------------------------------------

def replay_full(fake, fixture, path=None, body=None):
    """Send a recorded request again; returns (status, parsed JSON, [Warning header values])."""
    request = fixture["request"]
    headers = {"Accept": "application/json"}
    for name, value in (request.get("headers") or {}).items():
        if name.lower() == "content-type":
            headers[name] = value
    payload = body if body is not None else request.get("body")
    if payload is not None:
        headers.setdefault("Content-Type", "application/json")
        payload = json.dumps(payload)
    connection = http.client.HTTPConnection("127.0.0.1", fake.port, timeout=10)
    connection.request(request["method"], path or request["path"], body=payload, headers=headers)
    response = connection.getresponse()
    data = json.loads(response.read())
    warnings = [value for name, value in response.getheaders() if name.lower() == "warning"]
    connection.close()
    return response.status, data, warnings


def replay_ok(fake, name):
    """Replay a recorded request that succeeded; asserts the same status; returns (body, warnings)."""
    fixture = recorded(name)
    status, body, warnings = replay_full(fake, fixture)
    assert status == fixture["status_code"], body
    return body, warnings


def assert_replays_error(fake, name):
    """The fake answers a recorded failing request with the recorded code and body, byte for byte."""
    fixture = recorded(name)
    status, body, warnings = replay_full(fake, fixture)
    assert (status, body) == (fixture["status_code"], fixture["response"])
    assert warnings == (fixture.get("response_headers") or {}).get("Warning", [])


def test_pod_security_enforce_restricted_refuses_a_plain_pod_with_the_recorded_403(fake):
    replay_ok(fake, "objects/namespace-psa-restricted.create.json")
    assert_replays_error(fake, "errors/403-psa-restricted-create-plain-pod.json")  # no Warning header either
    assert fake.objects("v1", "pods", namespace="psa-restricted") == []


def test_pod_security_enforce_baseline_refuses_host_network(fake):
    replay_ok(fake, "objects/namespace-psa-baseline.create.json")
    assert_replays_error(fake, "errors/403-psa-baseline-create-hostnetwork-pod.json")


def test_restricted_compliant_pod_is_admitted_silently(fake):
    replay_ok(fake, "objects/namespace-psa-restricted.create.json")
    body, warnings = replay_ok(fake, "objects/pod-restricted-ok.create.psa-restricted.json")
    assert warnings == [] and body["metadata"]["name"] == "restricted-ok"


def test_pod_security_warn_only_admits_with_the_recorded_warning_header(fake):
    replay_ok(fake, "objects/namespace-psa-warn.create.json")
    fixture = recorded("objects/pod-plain.create.psa-warn-only.json")
    body, warnings = replay_ok(fake, "objects/pod-plain.create.psa-warn-only.json")
    assert warnings == fixture["response_headers"]["Warning"]
    assert body["spec"]["containers"][0]["name"] == "busybox"


def test_enforce_does_not_refuse_a_deployment_only_warns(fake):
    replay_ok(fake, "objects/namespace-psa-restricted.create.json")
    fixture = recorded("objects/deployment-plain-deploy.create.psa-restricted.json")
    body, warnings = replay_ok(fake, "objects/deployment-plain-deploy.create.psa-restricted.json")
    assert warnings == fixture["response_headers"]["Warning"] and body["kind"] == "Deployment"


def test_controller_pod_creation_is_refused_as_the_replicaset_controller_sees_it(fake):
    replay_ok(fake, "objects/namespace-psa-restricted.create.json")
    deployment, _warnings = replay_ok(fake, "objects/deployment-plain-deploy.create.psa-restricted.json")
    assert fake.create_pod_for(deployment, deployment["spec"]["template"], "plain-deploy-5cfb4b4547-5x9v6") is None
    events = fake.objects("v1", "events", namespace="psa-restricted")
    real = recorded("events/core-v1-events-replicaset-plain-deploy.psa-restricted.json")["response"]["items"][0]
    assert [(e["type"], e["reason"], e["message"]) for e in events] == [("Warning", "FailedCreate", real["message"])]
    stored = fake.get_object("apps/v1", "deployments", "plain-deploy", "psa-restricted")
    failure = [c for c in stored["status"]["conditions"] if c["type"] == "ReplicaFailure"][0]
    assert (failure["status"], failure["reason"]) == ("True", "FailedCreate")
    assert failure["message"].startswith('pods "plain-deploy-5cfb4b4547-5x9v6" is forbidden: violates PodSecurity')
    assert fake.objects("v1", "pods", namespace="psa-restricted") == []


def test_pod_security_checks_every_restricted_control(fake):
    fake.create_namespace("strict", labels={"pod-security.kubernetes.io/enforce": "restricted"})
    compliant = {"runAsNonRoot": True, "runAsUser": 1000, "seccompProfile": {"type": "Localhost", "localhostProfile": "p"}}
    ok = pod("ok", "strict", securityContext=compliant, containers=[{
        "name": "c", "image": "busybox:1.36", "securityContext": {
            "allowPrivilegeEscalation": False, "capabilities": {"drop": ["ALL"], "add": ["NET_BIND_SERVICE"]}}}],
        volumes=[{"name": "v", "emptyDir": {}}, {"name": "s", "secret": {"secretName": "x"}}])
    assert raw(fake, "POST", "/api/v1/namespaces/strict/pods", ok)[0] == 201
    root = {"runAsNonRoot": True, "runAsUser": 0, "seccompProfile": {"type": "RuntimeDefault"}}
    bad = pod("bad", "strict", hostNetwork=True, hostPID=True, securityContext=root,
              containers=[{"name": "c", "image": "busybox:1.36", "ports": [{"containerPort": 80, "hostPort": 80}],
                           "securityContext": {"allowPrivilegeEscalation": False, "privileged": True,
                                               "capabilities": {"drop": ["ALL"], "add": ["SYS_ADMIN"]}}}],
              volumes=[{"name": "h", "hostPath": {"path": "/"}}])
    status, body = status_and_body(fake, "POST", "/api/v1/namespaces/strict/pods", bad)
    message = json.loads(body)["message"]
    assert status == 403 and message == (
        'pods "bad" is forbidden: violates PodSecurity "restricted:latest": '
        'unrestricted capabilities (container "c" must not include "SYS_ADMIN" in securityContext.capabilities.add), '
        'host namespaces (hostNetwork=true, hostPID=true), hostPath volumes (volume "h"), '
        'hostPort (container "c" uses hostPort 80), privileged (container "c" must not set securityContext.privileged=true), '
        'restricted volume types (volume "h" uses restricted volume type "hostPath"), runAsUser=0 (pod must not set runAsUser=0)')
    # baseline allows what restricted refuses (no seccomp, no runAsNonRoot, default capabilities)
    fake.create_namespace("base", labels={"pod-security.kubernetes.io/enforce": "baseline"})
    assert raw(fake, "POST", "/api/v1/namespaces/base/pods", pod("plain", "base"))[0] == 201
    privileged = pod("priv", "base", containers=[{"name": "c", "image": "i:1", "securityContext": {"privileged": True}}])
    assert json.loads(raw(fake, "POST", "/api/v1/namespaces/base/pods", privileged)[2])["message"].endswith(
        'violates PodSecurity "baseline:latest": privileged (container "c" must not set securityContext.privileged=true)')


def test_resource_quota_refuses_with_the_recorded_bodies_and_counts_usage(fake):
    replay_ok(fake, "objects/namespace-quota-fixtures.create.json")
    created, _warnings = replay_ok(fake, "objects/resourcequota-compute-quota.create.json")
    assert created["status"] == {}  # filled in by the quota controller, as recorded
    stored = fake.get_object("v1", "resourcequotas", "compute-quota", "quota-fixtures")
    assert stored["status"] == recorded("objects/resourcequota-compute-quota.initial-status.json")["response"]["status"]
    assert_replays_error(fake, "errors/403-quota-pod-without-requests-limits.json")
    replay_ok(fake, "objects/pod-quota-pod-1.create.json")
    stored = fake.get_object("v1", "resourcequotas", "compute-quota", "quota-fixtures")
    assert stored["status"] == recorded("objects/resourcequota-compute-quota.json")["response"]["status"]
    assert_replays_error(fake, "errors/403-quota-exceeded-second-pod.json")


def test_limit_range_defaults_requests_and_limits_as_recorded(fake):
    replay_ok(fake, "objects/namespace-limitrange-fixtures.create.json")
    replay_ok(fake, "objects/limitrange-container-defaults.create.json")
    body, _warnings = replay_ok(fake, "objects/pod-no-resources.create.limitrange-defaults.json")
    real = recorded("objects/pod-no-resources.create.limitrange-defaults.json")["response"]
    assert body["spec"]["containers"][0]["resources"] == real["spec"]["containers"][0]["resources"]
    assert body["metadata"]["annotations"] == real["metadata"]["annotations"]
    assert body["status"]["qosClass"] == real["status"]["qosClass"] == "Burstable"


def test_limit_range_max_and_min_refuse_with_limitranger_wording(fake):
    fake.create_namespace("lr")
    fake.put_object({"apiVersion": "v1", "kind": "LimitRange", "metadata": {"name": "bounds", "namespace": "lr"},
                     "spec": {"limits": [{"type": "Container", "max": {"cpu": "1"}, "min": {"memory": "64Mi"}}]}})
    big = pod("big", "lr", containers=[{"name": "c", "image": "i:1", "resources": {
        "limits": {"cpu": "2", "memory": "128Mi"}, "requests": {"cpu": "2", "memory": "32Mi"}}}])
    status, body = status_and_body(fake, "POST", "/api/v1/namespaces/lr/pods", big)
    assert status == 403 and json.loads(body)["message"] == (
        'pods "big" is forbidden: [minimum memory usage per Container is 64Mi, but request is 32Mi, '
        'maximum cpu usage per Container is 1, but limit is 2]')


def test_lease_microtime_format_conflicts_and_normalisation(fake):
    created, _warnings = replay_ok(fake, "objects/lease-aic-test-lease.create.json")
    real = recorded("objects/lease-aic-test-lease.create.json")["response"]
    assert created["spec"] == real["spec"]
    assert_replays_error(fake, "errors/409-create-existing-lease.json")
    for name in ("seconds-only", "millis", "nanoseconds"):
        assert_replays_error(fake, "errors/400-create-lease-microtime-%s.json" % name)
    offset, _warnings = replay_ok(fake, "objects/lease-aic-test-lease-offset.create.json")
    assert offset["spec"] == recorded("objects/lease-aic-test-lease-offset.create.json")["response"]["spec"]
    # renew with the current resourceVersion, then a takeover with the stale one: the recorded 409
    renew = recorded("objects/lease-aic-test-lease.renew.json")
    body = copy.deepcopy(renew["request"]["body"])
    body["metadata"]["resourceVersion"] = created["metadata"]["resourceVersion"]
    status, renewed, _warnings = replay_full(fake, renew, body=body)
    assert status == 200 and renewed["spec"]["renewTime"] == renew["response"]["spec"]["renewTime"]
    stale = recorded("errors/409-update-lease-stale-resourceversion.json")
    body = copy.deepcopy(stale["request"]["body"])
    body["metadata"]["resourceVersion"] = created["metadata"]["resourceVersion"]
    assert replay_full(fake, stale, body=body)[:2] == (409, stale["response"])


def test_namespace_with_finalized_content_stays_terminating_with_the_recorded_conditions(fake):
    fake.namespace_deletion_delay = 0.3
    replay_ok(fake, "objects/namespace-terminating-fixtures.create.json")
    replay_ok(fake, "objects/configmap-held.create.json")
    deleted, _warnings = replay_ok(fake, "objects/namespace-terminating-fixtures.delete.json")
    real_delete = recorded("objects/namespace-terminating-fixtures.delete.json")["response"]
    assert deleted["status"] == real_delete["status"] and deleted["metadata"]["deletionTimestamp"]
    assert_replays_error(fake, "errors/403-create-in-terminating-namespace.json")
    time.sleep(0.4)
    status, ns = status_and_body(fake, "GET", "/api/v1/namespaces/terminating-fixtures")
    real = recorded("objects/namespace-terminating-fixtures.terminating.json")["response"]["status"]
    without_time = [dict((k, v) for k, v in c.items() if k != "lastTransitionTime") for c in json.loads(ns)["status"]["conditions"]]
    assert status == 200 and json.loads(ns)["status"]["phase"] == "Terminating"
    assert without_time == [dict((k, v) for k, v in c.items() if k != "lastTransitionTime") for c in real["conditions"]]
    held = fake.get_object("v1", "configmaps", "held", "terminating-fixtures")
    assert held["metadata"]["deletionTimestamp"] and held["metadata"]["finalizers"] == ["example.com/hold"]
    replay_ok(fake, "objects/configmap-held.remove-finalizer.json")
    assert_replays_error(fake, "errors/404-get-namespace-after-finalizer-removed.json")


def test_raising_enforce_over_violating_pods_succeeds_with_the_recorded_warnings(fake):
    replay_ok(fake, "objects/namespace-psa-warn.create.json")
    replay_ok(fake, "objects/pod-plain.create.psa-warn-only.json")
    fixture = recorded("objects/namespace-psa-warn.label-enforce-restricted.json")
    body, warnings = replay_ok(fake, "objects/namespace-psa-warn.label-enforce-restricted.json")
    assert warnings == fixture["response_headers"]["Warning"]
    assert body["metadata"]["labels"]["pod-security.kubernetes.io/enforce"] == "restricted"
    assert fake.get_object("v1", "pods", "plain", "psa-warn") is not None  # the pod stays
