"""Certify secure_accelerator_access with playbooks/certify.yml against the fake API server.

Without the GPU Operator and without a GPU node the requirement errors (nothing to test on), the MUST is
unmet and nothing is left behind; with the fake GPU cluster (tests/support/gpu_cluster.py) the run passes
and the role reports the toolkit config.toml it read on the "GPU host" (localhost here).
"""

import json
import os

import pytest
import yaml

from tests.support import playbook
from tests.support.fakeapi import FakeKubeAPI
from tests.support.gpu_cluster import GpuCluster, leftovers, recorded_node
from tests.support.modrun import checks, requirement_result

REQUIREMENT = "secure_accelerator_access"


def certify(fake, tmp_path, extra_vars):
    kubeconfig = fake.write_kubeconfig(str(tmp_path / "kubeconfig"), context="lab")
    extra_vars = dict({"conformance_report_dir": str(tmp_path / "report"), "conformance_kubeconfig": kubeconfig,
                       "conformance_requirements": [REQUIREMENT], "secure_accelerator_access_timeout": 6}, **extra_vars)
    rc, out, elapsed = playbook.certify(tmp_path, extra_vars)
    results_file = tmp_path / "report" / "results.json"
    results = json.loads(results_file.read_text()) if results_file.exists() else None
    return rc, out, results


@pytest.fixture()
def fake():
    with FakeKubeAPI() as server:
        yield server


def test_no_gpu_operator_no_gpu_node_errors_and_leaves_nothing(fake, tmp_path):
    fake.remove_group_version("nvidia.com/v1")
    rc, out, results = certify(fake, tmp_path, {})
    assert rc != 0, out
    assert "MUST requirement(s) of checklist" in out and REQUIREMENT in out
    result = requirement_result(results, REQUIREMENT)
    assert result["status"] == "error"
    found = checks(result)
    assert found["accelerator_target"]["cause"] == "no_test_target"
    assert "there is no accelerator node to test on" in found["accelerator_target"]["message"]
    assert found["toolkit_config"]["status"] == "skipped"
    assert leftovers(fake) == []
    assert fake.requests_to("POST", "/pods") == []


def test_isolated_gpu_cluster_certifies_with_the_toolkit_config(fake, tmp_path):
    recorded_node(fake, "node-gpu-node-1.final.json", gpus=2)
    cluster = GpuCluster(fake, tmp_path / "sandbox")
    config = tmp_path / "config.toml"
    config.write_text("accept-nvidia-visible-devices-as-volume-mounts = true\n"
                      "accept-nvidia-visible-devices-envvar-when-unprivileged = false\n")
    rc, out, results = certify(fake, tmp_path, {
        "secure_accelerator_access_accelerator_profile_overrides": {"device_glob": cluster.device_glob},
        "secure_accelerator_access_gpu_hosts": ["localhost"],
        "secure_accelerator_access_toolkit_config_path": str(config),
        "secure_accelerator_access_become": False,
        "secure_accelerator_access_isolation": "volume-mounts",
        "conformance_fail_on_unmet": False,
    })
    result = requirement_result(results, REQUIREMENT)
    found = checks(result)
    # the operator is not installed in the fake: its configuration check is skipped, the rest passes
    assert found["gpu_operator_config"]["status"] == "skipped"
    assert result["status"] == "passed", [(c["name"], c["status"], c["message"]) for c in result["checks"]]
    assert found["toolkit_config"]["status"] == "passed"
    assert "localhost: accept-nvidia-visible-devices-as-volume-mounts=true" in found["toolkit_config"]["message"]
    assert os.path.exists(str(tmp_path / "report" / "evidence" / REQUIREMENT))
    assert leftovers(fake) == []


def test_role_exposes_every_module_option():
    from ansible_collections.ai_conformance.rke2.plugins.modules import secure_accelerator_access

    root = playbook.REPO_ROOT
    documented = yaml.safe_load(secure_accelerator_access.DOCUMENTATION)["options"]
    with open(os.path.join(root, "roles", REQUIREMENT, "tasks", "main.yml")) as handle:
        task = [t for t in yaml.safe_load(handle) if "ai_conformance.rke2.secure_accelerator_access" in t][0]
    options = task["ai_conformance.rke2.secure_accelerator_access"]
    with open(os.path.join(root, "roles", REQUIREMENT, "defaults", "main.yml")) as handle:
        defaults = yaml.safe_load(handle)
    with open(os.path.join(root, "roles", REQUIREMENT, "meta", "argument_specs.yml")) as handle:
        specs = yaml.safe_load(handle)["argument_specs"]["main"]["options"]
    assert set(documented) | {"timeout", "run_id"} == set(options)
    assert set(specs) == set(defaults)
    for name in set(documented) - {"toolkit_configs", "isolation", "node"}:
        assert defaults["%s_%s" % (REQUIREMENT, name)] == documented[name]["default"], name
    for name, spec in specs.items():
        assert spec.get("default") == defaults[name], name


def test_missing_toolkit_config_on_a_gpu_host_fails_the_chosen_profile(fake, tmp_path):
    recorded_node(fake, "node-gpu-node-1.final.json", gpus=1)
    cluster = GpuCluster(fake, tmp_path / "sandbox")
    missing = str(tmp_path / "no-such" / "config.toml")
    rc, out, results = certify(fake, tmp_path, {
        "secure_accelerator_access_accelerator_profile_overrides": {"device_glob": cluster.device_glob},
        "secure_accelerator_access_gpu_hosts": ["localhost"],
        "secure_accelerator_access_toolkit_config_path": missing,
        "secure_accelerator_access_become": False,
        "secure_accelerator_access_isolation": "volume-mounts",
    })
    assert rc != 0, out
    result = requirement_result(results, REQUIREMENT)
    check = checks(result)["toolkit_config"]
    assert result["status"] == "failed" and check["status"] == "failed"
    assert check["message"] == "toolkit config.toml does not set the volume-mounts keys: localhost:%s not found" % missing
    assert leftovers(fake) == []
