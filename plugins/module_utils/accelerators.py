# -*- coding: utf-8 -*-
# Copyright: ai_conformance.rke2 contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Pure evaluation for ``secure_accelerator_access``: accelerator nodes and free devices, the in-pod
probe (script and parsers), isolation verdicts and the GPU Operator's isolation configuration.

Everything vendor-specific comes from an accelerator profile (``accelerator_profiles.py``);
the in-pod listing is parsed by the parser the profile names in ``PARSERS``.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import fnmatch
import re

try:
    import tomllib
except ImportError:  # Python < 3.11: the two keys are read with a line pattern
    tomllib = None

from ansible_collections.ai_conformance.rke2.plugins.module_utils import dra

# --------------------------------------------------------------------------- quantities and nodes


def quantity_int(value):
    """Integer value of an extended-resource quantity ("2", 2, "1k"); 0 when absent or not a count."""
    if value is None:
        return 0
    text = str(value).strip()
    factors = {"k": 10 ** 3, "M": 10 ** 6, "G": 10 ** 9}
    try:
        if text and text[-1] in factors:
            return int(text[:-1]) * factors[text[-1]]
        return int(text)
    except ValueError:
        return 0


def allocatable(node, resource):
    """Allocatable count of ``resource`` on a Node."""
    return quantity_int(((node.get("status") or {}).get("allocatable") or {}).get(resource))


def _container_request(container, resource):
    resources = container.get("resources") or {}
    value = (resources.get("requests") or {}).get(resource)
    if value is None:  # requests default to limits for extended resources
        value = (resources.get("limits") or {}).get(resource)
    return quantity_int(value)


def pod_request(pod, resource):
    """What a pod holds of ``resource``: max(sum of containers, largest init container)."""
    spec = pod.get("spec") or {}
    containers = sum(_container_request(c, resource) for c in spec.get("containers") or [])
    inits = [_container_request(c, resource) for c in spec.get("initContainers") or []]
    return max([containers] + inits)


def holds_resources(pod):
    """Succeeded and Failed pods no longer hold node resources."""
    return (pod.get("status") or {}).get("phase") not in ("Succeeded", "Failed")


def free_count(node, pods, resource):
    """(free, used, pods using) of ``resource`` on ``node`` from the pods bound to it."""
    users = []
    used = 0
    for pod in pods:
        amount = pod_request(pod, resource) if holds_resources(pod) else 0
        if amount:
            used += amount
            users.append("%s/%s (%d)" % (pod["metadata"].get("namespace"), pod["metadata"]["name"], amount))
    return max(allocatable(node, resource) - used, 0), used, users


def accelerator_nodes(nodes, profile):
    """(nodes advertising the resource, names of nodes labelled as accelerator nodes without it)."""
    resource = profile["resource"]
    label = profile.get("node_label")
    advertising = [n for n in nodes if allocatable(n, resource) > 0]
    names = set(n["metadata"]["name"] for n in advertising)
    labelled = [n["metadata"]["name"] for n in nodes
                if label and ((n["metadata"].get("labels") or {}).get(label) not in (None, "", "false"))
                and n["metadata"]["name"] not in names]
    return advertising, sorted(labelled)


def choose_target(candidates, wanted=None):
    """Pick the node to test from ``candidates`` [{"node": name, "free": G, ...}].

    The user's node, else the node with the fewest free accelerators (at least one): the
    exhaustion test needs every free one. Returns (candidate or None, reason).
    """
    if wanted:
        found = [c for c in candidates if c["node"] == wanted]
        if not found:
            return None, "node %s has no accelerators to test (accelerator nodes: %s)" % (
                wanted, ", ".join(c["node"] for c in candidates) or "none")
        if found[0]["free"] < 1:
            return None, "node %s has no free accelerator (%s)" % (wanted, found[0]["detail"])
        return found[0], "node %s chosen by the user" % wanted
    usable = [c for c in candidates if c["free"] >= 1]
    if not usable:
        return None, "no accelerator node has a free accelerator: %s" % "; ".join(
            "%s: %s" % (c["node"], c["detail"]) for c in candidates)
    usable.sort(key=lambda c: (c["free"], c["node"]))
    return usable[0], "node %s has %d free accelerator(s), the fewest of %d candidate node(s)" % (
        usable[0]["node"], usable[0]["free"], len(usable))


# --------------------------------------------------------------------------- DRA devices


def dra_free_devices(node_name, device_class, slices, claims):
    """(free, total, allocated) devices of ``device_class``'s drivers on a node (ResourceSlices minus allocated claims)."""
    drivers = dra.class_drivers(device_class) if device_class else []
    published = set()
    for item in slices:
        spec = item.get("spec") or {}
        if spec.get("nodeName") != node_name or (drivers and spec.get("driver") not in drivers):
            continue
        pool = (spec.get("pool") or {}).get("name")
        for device in spec.get("devices") or []:
            published.add((spec.get("driver"), pool, device.get("name")))
    allocated = set()
    for claim in claims:
        results = ((((claim.get("status") or {}).get("allocation") or {}).get("devices") or {}).get("results")) or []
        for item in results:
            key = (item.get("driver"), item.get("pool"), item.get("device"))
            if key in published:
                allocated.add(key)
    return len(published) - len(allocated), len(published), sorted("%s/%s/%s" % k for k in allocated)


def dra_nodes(device_class, slices):
    """Names of nodes where a driver of ``device_class`` publishes devices."""
    drivers = dra.class_drivers(device_class) if device_class else []
    names = set()
    for item in slices:
        spec = item.get("spec") or {}
        if spec.get("nodeName") and spec.get("devices") and (not drivers or spec.get("driver") in drivers):
            names.add(spec["nodeName"])
    return sorted(names)


# --------------------------------------------------------------------------- the in-pod probe

MARK = "AIC-PROBE"
_GLOB_RE = re.compile(r"^/[A-Za-z0-9/_.\-\[\]*?]+$")


def probe_script(profile):
    """Shell script printing the device nodes (profile's glob) and the listing tool's output with its exit code.

    Each section is delimited by marker lines; the script always ends with the end marker and,
    when ``AIC_HOLD`` is set, then keeps the container (and its accelerator) for that many seconds.
    """
    glob = profile["device_glob"]
    if not _GLOB_RE.match(glob):
        raise ValueError("device_glob %r of the accelerator profile is not a plain path pattern" % glob)
    return "\n".join([
        "echo '%s devices-begin'" % MARK,
        "for f in %s; do [ -e \"$f\" ] && echo \"$f\"; done" % glob,
        "echo '%s devices-end'" % MARK,
        "echo '%s list-begin'" % MARK,
        "%s 2>&1" % profile["list_command"],
        "echo \"%s list-exit $?\"" % MARK,
        "echo '%s end'" % MARK,
        "if [ -n \"$AIC_HOLD\" ]; then sleep \"$AIC_HOLD\"; fi",
        "exit 0",
    ])


_GPU_LINE = re.compile(r"^GPU (\d+): (.*?) \(UUID: ([^)]+)\)\s*$")
_MIG_LINE = re.compile(r"^\s+MIG (.+?)\s+Device\s+(\d+): \(UUID: ([^)]+)\)\s*$")


def parse_nvidia_smi_list(text):
    """Accelerators in ``nvidia-smi -L`` output: [{"index", "name", "uuid", "mig": [...]}]; other lines are ignored."""
    gpus = []
    for line in (text or "").splitlines():
        match = _GPU_LINE.match(line)
        if match:
            gpus.append({"index": int(match.group(1)), "name": match.group(2), "uuid": match.group(3), "mig": []})
            continue
        match = _MIG_LINE.match(line)
        if match and gpus:
            gpus[-1]["mig"].append({"profile": match.group(1), "index": int(match.group(2)), "uuid": match.group(3)})
    return gpus


PARSERS = {"nvidia_smi": parse_nvidia_smi_list}


def parse_device_nodes(text, glob):
    """Device node paths listed one per line (``ls``/the probe loop) that match the profile's glob."""
    nodes = []
    for line in (text or "").splitlines():
        path = line.strip()
        if fnmatch.fnmatchcase(path, glob) and path not in nodes:
            nodes.append(path)
    return nodes


def _section(lines, begin, end_prefix):
    out, inside = [], False
    for line in lines:
        if line.startswith("%s %s" % (MARK, end_prefix)):
            if inside:
                return out, line
        if inside:
            out.append(line)
        if line == "%s %s" % (MARK, begin):
            inside = True
    return (out, None) if inside else (None, None)


def parse_probe(log, profile):
    """What one probe container printed: {"complete", "devices", "accelerators", "uuids", "list_exit", "list_output"}."""
    lines = (log or "").splitlines()
    devices, dummy = _section(lines, "devices-begin", "devices-end")
    listing, exit_line = _section(lines, "list-begin", "list-exit")
    exit_code = None
    if exit_line:
        try:
            exit_code = int(exit_line.split()[-1])
        except ValueError:
            exit_code = None
    parser = PARSERS[profile["probe_parser"]]
    accelerators = parser("\n".join(listing or []))
    return {
        "complete": ("%s end" % MARK) in lines and devices is not None and listing is not None,
        "devices": parse_device_nodes("\n".join(devices or []), profile["device_glob"]),
        "accelerators": accelerators,
        "uuids": [a["uuid"] for a in accelerators],
        "list_exit": exit_code,
        "list_output": "\n".join(listing or []),
    }


def seen(probe):
    """One line of what a container saw, for messages."""
    return "%d device node(s) %s, %d accelerator(s) listed %s%s" % (
        len(probe["devices"]), probe["devices"] or "", len(probe["uuids"]), probe["uuids"] or "",
        " (listing tool exited %s)" % probe["list_exit"] if probe["list_exit"] else "")


# --------------------------------------------------------------------------- verdicts
# Each returns (cause or None, message); None means the isolation held. Decided only on what the probe
# printed (device nodes, UUIDs); the listing tool's exit code only tells "tool missing" (127) apart.

TOOL_MISSING = 127


def judge_allocated(probes, profile):
    """Pods that each requested one accelerator: each sees exactly one, all different.

    ``probes``: [(pod name, parsed probe)]. Returns (cause or None, message, per-pod observations).
    """
    observed = [{"pod": name, "devices": p["devices"], "uuids": p["uuids"], "list_exit": p["list_exit"]}
                for name, p in probes]
    for name, probe in probes:
        if not probe["complete"]:
            return "test_tooling", "pod %s did not print the whole probe output (log ended early)" % name, observed
        if probe["list_exit"] == TOOL_MISSING and not probe["uuids"]:
            return "test_tooling", ("pod %s: `%s` is missing from the probe image (exit 127); it is injected by the "
                                    "container toolkit for the GPU the pod was given, so nothing can be judged"
                                    % (name, profile["list_command"])), observed
    wrong = ["%s: %s" % (name, seen(p)) for name, p in probes if len(p["devices"]) != 1 or len(p["uuids"]) != 1]
    if wrong:
        return "capability", "each pod requested one %s but did not see exactly one: %s" % (
            profile["resource"], "; ".join(wrong)), observed
    owners = {}
    for name, probe in probes:
        owners.setdefault(probe["uuids"][0], []).append(name)
    shared = ["%s seen by %s" % (uuid, ", ".join(names)) for uuid, names in sorted(owners.items()) if len(names) > 1]
    if shared:
        return "capability", "pods that each requested one %s were given the same accelerator: %s" % (
            profile["resource"], "; ".join(shared)), observed
    return None, "%d pod(s) each saw exactly one accelerator, all different: %s" % (
        len(probes), ", ".join("%s=%s" % (name, p["uuids"][0]) for name, p in probes)), observed


def judge_isolated(name, probe, what):
    """A container that was given no accelerator (``what`` says why it might see one) must see none."""
    observed = {"pod": name, "devices": probe["devices"], "uuids": probe["uuids"], "list_exit": probe["list_exit"]}
    if not probe["complete"]:
        return "test_tooling", "%s did not print the whole probe output (log ended early)" % name, observed
    if probe["devices"] or probe["uuids"]:
        return "capability", "%s (%s) sees accelerators it did not request: %s" % (name, what, seen(probe)), observed
    return None, "%s (%s) sees no accelerator" % (name, what), observed


def insufficient_message(profile, mode):
    """What the scheduler says when no accelerator is left, for ``mode`` (device_plugin or dra)."""
    if mode == "dra":
        return profile["dra_insufficient_message"]
    return profile["insufficient_message"].format(resource=profile["resource"])


def judge_exhaustion(pod, insufficient_message, node_name):
    """The pod asking for one more accelerator than is free: (cause or None, message, done).

    ``done`` is False while the scheduler has not decided yet.
    """
    name = pod["metadata"]["name"]
    spec = pod.get("spec") or {}
    if spec.get("nodeName"):
        return "capability", ("pod %s was scheduled to %s although every accelerator of the node was taken: "
                              "the scheduler does not account for them" % (name, spec["nodeName"])), True
    for cond in (pod.get("status") or {}).get("conditions") or []:
        if cond.get("type") == "PodScheduled" and cond.get("status") == "False" and cond.get("reason") == "Unschedulable":
            message = cond.get("message") or ""
            if insufficient_message in message:
                return None, "pod %s stays Pending: %s" % (name, message), True
            if "untolerated taint" in message:
                return "untolerated_taint", "pod %s is unschedulable for a taint, not for lack of accelerators: %s" % (
                    name, message), True
            return "no_capacity", "pod %s on %s is unschedulable for another reason than accelerators: %s" % (
                name, node_name, message), True
    return None, "pod %s not decided yet" % name, False


# --------------------------------------------------------------------------- GPU Operator configuration


def container_env(daemonset, container=None):
    """{name: value} of plain env values of a DaemonSet's containers (``container`` narrows to one)."""
    env = {}
    spec = (((daemonset or {}).get("spec") or {}).get("template") or {}).get("spec") or {}
    for item in (spec.get("initContainers") or []) + (spec.get("containers") or []):
        if container and item.get("name") != container:
            continue
        for var in item.get("env") or []:
            if "value" in var:
                env[var["name"]] = var["value"]
    return env


def dotted(obj, path):
    """Value at a dotted path of a dict, or None."""
    for part in path.split("."):
        if not isinstance(obj, dict):
            return None
        obj = obj.get(part)
    return obj


def _truth(value):
    return str(value).strip().lower() in ("true", "1", "yes")


def _same(found, wanted):
    if isinstance(wanted, bool):
        return found is not None and _truth(found) == wanted
    return found is not None and str(found) == str(wanted)


def detect_isolation(profile, cluster_policy, toolkit_env, device_plugin_env):
    """Name of the isolation profile the configuration matches (volume-mounts first), or None."""
    for name in ("volume-mounts", "cdi"):
        if not evaluate_isolation(profile, name, cluster_policy, toolkit_env, device_plugin_env)[0]:
            return name
    return None


def evaluate_isolation(profile, isolation, cluster_policy, toolkit_env, device_plugin_env):
    """Settings of isolation profile ``isolation`` that the cluster does not have.

    Returns (mismatches [str], table [{"where", "setting", "expected", "found"}]).
    """
    wanted = profile["isolation_profiles"][isolation]
    spec = (cluster_policy or {}).get("spec") or {}
    table = []
    for path, value in sorted((wanted.get("cluster_policy") or {}).items()):
        table.append({"where": "ClusterPolicy", "setting": "spec.%s" % path, "expected": value, "found": dotted(spec, path)})
    for where, env in (("toolkit", toolkit_env), ("device plugin", device_plugin_env)):
        key = "toolkit_env" if where == "toolkit" else "device_plugin_env"
        for name, value in sorted((wanted.get(key) or {}).items()):
            table.append({"where": "%s env" % where, "setting": name, "expected": value, "found": (env or {}).get(name)})
    mismatches = ["%s %s=%s (expected %s)" % (row["where"], row["setting"], row["found"], row["expected"])
                  for row in table if not _same(row["found"], row["expected"])]
    return mismatches, table


_TOML_BOOL = re.compile(r"^\s*([A-Za-z0-9_.\-]+)\s*=\s*(true|false)\s*(#.*)?$")


def parse_toolkit_config(text, keys):
    """Top-level ``keys`` of the toolkit's config.toml: {key: value or None}; TOML errors raise ValueError."""
    if tomllib is not None:
        try:
            data = tomllib.loads(text or "")
        except tomllib.TOMLDecodeError as exc:
            raise ValueError("not valid TOML: %s" % exc)
        return dict((key, data.get(key)) for key in keys)
    found = {}
    for line in (text or "").splitlines():
        if line.lstrip().startswith("["):
            break  # only top-level keys
        match = _TOML_BOOL.match(line)
        if match:
            found[match.group(1)] = match.group(2) == "true"
    return dict((key, found.get(key)) for key in keys)


def evaluate_toolkit_configs(files, profile, isolation):
    """Judge the config.toml files read on accelerator hosts.

    ``files``: [{"host", "path", "content", "error"}] (``content`` None when the file could not be read;
    ``error`` says why, slurp's ``File not found: PATH`` for an absent file). Returns (mismatches [str],
    rows [{"host", "path", key: value... or "error"}], unreadable [str]): an absent file is a mismatch
    when ``isolation`` expects keys; a host that could not be read (unreachable, no privilege) is only
    reported as unreadable. With ``isolation`` None nothing is expected.
    """
    expected = profile["isolation_profiles"][isolation]["toolkit_config"] if isolation else {}
    keys = sorted(profile["isolation_profiles"]["volume-mounts"]["toolkit_config"])
    rows, mismatches, unreadable = [], [], []
    for item in files:
        row = {"host": item.get("host"), "path": item.get("path")}
        rows.append(row)
        if item.get("content") is None:
            row["error"] = item.get("error") or "file not found"
            if not row["error"].lower().startswith("file not found"):
                unreadable.append("%s (%s)" % (row["host"], row["error"]))
            elif expected:
                mismatches.append("%s:%s not found" % (row["host"], row["path"]))
            continue
        try:
            values = parse_toolkit_config(item["content"], keys)
        except ValueError as exc:
            row["error"] = str(exc)
            mismatches.append("%s:%s %s" % (row["host"], row["path"], exc))
            continue
        row.update(values)
        for key, value in sorted(expected.items()):
            if values.get(key) is not value:
                mismatches.append("%s: %s = %s (expected %s)" % (row["host"], key, values.get(key), str(value).lower()))
    return mismatches, rows, unreadable
