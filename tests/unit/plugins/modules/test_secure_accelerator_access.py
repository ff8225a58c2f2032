"""The secure_accelerator_access module over HTTP against the fake API server.

``tests/support/gpu_cluster.py`` plays the scheduler (recorded message format), the device plugin, the
toolkit and the kubelet, which runs the module's real probe script in a sandbox whose device nodes and
``nvidia-smi`` reflect the allocation (the probe's device glob points into the sandbox).
"""

import copy

import pytest

from ansible_collections.ai_conformance.rke2.plugins.modules import secure_accelerator_access
from tests.support.fakeapi import FakeKubeAPI
from tests.support.gpu_cluster import UUIDS, GpuCluster, dra_driver, leftovers, recorded_node
from tests.support.modrun import checks, run_module

EXERCISES = ("exclusive_allocation", "exhaustion_pending", "env_bypass_blocked", "container_isolation")


@pytest.fixture()
def fake():
    with FakeKubeAPI() as server:
        yield server


def run(fake, tmp_path, capsys, cluster=None, check_mode=False, **options):
    args = {"kubeconfig": fake.write_kubeconfig(str(tmp_path / "kubeconfig")), "timeout": 6, "run_id": "t1"}
    if cluster is not None:
        args["accelerator_profile_overrides"] = {"device_glob": cluster.device_glob}
    args.update(options)
    before = leftovers(fake)
    out = run_module(secure_accelerator_access, args, capsys, check_mode=check_mode)
    assert out["changed"] is False
    assert leftovers(fake) == before
    return out["result"]


def evidence(result, name):
    for item in result["evidence"]:
        if item["name"] == name:
            return item["content"]
    raise AssertionError("no evidence %s in %s" % (name, [e["name"] for e in result["evidence"]]))


def gpu_node(fake, gpus=2):
    return recorded_node(fake, "node-gpu-node-1.final.json", gpus=gpus)


def test_isolated_cluster_passes_with_distinct_gpus(fake, tmp_path, capsys):
    gpu_node(fake)
    cluster = GpuCluster(fake, tmp_path / "sandbox")
    result = run(fake, tmp_path, capsys, cluster)
    found = checks(result)
    assert result["status"] == "passed", [(c["name"], c["status"], c["message"]) for c in result["checks"]]
    for name in EXERCISES:
        assert found[name]["status"] == "passed" and found[name]["kind"] == "exercise", found[name]
    # the two-container pod had GPU 0 and completed; the held pods got 0 and 1
    assert found["exclusive_allocation"]["message"] == (
        "2 pod(s) each saw exactly one accelerator, all different: accelerator-0=%s, accelerator-1=%s" % (UUIDS[0], UUIDS[1]))
    uuids = [o["uuids"][0] for o in found["exclusive_allocation"]["observed"]]
    assert sorted(uuids) == sorted(UUIDS[:2])
    assert "Insufficient nvidia.com/gpu" in found["exhaustion_pending"]["message"]
    assert "0/1 nodes are available: 1 Insufficient nvidia.com/gpu." in found["exhaustion_pending"]["message"]
    assert found["env_bypass_blocked"]["observed"]["devices"] == []
    assert found["container_isolation"]["observed"]["uuids"] == []
    assert found["accelerator_target"]["status"] == "passed"
    plan = evidence(result, "test-plan")
    assert plan["node"] == "gpu-node-1" and plan["accelerator_pods"] == 2 and plan["runtime_class"] == "nvidia"
    assert plan["image"] == "nvcr.io/nvidia/cuda:13.0.2-base-ubuntu24.04"
    # the missing tool in pods given no GPU is what the probe printed, not a verdict
    assert "nvidia-smi: not found" in evidence(result, "isolation-probes")
    # every probe pod: pinned by nodeSelector (the scheduler decides), GPU taint tolerated, restricted
    assert len(fake.requests_to("POST", r"/api/v1/namespaces/aic-secure-accelerator-access-\w+/pods$")) == 5


def test_pods_are_pinned_and_hardened(fake, tmp_path, capsys):
    gpu_node(fake)
    seen = []
    fake.on_create("v1", "pods", lambda obj, fake, dry_run: seen.append(copy.deepcopy(obj)))
    cluster = GpuCluster(fake, tmp_path / "sandbox")
    run(fake, tmp_path, capsys, cluster)
    from ansible_collections.ai_conformance.rke2.plugins.module_utils.testpods import hardening_problems

    assert [p["metadata"]["name"] for p in seen] == [
        "bypass", "two-containers", "accelerator-0", "accelerator-1", "one-too-many"]
    for pod in seen:
        spec = pod["spec"]
        assert spec["nodeSelector"] == {"kubernetes.io/hostname": "gpu-node-1"} and "nodeName" not in spec
        assert {"key": "nvidia.com/gpu", "operator": "Exists", "effect": "NoSchedule"} in spec["tolerations"]
        assert spec["runtimeClassName"] == "nvidia"
        assert hardening_problems(spec) == []
    bypass = seen[0]["spec"]["containers"][0]
    assert {"name": "NVIDIA_VISIBLE_DEVICES", "value": "all"} in bypass["env"]
    assert "nvidia.com/gpu" not in bypass["resources"]["limits"]
    first, second = seen[1]["spec"]["containers"]
    assert first["resources"]["limits"]["nvidia.com/gpu"] == "1" and "nvidia.com/gpu" not in second["resources"]["limits"]


def test_bypass_variable_exposing_gpus_fails(fake, tmp_path, capsys):
    gpu_node(fake)
    cluster = GpuCluster(fake, tmp_path / "sandbox", bypass_leak=True)
    result = run(fake, tmp_path, capsys, cluster)
    found = checks(result)
    assert result["status"] == "failed"
    assert found["env_bypass_blocked"]["status"] == "failed" and found["env_bypass_blocked"]["cause"] == "capability"
    assert "sees accelerators it did not request: 2 device node(s)" in found["env_bypass_blocked"]["message"]
    assert found["container_isolation"]["status"] == "failed"
    assert found["exclusive_allocation"]["status"] == "passed"


def test_shared_gpu_fails(fake, tmp_path, capsys):
    gpu_node(fake)
    cluster = GpuCluster(fake, tmp_path / "sandbox", share_uuid=True)
    result = run(fake, tmp_path, capsys, cluster)
    found = checks(result)
    assert result["status"] == "failed"
    assert found["exclusive_allocation"]["status"] == "failed"
    assert "were given the same accelerator: %s seen by accelerator-0, accelerator-1" % UUIDS[0] in found["exclusive_allocation"]["message"]


def test_missing_listing_tool_is_an_error(fake, tmp_path, capsys):
    gpu_node(fake)
    cluster = GpuCluster(fake, tmp_path / "sandbox", tool_missing=True)
    result = run(fake, tmp_path, capsys, cluster)
    found = checks(result)
    assert result["status"] == "error"
    assert found["exclusive_allocation"]["status"] == "error" and found["exclusive_allocation"]["cause"] == "test_tooling"
    assert "exit 127" in found["exclusive_allocation"]["message"]
    assert found["container_isolation"]["cause"] == "test_tooling"


def test_scheduler_not_accounting_gpus_fails(fake, tmp_path, capsys):
    gpu_node(fake)
    cluster = GpuCluster(fake, tmp_path / "sandbox", ignore_gpus=True)
    result = run(fake, tmp_path, capsys, cluster)
    found = checks(result)
    assert found["exhaustion_pending"]["status"] == "failed"
    assert "was scheduled to gpu-node-1 although every accelerator of the node was taken" in found["exhaustion_pending"]["message"]


def test_no_gpu_operator_and_no_gpu_node_is_an_error_and_leaves_nothing(fake, tmp_path, capsys):
    fake.remove_group_version("nvidia.com/v1")
    recorded_node(fake, "node-gpu-node-1.final.json", gpus=0, name="node-1")
    fake.patch_object("v1", "nodes", "node-1", {"metadata": {"labels": {"nvidia.com/gpu.present": None}}})
    result = run(fake, tmp_path, capsys)
    found = checks(result)
    assert result["status"] == "error"
    assert found["gpu_operator_config"]["status"] == "skipped"
    assert "the GPU Operator is not installed" in found["gpu_operator_config"]["message"]
    target = found["accelerator_target"]
    assert target["status"] == "error" and target["cause"] == "no_test_target"
    assert target["message"] == ("no node advertises allocatable nvidia.com/gpu and no node is labelled nvidia.com/gpu.present: "
                                 "there is no accelerator node to test on")
    assert all(found[name]["status"] == "skipped" for name in EXERCISES)
    assert fake.requests_to("POST") == []


def test_labelled_gpu_node_without_device_plugin_fails(fake, tmp_path, capsys):
    fake.remove_group_version("nvidia.com/v1")
    recorded_node(fake, "node-gpu-node-1.final.json", gpus=0)
    result = run(fake, tmp_path, capsys)
    target = checks(result)["accelerator_target"]
    assert result["status"] == "failed"
    assert target["cause"] == "not_installed"
    assert target["message"].startswith("node(s) gpu-node-1 are labelled nvidia.com/gpu.present but no node advertises allocatable nvidia.com/gpu")


def test_all_gpus_busy_is_no_capacity(fake, tmp_path, capsys):
    gpu_node(fake)
    fake.put_recorded("objects/pods-on-gpu-node-1.list.json")  # gpu-pod-1 and -2 hold both GPUs
    result = run(fake, tmp_path, capsys)
    target = checks(result)["accelerator_target"]
    assert result["status"] == "error" and target["cause"] == "no_capacity"
    assert "2 allocatable, 2 requested by ai-fixtures/gpu-pod-1 (1), ai-fixtures/gpu-pod-2 (1)" in target["message"]


def test_tainted_gpu_node_is_tolerated(fake, tmp_path, capsys):
    recorded_node(fake, "node-gpu-node-2.json")
    fake.patch_object("v1", "nodes", "gpu-node-2", {"spec": {"taints": [{"key": "nvidia.com/gpu", "value": "present", "effect": "NoSchedule"}]},
                                                    "metadata": {"labels": {"nvidia.com/gpu.present": "true"}}})
    cluster = GpuCluster(fake, tmp_path / "sandbox")
    result = run(fake, tmp_path, capsys, cluster)
    assert result["status"] == "passed", checks(result)


def test_untolerated_foreign_taint_is_an_error(fake, tmp_path, capsys):
    gpu_node(fake, gpus=1)
    fake.patch_object("v1", "nodes", "gpu-node-1", {"spec": {"taints": [{"key": "dedicated", "value": "ml", "effect": "NoSchedule"}]}})
    cluster = GpuCluster(fake, tmp_path / "sandbox")
    result = run(fake, tmp_path, capsys, cluster)
    found = checks(result)
    assert result["status"] == "error"
    assert found["env_bypass_blocked"]["cause"] == "untolerated_taint"
    assert "had untolerated taint(s)" in found["env_bypass_blocked"]["message"]


def test_check_mode_creates_nothing(fake, tmp_path, capsys):
    gpu_node(fake)
    cluster = GpuCluster(fake, tmp_path / "sandbox")
    result = run(fake, tmp_path, capsys, cluster, check_mode=True)
    found = checks(result)
    assert result["status"] == "skipped"
    assert all(found[n]["status"] == "skipped" and "check mode" in found[n]["message"] for n in EXERCISES)
    assert fake.requests_to("POST") == []


def operator_objects(fake, toolkit_env, plugin_env, cdi=False):
    fake.put_object({"apiVersion": "nvidia.com/v1", "kind": "ClusterPolicy", "metadata": {"name": "cluster-policy"},
                     "spec": {"cdi": {"enabled": cdi}}, "status": {"state": "ready", "namespace": "gpu-operator"}})
    fake.create_namespace("gpu-operator")
    for name, env in (("nvidia-container-toolkit-daemonset", toolkit_env), ("nvidia-device-plugin-daemonset", plugin_env)):
        fake.put_object({"apiVersion": "apps/v1", "kind": "DaemonSet", "metadata": {"name": name, "namespace": "gpu-operator"},
                         "spec": {"selector": {"matchLabels": {"app": name}}, "template": {
                             "metadata": {"labels": {"app": name}},
                             "spec": {"containers": [{"name": name.split("-daemonset", maxsplit=1)[0], "image": "nvcr.io/nvidia/x:1",
                                                      "env": [{"name": k, "value": v} for k, v in env.items()]}]}}}})


VOLUME_MOUNTS_TOOLKIT = {"ACCEPT_NVIDIA_VISIBLE_DEVICES_ENVVAR_WHEN_UNPRIVILEGED": "false",
                         "ACCEPT_NVIDIA_VISIBLE_DEVICES_AS_VOLUME_MOUNTS": "true",
                         "CONTAINERD_SOCKET": "/run/k3s/containerd/containerd.sock"}


def test_operator_config_matching_volume_mounts(fake, tmp_path, capsys):
    gpu_node(fake)
    operator_objects(fake, VOLUME_MOUNTS_TOOLKIT, {"DEVICE_LIST_STRATEGY": "volume-mounts"})
    cluster = GpuCluster(fake, tmp_path / "sandbox")
    config = ("accept-nvidia-visible-devices-as-volume-mounts = true\n"
              "accept-nvidia-visible-devices-envvar-when-unprivileged = false\n\n[nvidia-container-cli]\nldconfig = \"@/sbin/ldconfig\"\n")
    result = run(fake, tmp_path, capsys, cluster, isolation="volume-mounts",
                 toolkit_configs=[{"host": "gpu-node-1", "path": "/usr/local/nvidia/toolkit/.config/nvidia-container-runtime/config.toml",
                                   "content": config}])
    found = checks(result)
    assert result["status"] == "passed", [(c["name"], c["status"], c["message"]) for c in result["checks"]]
    assert found["gpu_operator_config"]["message"] == (
        "ClusterPolicy cluster-policy (state ready), namespace gpu-operator configures the volume-mounts isolation profile")
    assert found["toolkit_config"]["status"] == "passed"
    assert "accept-nvidia-visible-devices-envvar-when-unprivileged=false" in found["toolkit_config"]["message"]


def test_operator_config_not_matching_the_chosen_profile_fails(fake, tmp_path, capsys):
    gpu_node(fake)
    operator_objects(fake, {"CONTAINERD_SOCKET": "/run/k3s/containerd/containerd.sock"}, {}, cdi=True)
    cluster = GpuCluster(fake, tmp_path / "sandbox")
    result = run(fake, tmp_path, capsys, cluster, isolation="volume-mounts",
                 toolkit_configs=[{"host": "gpu-node-1", "path": "/x/config.toml",
                                   "content": "accept-nvidia-visible-devices-envvar-when-unprivileged = true\n"}])
    found = checks(result)
    assert result["status"] == "failed"
    config = found["gpu_operator_config"]
    assert config["status"] == "failed"
    assert "device plugin env DEVICE_LIST_STRATEGY=None (expected volume-mounts)" in config["message"]
    assert "ClusterPolicy spec.cdi.enabled=True (expected False)" in config["message"]
    assert found["toolkit_config"]["status"] == "failed"
    assert "gpu-node-1: accept-nvidia-visible-devices-envvar-when-unprivileged = True (expected false)" in found["toolkit_config"]["message"]
    # the active test still ran and passed: the configuration check alone fails the requirement
    assert found["exclusive_allocation"]["status"] == "passed"
    # auto reports the CDI profile without judging
    result = run(fake, tmp_path, capsys, cluster)
    assert checks(result)["gpu_operator_config"]["message"].endswith("configures the cdi isolation profile")


def test_probe_image_not_pullable_is_an_image_pull_error(fake, tmp_path, capsys):
    gpu_node(fake)
    cluster = GpuCluster(fake, tmp_path / "sandbox", waiting="ImagePullBackOff")
    result = run(fake, tmp_path, capsys, cluster, image_registry="mirror.example.com:5000")
    found = checks(result)
    assert result["status"] == "error"
    assert found["env_bypass_blocked"]["cause"] == "image_pull"
    assert "mirror.example.com:5000/nvidia/cuda:13.0.2-base-ubuntu24.04" in found["env_bypass_blocked"]["message"]
    assert found["exclusive_allocation"]["cause"] == "image_pull"


def test_probe_image_still_pulling_at_the_timeout(fake, tmp_path, capsys):
    gpu_node(fake)
    cluster = GpuCluster(fake, tmp_path / "sandbox", waiting="ContainerCreating")
    result = run(fake, tmp_path, capsys, cluster, timeout=2)
    found = checks(result)
    assert result["status"] == "error"
    assert found["env_bypass_blocked"]["cause"] == "image_pull_timeout"
    assert "is still creating its containers" in found["env_bypass_blocked"]["message"]


def test_dra_managed_gpus_pass_with_resource_claims(fake, tmp_path, capsys):
    gpu_node(fake, gpus=0)  # no extended resource: auto picks DRA
    dra_driver(fake)
    cluster = GpuCluster(fake, tmp_path / "sandbox")
    result = run(fake, tmp_path, capsys, cluster)
    found = checks(result)
    assert result["status"] == "passed", [(c["name"], c["status"], c["message"]) for c in result["checks"]]
    assert evidence(result, "accelerator-nodes")["mode"] == "dra"
    assert evidence(result, "accelerator-nodes")["device_class"] == "gpu.nvidia.com"
    assert sorted(o["uuids"][0] for o in found["exclusive_allocation"]["observed"]) == sorted(UUIDS[:2])
    assert "cannot allocate all claims" in found["exhaustion_pending"]["message"]
    templates = list(fake.requests_to("POST", "/resourceclaimtemplates$"))
    assert len(templates) == 1
    assert fake.objects("resource.k8s.io/v1", "resourceclaims") == []


def test_dra_mode_without_driver_is_an_error(fake, tmp_path, capsys):
    gpu_node(fake, gpus=0)
    fake.patch_object("v1", "nodes", "gpu-node-1", {"metadata": {"labels": {"nvidia.com/gpu.present": None}}})
    result = run(fake, tmp_path, capsys, mode="dra")
    target = checks(result)["accelerator_target"]
    assert result["status"] == "error" and target["cause"] == "no_test_target"
    assert target["message"].startswith("no driver of DeviceClass gpu.nvidia.com publishes devices")


def test_dra_mode_with_busy_devices_is_no_capacity(fake, tmp_path, capsys):
    gpu_node(fake, gpus=0)
    dra_driver(fake, devices=1)
    fake.create_namespace("busy")
    fake.put_object({"apiVersion": "resource.k8s.io/v1", "kind": "ResourceClaim", "metadata": {"name": "held", "namespace": "busy"},
                     "spec": {"devices": {"requests": [{"name": "gpu", "exactly": {"deviceClassName": "gpu.nvidia.com"}}]}},
                     "status": {"allocation": {"devices": {"results": [
                         {"request": "gpu", "driver": "gpu.nvidia.com", "pool": "gpu-node-1", "device": "gpu-0"}]}}}})
    result = run(fake, tmp_path, capsys, mode="dra")
    target = checks(result)["accelerator_target"]
    assert result["status"] == "error" and target["cause"] == "no_capacity"
    assert "1 device(s), allocated gpu.nvidia.com/gpu-node-1/gpu-0" in target["message"]


def test_toolkit_config_unreadable_everywhere_is_skipped(fake, tmp_path, capsys):
    gpu_node(fake)
    cluster = GpuCluster(fake, tmp_path / "sandbox")
    result = run(fake, tmp_path, capsys, cluster, isolation="volume-mounts",
                 toolkit_configs=[{"host": "gpu-1", "path": "/x/config.toml", "content": None,
                                   "error": "Failed to connect to the host via ssh: Connection refused"}])
    found = checks(result)
    assert found["toolkit_config"]["status"] == "skipped"
    assert "could not be read on any accelerator host: gpu-1 (Failed to connect" in found["toolkit_config"]["message"]
    assert result["status"] == "passed"
