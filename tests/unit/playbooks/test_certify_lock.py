"""Concurrent certify runs: the run lock (a coordination.k8s.io/v1 Lease) over playbooks/certify.yml and the fake API server."""

import datetime
import json
import re

import pytest

from ansible_collections.ai_conformance.rke2.plugins.module_utils.kube import microtime
from tests.support import playbook
from tests.support.fakeapi import FakeKubeAPI
from tests.support.training_cluster import install_crds

RUN_ID = re.compile(r"^\d{8}t\d{6}-[0-9a-f]{8}$")


@pytest.fixture()
def fake(tmp_path):
    with FakeKubeAPI() as server:
        server.write_kubeconfig(str(tmp_path / "kubeconfig"), context="lab")
        yield server


def certify(fake, tmp_path, args=(), **extra_vars):
    extra_vars = dict({"conformance_report_dir": str(tmp_path / "report"), "conformance_kubeconfig": fake.kubeconfig,
                       "conformance_requirements": ["dra_support"]}, **extra_vars)
    return playbook.run_playbook(playbook.REPO_ROOT + "/playbooks/certify.yml", tmp_path, extra_vars, args=args,
                                 timeout=180)[:2]


def record_leases(fake):
    seen = []
    fake.on_create("coordination.k8s.io/v1", "leases", lambda obj, fake_, dry_run: seen.append(json.loads(json.dumps(obj))))
    return seen


def test_a_run_holds_the_lock_while_it_works_and_releases_it(fake, tmp_path):
    leases = record_leases(fake)
    renewals = []
    fake.on_update("coordination.k8s.io/v1", "leases", lambda new, old, fake_, dry_run: renewals.append(new["spec"]["renewTime"]))
    rc, out = certify(fake, tmp_path)
    assert rc == 0, out
    assert len(leases) == 1 and RUN_ID.match(leases[0]["spec"]["holderIdentity"]), leases
    annotations = leases[0]["metadata"]["annotations"]
    assert annotations["ai-conformance.rke2/host"] and annotations["ai-conformance.rke2/user"]
    assert renewals, "the requirement module renews the lock of its run"
    assert fake.objects("coordination.k8s.io/v1", "leases") == []  # released at the end


def test_the_lock_is_released_when_the_play_fails_after_the_report(fake, tmp_path):
    install_crds(fake)  # the TFJob CRD without the operator's webhook: robust_controller fails, the play fails
    rc, out = certify(fake, tmp_path, conformance_requirements=["robust_controller"], robust_controller_run_job=False)
    assert rc != 0 and "MUST requirement(s) of checklist" in out, out
    assert (tmp_path / "report" / "results.json").exists()
    assert fake.objects("coordination.k8s.io/v1", "leases") == []


def test_a_second_run_stops_at_once_naming_the_holder_and_leaves_its_objects(fake, tmp_path):
    now = datetime.datetime.now(datetime.timezone.utc)
    fake.put_object({"apiVersion": "coordination.k8s.io/v1", "kind": "Lease",
                     "metadata": {"name": "ai-conformance-rke2", "namespace": "kube-system",
                                  "annotations": {"ai-conformance.rke2/host": "ci-runner-7", "ai-conformance.rke2/user": "bob",
                                                  "ai-conformance.rke2/started": "2026-12-01T17:00:00Z"}},
                     "spec": {"holderIdentity": "20261201t170000-0badc0de", "leaseDurationSeconds": 300,
                              "acquireTime": microtime(now), "renewTime": microtime(now)}})
    fake.create_namespace("aic-dra-support-abcde", labels={"app.kubernetes.io/managed-by": "ai-conformance-rke2",
                                                           "ai-conformance.rke2/run-id": "20261201t170000-0badc0de"})
    rc, out = certify(fake, tmp_path)
    assert rc != 0
    assert "run 20261201t170000-0badc0de on host ci-runner-7 by user bob, started 2026-12-01T17:00:00Z" in out, out
    assert not (tmp_path / "report").exists()
    assert fake.get_object("v1", "namespaces", "aic-dra-support-abcde") is not None
    assert fake.get_object("coordination.k8s.io/v1", "leases", "ai-conformance-rke2", "kube-system")["spec"][
        "holderIdentity"] == "20261201t170000-0badc0de"


def test_check_mode_writes_no_lock_and_says_so(fake, tmp_path):
    leases = record_leases(fake)
    rc, out = certify(fake, tmp_path, args=["--check"])
    assert "check mode: the run lock was not written" in out, out
    # a dry run exercises nothing: it neither fails on the (skipped) MUSTs nor writes a report
    assert rc == 0, out
    assert "Check mode: read-only checks ran, nothing was exercised and no report was written" in out
    assert not (tmp_path / "report").exists()
    assert leases == [] and not fake.requests_to("POST", "/leases") and not fake.requests_to("PUT", "/leases")
