"""Pure evaluation of secure_accelerator_access: probe output on the real H100 output, isolation verdicts,
free accelerators on the recorded nodes and pods, the scheduler's recorded answers, GPU Operator configuration."""

import subprocess

import pytest

from ansible_collections.ai_conformance.rke2.plugins.module_utils import accelerator_profiles, accelerators as acc
from tests.support.gpu_cluster import unschedulable_message
from tests.support.shared import fixture_response, shared_path

NVIDIA = accelerator_profiles.resolve("nvidia")
H100_UUID = "GPU-1d4aa5ce-c219-9f97-a29b-d4298760dab3"


def h100_text():
    with open(shared_path("gpu", "h100-node-probe.txt")) as handle:
        return handle.read()


def section(text, command):
    """The output of one ``+ command`` block of the recorded session."""
    out, inside = [], False
    for line in text.splitlines():
        if line.startswith("+ "):
            inside = line[2:].startswith(command)
            continue
        if inside:
            out.append(line)
    return "\n".join(out)


def probe_log(devices, listing, exit_code=0, end=True):
    lines = ["AIC-PROBE devices-begin"] + devices + ["AIC-PROBE devices-end", "AIC-PROBE list-begin"]
    lines += listing.splitlines() + ["AIC-PROBE list-exit %d" % exit_code]
    if end:
        lines.append("AIC-PROBE end")
    return "\n".join(lines) + "\n"


# --------------------------------------------------------------------------- parsers on the real output


def test_nvidia_smi_list_of_the_real_h100():
    gpus = acc.parse_nvidia_smi_list(section(h100_text(), "nvidia-smi -L"))
    assert gpus == [{"index": 0, "name": "NVIDIA H100 80GB HBM3", "uuid": H100_UUID, "mig": []}]


def test_whole_real_session_lists_one_gpu_only():
    """Other nvidia-smi output (table, CSV) in the same text is not mistaken for a listing line."""
    assert [g["uuid"] for g in acc.parse_nvidia_smi_list(h100_text())] == [H100_UUID]


def test_device_nodes_of_the_real_listings():
    text = h100_text()
    assert acc.parse_device_nodes(section(text, "ls /dev/nvidia0"), NVIDIA["device_glob"]) == ["/dev/nvidia0"]
    # `ls -la /dev/nvidia*` lines carry control nodes and a directory: none is a GPU node (not one path per line)
    assert acc.parse_device_nodes(section(text, "ls -la"), NVIDIA["device_glob"]) == []
    listing = "/dev/nvidia0\n/dev/nvidia-caps\n/dev/nvidiactl\n/dev/nvidia-uvm\n/dev/nvidia-uvm-tools\n/dev/nvidia7\n"
    assert acc.parse_device_nodes(listing, NVIDIA["device_glob"]) == ["/dev/nvidia0", "/dev/nvidia7"]


def test_multi_gpu_and_mig_listing_in_the_real_format():
    text = ("GPU 0: NVIDIA H100 80GB HBM3 (UUID: GPU-1d4aa5ce-c219-9f97-a29b-d4298760dab3)\n"
            "GPU 1: NVIDIA H100 80GB HBM3 (UUID: GPU-77c2b0e4-5a1d-4c3e-9f21-0b8e6d2a4c10)\n"
            "  MIG 1g.10gb     Device  0: (UUID: MIG-5c1a2b3d-0e4f-5a6b-8c7d-9e0f1a2b3c4d)\n")
    gpus = acc.parse_nvidia_smi_list(text)
    assert [g["index"] for g in gpus] == [0, 1]
    assert gpus[1]["mig"] == [{"profile": "1g.10gb", "index": 0, "uuid": "MIG-5c1a2b3d-0e4f-5a6b-8c7d-9e0f1a2b3c4d"}]


def test_probe_log_with_the_real_listing():
    probe = acc.parse_probe(probe_log(["/dev/nvidia0"], section(h100_text(), "nvidia-smi -L")), NVIDIA)
    assert probe["complete"] and probe["devices"] == ["/dev/nvidia0"] and probe["uuids"] == [H100_UUID]
    assert probe["list_exit"] == 0


def test_probe_log_without_gpu_and_tool():
    probe = acc.parse_probe(probe_log([], "sh: 5: nvidia-smi: not found", 127), NVIDIA)
    assert probe == {"complete": True, "devices": [], "accelerators": [], "uuids": [], "list_exit": 127,
                     "list_output": "sh: 5: nvidia-smi: not found"}


def test_truncated_probe_log_is_incomplete():
    assert acc.parse_probe(probe_log(["/dev/nvidia0"], "", end=False), NVIDIA)["complete"] is False
    assert acc.parse_probe("", NVIDIA)["complete"] is False


def test_probe_script_runs_and_prints_its_sections(tmp_path):
    """The script itself, with the device glob in a sandbox and no nvidia-smi on PATH."""
    (tmp_path / "nvidia3").write_text("")
    (tmp_path / "nvidiactl").write_text("")
    profile = accelerator_profiles.resolve("nvidia", {"device_glob": str(tmp_path / "nvidia[0-9]*")})
    out = subprocess.run(["sh", "-c", acc.probe_script(profile)], env={"PATH": "/usr/bin:/bin"},
                         capture_output=True, text=True, timeout=20, check=False)
    assert out.returncode == 0
    probe = acc.parse_probe(out.stdout, profile)
    assert probe["complete"] and probe["devices"] == [str(tmp_path / "nvidia3")]
    assert probe["list_exit"] == 127 and probe["uuids"] == []


def test_probe_script_refuses_a_glob_with_shell_syntax():
    with pytest.raises(ValueError):
        acc.probe_script(accelerator_profiles.resolve("nvidia", {"device_glob": "/dev/nvidia*; rm -rf /"}))


# --------------------------------------------------------------------------- verdicts


def parsed(devices, uuids, exit_code=0):
    listing = "\n".join("GPU %d: NVIDIA H100 80GB HBM3 (UUID: %s)" % (i, u) for i, u in enumerate(uuids))
    return acc.parse_probe(probe_log(devices, listing, exit_code), NVIDIA)


def test_distinct_single_gpus_pass():
    cause, message, observed = acc.judge_allocated([("a", parsed(["/dev/nvidia0"], ["GPU-a"])),
                                                    ("b", parsed(["/dev/nvidia1"], ["GPU-b"]))], NVIDIA)
    assert cause is None and message == "2 pod(s) each saw exactly one accelerator, all different: a=GPU-a, b=GPU-b"
    assert [o["uuids"] for o in observed] == [["GPU-a"], ["GPU-b"]]


def test_two_pods_sharing_a_uuid_fail():
    cause, message, dummy = acc.judge_allocated([("a", parsed(["/dev/nvidia0"], ["GPU-a"])),
                                                 ("b", parsed(["/dev/nvidia0"], ["GPU-a"]))], NVIDIA)
    assert cause == "capability" and "same accelerator: GPU-a seen by a, b" in message


def test_pod_seeing_two_gpus_fails():
    cause, message, dummy = acc.judge_allocated([("a", parsed(["/dev/nvidia0", "/dev/nvidia1"], ["GPU-a", "GPU-b"]))], NVIDIA)
    assert cause == "capability" and "did not see exactly one: a: 2 device node(s)" in message


def test_pod_seeing_no_gpu_although_requested_fails():
    cause, _message, dummy = acc.judge_allocated([("a", parsed([], [], 6))], NVIDIA)
    assert cause == "capability"


def test_missing_tool_in_an_allocated_pod_is_tooling():
    cause, message, dummy = acc.judge_allocated([("a", parsed(["/dev/nvidia0"], [], 127))], NVIDIA)
    assert cause == "test_tooling" and "exit 127" in message


def test_exit_code_alone_decides_nothing():
    """A non-zero exit of the listing tool with one GPU printed is still one GPU."""
    cause, _message, dummy = acc.judge_allocated([("a", parsed(["/dev/nvidia0"], ["GPU-a"], 9))], NVIDIA)
    assert cause is None


def test_bypass_pod_seeing_a_gpu_fails_and_seeing_none_passes():
    cause, message, dummy = acc.judge_isolated("pod bypass", parsed(["/dev/nvidia0"], ["GPU-a"]), "sets NVIDIA_VISIBLE_DEVICES=all")
    assert cause == "capability" and "sees accelerators it did not request" in message
    cause, message, dummy = acc.judge_isolated("pod bypass", parsed([], [], 127), "sets NVIDIA_VISIBLE_DEVICES=all")
    assert cause is None and message == "pod bypass (sets NVIDIA_VISIBLE_DEVICES=all) sees no accelerator"


def test_second_container_seeing_only_a_device_node_fails():
    cause, _message, dummy = acc.judge_isolated("container second", parsed(["/dev/nvidia0"], [], 127), "peer")
    assert cause == "capability"


# --------------------------------------------------------------------------- scheduling, recorded answers


def pod_fixture(name):
    return fixture_response("k8s-fixtures", "objects", name)


def test_recorded_insufficient_gpu_is_the_expected_pending():
    cause, message, done = acc.judge_exhaustion(pod_fixture("pod-gpu-pod-3.unschedulable.json"),
                                                acc.insufficient_message(NVIDIA, "device_plugin"), "gpu-node-1")
    assert done and cause is None and "1 Insufficient nvidia.com/gpu" in message


def test_recorded_untolerated_taint_is_not_insufficiency():
    cause, _message, done = acc.judge_exhaustion(pod_fixture("pod-gpu-no-toleration.unschedulable.json"),
                                                 acc.insufficient_message(NVIDIA, "device_plugin"), "gpu-node-2")
    assert done and cause == "untolerated_taint"


def test_recorded_dra_answer_for_the_dra_mode():
    cause, _message, done = acc.judge_exhaustion(pod_fixture("pod-dra-pod-3-gpus.unschedulable.json"),
                                                 acc.insufficient_message(NVIDIA, "dra"), "gpu-node-1")
    assert done and cause is None


def test_insufficient_message_follows_the_resource():
    assert acc.insufficient_message(NVIDIA, "device_plugin") == "Insufficient nvidia.com/gpu"
    mig = accelerator_profiles.resolve("nvidia", {"resource": "nvidia.com/mig-1g.10gb"})
    assert acc.insufficient_message(mig, "device_plugin") == "Insufficient nvidia.com/mig-1g.10gb"
    assert acc.insufficient_message(mig, "dra") == "cannot allocate all claims"


def test_bound_extra_pod_fails_and_undecided_waits():
    cause, message, done = acc.judge_exhaustion(pod_fixture("pod-gpu-pod-2.scheduled.json"), acc.insufficient_message(NVIDIA, "device_plugin"), "gpu-node-1")
    assert done and cause == "capability" and "was scheduled to gpu-node-1" in message
    assert acc.judge_exhaustion(pod_fixture("pod-gpu-pod-3.create.json"), acc.insufficient_message(NVIDIA, "device_plugin"), "gpu-node-1")[2] is False


def test_fake_scheduler_reproduces_the_recorded_messages():
    """tests/support/gpu_cluster.py answers with the recorded text for the recorded situations."""
    recorded = pod_fixture("pod-gpu-pod-3.unschedulable.json")["status"]["conditions"][0]["message"]
    assert unschedulable_message({"Insufficient nvidia.com/gpu": 1}, 1) == recorded
    recorded = pod_fixture("pod-gpu-no-toleration.unschedulable.json")["status"]["conditions"][0]["message"]
    assert unschedulable_message({"node(s) didn't match Pod's node affinity/selector": 1,
                                  "node(s) had untolerated taint(s)": 1}, 2) == recorded
    recorded = pod_fixture("pod-dra-pod-3-gpus.unschedulable.json")["status"]["conditions"][0]["message"]
    assert unschedulable_message({"cannot allocate all claims": 1}, 1, claims=True) == recorded


# --------------------------------------------------------------------------- nodes and free accelerators


def test_free_gpus_from_the_recorded_node_and_pods():
    node = pod_fixture("node-gpu-node-1.final.json")
    pods = fixture_response("k8s-fixtures", "objects", "pods-on-gpu-node-1.list.json")["items"]
    free, used, users = acc.free_count(node, pods, "nvidia.com/gpu")
    assert (free, used) == (0, 2) and users == ["ai-fixtures/gpu-pod-1 (1)", "ai-fixtures/gpu-pod-2 (1)"]
    finished = [dict(p, status=dict(p["status"], phase="Succeeded")) for p in pods]
    assert acc.free_count(node, finished, "nvidia.com/gpu")[0] == 2


def test_init_container_requests_count_as_the_max():
    pod = {"metadata": {"name": "p"}, "spec": {
        "initContainers": [{"resources": {"limits": {"nvidia.com/gpu": "2"}}}],
        "containers": [{"resources": {"limits": {"nvidia.com/gpu": "1"}}}]}}
    assert acc.pod_request(pod, "nvidia.com/gpu") == 2


def test_accelerator_nodes_and_labelled_nodes_without_resource():
    gpu = pod_fixture("node-gpu-node-1.final.json")
    bare = dict(gpu, metadata=dict(gpu["metadata"], name="gpu-node-9"),
                status=dict(gpu["status"], allocatable={"cpu": "16"}))
    advertising, labelled = acc.accelerator_nodes([gpu, bare], NVIDIA)
    assert [n["metadata"]["name"] for n in advertising] == ["gpu-node-1"] and labelled == ["gpu-node-9"]


def test_choose_target_prefers_the_fewest_free():
    candidates = [{"node": "a", "free": 4, "detail": ""}, {"node": "b", "free": 1, "detail": ""}, {"node": "c", "free": 0, "detail": "x"}]
    assert acc.choose_target(candidates)[0]["node"] == "b"
    assert acc.choose_target(candidates, "c")[0] is None
    assert acc.choose_target(candidates, "zz")[1].startswith("node zz has no accelerators")
    assert acc.choose_target([candidates[2]])[0] is None


def test_dra_free_devices_from_the_recorded_slice_and_claim():
    device_class = pod_fixture("deviceclass-gpu.example.com.json")
    slices = [pod_fixture("resourceslice-gpu-node-1-gpu.example.com.json")]
    claims = [pod_fixture("resourceclaim-dra-pod-gpu.allocated.json")]
    assert acc.dra_free_devices("gpu-node-1", device_class, slices, claims) == (1, 2, ["gpu.example.com/gpu-node-1/gpu-0"])
    assert acc.dra_free_devices("gpu-node-1", device_class, slices, []) == (2, 2, [])
    assert acc.dra_nodes(device_class, slices) == ["gpu-node-1"]


# --------------------------------------------------------------------------- GPU Operator configuration


def daemonset(env):
    return {"spec": {"template": {"spec": {"containers": [{"name": "c", "env": [{"name": k, "value": v} for k, v in env.items()]
                                                           + [{"name": "NODE_NAME", "valueFrom": {"fieldRef": {"fieldPath": "spec.nodeName"}}}]}]}}}}


def test_volume_mounts_profile_detected_and_mismatches_named():
    toolkit = acc.container_env(daemonset({"ACCEPT_NVIDIA_VISIBLE_DEVICES_ENVVAR_WHEN_UNPRIVILEGED": "false",
                                           "ACCEPT_NVIDIA_VISIBLE_DEVICES_AS_VOLUME_MOUNTS": "true"}))
    plugin = acc.container_env(daemonset({"DEVICE_LIST_STRATEGY": "volume-mounts"}))
    assert "NODE_NAME" not in toolkit
    policy = {"spec": {"cdi": {"enabled": False}}}
    assert acc.detect_isolation(NVIDIA, policy, toolkit, plugin) == "volume-mounts"
    mismatches, table = acc.evaluate_isolation(NVIDIA, "volume-mounts", policy, toolkit, {})
    assert mismatches == ["device plugin env DEVICE_LIST_STRATEGY=None (expected volume-mounts)"]
    assert {"where": "ClusterPolicy", "setting": "spec.cdi.enabled", "expected": False, "found": False} in table


def test_cdi_profile_detected():
    assert acc.detect_isolation(NVIDIA, {"spec": {"cdi": {"enabled": True}}}, {}, {}) == "cdi"
    assert acc.detect_isolation(NVIDIA, {"spec": {}}, {}, {}) is None


def test_toolkit_config_keys():
    content = ("accept-nvidia-visible-devices-as-volume-mounts = true\n"
               "accept-nvidia-visible-devices-envvar-when-unprivileged = false\n"
               "[nvidia-container-runtime]\nlog-level = \"info\"\n")
    files = [{"host": "gpu1", "path": "/p", "content": content},
             {"host": "gpu2", "path": "/p", "content": None, "error": "File not found: /p"},
             {"host": "gpu3", "path": "/p", "content": "accept-nvidia-visible-devices-envvar-when-unprivileged = true\n"},
             {"host": "gpu4", "path": "/p", "content": None, "error": "Missing sudo password"}]
    mismatches, rows, unreadable = acc.evaluate_toolkit_configs(files, NVIDIA, "volume-mounts")
    assert rows[0] == {"host": "gpu1", "path": "/p", "accept-nvidia-visible-devices-as-volume-mounts": True,
                       "accept-nvidia-visible-devices-envvar-when-unprivileged": False}
    assert mismatches == ["gpu2:/p not found",
                          "gpu3: accept-nvidia-visible-devices-as-volume-mounts = None (expected true)",
                          "gpu3: accept-nvidia-visible-devices-envvar-when-unprivileged = True (expected false)"]
    assert unreadable == ["gpu4 (Missing sudo password)"]
    assert acc.evaluate_toolkit_configs(files, NVIDIA, None)[0] == []
    bad = acc.evaluate_toolkit_configs([{"host": "h", "path": "/p", "content": "x = [unclosed"}], NVIDIA, None)
    assert bad[0][0].startswith("h:/p not valid TOML")


def test_toolkit_config_line_fallback_without_tomllib(monkeypatch):
    monkeypatch.setattr(acc, "tomllib", None)
    content = ("# written by the toolkit\naccept-nvidia-visible-devices-as-volume-mounts = true\n"
               "accept-nvidia-visible-devices-envvar-when-unprivileged = false  # comment\n"
               "[nvidia-container-cli]\naccept-nvidia-visible-devices-as-volume-mounts = false\n")
    keys = ["accept-nvidia-visible-devices-as-volume-mounts", "accept-nvidia-visible-devices-envvar-when-unprivileged"]
    assert acc.parse_toolkit_config(content, keys) == {keys[0]: True, keys[1]: False}
