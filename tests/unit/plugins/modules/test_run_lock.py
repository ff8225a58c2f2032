"""The run lock (a coordination.k8s.io/v1 Lease) over HTTP against the fake API server."""

import datetime
import re
import threading
import time

import pytest

from ansible_collections.ai_conformance.rke2.plugins.module_utils.kube import microtime
from ansible_collections.ai_conformance.rke2.plugins.modules import run_lock
from tests.support.fakeapi import FakeKubeAPI
from tests.support.modrun import run_module

LEASES = "coordination.k8s.io/v1"
MICROTIME = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}Z$")


@pytest.fixture
def fake(tmp_path):
    with FakeKubeAPI() as api:
        api.write_kubeconfig(str(tmp_path / "kubeconfig"))
        yield api
        assert api.internal_errors == []


def lock(fake, capsys, run_id, check_mode=False, **args):
    args = dict({"kubeconfig": fake.kubeconfig, "run_id": run_id, "holder_host": "host-%s" % run_id, "holder_user": "alice"}, **args)
    return run_module(run_lock, args, capsys, check_mode=check_mode)


def stored(fake, namespace="kube-system"):
    return fake.get_object(LEASES, "leases", "ai-conformance-rke2", namespace)


def test_first_run_takes_the_lock(fake, capsys):
    out = lock(fake, capsys, "20261201t170000-a1b2c3d4")
    assert out["changed"] and out["acquired"] and out["msg"] == "run lock acquired"
    lease = stored(fake)
    assert lease["spec"]["holderIdentity"] == "20261201t170000-a1b2c3d4" and lease["spec"]["leaseDurationSeconds"] == 300
    assert MICROTIME.match(lease["spec"]["acquireTime"]) and MICROTIME.match(lease["spec"]["renewTime"])
    annotations = lease["metadata"]["annotations"]
    assert annotations["ai-conformance.rke2/host"] == "host-20261201t170000-a1b2c3d4"
    assert annotations["ai-conformance.rke2/user"] == "alice" and annotations["ai-conformance.rke2/started"]
    again = lock(fake, capsys, "20261201t170000-a1b2c3d4")
    assert again["acquired"] and again["msg"] == "run lock renewed"


def test_second_run_stops_at_once_naming_the_holder(fake, capsys):
    lock(fake, capsys, "run-a")
    started = time.monotonic()
    out = lock(fake, capsys, "run-b")
    assert out["failed"] and time.monotonic() - started < 3
    started_at = stored(fake)["metadata"]["annotations"]["ai-conformance.rke2/started"]
    assert "run run-a on host host-run-a by user alice, started %s" % started_at in out["msg"]
    assert "conformance_lock_wait" in out["msg"] and stored(fake)["spec"]["holderIdentity"] == "run-a"


def test_second_run_waits_bounded_and_gets_the_lock_when_released(fake, capsys, monkeypatch):
    lock(fake, capsys, "run-a")
    out = lock(fake, capsys, "run-b", wait=1)
    assert out["failed"] and "after waiting 1s" in out["msg"]
    timer = threading.Timer(1.0, lambda: fake.delete_object(LEASES, "leases", "ai-conformance-rke2", "kube-system"))
    timer.start()
    try:
        monkeypatch.setattr(run_lock, "POLL_INTERVAL", 0.2)
        out = lock(fake, capsys, "run-b", wait=10)
    finally:
        timer.cancel()
    assert out["acquired"] and stored(fake)["spec"]["holderIdentity"] == "run-b"


def test_an_expired_lock_is_taken_over(fake, capsys):
    old = datetime.datetime.now(datetime.timezone.utc) - datetime.timedelta(seconds=400)
    fake.put_object({"apiVersion": LEASES, "kind": "Lease", "metadata": {"name": "ai-conformance-rke2", "namespace": "kube-system"},
                     "spec": {"holderIdentity": "dead-run", "leaseDurationSeconds": 300, "acquireTime": microtime(old),
                              "renewTime": microtime(old), "leaseTransitions": 0}})
    out = lock(fake, capsys, "run-c")
    assert out["acquired"] and out["previous_holder"]["run_id"] == "dead-run" and out["previous_holder"]["expired"]
    lease = stored(fake)
    assert lease["spec"]["holderIdentity"] == "run-c" and lease["spec"]["leaseTransitions"] == 1


def test_two_runs_racing_for_the_lock_serialize(fake, capsys):
    """The other run creates the Lease between our read and our create: we get the 409 and its holder."""
    def competitor(obj, fake_, dry_run):
        if obj["spec"]["holderIdentity"] == "run-d":
            fake_.put_object(dict(obj, spec=dict(obj["spec"], holderIdentity="run-e"),
                                  metadata=dict(obj["metadata"], annotations={"ai-conformance.rke2/host": "other"})))
    fake.on_create(LEASES, "leases", competitor)
    out = lock(fake, capsys, "run-d")
    assert out["failed"] and "run run-e on host other" in out["msg"]
    assert stored(fake)["spec"]["holderIdentity"] == "run-e"


def test_release_deletes_only_our_lock(fake, capsys):
    lock(fake, capsys, "run-f")
    out = lock(fake, capsys, "run-g", state="absent")
    assert not out["changed"] and "held by" in out["msg"] and stored(fake) is not None
    out = lock(fake, capsys, "run-f", state="absent")
    assert out["changed"] and out["msg"] == "run lock released" and stored(fake) is None


def test_check_mode_writes_no_lock(fake, capsys):
    out = lock(fake, capsys, "run-h", check_mode=True)
    assert not out["changed"] and not out["acquired"] and "check mode: the run lock was not written" in out["msg"]
    assert stored(fake) is None and not fake.requests_to("POST", "/leases") and not fake.requests_to("PUT", "/leases")


def test_lock_namespace_is_configurable(fake, capsys):
    out = lock(fake, capsys, "run-i", lock_namespace="default", lock_name="certify")
    assert out["acquired"] and fake.get_object(LEASES, "leases", "certify", "default")["spec"]["holderIdentity"] == "run-i"


def test_rbac_denied_lease_is_one_clear_message(fake, capsys):
    fake.forbid(None, r"/leases")
    out = lock(fake, capsys, "run-j")
    assert out["failed"] and out["msg"].startswith("run lock kube-system/ai-conformance-rke2: Forbidden (403)")
    assert 'cannot get resource "leases" in API group "coordination.k8s.io" in the namespace "kube-system"' in out["msg"]
