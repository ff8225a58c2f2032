# -*- coding: utf-8 -*-
# Copyright: ai_conformance.rke2 contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Accelerator profiles: what the accelerator verifiers need to know about a vendor, as data.

``secure_accelerator_access`` and ``accelerator_metrics`` read everything
vendor-specific from a profile: adding a vendor is a new entry here (or a
dict passed as the modules' ``accelerator_profile`` option) plus, if its
in-pod listing prints something new, a parser registered by name in the
probe module — never new verifier code.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import copy

PROFILES = {
    "nvidia": {
        "vendor": "NVIDIA",
        # extended resource of the device plugin, and its DRA DeviceClass
        "resource": "nvidia.com/gpu",
        "dra_device_class": "gpu.nvidia.com",
        # node label the GPU Operator (NFD/GFD) sets on GPU nodes
        "node_label": "nvidia.com/gpu.present",
        # one accelerator = one device node; control nodes (nvidiactl, nvidia-uvm) do not match
        "device_glob": "/dev/nvidia[0-9]*",
        # the variable a container could set to reach devices it did not request
        "bypass_env": {"NVIDIA_VISIBLE_DEVICES": "all"},
        # in-pod listing: test image key (testpods.IMAGES), the command that lists the
        # accelerators a container sees, and the parser of its output (accelerators.PARSERS)
        "probe_image": "cuda",
        "list_command": "nvidia-smi -L",
        "probe_parser": "nvidia_smi",
        # environment of every probe container (the toolkit injects nvidia-smi for "utility")
        "probe_env": {"NVIDIA_DRIVER_CAPABILITIES": "utility"},
        # probe containers run the listing tool: more memory than the builder's default
        "probe_resources": {"requests": {"memory": "64Mi"}, "limits": {"memory": "256Mi"}},
        # RuntimeClass of the vendor's runtime; probe pods use it when it exists (runtime_class=auto)
        "runtime_class": "nvidia",
        # the scheduler's words for "no accelerator left" (device plugin: {resource} is filled in, DRA)
        "insufficient_message": "Insufficient {resource}",
        "dra_insufficient_message": "cannot allocate all claims",
        # GPU Operator: where its configuration lives, and what each isolation profile sets
        "operator": {
            "namespace": "gpu-operator",
            "cluster_policy": {"api_version": "nvidia.com/v1", "kind": "ClusterPolicy"},
            "device_plugin_daemonset": "nvidia-device-plugin-daemonset",
            "toolkit_daemonset": "nvidia-container-toolkit-daemonset",
            # the toolkit's runtime config on the hosts (reference procedure)
            "toolkit_config_path": "/usr/local/nvidia/toolkit/.config/nvidia-container-runtime/config.toml",
        },
        "isolation_profiles": {
            "volume-mounts": {
                "cluster_policy": {"cdi.enabled": False},
                "toolkit_env": {
                    "ACCEPT_NVIDIA_VISIBLE_DEVICES_ENVVAR_WHEN_UNPRIVILEGED": "false",
                    "ACCEPT_NVIDIA_VISIBLE_DEVICES_AS_VOLUME_MOUNTS": "true",
                },
                "device_plugin_env": {"DEVICE_LIST_STRATEGY": "volume-mounts"},
                "toolkit_config": {
                    "accept-nvidia-visible-devices-envvar-when-unprivileged": False,
                    "accept-nvidia-visible-devices-as-volume-mounts": True,
                },
            },
            "cdi": {
                "cluster_policy": {"cdi.enabled": True},
                "toolkit_env": {},
                "device_plugin_env": {},
                "toolkit_config": {},
            },
        },
        # dcgm-exporter as the GPU Operator deploys it
        "metrics": {
            "namespace": "gpu-operator",
            "service": "nvidia-dcgm-exporter",
            "port": "gpu-metrics",
            "path": "/metrics",
            "utilization": ["DCGM_FI_DEV_GPU_UTIL"],
            "memory": ["DCGM_FI_DEV_FB_USED", "DCGM_FI_DEV_FB_FREE"],
            "identity_labels": ["gpu", "UUID", "Hostname"],
            # which identity label is the device index, the UUID, the node; MIG instance; model (table only)
            "index_label": "gpu",
            "uuid_label": "UUID",
            "host_label": "Hostname",
            "instance_label": "GPU_I_ID",
            "model_label": "modelName",
            # GPU Feature Discovery's time-slicing label: capacity = physical GPUs x replicas
            "replicas_label": "nvidia.com/gpu.replicas",
            "advisory": {
                "temperature": ["DCGM_FI_DEV_GPU_TEMP"],
                "power": ["DCGM_FI_DEV_POWER_USAGE"],
                "interconnect": ["DCGM_FI_PROF_NVLINK_TX_BYTES", "DCGM_FI_DEV_NVLINK_BANDWIDTH_TOTAL"],
            },
        },
    },
}


def _merge(base, extra):
    merged = copy.deepcopy(base)
    for key, value in (extra or {}).items():
        if isinstance(value, dict) and isinstance(merged.get(key), dict):
            merged[key] = _merge(merged[key], value)
        else:
            merged[key] = copy.deepcopy(value)
    return merged


def resolve(profile, overrides=None):
    """The profile named ``profile`` (or a full profile dict) with ``overrides`` merged in."""
    if isinstance(profile, dict):
        base = profile
    elif profile in PROFILES:
        base = PROFILES[profile]
    else:
        raise ValueError("unknown accelerator profile %r; known: %s (or pass a profile dict)" % (profile, ", ".join(sorted(PROFILES))))
    return _merge(base, overrides)
