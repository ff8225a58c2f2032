"""Built-in admission of a v1.34 apiserver, as pure functions, for the fake API server.

Pod Security (``pod-security.kubernetes.io/*`` namespace labels, levels
``baseline`` and ``restricted``, version ``latest``), LimitRanger (defaults,
min/max per container), ResourceQuota (constraints, usage, ``exceeded quota``),
the MicroTime format of Leases and the namespace controller's conditions.

Messages are composed in the format of the recorded answers in
``../shared/k8s-fixtures`` (second recording) and, where nothing was recorded,
of the v1.34 source (``staging/src/k8s.io/pod-security-admission/policy``,
``plugin/pkg/admission/limitranger``, ``pkg/quota/v1/evaluator/core``,
``pkg/controller/namespace/deletion``).
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import datetime
import re
from decimal import Decimal

PSA_PREFIX = "pod-security.kubernetes.io/"
LEVELS = ("privileged", "baseline", "restricted")

# --------------------------------------------------------------------------
# Pod Security
# --------------------------------------------------------------------------

# Capabilities baseline allows to add (check_capabilities_baseline.go).
BASELINE_CAPABILITIES = frozenset([
    "AUDIT_WRITE", "CHOWN", "DAC_OVERRIDE", "FOWNER", "FSETID", "KILL", "MKNOD", "NET_BIND_SERVICE", "SETFCAP",
    "SETGID", "SETPCAP", "SETUID", "SYS_CHROOT"])
# Volume types restricted allows (check_restrictedVolumes.go).
RESTRICTED_VOLUME_TYPES = ("configMap", "csi", "downwardAPI", "emptyDir", "ephemeral", "image",
                           "persistentVolumeClaim", "projected", "secret")
SAFE_SYSCTLS = frozenset([
    "kernel.shm_rmid_forced", "net.ipv4.ip_local_port_range", "net.ipv4.ip_unprivileged_port_start",
    "net.ipv4.tcp_syncookies", "net.ipv4.ping_group_range", "net.ipv4.ip_local_reserved_ports",
    "net.ipv4.tcp_keepalive_time", "net.ipv4.tcp_fin_timeout", "net.ipv4.tcp_keepalive_intvl",
    "net.ipv4.tcp_keepalive_probes"])
# Workload kinds whose pod template PodSecurity evaluates (warnings only).
POD_TEMPLATE_PATHS = {
    ("apps", "deployments"): ("spec", "template"),
    ("apps", "replicasets"): ("spec", "template"),
    ("apps", "statefulsets"): ("spec", "template"),
    ("apps", "daemonsets"): ("spec", "template"),
    ("batch", "jobs"): ("spec", "template"),
    ("batch", "cronjobs"): ("spec", "jobTemplate", "spec", "template"),
    ("", "replicationcontrollers"): ("spec", "template"),
    ("", "podtemplates"): ("template",),
}


def _quote(names):
    return ", ".join('"%s"' % n for n in names)


def _pluralize(singular, plural, count):
    return singular if count == 1 else plural


def _containers_phrase(names):
    return "%s %s" % (_pluralize("container", "containers", len(names)), _quote(names))


def _setters(pod_bad, containers):
    """``pod and container "c"``: who set a forbidden value (PodSecurity's badSetters)."""
    setters = ["pod"] if pod_bad else []
    if containers:
        setters.append(_containers_phrase(containers))
    return " and ".join(setters)


def _all_containers(spec):
    for key in ("initContainers", "containers", "ephemeralContainers"):
        for container in spec.get(key) or []:
            if isinstance(container, dict):
                yield container


def _csc(container):
    return container.get("securityContext") or {}


def _check_allow_privilege_escalation(spec):
    bad = [c.get("name") for c in _all_containers(spec) if _csc(c).get("allowPrivilegeEscalation") is not False]
    if bad:
        return "allowPrivilegeEscalation != false", "%s must set securityContext.allowPrivilegeEscalation=false" % (
            _containers_phrase(bad))
    return None


def _check_capabilities_restricted(spec):
    no_drop, adds, bad_caps = [], [], []
    for container in _all_containers(spec):
        caps = _csc(container).get("capabilities") or {}
        if "ALL" not in (caps.get("drop") or []):
            no_drop.append(container.get("name"))
        extra = [c for c in caps.get("add") or [] if c != "NET_BIND_SERVICE"]
        if extra:
            adds.append(container.get("name"))
            bad_caps.extend(c for c in extra if c not in bad_caps)
    details = []
    if no_drop:
        details.append('%s must set securityContext.capabilities.drop=["ALL"]' % _containers_phrase(no_drop))
    if adds:
        details.append("%s must not include %s in securityContext.capabilities.add" % (
            _containers_phrase(adds), _quote(sorted(bad_caps))))
    return ("unrestricted capabilities", "; ".join(details)) if details else None


def _check_capabilities_baseline(spec):
    names, bad_caps = [], []
    for container in _all_containers(spec):
        extra = [c for c in (_csc(container).get("capabilities") or {}).get("add") or []
                 if c not in BASELINE_CAPABILITIES]
        if extra:
            names.append(container.get("name"))
            bad_caps.extend(c for c in extra if c not in bad_caps)
    if names:
        return "non-default capabilities", "%s must not include %s in securityContext.capabilities.add" % (
            _containers_phrase(names), _quote(sorted(bad_caps)))
    return None


def _check_host_namespaces(spec):
    used = ["%s=true" % key for key in ("hostNetwork", "hostPID", "hostIPC") if spec.get(key)]
    return ("host namespaces", ", ".join(used)) if used else None


def _check_host_path_volumes(spec):
    names = [v.get("name") for v in spec.get("volumes") or [] if "hostPath" in v]
    if names:
        return "hostPath volumes", "%s %s" % ("volume" if len(names) == 1 else "volumes", _quote(names))
    return None


def _check_host_ports(spec):
    names, ports = [], set()
    for container in _all_containers(spec):
        found = [str(p["hostPort"]) for p in container.get("ports") or [] if p.get("hostPort")]
        if found:
            names.append(container.get("name"))
            ports.update(found)
    if names:
        return "hostPort", "%s %s %s %s" % (_containers_phrase(names), _pluralize("uses", "use", len(names)),
                                            _pluralize("hostPort", "hostPorts", len(ports)), ", ".join(sorted(ports)))
    return None


def _check_privileged(spec):
    names = [c.get("name") for c in _all_containers(spec) if _csc(c).get("privileged")]
    if names:
        return "privileged", "%s must not set securityContext.privileged=true" % _containers_phrase(names)
    return None


def _check_proc_mount(spec):
    bad = [c for c in _all_containers(spec) if _csc(c).get("procMount") not in (None, "Default")]
    if bad:
        values = sorted(set(_csc(c)["procMount"] for c in bad))
        return "procMount", "%s must not set securityContext.procMount to %s" % (
            _containers_phrase([c.get("name") for c in bad]), _quote(values))
    return None


def _check_restricted_volumes(spec):
    names, types = [], []
    for volume in spec.get("volumes") or []:
        kinds = [k for k in volume if k != "name" and k not in RESTRICTED_VOLUME_TYPES]
        if kinds:
            names.append(volume.get("name"))
            types.extend(k for k in kinds if k not in types)
    if names:
        return "restricted volume types", "%s %s %s %s %s" % (
            _pluralize("volume", "volumes", len(names)), _quote(names), _pluralize("uses", "use", len(names)),
            _pluralize("restricted volume type", "restricted volume types", len(types)), _quote(sorted(types)))
    return None


def _check_run_as_non_root(spec):
    pod_value = (spec.get("securityContext") or {}).get("runAsNonRoot")
    explicit_false = [c.get("name") for c in _all_containers(spec) if _csc(c).get("runAsNonRoot") is False]
    if pod_value is False or explicit_false:
        return "runAsNonRoot != true", "%s must not set securityContext.runAsNonRoot=false" % _setters(
            pod_value is False, explicit_false)
    unset = [c.get("name") for c in _all_containers(spec) if _csc(c).get("runAsNonRoot") is None]
    if pod_value is not True and unset:
        return "runAsNonRoot != true", "pod or %s must set securityContext.runAsNonRoot=true" % _containers_phrase(unset)
    return None


def _check_run_as_user(spec):
    pod_root = (spec.get("securityContext") or {}).get("runAsUser") == 0
    names = [c.get("name") for c in _all_containers(spec) if _csc(c).get("runAsUser") == 0]
    if pod_root or names:
        return "runAsUser=0", "%s must not set runAsUser=0" % _setters(pod_root, names)
    return None


def _seccomp_type(context):
    return ((context or {}).get("seccompProfile") or {}).get("type")


def _check_seccomp(spec, restricted):
    allowed = ("RuntimeDefault", "Localhost") if restricted else ("RuntimeDefault", "Localhost", None)
    pod_type = _seccomp_type(spec.get("securityContext"))
    pod_bad = pod_type is not None and pod_type not in allowed
    bad = [c for c in _all_containers(spec) if _seccomp_type(_csc(c)) is not None and _seccomp_type(_csc(c)) not in allowed]
    details = []
    if pod_bad or bad:
        values = sorted(set(([pod_type] if pod_bad else []) + [_seccomp_type(_csc(c)) for c in bad]))
        details.append("%s must not set securityContext.seccompProfile.type to %s" % (
            _setters(pod_bad, [c.get("name") for c in bad]), _quote(values)))
    if restricted and pod_type not in ("RuntimeDefault", "Localhost"):
        unset = [c.get("name") for c in _all_containers(spec) if _seccomp_type(_csc(c)) is None]
        if unset:
            details.append('pod or %s must set securityContext.seccompProfile.type to "RuntimeDefault" or "Localhost"'
                           % _containers_phrase(unset))
    return ("seccompProfile", "; ".join(details)) if details else None


def _check_sysctls(spec):
    names = [s.get("name") for s in (spec.get("securityContext") or {}).get("sysctls") or []
             if s.get("name") not in SAFE_SYSCTLS]
    return ("forbidden sysctls", ", ".join(names)) if names else None


# (check id, levels it belongs to, fn(spec)); the apiserver reports in check-id order.
_CHECKS = [
    ("allowPrivilegeEscalation", ("restricted",), _check_allow_privilege_escalation),
    ("capabilities_baseline", ("baseline",), _check_capabilities_baseline),
    ("capabilities_restricted", ("restricted",), _check_capabilities_restricted),
    ("hostNamespaces", ("baseline", "restricted"), _check_host_namespaces),
    ("hostPathVolumes", ("baseline", "restricted"), _check_host_path_volumes),
    ("hostPorts", ("baseline", "restricted"), _check_host_ports),
    ("privileged", ("baseline", "restricted"), _check_privileged),
    ("procMount", ("baseline", "restricted"), _check_proc_mount),
    ("restrictedVolumes", ("restricted",), _check_restricted_volumes),
    ("runAsNonRoot", ("restricted",), _check_run_as_non_root),
    ("runAsUser", ("restricted",), _check_run_as_user),
    ("seccompProfile_baseline", ("baseline",), lambda spec: _check_seccomp(spec, False)),
    ("seccompProfile_restricted", ("restricted",), lambda spec: _check_seccomp(spec, True)),
    ("sysctls", ("baseline", "restricted"), _check_sysctls),
]


def pod_security_violations(level, pod_spec):
    """``[(reason, detail)]`` of a pod spec against ``baseline`` or ``restricted`` (none for privileged)."""
    if level not in ("baseline", "restricted"):
        return []
    found = []
    for _check_id, levels, fn in sorted(_CHECKS, key=lambda check: check[0]):
        if level in levels:
            outcome = fn(pod_spec or {})
            if outcome:
                found.append(outcome)
    return found


def violations_text(violations):
    """``reason (detail), reason (detail)`` as PodSecurity joins them."""
    return ", ".join("%s (%s)" % (reason, detail) if detail else reason for reason, detail in violations)


def namespace_levels(namespace_labels):
    """{"enforce": level, "warn": level, "audit": level} from the namespace labels (default privileged)."""
    labels = namespace_labels or {}
    levels = {}
    for mode in ("enforce", "warn", "audit"):
        value = labels.get(PSA_PREFIX + mode, "privileged")
        levels[mode] = value if value in LEVELS else "restricted"  # an invalid level is treated as restricted
    return levels


def pod_security_admission(namespace_labels, group, plural, obj):
    """PodSecurity for one create: ``(forbidden_message_or_None, [warning texts])``.

    Pods are refused when they violate the enforce level (``violates PodSecurity
    "restricted:latest": ...``, no warning then); a pod passing enforce gets a
    warning for the warn level. Workloads with a pod template are never refused:
    they get the warning for the stricter of enforce and warn.
    """
    levels = namespace_levels(namespace_labels)
    if (group, plural) == ("", "pods"):
        spec = obj.get("spec") or {}
        violations = pod_security_violations(levels["enforce"], spec)
        if violations:
            return 'violates PodSecurity "%s:latest": %s' % (levels["enforce"], violations_text(violations)), []
        violations = pod_security_violations(levels["warn"], spec)
        if violations:
            return None, ['would violate PodSecurity "%s:latest": %s' % (levels["warn"], violations_text(violations))]
        return None, []
    path = POD_TEMPLATE_PATHS.get((group, plural))
    if path is None:
        return None, []
    template = obj
    for key in path:
        template = (template or {}).get(key) if isinstance(template, dict) else None
    spec = (template or {}).get("spec") or {}
    level = max(levels["enforce"], levels["warn"], key=LEVELS.index)
    violations = pod_security_violations(level, spec)
    if violations:
        return None, ['would violate PodSecurity "%s:latest": %s' % (level, violations_text(violations))]
    return None, []


def namespace_enforce_warnings(namespace, old_labels, new_labels, pods):
    """Warnings when a namespace's enforce level is raised over pods that violate it (the pods stay)."""
    old_level = namespace_levels(old_labels)["enforce"]
    new_level = namespace_levels(new_labels)["enforce"]
    if new_level == old_level or new_level == "privileged":
        return []
    lines = []
    for pod in pods:
        violations = pod_security_violations(new_level, pod.get("spec") or {})
        if violations:
            lines.append("%s: %s" % (pod["metadata"]["name"], ", ".join(reason for reason, _detail in violations)))
    if not lines:
        return []
    return ['existing pods in namespace "%s" violate the new PodSecurity enforce level "%s:latest"'
            % (namespace, new_level)] + lines


def warning_header(text):
    """A ``Warning`` header value as the apiserver sends it (``299 - "..."``, quotes escaped)."""
    return '299 - "%s"' % text.replace("\\", "\\\\").replace('"', '\\"')


# --------------------------------------------------------------------------
# Quantities
# --------------------------------------------------------------------------

_SUFFIXES = {"Ki": 2 ** 10, "Mi": 2 ** 20, "Gi": 2 ** 30, "Ti": 2 ** 40, "Pi": 2 ** 50, "Ei": 2 ** 60,
             "n": Decimal("1e-9"), "u": Decimal("1e-6"), "m": Decimal("1e-3"), "": 1, "k": 10 ** 3, "M": 10 ** 6,
             "G": 10 ** 9, "T": 10 ** 12, "P": 10 ** 15, "E": 10 ** 18}
_QUANTITY_RE = re.compile(r"^([+-]?[0-9.]+)(Ki|Mi|Gi|Ti|Pi|Ei|n|u|m|k|M|G|T|P|E|[eE][+-]?[0-9]+)?$")


def parse_quantity(value):
    """A Kubernetes quantity (``500m``, ``1``, ``256Mi``, ``1e3``) as a Decimal."""
    text = str(value).strip()
    match = _QUANTITY_RE.match(text)
    if not match:
        raise ValueError("quantities must match the regular expression: %r" % text)
    number, suffix = Decimal(match.group(1)), match.group(2) or ""
    if suffix[:1] in ("e", "E"):
        return number * (Decimal(10) ** int(suffix[1:]))
    return number * Decimal(_SUFFIXES[suffix])


def format_quantity(value, binary=False):
    """The canonical text of a quantity (``500m``, ``1``, ``256Mi``, ``2k``)."""
    value = Decimal(value)
    if binary and value == value.to_integral_value() and value:
        for suffix in ("Ei", "Pi", "Ti", "Gi", "Mi", "Ki"):
            unit = _SUFFIXES[suffix]
            if value % unit == 0:
                return "%d%s" % (value / unit, suffix)
        return "%d" % value
    if value == value.to_integral_value():
        for suffix in ("E", "P", "T", "G", "M", "k"):
            unit = _SUFFIXES[suffix]
            if value and value % unit == 0:
                return "%d%s" % (value / unit, suffix)
        return "%d" % value
    milli = value * 1000
    if milli == milli.to_integral_value():
        return "%dm" % milli
    micro = value * 10 ** 6
    if micro == micro.to_integral_value():
        return "%du" % micro
    return "%dn" % (value * 10 ** 9).to_integral_value()


def _is_binary(*texts):
    return any(str(t).endswith("i") for t in texts if t is not None)


# --------------------------------------------------------------------------
# LimitRanger
# --------------------------------------------------------------------------

def limit_range_defaults(pod, limit_ranges):
    """Apply the ``default``/``defaultRequest`` of Container LimitRanges to a pod in place.

    Sets the ``kubernetes.io/limit-ranger`` annotation as LimitRanger does.
    """
    default_limits, default_requests = {}, {}
    for limit_range in limit_ranges:
        for item in (limit_range.get("spec") or {}).get("limits") or []:
            if item.get("type") != "Container":
                continue
            for name, value in (item.get("default") or {}).items():
                default_limits.setdefault(name, value)
            for name, value in (item.get("defaultRequest") or {}).items():
                default_requests.setdefault(name, value)
            # defaultRequest falls back to default (limit), as the apiserver defaults it
            for name, value in (item.get("default") or {}).items():
                default_requests.setdefault(name, value)
    if not default_limits and not default_requests:
        return
    notes = []
    spec = pod.setdefault("spec", {})
    for key in ("containers", "initContainers"):
        for container in spec.get(key) or []:
            resources = container.setdefault("resources", {})
            set_requests, set_limits = [], []
            for name, value in sorted(default_limits.items()):
                if name not in (resources.get("limits") or {}):
                    resources.setdefault("limits", {})[name] = value
                    set_limits.append(name)
            for name, value in sorted(default_requests.items()):
                requests = resources.get("requests") or {}
                if name not in requests:
                    # a limit the container set itself is its request, not the default
                    own_limit = name not in set_limits and name in (resources.get("limits") or {})
                    resources.setdefault("requests", {})[name] = resources["limits"][name] if own_limit else value
                    set_requests.append(name)
            if set_requests:
                notes.append("%s request for %s %s" % (", ".join(set_requests), "init container" if key == "initContainers"
                                                       else "container", container.get("name")))
            if set_limits:
                notes.append("%s limit for %s %s" % (", ".join(set_limits), "init container" if key == "initContainers"
                                                     else "container", container.get("name")))
    if notes:
        annotations = pod.setdefault("metadata", {}).setdefault("annotations", {}) or {}
        annotations["kubernetes.io/limit-ranger"] = "LimitRanger plugin set: " + "; ".join(notes)
        pod["metadata"]["annotations"] = annotations


def limit_range_violations(pod, limit_ranges):
    """Min/max errors of Container LimitRanges for a pod (texts of LimitRanger, sorted by resource)."""
    errors = []
    for limit_range in limit_ranges:
        for item in (limit_range.get("spec") or {}).get("limits") or []:
            if item.get("type") != "Container":
                continue
            for container in (pod.get("spec") or {}).get("containers") or []:
                resources = container.get("resources") or {}
                requests, limits = resources.get("requests") or {}, resources.get("limits") or {}
                for name, enforced in sorted((item.get("min") or {}).items()):
                    floor = parse_quantity(enforced)
                    if name not in requests:
                        errors.append("minimum %s usage per Container is %s.  No request is specified" % (name, enforced))
                    elif parse_quantity(requests[name]) < floor:
                        errors.append("minimum %s usage per Container is %s, but request is %s"
                                      % (name, enforced, requests[name]))
                    elif name in limits and parse_quantity(limits[name]) < floor:
                        errors.append("minimum %s usage per Container is %s, but limit is %s" % (name, enforced, limits[name]))
                for name, enforced in sorted((item.get("max") or {}).items()):
                    ceiling = parse_quantity(enforced)
                    if name not in limits:
                        errors.append("maximum %s usage per Container is %s.  No limit is specified" % (name, enforced))
                    elif parse_quantity(limits[name]) > ceiling:
                        errors.append("maximum %s usage per Container is %s, but limit is %s" % (name, enforced, limits[name]))
                    elif name in requests and parse_quantity(requests[name]) > ceiling:
                        errors.append("maximum %s usage per Container is %s, but request is %s"
                                      % (name, enforced, requests[name]))
    return errors


def aggregate(errors):
    """utilerrors.NewAggregate's text: one error as is, several as ``[a, b]``."""
    return errors[0] if len(errors) == 1 else "[%s]" % ", ".join(errors)


# --------------------------------------------------------------------------
# ResourceQuota
# --------------------------------------------------------------------------

_COMPUTE = ("requests.cpu", "requests.memory", "limits.cpu", "limits.memory", "cpu", "memory")
_LEGACY_COUNTS = {"configmaps": ("", "configmaps"), "secrets": ("", "secrets"), "services": ("", "services"),
                  "persistentvolumeclaims": ("", "persistentvolumeclaims"),
                  "replicationcontrollers": ("", "replicationcontrollers"), "resourcequotas": ("", "resourcequotas")}


def _pod_terminal(pod):
    return (pod.get("status") or {}).get("phase") in ("Succeeded", "Failed")


def object_usage(group, plural, obj):
    """What one object counts against quota: {resource name: Decimal}."""
    usage = {"count/%s" % (plural if not group else "%s.%s" % (plural, group)): Decimal(1)}
    for legacy, key in _LEGACY_COUNTS.items():
        if key == (group, plural):
            usage[legacy] = Decimal(1)
    if (group, plural) != ("", "pods"):
        return usage
    if _pod_terminal(obj):
        return {}
    usage["pods"] = Decimal(1)
    for name in _COMPUTE:
        usage[name] = Decimal(0)
    for container in (obj.get("spec") or {}).get("containers") or []:
        resources = container.get("resources") or {}
        for section in ("requests", "limits"):
            for resource, value in (resources.get(section) or {}).items():
                amount = parse_quantity(value)
                if resource in ("cpu", "memory"):
                    usage["%s.%s" % (section, resource)] += amount
                    if section == "requests":
                        usage[resource] += amount
                elif section == "requests":
                    key = "requests.%s" % resource
                    usage[key] = usage.get(key, Decimal(0)) + amount
    return usage


def quota_constraint_error(quota_hard, pod):
    """``must specify ...`` when a quota on cpu/memory meets a container without that request/limit."""
    required = set(quota_hard) & set(_COMPUTE)
    missing = {}
    for container in ((pod.get("spec") or {}).get("containers") or []) + ((pod.get("spec") or {}).get("initContainers") or []):
        resources = container.get("resources") or {}
        requests, limits = resources.get("requests") or {}, resources.get("limits") or {}
        for name in required:
            resource = name.split(".")[-1]
            present = limits if name.startswith("limits.") else requests
            if resource not in present:
                missing.setdefault(name, set()).add(container.get("name"))
    if not missing:
        return None
    texts = ["%s for: %s" % (name, ",".join(sorted(missing[name]))) for name in sorted(missing)]
    return "must specify %s" % "; ".join(texts)


def _pretty(resources, hard):
    return ",".join("%s=%s" % (name, format_quantity(resources.get(name, 0), _is_binary(hard.get(name))))
                    for name in sorted(resources))


def quota_exceeded_error(name, hard, used, requested):
    """``exceeded quota: NAME, requested: ..., used: ..., limited: ...`` (only the exceeded resources) or None."""
    exceeded = sorted(r for r, amount in requested.items()
                      if r in hard and amount > 0 and used.get(r, Decimal(0)) + amount > parse_quantity(hard[r]))
    if not exceeded:
        return None
    hard_values = dict((r, parse_quantity(hard[r])) for r in exceeded)
    return "exceeded quota: %s, requested: %s, used: %s, limited: %s" % (
        name, _pretty(dict((r, requested[r]) for r in exceeded), hard),
        _pretty(dict((r, used.get(r, Decimal(0))) for r in exceeded), hard), _pretty(hard_values, hard))


def quota_used(hard, usages):
    """status.used of a quota: the sum of ``usages`` for each resource in ``hard`` (as strings)."""
    total = {}
    for name in hard:
        amount = sum((usage.get(name, Decimal(0)) for usage in usages), Decimal(0))
        total[name] = format_quantity(amount, _is_binary(hard[name]))
    return total


# --------------------------------------------------------------------------
# MicroTime (coordination.k8s.io Lease)
# --------------------------------------------------------------------------

MICROTIME_LAYOUT = "2006-01-02T15:04:05.000000Z07:00"
_SECONDS_RE = re.compile(r"^(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d)(.*)$")


def parse_microtime(text):
    """Parse as Go's RFC3339Micro; returns the normalised UTC text or raises ValueError with Go's message."""
    value = str(text)
    match = _SECONDS_RE.match(value)
    if not match:
        raise ValueError('parsing time "%s" as "%s": cannot parse "%s" as "2006"' % (value, MICROTIME_LAYOUT, value))
    rest = match.group(2)
    if not re.match(r"^\.\d{6}", rest):
        raise ValueError('parsing time "%s" as "%s": cannot parse "%s" as ".000000"' % (value, MICROTIME_LAYOUT, rest))
    fraction, zone = rest[1:7], rest[7:]
    if zone == "Z":
        offset = datetime.timedelta(0)
    else:
        zone_match = re.match(r"^([+-])(\d\d):(\d\d)$", zone)
        if not zone_match:
            raise ValueError('parsing time "%s" as "%s": cannot parse "%s" as "Z07:00"' % (value, MICROTIME_LAYOUT, zone))
        sign = 1 if zone_match.group(1) == "+" else -1
        offset = sign * datetime.timedelta(hours=int(zone_match.group(2)), minutes=int(zone_match.group(3)))
    moment = datetime.datetime.strptime(match.group(1), "%Y-%m-%dT%H:%M:%S") - offset
    return "%s.%sZ" % (moment.strftime("%Y-%m-%dT%H:%M:%S"), fraction)


# --------------------------------------------------------------------------
# Namespace controller
# --------------------------------------------------------------------------

def namespace_deletion_conditions(remaining, finalizers, timestamp):
    """The five conditions the namespace controller writes while content with finalizers remains.

    ``remaining``: {(group, plural): count}; ``finalizers``: {finalizer: count}.
    """
    conditions = [
        {"type": "NamespaceDeletionDiscoveryFailure", "status": "False", "lastTransitionTime": timestamp,
         "reason": "ResourcesDiscovered", "message": "All resources successfully discovered"},
        {"type": "NamespaceDeletionGroupVersionParsingFailure", "status": "False", "lastTransitionTime": timestamp,
         "reason": "ParsedGroupVersions", "message": "All legacy kube types successfully parsed"},
        {"type": "NamespaceDeletionContentFailure", "status": "False", "lastTransitionTime": timestamp,
         "reason": "ContentDeleted", "message": "All content successfully deleted, may be waiting on finalization"},
    ]
    if remaining:
        texts = sorted("%s.%s has %d resource instances" % (plural, group, count)
                       for (group, plural), count in remaining.items() if count)
        conditions.append({"type": "NamespaceContentRemaining", "status": "True", "lastTransitionTime": timestamp,
                           "reason": "SomeResourcesRemain",
                           "message": "Some resources are remaining: %s" % ", ".join(texts)})
    else:
        conditions.append({"type": "NamespaceContentRemaining", "status": "False", "lastTransitionTime": timestamp,
                           "reason": "ContentRemoved", "message": "All content successfully removed"})
    if finalizers:
        texts = sorted("%s in %d resource instances" % (name, count) for name, count in finalizers.items() if count)
        conditions.append({"type": "NamespaceFinalizersRemaining", "status": "True", "lastTransitionTime": timestamp,
                           "reason": "SomeFinalizersRemain",
                           "message": "Some content in the namespace has finalizers remaining: %s" % ", ".join(texts)})
    else:
        conditions.append({"type": "NamespaceFinalizersRemaining", "status": "False", "lastTransitionTime": timestamp,
                           "reason": "ContentHasNoFinalizers", "message": "All content-preserving finalizers finished"})
    return conditions
