"""Preflight: every bad input ends in one clear message naming the kubeconfig and context, fast."""

import time

import pytest

from ansible_collections.ai_conformance.rke2.plugins.modules import cluster_info
from tests.support.fakeapi import FakeKubeAPI
from tests.support.modrun import run_module
from tests.support.shared import fixture_response


@pytest.fixture
def fake(tmp_path):
    with FakeKubeAPI() as server:
        server.kubeconfig = server.write_kubeconfig(str(tmp_path / "kubeconfig"), context="rke2-lab")
        yield server


def preflight(capsys, **args):
    start = time.monotonic()
    out = run_module(cluster_info, args, capsys)
    out["elapsed"] = time.monotonic() - start
    return out


def test_describes_the_recorded_cluster(fake, capsys):
    out = preflight(capsys, kubeconfig=fake.kubeconfig)
    assert not out.get("failed"), out
    cluster = out["cluster"]
    assert cluster["git_version"] == "v1.34.9" and cluster["kubernetes_minor"] == "1.34"
    assert cluster["context"] == "rke2-lab" and cluster["name"] == "rke2-lab"
    assert all(item["allowed"] for item in cluster["access"])
    reviews = [r for r in fake.requests if r.path.endswith("selfsubjectaccessreviews")]
    assert len(reviews) == 3
    assert cluster["platform_version"] == "v1.34.9" and cluster["node_versions"] == []  # no node yet


def test_platform_version_from_the_nodes(fake, capsys):
    node = fixture_response("k8s-fixtures", "objects", "node-gpu-node-1.final.json")
    for key in ("resourceVersion", "uid", "creationTimestamp", "managedFields"):
        node["metadata"].pop(key, None)
    fake.put_object(node)
    cluster = preflight(capsys, kubeconfig=fake.kubeconfig)["cluster"]
    assert cluster["platform_version"] == "v1.34.9+rke2r1" and cluster["platform"] == "rke2"


def test_missing_kubeconfig(capsys, tmp_path):
    path = str(tmp_path / "nope")
    out = preflight(capsys, kubeconfig=path)
    assert out["failed"]
    assert out["msg"] == "Cannot use the cluster (kubeconfig %s, context <none> (current)): kubeconfig file %s does not exist" % (path, path)


def test_unknown_context_lists_the_known_ones(fake, capsys):
    out = preflight(capsys, kubeconfig=fake.kubeconfig, context="prod")
    assert out["failed"]
    assert "context prod not found in kubeconfig %s (contexts: rke2-lab)" % fake.kubeconfig in out["msg"]
    assert "context prod" in out["msg"].split(":")[0]


def test_connection_refused_is_fast_and_named(capsys, tmp_path):
    with FakeKubeAPI() as server:
        kubeconfig = server.write_kubeconfig(str(tmp_path / "kubeconfig"))
        url = server.url
    out = preflight(capsys, kubeconfig=kubeconfig)
    assert out["failed"]
    assert "connection refused" in out["msg"] and kubeconfig in out["msg"] and "context fake" in out["msg"]
    assert url.split("//")[1] in out["msg"] or "127.0.0.1" in out["msg"]
    assert out["elapsed"] < 15
    assert "Traceback" not in out["msg"]


def test_tls_error_is_named(fake, capsys, tmp_path):
    kubeconfig = fake.write_kubeconfig(str(tmp_path / "tls"), extra_contexts={"tls": {"server": fake.url.replace("http://", "https://")}})
    out = preflight(capsys, kubeconfig=kubeconfig, context="tls")
    assert out["failed"]
    assert "TLS error" in out["msg"] and "context tls" in out["msg"]
    assert out["elapsed"] < 15


def test_rejected_token(fake, capsys, tmp_path):
    fake.require_token("right")
    kubeconfig = fake.write_kubeconfig(str(tmp_path / "bad"), token="wrong")
    out = preflight(capsys, kubeconfig=kubeconfig)
    assert out["failed"]
    assert "Unauthorized (401)" in out["msg"] and kubeconfig in out["msg"]


def test_forbidden_discovery(fake, capsys):
    fake.fail("GET", r"^/apis$", fixture="errors/403-nobody-cert-list-crds.json")
    out = preflight(capsys, kubeconfig=fake.kubeconfig)
    assert out["failed"]
    assert "Forbidden (403)" in out["msg"] and 'User \\"nobody\\"' not in out["msg"] and 'User "nobody"' in out["msg"]


def test_missing_access_is_listed(fake, capsys):
    denied = fake.recorded("objects/selfsubjectaccessreview-nobody-create-tfjobs.json")["response"]

    def deny(obj, server, dry_run):
        obj["status"] = denied["status"]

    fake.on_create("authorization.k8s.io/v1", "selfsubjectaccessreviews", deny)
    out = preflight(capsys, kubeconfig=fake.kubeconfig)
    assert out["failed"]
    assert "cannot create namespaces; cannot create pods; cannot list nodes" in out["msg"]


def test_server_that_never_answers_times_out(fake, capsys):
    fake.fail(None, r"^/", delay=30)
    out = preflight(capsys, kubeconfig=fake.kubeconfig, request_timeout=2)
    assert out["failed"]
    assert "timed out" in out["msg"] and fake.kubeconfig in out["msg"]
    assert out["elapsed"] < 15
