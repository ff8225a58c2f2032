"""dcgm-exporter's /metrics text, in the exporter's real format, for tests.

The format follows dcgm-exporter's GPU template (``internal/pkg/rendermetrics/render_metrics.go``):
per counter ``# HELP``/``# TYPE`` (help texts of ``etc/default-counters.csv``), then one line per
GPU with the labels ``gpu``, ``UUID``, ``pci_bus_id``, ``device``, ``modelName``, ``Hostname``, the
pod labels ``container``/``namespace``/``pod`` when a pod uses the GPU, and the attribute
``DCGM_FI_DRIVER_VERSION``. Values from the real H100 in ``../shared/gpu`` where there are some.
"""

# (field, prometheus type, help) in the order of the exporter's default counters
COUNTERS = [
    ("DCGM_FI_DEV_SM_CLOCK", "gauge", "SM clock frequency (in MHz)."),
    ("DCGM_FI_DEV_MEM_CLOCK", "gauge", "Memory clock frequency (in MHz)."),
    ("DCGM_FI_DEV_MEMORY_TEMP", "gauge", "Memory temperature (in C)."),
    ("DCGM_FI_DEV_GPU_TEMP", "gauge", "GPU temperature (in C)."),
    ("DCGM_FI_DEV_POWER_USAGE", "gauge", "Power draw (in W)."),
    ("DCGM_FI_DEV_TOTAL_ENERGY_CONSUMPTION", "counter", "Total energy consumption since boot (in mJ)."),
    ("DCGM_FI_DEV_GPU_UTIL", "gauge", "GPU utilization (in %)."),
    ("DCGM_FI_DEV_MEM_COPY_UTIL", "gauge", "Memory utilization (in %)."),
    ("DCGM_FI_DEV_XID_ERRORS", "gauge", "Value of the last XID error encountered."),
    ("DCGM_FI_DEV_FB_FREE", "gauge", "Framebuffer memory free (in MiB)."),
    ("DCGM_FI_DEV_FB_USED", "gauge", "Framebuffer memory used (in MiB)."),
    ("DCGM_FI_DEV_NVLINK_BANDWIDTH_TOTAL", "counter", "Total number of NVLink bandwidth counters for all lanes"),
]

H100_UUID = "GPU-1d4aa5ce-c219-9f97-a29b-d4298760dab3"
DRIVER = "580.159.04"
MODEL = "NVIDIA H100 80GB HBM3"


def gpu(index, uuid=None, pod=None, values=None):
    """One GPU of a node: index, UUID, optional ``namespace/pod/container`` using it, metric values."""
    base = {"DCGM_FI_DEV_SM_CLOCK": 1980, "DCGM_FI_DEV_MEM_CLOCK": 2619, "DCGM_FI_DEV_MEMORY_TEMP": 40,
            "DCGM_FI_DEV_GPU_TEMP": 42, "DCGM_FI_DEV_POWER_USAGE": "127.180000",
            "DCGM_FI_DEV_TOTAL_ENERGY_CONSUMPTION": 1906213977, "DCGM_FI_DEV_GPU_UTIL": 0,
            "DCGM_FI_DEV_MEM_COPY_UTIL": 0, "DCGM_FI_DEV_XID_ERRORS": 0, "DCGM_FI_DEV_FB_FREE": 81004,
            "DCGM_FI_DEV_FB_USED": 0, "DCGM_FI_DEV_NVLINK_BANDWIDTH_TOTAL": 0}
    base.update(values or {})
    return {"index": index, "uuid": uuid or "GPU-%08x-c219-9f97-a29b-d4298760dab3" % (0x1d4aa5ce + index),
            "pod": pod, "values": dict((k, v) for k, v in base.items() if v is not None)}


def exposition(hostname, gpus, driver=DRIVER, model=MODEL, drop=()):
    """The exporter's answer for one node; ``drop``: (field, index) pairs left out (a GPU missing a series)."""
    lines = []
    for field, kind, help_text in COUNTERS:
        rows = [g for g in gpus if field in g["values"] and (field, g["index"]) not in drop]
        if not rows:
            continue
        lines.append("# HELP %s %s" % (field, help_text))
        lines.append("# TYPE %s %s" % (field, kind))
        for item in rows:
            labels = [("gpu", str(item["index"])), ("UUID", item["uuid"]), ("pci_bus_id", "00000000:%02X:00.0" % (0x18 + item["index"])),
                      ("device", "nvidia%d" % item["index"]), ("modelName", model), ("Hostname", hostname)]
            if item["pod"]:
                namespace, pod, container = item["pod"].split("/")
                labels += [("container", container), ("namespace", namespace), ("pod", pod)]
            labels.append(("DCGM_FI_DRIVER_VERSION", driver))
            lines.append('%s{%s} %s' % (field, ",".join('%s="%s"' % pair for pair in labels), item["values"][field]))
    return "\n".join(lines) + "\n"
