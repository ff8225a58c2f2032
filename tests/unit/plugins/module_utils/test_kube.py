"""kube.py over HTTP against the fake API server: retries, unanswered creates, run lock renewal, cleanup waits."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import datetime
import os
import re
import time

import pytest
import yaml

from ansible_collections.ai_conformance.rke2.plugins.module_utils import kube as kube_utils
from ansible_collections.ai_conformance.rke2.plugins.module_utils.kube import (
    Kube, KubeError, LockLost, NoAnswer, Unreachable, lease_holder, microtime, run_requirement)
from tests.support.fakeapi import FakeKubeAPI
from tests.support.shared import REPO_ROOT

urllib3 = pytest.importorskip("urllib3")
from ansible_collections.kubernetes.core.plugins.module_utils.args_common import AUTH_ARG_SPEC  # noqa: E402


class ModuleStub:
    """What Kube and kubernetes.core's get_api_client read from an AnsibleModule."""

    check_mode = False
    server_side_dry_run = False

    def __init__(self, **params):
        self.params = dict((name, None) for name in AUTH_ARG_SPEC)
        self.params.update({"request_timeout": 5, "run_id": None, "lock_namespace": "kube-system",
                            "lock_name": "ai-conformance-rke2", "cleanup_timeout": 2})
        self.params.update(params)
        self.exited = None

    def requires(self, *args, **kwargs):
        return None

    def exit_json(self, **kwargs):
        self.exited = kwargs
        raise SystemExit(0)


@pytest.fixture
def fake():
    with FakeKubeAPI() as api:
        yield api
        assert api.internal_errors == []


@pytest.fixture
def connect(fake, tmp_path, monkeypatch):
    monkeypatch.setattr(Kube, "retry_backoff", 0.01)
    monkeypatch.setattr(Kube, "cleanup_interval", 0.05)
    kubeconfig = fake.write_kubeconfig(str(tmp_path / "kubeconfig"))

    def build(**params):
        return Kube(ModuleStub(kubeconfig=kubeconfig, **params))

    return build


def configmap(name, namespace="default", labels=None):
    return {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": name, "namespace": namespace, "labels": labels or {}},
            "data": {"k": "v"}}


# -------------------------------------------------------------- urllib3 and kubernetes.core


def test_connecting_leaves_urllib3_process_defaults_alone(connect):
    before = urllib3.util.retry.Retry.DEFAULT
    connect()
    assert urllib3.util.retry.Retry.DEFAULT is before and before.total == 3


def test_private_kubernetes_core_functions_exist_in_the_pinned_range():
    """_probe_version uses two private kubernetes.core functions: pinned in galaxy.yml, checked here."""
    from ansible_collections.kubernetes.core.plugins.module_utils.k8s import client as core_client

    with open(os.path.join(REPO_ROOT, "galaxy.yml")) as handle:
        pin = yaml.safe_load(handle)["dependencies"]["kubernetes.core"]
    assert re.match(r"^>=6\.\d+\.\d+,<7\.0\.0$", pin), pin
    import json
    manifest = os.path.join(os.path.dirname(core_client.__file__), "..", "..", "..", "MANIFEST.json")
    with open(manifest) as handle:
        installed = json.load(handle)["collection_info"]["version"]
    assert installed.split(".")[0] == "6", "kubernetes.core %s is outside the pinned range %s" % (installed, pin)
    auth = core_client._create_auth_spec(ModuleStub(host="http://127.0.0.1:1", api_key="t"))
    configuration = core_client._create_configuration(auth)
    assert configuration.host == "http://127.0.0.1:1" and configuration.api_key == {"authorization": "Bearer t"}


# -------------------------------------------------------------- retries


def test_get_is_retried_after_429_honouring_retry_after_capped(fake, connect, monkeypatch):
    monkeypatch.setattr(Kube, "retry_after_cap", 0.3)
    kube = connect()
    rule = fake.fail("GET", "/namespaces/default/configmaps$", 429, headers={"Retry-After": "100"}, times=2)
    started = time.monotonic()
    assert kube.list("v1", "ConfigMap", namespace="default") == []
    elapsed = time.monotonic() - started
    assert rule.hits == 2 and 0.6 <= elapsed < 3  # two waits of the capped Retry-After, not 100 s


def test_get_is_retried_after_5xx_but_bounded(fake, connect):
    kube = connect()
    fake.fail("GET", "/namespaces/default/configmaps/x$", 503, times=2)
    fake.put_object(configmap("x"))
    assert kube.get("v1", "ConfigMap", "x", "default")["metadata"]["name"] == "x"
    fake.clear_requests()
    fake.fail("GET", "/namespaces/default/configmaps/y$", 500)
    with pytest.raises(KubeError) as caught:
        kube.get("v1", "ConfigMap", "y", "default")
    assert caught.value.status == 500 and "after 4 attempts" in str(caught.value)
    assert len(fake.requests_to("GET", "/configmaps/y$")) == Kube.max_retries + 1


def test_post_and_patch_are_never_retried(fake, connect):
    kube = connect()
    fake.fail("POST", "/namespaces/default/configmaps$", 503)
    with pytest.raises(KubeError) as caught:
        kube.create(configmap("c"))
    assert caught.value.status == 503 and len(fake.requests_to("POST", "/configmaps$")) == 1
    fake.put_object(configmap("p"))
    fake.fail("PATCH", "/configmaps/p$", 502)
    with pytest.raises(KubeError):
        kube.patch_merge("v1", "ConfigMap", "p", {"data": {"k": "w"}}, namespace="default")
    assert len(fake.requests_to("PATCH", "/configmaps/p$")) == 1


def test_connection_reset_is_retried_for_get_only(fake, connect):
    kube = connect()
    fake.put_object(configmap("r"))
    fake.fail("GET", "/configmaps/r$", reset=True, times=1)
    assert kube.get("v1", "ConfigMap", "r", "default")["metadata"]["name"] == "r"
    fake.fail("POST", "/namespaces/default/configmaps$", reset=True, times=1)
    with pytest.raises(Unreachable):
        kube.create(configmap("s"))
    assert len(fake.requests_to("POST", "/configmaps$")) == 1 and fake.get_object("v1", "configmaps", "s", "default") is None


def test_a_time_out_is_not_retried(fake, connect):
    kube = connect(request_timeout=1)
    fake.fail("GET", "/configmaps/slow$", delay=1.5)
    with pytest.raises(NoAnswer):
        kube.get("v1", "ConfigMap", "slow", "default")
    assert len(fake.requests_to("GET", "/configmaps/slow$")) == 1


def test_service_proxy_answers_are_not_retried(fake, connect):
    kube = connect()
    fake.put_object({"apiVersion": "v1", "kind": "Service", "metadata": {"name": "svc", "namespace": "default"},
                     "spec": {"ports": [{"port": 80}]}})
    fake.put_object(fake.endpoints_for({"metadata": {"name": "svc", "namespace": "default"}, "spec": {"ports": [{"port": 80}]}}, []))
    with pytest.raises(KubeError) as caught:
        kube.service_proxy("default", "svc", 80, "/metrics")
    assert caught.value.status == 503 and len(fake.requests_to("GET", "/proxy/")) == 1


# -------------------------------------------------------------- creates without answer


def test_unanswered_create_is_found_by_name_and_cleaned_up(fake, connect):
    kube = connect(request_timeout=1, run_id="run-1")
    labels = kube.labels("dra_support")
    fake.fail("POST", "/namespaces/default/configmaps$", delay=1.5, times=1)
    with pytest.raises(NoAnswer):  # the server does it after the client gave up and looked it up
        kube.create(configmap("late", labels=labels))
    time.sleep(0.7)
    assert fake.get_object("v1", "configmaps", "late", "default") is not None
    report = kube.cleanup()
    assert report["deleted"] == ["ConfigMap/default/late"] and fake.get_object("v1", "configmaps", "late", "default") is None


def test_unanswered_create_that_happened_is_returned_and_tracked(fake, connect):
    kube = connect(request_timeout=1, run_id="run-1")
    fake.fail("POST", "/namespaces/default/configmaps$", answer_delay=1.5, times=1)  # stored, answer lost
    created = kube.create(configmap("done", labels=kube.labels("x")))
    assert created["metadata"]["name"] == "done"
    assert kube.cleanup()["deleted"] == ["ConfigMap/default/done"]


def test_unanswered_generate_name_create_is_found_by_our_labels(fake, connect):
    kube = connect(request_timeout=1, run_id="run-2")
    body = configmap(None, labels=kube.labels("x"))
    body["metadata"] = {"generateName": "probe-", "namespace": "default", "labels": kube.labels("x")}
    fake.put_object(configmap("probe-other", labels={"ai-conformance.rke2/run-id": "someone-else"}))
    fake.fail("POST", "/namespaces/default/configmaps$", delay=1.5, times=1)
    with pytest.raises(NoAnswer):
        kube.create(body)
    time.sleep(0.7)
    report = kube.cleanup()
    assert len(report["deleted"]) == 1 and report["deleted"][0].startswith("ConfigMap/default/probe-")
    assert [c["metadata"]["name"] for c in fake.objects("v1", "configmaps", "default")] == ["probe-other"]


def test_unanswered_create_never_deletes_an_object_that_is_not_ours(fake, connect):
    kube = connect(request_timeout=1, run_id="run-11")
    fake.put_object(configmap("shared", labels={"team": "a"}))
    fake.fail("POST", "/namespaces/default/configmaps$", 409, delay=1.5, times=1)  # answered too late: AlreadyExists
    with pytest.raises(NoAnswer):
        kube.create(configmap("shared", labels=kube.labels("x")))
    time.sleep(0.7)
    report = kube.cleanup()
    assert report["deleted"] == [] and fake.get_object("v1", "configmaps", "shared", "default") is not None


# -------------------------------------------------------------- cleanup waits


def test_cleanup_reports_a_namespace_stuck_terminating_with_its_conditions(fake, connect):
    kube = connect(run_id="run-3", cleanup_timeout=1)
    name = kube.temp_namespace("dra_support")
    held = configmap("held", namespace=name)
    held["metadata"]["finalizers"] = ["example.com/hold"]
    fake.put_object(held)
    started = time.monotonic()
    report = kube.cleanup()
    assert 1 <= time.monotonic() - started < 5
    assert [s["namespace"] for s in report["stuck"]] == [name] and report["stuck"][0]["phase"] == "Terminating"
    reasons = [c["reason"] for c in report["stuck"][0]["conditions"] if c["status"] == "True"]
    assert reasons == ["SomeResourcesRemain", "SomeFinalizersRemain"]


def test_cleanup_waits_until_the_namespace_is_gone(fake, connect):
    fake.namespace_deletion_delay = 0.3
    kube = connect(run_id="run-4", cleanup_timeout=5)
    name = kube.temp_namespace("dra_support")
    report = kube.cleanup()
    assert report["stuck"] == [] and report["deleted"] == ["Namespace/%s" % name]
    assert fake.get_object("v1", "namespaces", name) is None


def test_run_requirement_turns_a_stuck_namespace_into_an_error_check(fake, connect, tmp_path):
    module = ModuleStub(kubeconfig=fake.kubeconfig, run_id="run-5", cleanup_timeout=0)

    def verify(kube, params, result):
        name = kube.temp_namespace("dra_support")
        held = configmap("held", namespace=name)
        held["metadata"]["finalizers"] = ["example.com/hold"]
        fake.put_object(held)
        result.passed("x", "exercised")

    with pytest.raises(SystemExit):
        run_requirement(module, "dra_support", verify)
    result = module.exited["result"]
    stuck = [c for c in result["checks"] if c["name"] == "cleanup_namespaces"][0]
    assert result["status"] == "error" and stuck["status"] == "error"
    assert "aic-dra-support-" in stuck["message"] and "example.com/hold in 1 resource instances" in stuck["message"]


# -------------------------------------------------------------- run lock


def lease(holder, renewed=None, duration=60):
    renewed = renewed or datetime.datetime.now(datetime.timezone.utc)
    return {"apiVersion": "coordination.k8s.io/v1", "kind": "Lease",
            "metadata": {"name": "ai-conformance-rke2", "namespace": "kube-system",
                         "annotations": {"ai-conformance.rke2/host": "h1", "ai-conformance.rke2/user": "u1",
                                         "ai-conformance.rke2/started": "2026-12-01T17:00:00Z"}},
            "spec": {"holderIdentity": holder, "leaseDurationSeconds": duration,
                     "acquireTime": microtime(renewed), "renewTime": microtime(renewed)}}


def test_a_module_renews_the_lock_of_its_run(fake, connect):
    old = datetime.datetime.now(datetime.timezone.utc) - datetime.timedelta(seconds=30)
    fake.put_object(lease("run-6", renewed=old))
    kube = connect(run_id="run-6")
    renewed = fake.get_object("coordination.k8s.io/v1", "leases", "ai-conformance-rke2", "kube-system")["spec"]["renewTime"]
    assert renewed != microtime(old) and not lease_holder(fake.get_object(
        "coordination.k8s.io/v1", "leases", "ai-conformance-rke2", "kube-system"))["expired"]
    assert re.match(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}Z$", renewed)
    # taken over by another run while we wait: the wait stops with the new holder named
    fake.put_object(lease("run-7"))
    kube._lock["renewed"] = None
    with pytest.raises(LockLost) as caught:
        kube.wait_for(lambda: False, timeout=1, interval=0.1, what="x")
    assert "run-7" in str(caught.value) and "h1" in str(caught.value)


def test_a_module_without_the_lock_leaves_the_lease_alone(fake, connect):
    fake.put_object(lease("other-run"))
    before = fake.get_object("coordination.k8s.io/v1", "leases", "ai-conformance-rke2", "kube-system")
    kube = connect(run_id="run-8")
    kube.wait_for(lambda: True, timeout=1)
    assert fake.get_object("coordination.k8s.io/v1", "leases", "ai-conformance-rke2", "kube-system") == before
    assert not fake.requests_to("PUT", "/leases/")


def test_lease_holder_expiry():
    now = datetime.datetime(2026, 12, 1, 17, 5, tzinfo=datetime.timezone.utc)
    fresh = lease("r", renewed=now - datetime.timedelta(seconds=59))
    stale = lease("r", renewed=now - datetime.timedelta(seconds=61))
    assert not lease_holder(fresh, now)["expired"] and lease_holder(stale, now)["expired"]
    assert lease_holder(fresh, now)["host"] == "h1" and lease_holder(fresh, now)["run_id"] == "r"
    assert kube_utils.retry_delay(3, 0.5, 8.0) == 2.0 and kube_utils.retry_delay(1, 0.5, 8.0, "30", 10.0) == 10.0


def test_any_request_renews_the_lock_when_due_and_cleanup_survives_a_lost_lock(fake, connect):
    fake.put_object(lease("run-9"))
    kube = connect(run_id="run-9")
    name = kube.temp_namespace("gang_scheduling")
    puts = len(fake.requests_to("PUT", "/leases/"))
    kube.list("v1", "ConfigMap", namespace=name)
    assert len(fake.requests_to("PUT", "/leases/")) == puts  # not due yet
    kube._lock["renewed"] -= kube._lock["interval"]
    kube.list("v1", "ConfigMap", namespace=name)  # a module's own polling loop renews too
    assert len(fake.requests_to("PUT", "/leases/")) == puts + 1
    fake.put_object(lease("run-10"))
    kube._lock["renewed"] -= kube._lock["interval"]
    with pytest.raises(LockLost):
        kube.list("v1", "ConfigMap", namespace=name)
    report = kube.cleanup()
    assert report["deleted"] == ["Namespace/%s" % name] and report["failed"] == []


# -------------------------------------------------------------- test namespaces and pods


def test_temp_namespace_enforces_restricted_and_admits_only_built_pods(fake, connect):
    from ansible_collections.ai_conformance.rke2.plugins.module_utils.testpods import PodBuilder
    from tests.support.shared import load_json

    kube = connect(run_id="run-psa")
    namespace = kube.temp_namespace("dra_support")
    labels = fake.get_object("v1", "namespaces", namespace)["metadata"]["labels"]
    assert labels["pod-security.kubernetes.io/enforce"] == "restricted"
    pods = PodBuilder({"tolerations": [{"key": "dedicated", "operator": "Exists"}]})
    built = pods.pod("probe", namespace, [pods.container("probe", "busybox", command=["sh", "-c", "true"],
                                                         resources={"limits": {"nvidia.com/gpu": 1}})])
    assert kube.create(built)["metadata"]["name"] == "probe"
    # the pod the real apiserver refused under restricted is refused here too: the label is enforced
    plain = load_json("k8s-fixtures", "errors", "403-psa-restricted-create-plain-pod.json")["request"]["body"]
    plain["metadata"]["namespace"] = namespace
    with pytest.raises(KubeError) as caught:
        kube.create(plain)
    assert caught.value.status == 403 and "violates PodSecurity" in str(caught.value)


def test_pull_secrets_are_copied_into_the_temp_namespace(fake, connect):
    fake.put_object({"apiVersion": "v1", "kind": "Secret", "type": "kubernetes.io/dockerconfigjson",
                     "metadata": {"name": "mirror-pull", "namespace": "registry-creds"},
                     "data": {".dockerconfigjson": "e30="}})
    kube = connect(run_id="run-sec", image_pull_secrets=["registry-creds/mirror-pull"])
    namespace = kube.temp_namespace("dra_support")
    copied = fake.get_object("v1", "secrets", "mirror-pull", namespace)
    assert copied["type"] == "kubernetes.io/dockerconfigjson" and copied["data"] == {".dockerconfigjson": "e30="}
    missing = connect(run_id="run-sec2", image_pull_secrets=["nope"])
    with pytest.raises(KubeError, match="image pull Secret nope not found"):
        missing.temp_namespace("dra_support")
