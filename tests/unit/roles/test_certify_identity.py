"""roles/certify_identity against the fake API server, and certifying under the identity it makes.

The fake plays the token controller (fills a service-account-token Secret) and,
for the runs under the identity, RBAC with the ClusterRole the role applied
(``tests/support/rbac.py``): a run under it certifies like an admin run, and a
rule taken away turns the affected check into ``error`` naming the permission.
"""

import base64
import os
import stat

import pytest
import yaml

from ansible_collections.ai_conformance.rke2.plugins.modules import ai_inference, dra_support
from tests.support import rbac
from tests.support.fakeapi import FakeKubeAPI
from tests.support.modrun import checks, run_module
from tests.support.playbook import REPO_ROOT, run_recapped
from tests.unit.plugins.modules.test_dra_support import add_driver, play_dra

PLAYBOOK = os.path.join(REPO_ROOT, "playbooks", "certify_identity.yml")
TOKEN = "eyJhbGciOiJSUzI1NiJ9.certify-token"
USER = "system:serviceaccount:ai-conformance:ai-conformance-certify"


def play_token_controller(fake):
    """kube-controller-manager's token controller: fills token, ca.crt and namespace of token Secrets."""

    def reconcile(server):
        for secret in server.objects("v1", "secrets"):
            if secret.get("type") == "kubernetes.io/service-account-token" and not (secret.get("data") or {}).get("token"):
                meta = secret["metadata"]
                data = {"token": TOKEN, "ca.crt": "LS0tLS1CRUdJTiBDRVJUSUZJQ0FURS0tLS0tCg==", "namespace": meta["namespace"]}
                server.patch_object("v1", "secrets", meta["name"], {"data": dict(
                    (k, v if k == "ca.crt" else base64.b64encode(v.encode()).decode()) for k, v in data.items())},
                    meta["namespace"])

    fake.add_reconciler(reconcile)


@pytest.fixture
def fake(tmp_path):
    with FakeKubeAPI() as server:
        server.write_kubeconfig(str(tmp_path / "admin.kubeconfig"))
        play_token_controller(server)
        yield server


def run_role(fake, tmp_path, check=False, **extra):
    variables = {"conformance_kubeconfig": fake.kubeconfig, "certify_identity_kubeconfig_dest": str(tmp_path / "certify.kubeconfig"),
                 "certify_identity_token_timeout": 5}
    variables.update(extra)
    return run_recapped(PLAYBOOK, tmp_path, variables, check=check)


def applied_rules(fake):
    return fake.get_object("rbac.authorization.k8s.io/v1", "clusterroles", "ai-conformance-certify")["rules"]


def test_creates_the_identity_and_a_private_kubeconfig_idempotently(fake, tmp_path):
    first = run_role(fake, tmp_path)
    assert first["rc"] == 0, first["out"]
    assert applied_rules(fake) == rbac.cluster_rules(rbac.shipped_rules())
    lock_role = fake.get_object("rbac.authorization.k8s.io/v1", "roles", "ai-conformance-certify", "kube-system")
    assert {"apiGroups": ["coordination.k8s.io"], "resources": ["leases"], "resourceNames": ["ai-conformance-rke2"],
            "verbs": ["get", "update", "delete"]} in lock_role["rules"]
    lock_binding = fake.get_object("rbac.authorization.k8s.io/v1", "rolebindings", "ai-conformance-certify", "kube-system")
    assert lock_binding["roleRef"]["kind"] == "Role" and lock_binding["subjects"][0]["name"] == "ai-conformance-certify"
    # no GPU Operator yet: its namespace's rules are not granted, and the run says so
    assert fake.get_object("rbac.authorization.k8s.io/v1", "roles", "ai-conformance-certify", "gpu-operator") is None
    assert "Namespace gpu-operator does not exist (yet)" in first["out"]
    binding = fake.get_object("rbac.authorization.k8s.io/v1", "clusterrolebindings", "ai-conformance-certify")
    assert binding["roleRef"] == {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": "ai-conformance-certify"}
    assert binding["subjects"] == [{"kind": "ServiceAccount", "name": "ai-conformance-certify", "namespace": "ai-conformance"}]
    assert fake.get_object("v1", "serviceaccounts", "ai-conformance-certify", "ai-conformance") is not None
    assert not any(b["roleRef"]["name"] == "cluster-admin" for b in fake.objects("rbac.authorization.k8s.io/v1", "clusterrolebindings"))
    path = tmp_path / "certify.kubeconfig"
    assert stat.S_IMODE(os.stat(str(path)).st_mode) == 0o600
    config = yaml.safe_load(path.read_text())
    assert config["users"][0]["user"] == {"token": TOKEN}
    assert config["clusters"][0]["cluster"]["server"] == fake.url
    assert config["current-context"] == "ai-conformance-certify"
    assert TOKEN not in first["out"] and base64.b64encode(TOKEN.encode()).decode() not in first["out"]
    assert "playbooks/certify.yml -e conformance_kubeconfig=%s" % path in first["out"]
    second = run_role(fake, tmp_path)
    assert second["rc"] == 0 and second["changed"] == 0, second["out"]


def test_check_mode_creates_nothing(fake, tmp_path):
    result = run_role(fake, tmp_path, check=True)
    assert result["rc"] == 0, result["out"]
    assert fake.get_object("rbac.authorization.k8s.io/v1", "clusterroles", "ai-conformance-certify") is None
    assert fake.get_object("v1", "namespaces", "ai-conformance") is None
    assert fake.objects("rbac.authorization.k8s.io/v1", "roles") == []
    assert not (tmp_path / "certify.kubeconfig").exists()


def test_extra_rules_are_appended(fake, tmp_path):
    extra = {"apiGroups": ["example.com"], "resources": ["widgets"], "verbs": ["get"]}
    result = run_role(fake, tmp_path, certify_identity_extra_rules=[extra])
    assert result["rc"] == 0, result["out"]
    assert applied_rules(fake) == rbac.cluster_rules(rbac.shipped_rules()) + [extra]


def test_accelerator_namespace_rules_once_it_exists(fake, tmp_path):
    fake.create_namespace("gpu-operator")
    result = run_role(fake, tmp_path)
    assert result["rc"] == 0, result["out"]
    role = fake.get_object("rbac.authorization.k8s.io/v1", "roles", "ai-conformance-certify", "gpu-operator")
    assert role["rules"] == [{"apiGroups": ["apps"], "resources": ["daemonsets"], "verbs": ["get"]}]
    expected = [dict((k, v) for k, v in r.items() if k != "namespace") for r in rbac.shipped_rules()
                if r.get("namespace") == "gpu-operator"]
    assert role["rules"] == expected


@pytest.fixture
def identity(fake, tmp_path):
    """The kubeconfig the role wrote; from then on the fake checks its token and authorizes with the applied ClusterRole."""
    result = run_role(fake, tmp_path)
    assert result["rc"] == 0, result["out"]
    fake.require_token(TOKEN)
    authorizer = rbac.Authorizer(rbac.granted(fake), user=USER)
    fake.authorize_with(authorizer)
    return str(tmp_path / "certify.kubeconfig"), authorizer


def test_dra_support_certifies_under_the_identity_like_an_admin(fake, identity, capsys):
    kubeconfig, authorizer = identity
    add_driver(fake)
    play_dra(fake)
    result = run_module(dra_support, {"kubeconfig": kubeconfig, "timeout": 5}, capsys)["result"]
    assert result["status"] == "passed", result
    assert checks(result)["dra_allocation"]["status"] == "passed"
    assert authorizer.denied == []


@pytest.mark.parametrize("removed,expected", [
    ("resourceslices", 'User "%s" cannot list resource "resourceslices" in API group "resource.k8s.io" at the cluster scope' % USER),
    ("resourceclaimtemplates", 'cannot create resource "resourceclaimtemplates" in API group "resource.k8s.io" in the namespace'),
])
def test_dra_support_missing_permission_is_an_error_naming_it(fake, identity, capsys, removed, expected):
    kubeconfig, authorizer = identity
    authorizer.rules = rbac.shipped_rules(drop=lambda rule: removed in rule["resources"])
    add_driver(fake)
    play_dra(fake)
    result = run_module(dra_support, {"kubeconfig": kubeconfig, "timeout": 5}, capsys)["result"]
    assert result["status"] == "error", result
    assert not [c for c in result["checks"] if c["status"] == "failed"], result["checks"]
    errors = [c["message"] for c in result["checks"] if c["status"] == "error"]
    assert any("Forbidden (403)" in m and expected in m for m in errors), errors
    assert not [ns for ns in fake.objects("v1", "namespaces") if ns["metadata"]["name"].startswith("aic-")]  # cleaned up


def test_ai_inference_missing_gatewayclass_permission_is_an_error(fake, identity, capsys):
    kubeconfig, authorizer = identity
    authorizer.rules = rbac.shipped_rules(drop=lambda rule: "gatewayclasses" in rule["resources"])
    result = run_module(ai_inference, {"kubeconfig": kubeconfig, "timeout": 5}, capsys)["result"]
    assert result["status"] == "error", result
    assert not [c for c in result["checks"] if c["status"] == "failed"], result["checks"]
    assert any('cannot list resource "gatewayclasses"' in c["message"] for c in result["checks"] if c["status"] == "error"), \
        result["checks"]


def test_certify_playbook_under_the_identity(fake, identity, tmp_path):
    """The whole certify phase (preflight access review, leftover cleanup, a check, the report) needs nothing more."""
    from tests.support.playbook import certify

    kubeconfig, authorizer = identity
    add_driver(fake)
    play_dra(fake)
    rc, out, dummy = certify(tmp_path, {"conformance_kubeconfig": kubeconfig, "conformance_requirements": "dra_support",
                                        "conformance_report_dir": str(tmp_path / "report")})
    assert rc == 0, out
    assert authorizer.denied == [], [a.describe() for a in authorizer.denied]
    assert fake.requests_to("GET", r"/api/v1/namespaces$")  # the leftover cleanup ran under the identity ...
    # ... and left the identity's own namespace alone (installer label, not the certify runs' one)
    assert fake.get_object("v1", "serviceaccounts", "ai-conformance-certify", "ai-conformance") is not None
    assert '"passed"' in (tmp_path / "report" / "results.json").read_text()
