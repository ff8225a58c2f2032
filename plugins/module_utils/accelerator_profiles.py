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
        # in-pod listing: test image key (testpods.IMAGES) and the parser of its output
        "probe_image": "cuda",
        "probe_parser": "nvidia_smi",
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
