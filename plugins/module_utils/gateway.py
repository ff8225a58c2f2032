# -*- coding: utf-8 -*-
# Copyright: ai_conformance.rke2 contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Pure evaluation and manifests for the ``ai_inference`` requirement (Gateway API).

Everything here takes and returns plain data: API discovery documents, the
``status`` of GatewayClass/Gateway/HTTPRoute objects (field names as in the
Gateway API v1 spec: ``status.conditions[]``, ``status.listeners[].conditions``,
``status.addresses[]``, ``status.parents[].parentRef/controllerName/conditions``,
``conditions[].observedGeneration``), the client pod's log text, and the
manifests the verifier creates.

Evaluation functions return ``(ok, message)``; the message always carries the
real conditions so a failure says what the controller reported.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import json
import math

from ansible_collections.ai_conformance.rke2.plugins.module_utils import discovery
from ansible_collections.ai_conformance.rke2.plugins.module_utils import status as k8s_status

GROUP = "gateway.networking.k8s.io"
V1 = GROUP + "/v1"
V1BETA1 = GROUP + "/v1beta1"
DEFAULT_CONTROLLER = "traefik.io/gateway-controller"

# What the reference procedure lists (``kubectl api-resources --api-group=gateway.networking.k8s.io``),
# in the format of ``discovery.evaluate_resources``; referencegrants is v1beta1 in the v1.4 standard channel.
REQUIRED_RESOURCES = [
    {"name": "gatewayclasses", "kind": "GatewayClass", "namespaced": False, "versions": ["v1"]},
    {"name": "gateways", "kind": "Gateway", "namespaced": True, "versions": ["v1"]},
    {"name": "grpcroutes", "kind": "GRPCRoute", "namespaced": True, "versions": ["v1"]},
    {"name": "httproutes", "kind": "HTTPRoute", "namespaced": True, "versions": ["v1"]},
    {"name": "referencegrants", "kind": "ReferenceGrant", "namespaced": True, "versions": ["v1", "v1beta1"]},
]

HEADER_NAME = "x-ai-model"
HEADER_VALUE = "model-b"
BACKEND_A = "aic-model-a"
BACKEND_B = "aic-model-b"
BACKEND_PORT = 8080
REQUEST_PATH = "/hostname"
OUTPUT_PREFIX = "AIC "
COMPONENT_LABEL = "ai-conformance.rke2/component"

# ---------------------------------------------------------------- discovery


def evaluate_api_resources(resource_lists):
    """Check that the Gateway API resources the requirement needs are served.

    ``resource_lists`` maps a group/version (``gateway.networking.k8s.io/v1``)
    to its APIResourceList dict, or to None when that version is not served.
    Returns ``(ok, message, rows)``: rows (``discovery.resource_rows`` shape)
    of the version that serves each required resource, in the order of the
    reference's ``kubectl api-resources`` output.
    """
    gvs = sorted(resource_lists)
    rows = discovery.resource_rows([resource_lists[gv] for gv in gvs])
    served = [gv.split("/", 1)[1] for gv in gvs if resource_lists[gv] is not None]
    outcome = discovery.evaluate_resources(REQUIRED_RESOURCES, rows, GROUP, served)
    chosen = []
    for req in REQUIRED_RESOURCES:
        for version in req["versions"]:
            match = [r for r in rows if r["name"] == req["name"] and r["apiVersion"] == "%s/%s" % (GROUP, version)]
            if match:
                chosen.append(match[0])
                break
    return outcome["ok"], outcome["message"], chosen


def api_resources_table(rows):
    """The ``kubectl api-resources`` table of the chosen rows."""
    return discovery.api_resources_table(rows)


# ---------------------------------------------------------------- conditions

format_condition = k8s_status.format_condition
format_conditions = k8s_status.format_conditions


def check_condition(conditions, type_, generation=None):
    """Is condition ``type_`` True and current?

    A condition whose ``observedGeneration`` is older than the object's
    ``metadata.generation`` describes an earlier spec and does not count.
    Returns ``(ok, problem)``; ``problem`` is None when ok.
    """
    cond = k8s_status.find_condition(conditions, type_)
    if cond is None:
        return False, "no %s condition" % type_
    if cond.get("status") != "True":
        return False, format_condition(cond)
    observed = cond.get("observedGeneration")
    if generation is not None and observed is not None and observed < generation:
        return False, "%s is stale (observedGeneration %s < generation %s)" % (type_, observed, generation)
    return True, None


def is_rejected(conditions, type_):
    """The condition's text when the controller explicitly said False (reason other than Pending)."""
    cond = k8s_status.find_condition(conditions, type_)
    if cond is not None and cond.get("status") == "False" and cond.get("reason") != "Pending":
        return format_condition(cond)
    return None


def _meta(obj):
    return obj.get("metadata") or {}


def _status(obj):
    return obj.get("status") or {}


def evaluate_gatewayclass(gatewayclass, controller_name=DEFAULT_CONTROLLER):
    """GatewayClass belongs to ``controller_name`` and is ``Accepted=True``."""
    name = _meta(gatewayclass).get("name")
    controller = (gatewayclass.get("spec") or {}).get("controllerName")
    conditions = _status(gatewayclass).get("conditions") or []
    if controller != controller_name:
        return False, "GatewayClass %s has controllerName %s, not %s" % (name, controller, controller_name)
    ok, problem = check_condition(conditions, "Accepted", _meta(gatewayclass).get("generation"))
    if ok:
        return True, "GatewayClass %s accepted by %s: conditions=%s" % (name, controller, format_conditions(conditions))
    return False, "GatewayClass %s not accepted (%s): conditions=%s" % (name, problem, format_conditions(conditions))


def gatewayclass_rejected(gatewayclass):
    """Message when the controller actively refused the class (Accepted=False), else None."""
    conditions = _status(gatewayclass).get("conditions") or []
    if is_rejected(conditions, "Accepted"):
        return "GatewayClass %s rejected by its controller: conditions=%s" % (
            _meta(gatewayclass).get("name"), format_conditions(conditions))
    return None


def pick_gatewayclass(gatewayclasses, controller_name=DEFAULT_CONTROLLER):
    """The best existing GatewayClass for the controller: accepted ones first, then by name."""
    mine = [gc for gc in gatewayclasses if (gc.get("spec") or {}).get("controllerName") == controller_name]
    if not mine:
        return None
    mine.sort(key=lambda gc: (not evaluate_gatewayclass(gc, controller_name)[0], _meta(gc).get("name", "")))
    return mine[0]


def evaluate_gateway(gateway):
    """Gateway ``Accepted=True`` and ``Programmed=True``, every listener programmed."""
    name = _meta(gateway).get("name")
    generation = _meta(gateway).get("generation")
    status = _status(gateway)
    conditions = status.get("conditions") or []
    problems = []
    for type_ in ("Accepted", "Programmed"):
        ok, problem = check_condition(conditions, type_, generation)
        if not ok:
            problems.append(problem)
    listeners = status.get("listeners") or []
    listener_text = []
    for listener in listeners:
        lconds = listener.get("conditions") or []
        listener_text.append("%s: %s" % (listener.get("name"), format_conditions(lconds)))
        for type_ in ("Accepted", "Programmed", "ResolvedRefs"):
            ok, problem = check_condition(lconds, type_, generation)
            if not ok and k8s_status.find_condition(lconds, type_) is not None:
                problems.append("listener %s %s" % (listener.get("name"), problem))
    detail = "conditions=%s" % format_conditions(conditions)
    if listener_text:
        detail += " listeners=[%s]" % "; ".join(listener_text)
    addresses = gateway_addresses(gateway)
    if problems:
        return False, "Gateway %s not programmed (%s): %s" % (name, "; ".join(problems), detail)
    return True, "Gateway %s programmed, addresses=%s: %s" % (name, addresses or "[]", detail)


def gateway_rejected(gateway):
    """Message when the controller refused the Gateway (Accepted=False or Programmed=False/Invalid)."""
    conditions = _status(gateway).get("conditions") or []
    accepted = is_rejected(conditions, "Accepted")
    programmed = k8s_status.find_condition(conditions, "Programmed") or {}
    if accepted or (programmed.get("status") == "False" and programmed.get("reason") == "Invalid"):
        return "Gateway %s rejected by its controller: conditions=%s" % (
            _meta(gateway).get("name"), format_conditions(conditions))
    return None


def gateway_addresses(gateway):
    """The values of ``status.addresses[]`` (IPs or hostnames)."""
    return [a.get("value") for a in _status(gateway).get("addresses") or [] if a.get("value")]


def route_parent_status(route, gateway_name, gateway_namespace=None, controller_name=None):
    """The ``status.parents[]`` entry of an HTTPRoute for a Gateway, or None."""
    route_ns = _meta(route).get("namespace")
    for parent in _status(route).get("parents") or []:
        ref = parent.get("parentRef") or {}
        if ref.get("name") != gateway_name:
            continue
        if ref.get("kind", "Gateway") != "Gateway":
            continue
        if gateway_namespace and ref.get("namespace", route_ns) not in (None, gateway_namespace):
            continue
        if controller_name and parent.get("controllerName") != controller_name:
            continue
        return parent
    return None


def evaluate_httproute(route, gateway_name, gateway_namespace=None, controller_name=None):
    """The route's parent status for the Gateway says ``Accepted=True`` and ``ResolvedRefs=True``."""
    name = _meta(route).get("name")
    generation = _meta(route).get("generation")
    parent = route_parent_status(route, gateway_name, gateway_namespace, controller_name)
    if parent is None:
        parents = _status(route).get("parents") or []
        seen = ["%s by %s" % ((p.get("parentRef") or {}).get("name"), p.get("controllerName")) for p in parents]
        return False, "HTTPRoute %s has no status from %s for parent Gateway %s (status.parents=%s)" % (
            name, controller_name or "any controller", gateway_name, "[%s]" % ", ".join(seen))
    conditions = parent.get("conditions") or []
    problems = []
    for type_ in ("Accepted", "ResolvedRefs"):
        ok, problem = check_condition(conditions, type_, generation)
        if not ok:
            problems.append(problem)
    if problems:
        return False, "HTTPRoute %s not ready on Gateway %s (%s): conditions=%s" % (
            name, gateway_name, "; ".join(problems), format_conditions(conditions))
    return True, "HTTPRoute %s accepted by Gateway %s: conditions=%s" % (name, gateway_name, format_conditions(conditions))


# ---------------------------------------------------------------- traffic


def parse_client_output(text):
    """Read the client pod's log: one ``AIC {json}`` line per phase.

    Returns ``{"phases": {phase: record}, "done": bool, "problems": [...]}``;
    other lines (shell noise, curl chatter) are ignored, broken JSON lines are
    reported in ``problems``.
    """
    phases = {}
    problems = []
    done = False
    for line in (text or "").splitlines():
        line = line.strip()
        if not line.startswith(OUTPUT_PREFIX):
            continue
        payload = line[len(OUTPUT_PREFIX):]
        try:
            record = json.loads(payload)
        except ValueError:
            problems.append("unparsable client line: %s" % payload[:120])
            continue
        if not isinstance(record, dict) or "phase" not in record:
            problems.append("client line without phase: %s" % payload[:120])
            continue
        if record["phase"] == "done":
            done = True
        else:
            phases[record["phase"]] = record
    return {"phases": phases, "done": done, "problems": problems}


def _counts(record):
    return dict((k, int(record.get(k) or 0)) for k in ("total", "a", "b", "other", "errors"))


def _tail(record):
    extra = []
    if record.get("last_error"):
        extra.append("last error: %s" % record["last_error"])
    if record.get("other_sample"):
        extra.append("unexpected answer: %r" % record["other_sample"])
    return (" (%s)" % "; ".join(extra)) if extra else ""


def evaluate_control(record):
    """(ok, cause, message) of the control requests straight to the backend Services.

    They prove that the client image runs curl and that the pod network delivers
    pod-to-Service traffic. When they fail, routing cannot be judged: a missing tool
    (curl exit 126/127) is ``test_tooling``, anything else (DNS, connect, timeout,
    an answer from something else) ``network_policy``.
    """
    if record is None:
        return False, "test_tooling", "the client printed no control result (does the client image run /bin/sh and curl?)"
    if record.get("ok"):
        return True, None, "control requests straight to the backend Services answered (%s)" % record.get("targets")
    error = record.get("last_error") or ""
    cause = "test_tooling" if error in ("curl exit 126", "curl exit 127") else "network_policy"
    what = "the client image cannot run curl" if cause == "test_tooling" else "the pod network or a NetworkPolicy blocks pod-to-Service traffic"
    return False, cause, "control requests from the client pod straight to%s got no answer from the backend after %s attempt(s)%s: %s" % (
        " " + record.get("failed", "?").strip(), record.get("attempts"), _tail(record), what)


def evaluate_warmup(record, targets=None):
    """The client found a Gateway address that answered with one of our backends."""
    if record is None:
        return False, "the client printed no warmup result"
    if record.get("ok") and record.get("target"):
        return True, "Gateway answered at %s after %s attempt(s)" % (record["target"], record.get("attempts"))
    return False, "no answer from a backend through the Gateway at %s within %ss after %s attempt(s)%s" % (
        ", ".join(targets or [record.get("target") or "?"]), record.get("seconds"), record.get("attempts"), _tail(record))


def evaluate_header_counts(record, requests, header=(HEADER_NAME, HEADER_VALUE)):
    """Every request carrying the header reached backend b; any leak or loss fails."""
    header_text = "%s: %s" % header
    if record is None:
        return False, "the client printed no result for the requests with header %s" % header_text
    c = _counts(record)
    if c["total"] != requests:
        return False, "client sent %d of %d requests with header %s" % (c["total"], requests, header_text)
    if c["a"] + c["b"] == 0:
        return False, "none of the %d requests with header %s reached a backend: %d errors, %d other answers%s" % (
            requests, header_text, c["errors"], c["other"], _tail(record))
    problems = []
    if c["a"]:
        problems.append("%d reached backend a (header routing leak)" % c["a"])
    if c["other"]:
        problems.append("%d got an answer from neither backend" % c["other"])
    if c["errors"]:
        problems.append("%d failed" % c["errors"])
    if problems:
        return False, "of %d requests with header %s only %d reached backend b: %s%s" % (
            requests, header_text, c["b"], ", ".join(problems), _tail(record))
    return True, "all %d requests with header %s reached backend b" % (requests, header_text)


def expected_share_b(weights):
    """Percentage of traffic backend b should get for weights (a, b)."""
    weight_a, weight_b = weights
    return 100.0 * weight_b / (weight_a + weight_b)


def split_accepted(b, answered, share_b, tolerance):
    """Whether ``b`` of ``answered`` requests on backend b passes: within ``tolerance`` points of
    ``share_b`` and, when both backends have weight (0 < share_b < 100), each backend got at least one."""
    if answered <= 0:
        return False
    if 0 < share_b < 100 and (b == 0 or b == answered):
        return False
    return abs(100.0 * b / answered - share_b) <= tolerance + 1e-9


def evaluate_weighted_counts(record, requests, weights, tolerance):
    """The split between a and b is within ``tolerance`` percentage points of the weights,
    and with both weights above 0 each backend received traffic."""
    if record is None:
        return False, "the client printed no result for the weighted requests"
    c = _counts(record)
    if c["total"] != requests:
        return False, "client sent %d of %d weighted requests" % (c["total"], requests)
    answered = c["a"] + c["b"]
    if answered == 0:
        return False, "none of the %d weighted requests reached a backend: %d errors, %d other answers%s" % (
            requests, c["errors"], c["other"], _tail(record))
    expected_b = expected_share_b(weights)
    observed_b = 100.0 * c["b"] / answered
    split = "a=%d b=%d (b %.1f%%, expected %.1f%% +/- %s points for weights %s/%s)" % (
        c["a"], c["b"], observed_b, expected_b, tolerance, weights[0], weights[1])
    problems = []
    if c["other"]:
        problems.append("%d got an answer from neither backend" % c["other"])
    if c["errors"]:
        problems.append("%d failed" % c["errors"])
    if abs(observed_b - expected_b) > tolerance + 1e-9:
        problems.insert(0, "split off by %.1f points" % abs(observed_b - expected_b))
    if all(w > 0 for w in weights):
        starved = [name for name, count in (("a", c["a"]), ("b", c["b"])) if count == 0]
        if starved:
            problems.insert(0, "backend %s (weight %s) received no request" % (starved[0], weights[0 if starved[0] == "a" else 1]))
    if problems:
        return False, "weighted split of %d requests not as configured: %s; %s%s" % (
            requests, ", ".join(problems), split, _tail(record))
    return True, "weighted split of %d requests within tolerance: %s" % (requests, split)


# ---------------------------------------------------------------- how many requests a correct router needs

MAX_TOLERANCE = 25
MAX_REQUESTS = 10000
PASS_PROBABILITY = 0.999


def _pmf_window(n, p, lo, hi):
    """Binomial(n, p) probabilities of lo..hi (exact: log-gamma start, then the ratio recurrence)."""
    lo, hi = max(lo, 0), min(hi, n)
    if lo > hi:
        return []
    log_p, log_q = math.log(p), math.log1p(-p)
    value = math.exp(math.lgamma(n + 1) - math.lgamma(lo + 1) - math.lgamma(n - lo + 1) + lo * log_p + (n - lo) * log_q)
    out = [value]
    ratio = p / (1.0 - p)
    for k in range(lo, hi):
        value *= ratio * (n - k) / (k + 1.0)
        out.append(value)
    return out


def pass_probability(requests, share_b, tolerance):
    """Exact probability that a router splitting correctly at random passes ``split_accepted``.

    Each request goes to backend b with probability ``share_b``/100, so the count
    of b is Binomial(requests, share_b/100); the result sums its probabilities over
    the accepted counts (within the tolerance, both backends hit when both have weight).
    """
    n = int(requests)
    p = share_b / 100.0
    if n < 1:
        return 0.0
    if p <= 0.0 or p >= 1.0:
        return 1.0
    lo = int(math.floor(n * (p - tolerance / 100.0))) - 1
    hi = int(math.ceil(n * (p + tolerance / 100.0))) + 1
    probabilities = _pmf_window(n, p, lo, hi)
    return min(1.0, sum(q for k, q in zip(range(max(lo, 0), n + 1), probabilities) if split_accepted(k, n, share_b, tolerance)))


def _surely_enough(share_b, tolerance):
    """A count from which on every larger one passes with >= 99.9 % (Hoeffding's bound plus the chance that a
    backend gets nothing: 2 exp(-2 n t^2) + p^n + (1-p)^n <= 0.001)."""
    p, t = share_b / 100.0, tolerance / 100.0
    n = 1
    while 2 * math.exp(-2 * n * t * t) + p ** n + (1 - p) ** n > 1 - PASS_PROBABILITY:
        n = n * 2 if n < 64 else n + max(1, n // 8)
    return n


def minimum_requests(share_b, tolerance, limit=MAX_REQUESTS):
    """The smallest request count N such that every count from N up to ``limit`` passes with >= 99.9 %
    (exact binomial probabilities), or None when even ``limit`` requests are not enough."""
    if share_b <= 0 or share_b >= 100:
        return 1
    top = min(_surely_enough(share_b, tolerance), limit)
    if pass_probability(top, share_b, tolerance) < PASS_PROBABILITY:
        return None
    n = top
    while n > 1 and pass_probability(n - 1, share_b, tolerance) >= PASS_PROBABILITY:
        n -= 1
    return n


def validate_traffic_options(requests, weights, tolerance):
    """Problems with the traffic options (empty list when they are usable)."""
    problems = []
    if requests < 1:
        problems.append("requests must be at least 1, got %s" % requests)
    elif requests > MAX_REQUESTS:
        problems.append("requests must be at most %d, got %s" % (MAX_REQUESTS, requests))
    if len(weights) != 2:
        problems.append("weights must be two numbers (backend a, backend b), got %s" % (weights,))
    elif any(w < 0 for w in weights) or sum(weights) <= 0:
        problems.append("weights must be non-negative and not both zero, got %s" % (weights,))
    elif any(w > 1000000 for w in weights):
        problems.append("weights must be at most 1000000 (Gateway API limit), got %s" % (weights,))
    if not 0 < tolerance <= MAX_TOLERANCE:
        problems.append("tolerance must be above 0 and at most %d percentage points (a wider one would pass a router "
                        "that ignores the weights), got %s" % (MAX_TOLERANCE, tolerance))
    if problems or not 1 <= requests <= MAX_REQUESTS:
        return problems
    share = expected_share_b(weights)
    probability = pass_probability(requests, share, tolerance)
    if probability < PASS_PROBABILITY:
        minimum = minimum_requests(share, tolerance)
        need = ("at least %d requests" % minimum) if minimum else ("more than %d requests; use a larger tolerance" % MAX_REQUESTS)
        problems.append("requests=%d is too few: a router that splits exactly %s/%s would pass only with probability %.2f%% "
                        "at tolerance %s points (exact binomial); a 99.9%% chance needs %s" % (
                            requests, weights[0], weights[1], 100 * probability, tolerance, need))
    return problems


# ---------------------------------------------------------------- manifests


def _labels(labels, component=None):
    out = dict(labels or {})
    if component:
        out[COMPONENT_LABEL] = component
    return out


def route_hostname(namespace):
    """A hostname only our route answers to, so other routes on the shared entrypoint cannot interfere."""
    return "%s.ai-conformance.test" % namespace


def render_gatewayclass(name, controller_name, labels):
    return {
        "apiVersion": V1,
        "kind": "GatewayClass",
        "metadata": {"name": name, "labels": _labels(labels, "gatewayclass")},
        "spec": {
            "controllerName": controller_name,
            "description": "Temporary: ai_conformance.rke2 ai_inference check",
        },
    }


def render_gateway(name, namespace, class_name, listener_port, labels):
    return {
        "apiVersion": V1,
        "kind": "Gateway",
        "metadata": {"name": name, "namespace": namespace, "labels": _labels(labels, "gateway")},
        "spec": {
            "gatewayClassName": class_name,
            "listeners": [{
                "name": "http",
                "protocol": "HTTP",
                "port": int(listener_port),
                "allowedRoutes": {"namespaces": {"from": "Same"}},
            }],
        },
    }


def render_httproute(name, namespace, gateway_name, weights, labels, hostname=None):
    """Two rules: the header goes only to b; everything else is split by weight between a and b."""
    return {
        "apiVersion": V1,
        "kind": "HTTPRoute",
        "metadata": {"name": name, "namespace": namespace, "labels": _labels(labels, "httproute")},
        "spec": {
            "parentRefs": [{"group": GROUP, "kind": "Gateway", "name": gateway_name, "sectionName": "http"}],
            "hostnames": [hostname or route_hostname(namespace)],
            "rules": [
                {
                    "name": "by-header",
                    "matches": [{"headers": [{"type": "Exact", "name": HEADER_NAME, "value": HEADER_VALUE}]}],
                    "backendRefs": [{"kind": "Service", "name": BACKEND_B, "port": BACKEND_PORT}],
                },
                {
                    "name": "weighted",
                    "matches": [{"path": {"type": "PathPrefix", "value": "/"}}],
                    "backendRefs": [
                        {"kind": "Service", "name": BACKEND_A, "port": BACKEND_PORT, "weight": int(weights[0])},
                        {"kind": "Service", "name": BACKEND_B, "port": BACKEND_PORT, "weight": int(weights[1])},
                    ],
                },
            ],
        },
    }


def render_backend(name, namespace, builder, labels):
    """Deployment + Service of an agnhost ``netexec`` backend; ``/hostname`` answers with the pod name,
    which starts with the Deployment name, so the answer says whether a or b served it.

    The pod template comes from the one test-pod builder (``testpods.PodBuilder``): restricted,
    requests/limits, tolerations, the pinned ``agnhost`` image (mirror, pull secrets).
    """
    selector = {"app.kubernetes.io/name": name, "app.kubernetes.io/part-of": "ai-conformance-ai-inference"}
    pod_labels = dict(_labels(labels, "backend"), **selector)
    container = builder.container(
        "echo", "agnhost", args=["netexec", "--http-port=%d" % BACKEND_PORT, "--udp-port=-1"],
        ports=[{"name": "http", "containerPort": BACKEND_PORT, "protocol": "TCP"}],
        readiness_probe={"httpGet": {"path": REQUEST_PATH, "port": BACKEND_PORT}, "periodSeconds": 2})
    deployment = {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": name, "namespace": namespace, "labels": pod_labels},
        "spec": {
            "replicas": 1,
            "selector": {"matchLabels": selector},
            "template": builder.template([container], labels=pod_labels, restart_policy="Always"),
        },
    }
    service = {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": {"name": name, "namespace": namespace, "labels": _labels(labels, "backend")},
        "spec": {
            "selector": selector,
            "ports": [{"name": "http", "port": BACKEND_PORT, "targetPort": BACKEND_PORT, "protocol": "TCP"}],
        },
    }
    return [deployment, service]


def control_targets():
    """``service:port`` of both backends: the client's control requests go there directly, not through the Gateway."""
    return ["%s:%d" % (BACKEND_A, BACKEND_PORT), "%s:%d" % (BACKEND_B, BACKEND_PORT)]


# The client: POSIX sh + curl (both in agnhost, an alpine image). Bounded: a
# warmup deadline, then exactly N requests per phase, each with a timeout.
CLIENT_SCRIPT = r"""
set -u
clean() { printf '%s' "$1" | tr -cd 'A-Za-z0-9._:/ =-' | cut -c1-80; }
one() {
  # $1 host:port, $2 extra header or "", $3 Host header (default: the route's hostname)
  if [ -n "$2" ]; then
    code=$(curl -s -o /tmp/body -w '%{http_code}' -m "$AIC_REQUEST_TIMEOUT" -H "Host: ${3:-$AIC_HOST}" -H "$2" "http://$1$AIC_PATH" 2>/dev/null)
  else
    code=$(curl -s -o /tmp/body -w '%{http_code}' -m "$AIC_REQUEST_TIMEOUT" -H "Host: ${3:-$AIC_HOST}" "http://$1$AIC_PATH" 2>/dev/null)
  fi
  rc=$?
  body=$(cat /tmp/body 2>/dev/null)
  rm -f /tmp/body
  if [ "$rc" -ne 0 ]; then last_error="curl exit $rc"; kind=error; return; fi
  case "$code" in 2*) ;; *) last_error="http $code"; kind=error; return;; esac
  case "$body" in
    "$AIC_BACKEND_A"-*) kind=a ;;
    "$AIC_BACKEND_B"-*) kind=b ;;
    *) other_sample=$(clean "$body"); kind=other ;;
  esac
}
phase() {
  a=0; b=0; other=0; errors=0; i=0; last_error=""; other_sample=""
  while [ "$i" -lt "$AIC_REQUESTS" ]; do
    i=$((i + 1))
    one "$target" "$2"
    case "$kind" in a) a=$((a + 1));; b) b=$((b + 1));; other) other=$((other + 1));; *) errors=$((errors + 1));; esac
  done
  printf 'AIC {"phase":"%s","target":"%s","total":%d,"a":%d,"b":%d,"other":%d,"errors":%d,"last_error":"%s","other_sample":"%s"}\n' \
    "$1" "$(clean "$target")" "$i" "$a" "$b" "$other" "$errors" "$(clean "$last_error")" "$other_sample"
}
# control: straight to each backend Service (no Gateway): proves the image, curl and the pod network
attempts=0; failed=""; last_error=""; other_sample=""
for control in $AIC_CONTROL_TARGETS; do
  tries=0; kind=""
  while [ "$tries" -lt "$AIC_CONTROL_ATTEMPTS" ]; do
    tries=$((tries + 1)); attempts=$((attempts + 1))
    one "$control" "" "$control"
    if [ "$kind" = a ] || [ "$kind" = b ]; then break; fi
    sleep 1
  done
  if [ "$kind" != a ] && [ "$kind" != b ]; then failed="$failed $control"; fi
done
if [ -n "$failed" ]; then
  printf 'AIC {"phase":"control","ok":false,"failed":"%s","attempts":%d,"last_error":"%s","other_sample":"%s"}\n' \
    "$(clean "$failed")" "$attempts" "$(clean "$last_error")" "$other_sample"
  echo 'AIC {"phase":"done"}'
  exit 0
fi
printf 'AIC {"phase":"control","ok":true,"targets":"%s","attempts":%d}\n' "$(clean "$AIC_CONTROL_TARGETS")" "$attempts"
start=$(date +%s); attempts=0; target=""; last_error=""; other_sample=""
while [ -z "$target" ]; do
  for candidate in $AIC_TARGETS; do
    attempts=$((attempts + 1))
    one "$candidate" ""
    if [ "$kind" = a ] || [ "$kind" = b ]; then target=$candidate; break; fi
  done
  [ -n "$target" ] && break
  if [ $(( $(date +%s) - start )) -ge "$AIC_WARMUP_SECONDS" ]; then break; fi
  sleep 1
done
seconds=$(( $(date +%s) - start ))
if [ -z "$target" ]; then
  printf 'AIC {"phase":"warmup","ok":false,"target":"","attempts":%d,"seconds":%d,"last_error":"%s","other_sample":"%s"}\n' \
    "$attempts" "$seconds" "$(clean "$last_error")" "$other_sample"
  echo 'AIC {"phase":"done"}'
  exit 0
fi
printf 'AIC {"phase":"warmup","ok":true,"target":"%s","attempts":%d,"seconds":%d}\n' "$(clean "$target")" "$attempts" "$seconds"
phase header "$AIC_HEADER"
phase weighted ""
echo 'AIC {"phase":"done"}'
"""


CONTROL_ATTEMPTS = 5


def client_deadline(requests, warmup_seconds, request_timeout):
    """Upper bound in seconds for the client pod's whole run."""
    control = 2 * CONTROL_ATTEMPTS * (request_timeout + 1)
    return int(control + warmup_seconds + 2 * requests * request_timeout + 30)


def render_client_pod(name, namespace, builder, targets, hostname, requests, labels,
                      warmup_seconds=60, request_timeout=5):
    """A pod (from the test-pod builder, image ``agnhost``) that first sends a control request straight to
    each backend Service, then ``requests`` requests with the header and ``requests`` without through the
    Gateway, and prints one ``AIC {json}`` line per phase (see ``parse_client_output``)."""
    env = {
        "AIC_CONTROL_TARGETS": " ".join(control_targets()),
        "AIC_CONTROL_ATTEMPTS": str(CONTROL_ATTEMPTS),
        "AIC_TARGETS": " ".join(targets),
        "AIC_HOST": hostname,
        "AIC_PATH": REQUEST_PATH,
        "AIC_REQUESTS": str(int(requests)),
        "AIC_REQUEST_TIMEOUT": str(int(request_timeout)),
        "AIC_WARMUP_SECONDS": str(int(warmup_seconds)),
        "AIC_HEADER": "%s: %s" % (HEADER_NAME, HEADER_VALUE),
        "AIC_BACKEND_A": BACKEND_A,
        "AIC_BACKEND_B": BACKEND_B,
    }
    container = builder.container("client", "agnhost", command=["/bin/sh", "-c", CLIENT_SCRIPT], env=env)
    pod = builder.pod(name, namespace, [container], labels=_labels(labels, "client"))
    pod["spec"]["activeDeadlineSeconds"] = client_deadline(requests, warmup_seconds, request_timeout)
    return pod


def client_targets(gateway, port, extra=None):
    """``host:port`` the client tries, in order: the Gateway's status addresses, then ``extra``."""
    targets = []
    for address in gateway_addresses(gateway):
        host = "[%s]" % address if ":" in address else address
        targets.append("%s:%s" % (host, port))
    for item in extra or []:
        if item and item not in targets:
            targets.append(item)
    return targets
