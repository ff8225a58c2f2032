"""roles/training_operator end to end against the fake API server: apply, waits, idempotency, check mode.

The fake plays the operator after the apply (Deployment Available, an
EndpointSlice for the webhook Service). The temporary manifest copy is
adjusted twice. Its webhook configuration already carries a caBundle: the
fake's server-side apply is a merge-patch upsert without field ownership (see
tests/support/fakeapi.py), whereas on a real cluster the operator injects the
CA and SSA leaves that field to it, so a second apply is a no-op on both. Its
CRDs lose their schemas (the same objects are applied, 3 MB lighter).
"""

import copy
import glob
import os

import pytest
import yaml

from tests.support.fakeapi import FakeKubeAPI
from tests.support.kubectl import kubectl
from tests.unit.roles.test_training_operator_role import build_local_manifests, include_role, run_play

CA = "LS0tLS1CRUdJTiBDRVJUSUZJQ0FURS0tLS0tCg=="


@pytest.fixture(scope="module")
def manifests_with_ca(tmp_path_factory):
    return build_manifests_with_ca(str(tmp_path_factory.mktemp("manifests")))


def build_manifests_with_ca(root):
    """The temporary manifest copy with a caBundle in the VWC and the CRD schemas dropped (speed: 3 MB less YAML)."""
    local_manifests = build_local_manifests(root)
    for path in glob.glob(os.path.join(local_manifests, "..", "..", "base", "crds", "kubeflow.org_*.yaml")):
        with open(path) as handle:
            crd = yaml.load(handle, Loader=getattr(yaml, "CSafeLoader", yaml.SafeLoader))
        for version in crd["spec"]["versions"]:
            version.pop("schema", None)
        with open(path, "w") as handle:
            yaml.safe_dump(crd, handle)
    path = os.path.join(local_manifests, "..", "..", "base", "validatingwebhookconfiguration.yaml")
    with open(path) as handle:
        vwc = yaml.safe_load(handle)
    for hook in vwc["webhooks"]:
        hook["clientConfig"]["caBundle"] = CA
    with open(path, "w") as handle:
        yaml.safe_dump(vwc, handle, sort_keys=False)
    return local_manifests


def play_operator(fake):
    def reconcile(fake_):
        deployment = fake_.get_object("apps/v1", "deployments", "training-operator", "kubeflow")
        if deployment is not None and not (deployment.get("status") or {}).get("readyReplicas"):
            fake_.set_status("apps/v1", "deployments", "training-operator", {
                "observedGeneration": 1, "replicas": 1, "readyReplicas": 1, "availableReplicas": 1,
                "conditions": [{"type": "Available", "status": "True", "reason": "MinimumReplicasAvailable",
                                "message": "Deployment has minimum availability."}]}, namespace="kubeflow")
        service = fake_.get_object("v1", "services", "training-operator", "kubeflow")
        if service is not None and fake_.get_object("discovery.k8s.io/v1", "endpointslices", "training-operator-abcde",
                                                    "kubeflow") is None:
            fake_.put_object({"apiVersion": "discovery.k8s.io/v1", "kind": "EndpointSlice", "addressType": "IPv4",
                              "metadata": {"name": "training-operator-abcde", "namespace": "kubeflow",
                                           "labels": {"kubernetes.io/service-name": "training-operator"}},
                              "ports": [{"name": "webhook-server", "port": 9443, "protocol": "TCP"}],
                              "endpoints": [{"addresses": ["10.42.0.17"], "conditions": {"ready": True}}]})

    fake.add_reconciler(reconcile)


@pytest.fixture
def fake():
    with FakeKubeAPI() as server:
        yield server


def role_vars(fake, tmp_path, manifests, **extra):
    values = {"training_operator_source": "local", "training_operator_local_dir": manifests,
              "training_operator_kustomize_binary": kubectl(),
              "training_operator_kubeconfig": fake.write_kubeconfig(str(tmp_path / "kubeconfig")),
              "training_operator_wait_timeout": 20}
    values.update(extra)
    return values


def snapshot(fake):
    found = {}
    for obj in fake.objects():
        meta = obj["metadata"]
        found["%s/%s/%s" % (obj.get("kind"), meta.get("namespace", ""), meta["name"])] = meta.get("resourceVersion")
    return found


def test_apply_waits_and_second_run_changes_nothing(fake, tmp_path, manifests_with_ca):
    play_operator(fake)
    before = snapshot(fake)
    first = run_play(tmp_path, [include_role("main", role_vars(fake, tmp_path, manifests_with_ca))])
    assert first.returncode == 0, first.stdout
    assert "changed=2" in first.stdout  # the cluster-scoped and the namespaced apply
    crds = sorted(o["metadata"]["name"] for o in fake.objects("apiextensions.k8s.io/v1", "customresourcedefinitions"))
    assert "tfjobs.kubeflow.org" in crds and len(crds) == 6
    vwc = fake.get_object("admissionregistration.k8s.io/v1", "validatingwebhookconfigurations",
                          "validator.training-operator.kubeflow.org")
    assert [w["clientConfig"]["service"]["namespace"] for w in vwc["webhooks"]] == ["kubeflow"] * 5
    assert fake.get_object("apps/v1", "deployments", "training-operator", "kubeflow") is not None
    applies = fake.requests_to("PATCH")
    assert applies and all(r.query.get("fieldManager") == "ai-conformance-rke2" for r in applies)
    assert all(r.headers.get("Content-Type", "").startswith("application/apply-patch+yaml") for r in applies)
    for task in ("Wait until Available the Deployment", "Wait for ready endpoints of Service",
                 "Wait for the operator to put its CA into"):
        assert first.stdout.split(task, 1)[1].split("\n")[1].startswith("ok: [localhost]"), task
    after_first = snapshot(fake)
    assert set(after_first) - set(before)

    second = run_play(tmp_path, [include_role("main", role_vars(fake, tmp_path, manifests_with_ca))])
    assert second.returncode == 0, second.stdout
    assert "changed=0" in second.stdout, second.stdout
    assert snapshot(fake) == after_first


def test_check_mode_changes_nothing(fake, tmp_path, manifests_with_ca):
    play_operator(fake)
    before = snapshot(fake)
    result = run_play(tmp_path, [include_role("main", role_vars(fake, tmp_path, manifests_with_ca))], check=True)
    assert result.returncode == 0, result.stdout
    assert snapshot(fake) == before
    writes = [r for r in fake.requests if r.method in ("POST", "PUT", "PATCH", "DELETE")]
    assert writes and all(r.query.get("dryRun") == "All" for r in writes), [(r.method, r.path, r.query) for r in writes]
    assert "Wait until Available the Deployment" in result.stdout
    assert result.stdout.split("Wait until Available the Deployment", 1)[1].split("\n")[1].startswith("skipping")
    assert "Check mode: namespace(s) kubeflow do not exist yet" in result.stdout


def test_check_mode_on_an_installed_operator_dry_runs_everything(fake, tmp_path, manifests_with_ca):
    play_operator(fake)
    first = run_play(tmp_path, [include_role("main", role_vars(fake, tmp_path, manifests_with_ca))])
    assert first.returncode == 0, first.stdout
    before = snapshot(fake)
    fake.clear_requests()
    result = run_play(tmp_path, [include_role("main", role_vars(fake, tmp_path, manifests_with_ca))], check=True)
    assert result.returncode == 0, result.stdout
    assert "changed=0" in result.stdout
    assert snapshot(fake) == before
    patched = sorted(r.path.rsplit("/", 1)[1] for r in fake.requests_to("PATCH"))
    assert "training-operator" in patched and "tfjobs.kubeflow.org" in patched
    assert all(r.query.get("dryRun") == "All" for r in fake.requests_to("PATCH"))


def test_wait_is_bounded_when_the_operator_never_becomes_available(fake, tmp_path, manifests_with_ca):
    result = run_play(tmp_path, [include_role("main", role_vars(fake, tmp_path, manifests_with_ca,
                                                                training_operator_wait_timeout=2))])
    assert result.returncode != 0
    assert "Wait until Available the Deployment" in result.stdout
    failed_task = result.stdout.split("fatal:", 1)[0].rsplit("TASK [", 1)[1]
    assert failed_task.startswith("ai_conformance.rke2.training_operator : Wait until Available the Deployment"), failed_task


def test_copy_is_not_shared_state():
    """Guard: the CA adjustment only touches the temporary copy, never the fixture in the repo."""
    from tests.support.shared import REPO_ROOT

    with open(os.path.join(REPO_ROOT, "tests", "fixtures", "training_operator", "base",
                           "validatingwebhookconfiguration.yaml")) as handle:
        vwc = yaml.safe_load(handle)
    assert all("caBundle" not in copy.deepcopy(w)["clientConfig"] for w in vwc["webhooks"])
