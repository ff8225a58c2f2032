# -*- coding: utf-8 -*-
# Copyright: ai_conformance.rke2 contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Thin Kubernetes API layer for the requirement modules.

Builds the client with kubernetes.core's ``get_api_client`` (same auth options
as every kubernetes.core module), then talks to the API by path so that every
call is explicit, bounded by a timeout and turned into a clear error.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import json
import os
import random
import socket
import string
import time
import traceback

try:
    from urllib.parse import quote, urlparse
except ImportError:  # pragma: no cover - Python 2 is not supported
    from urllib import quote  # noqa: F401
    from urlparse import urlparse  # noqa: F401

from ansible.module_utils.common.text.converters import to_native, to_text

from ansible_collections.ai_conformance.rke2.plugins.module_utils import pods as pod_status
from ansible_collections.ai_conformance.rke2.plugins.module_utils import policy
from ansible_collections.ai_conformance.rke2.plugins.module_utils.result import ResultBuilder, validate_result

try:
    from ansible_collections.kubernetes.core.plugins.module_utils.args_common import AUTH_ARG_SPEC
except ImportError:  # pragma: no cover - checked in Kube.__init__
    AUTH_ARG_SPEC = {}

try:
    import yaml
    import kubernetes.client
    from kubernetes.client.exceptions import ApiException
    from kubernetes.dynamic.exceptions import DynamicApiError
    import urllib3

    HAS_K8S = True
    K8S_IMPORT_ERROR = None
except ImportError:
    HAS_K8S = False
    K8S_IMPORT_ERROR = traceback.format_exc()

    class ApiException(Exception):
        """Stand-in so that the except clauses stay valid without the library."""

    class DynamicApiError(ApiException):
        """Stand-in so that the except clauses stay valid without the library."""

MANAGED_BY_LABEL = "app.kubernetes.io/managed-by"
MANAGED_BY_VALUE = "ai-conformance-rke2"
REQUIREMENT_LABEL = "ai-conformance.rke2/requirement"
RUN_ID_LABEL = "ai-conformance.rke2/run-id"
MANAGED_SELECTOR = "%s=%s" % (MANAGED_BY_LABEL, MANAGED_BY_VALUE)

# Pod Security level every temporary namespace enforces: a pass also proves the
# workload runs under it (RKE2's CIS profile enforces restricted cluster-wide).
POD_SECURITY_LABELS = {
    "pod-security.kubernetes.io/enforce": "restricted",
    "pod-security.kubernetes.io/enforce-version": "latest",
    "pod-security.kubernetes.io/warn": "restricted",
    "pod-security.kubernetes.io/warn-version": "latest",
}

COMMON_ARG_SPEC = {
    "timeout": {"type": "int", "default": 180},
    "request_timeout": {"type": "int", "default": 20},
    "run_id": {"type": "str"},
    # test pods (testpods.py): tolerations, image mirror, pull secrets, image overrides
    "tolerations": {"type": "list", "elements": "dict", "default": []},
    "image_registry": {"type": "str"},
    "image_pull_secrets": {"type": "list", "elements": "str", "default": [], "no_log": False},
    "images": {"type": "dict", "default": {}},
}


def common_argument_spec(extra=None):
    """kubernetes.core auth options + our common options + the module's own."""
    spec = dict(AUTH_ARG_SPEC)
    spec.update(COMMON_ARG_SPEC)
    spec.update(extra or {})
    return spec


# --------------------------------------------------------------------------- errors


class KubeError(Exception):
    """A Kubernetes API call failed; ``str()`` is a sentence for humans."""

    def __init__(self, message, status=None, reason=None, body=None):
        super(KubeError, self).__init__(message)
        self.message = message
        self.status = status
        self.reason = reason
        self.body = body


class ConfigError(KubeError):
    """The kubeconfig/context cannot be used."""


class Unreachable(KubeError):
    """The API server could not be reached (refused, timed out, TLS)."""


class Unauthorized(KubeError):
    """401: the credentials were rejected."""


class Forbidden(KubeError):
    """403: RBAC (or an admission webhook) denied the request."""


class NotFound(KubeError):
    """404 for an object."""


class Conflict(KubeError):
    """409: already exists or stale resourceVersion."""


class Invalid(KubeError):
    """422: the object failed validation."""


class ResourceNotServed(KubeError):
    """The API group/version or kind is not served (CRD missing)."""


class WaitTimeout(KubeError):
    """A bounded wait ran out; the message says what and the last state."""


class Stuck(KubeError):
    """A wait stopped early because what it waits for cannot happen.

    ``cause`` is the policy's cause (``policy.CAUSES``); by default derived from ``kind``.
    """

    def __init__(self, message, kind="stuck", state=None, cause=None):
        super(Stuck, self).__init__(message)
        self.kind = kind
        self.state = state
        self.cause = cause or policy.classify_stuck(kind)


_STATUS_ERRORS = {401: Unauthorized, 403: Forbidden, 404: NotFound, 409: Conflict, 422: Invalid}


def _decode(data):
    """Parse a response body: JSON when it is JSON, else text."""
    text = to_text(data or b"", errors="surrogate_or_strict")
    try:
        return json.loads(text)
    except ValueError:
        return text


def error_from_status(status, body, method, path):
    """Map an HTTP error answer to a KubeError subclass with a clear message."""
    reason = None
    server_message = None
    if isinstance(body, dict):
        reason = body.get("reason")
        server_message = body.get("message")
    elif isinstance(body, str) and body.strip():
        server_message = body.strip()
    where = "%s %s" % (method, path)
    if status == 401:
        msg = "Unauthorized (401) on %s: the API server rejected the credentials of the kubeconfig" % where
    elif status == 403:
        msg = "Forbidden (403) on %s: %s" % (where, server_message or "access denied")
    elif status == 404 and not isinstance(body, dict):
        msg = "Not served (404) on %s: %s" % (where, server_message or "404 page not found")
        return ResourceNotServed(msg, status=status, reason=reason, body=body)
    else:
        msg = "%s (%s) on %s: %s" % (reason or "Error", status, where, server_message or "no message")
    return _STATUS_ERRORS.get(status, KubeError)(msg, status=status, reason=reason, body=body)


def _unreachable_message(exc, host):
    """One sentence for a connection-level failure."""
    text = to_native(exc)
    lowered = text.lower()
    if "certificate" in lowered or "ssl" in lowered or "tls" in lowered:
        what = "TLS error"
    elif "refused" in lowered:
        what = "connection refused"
    elif "timed out" in lowered or "timeout" in lowered:
        what = "timed out"
    elif "name or service not known" in lowered or "nodename nor servname" in lowered or "resolution" in lowered:
        what = "host name not resolvable"
    else:
        what = "connection failed"
    return "API server %s unreachable (%s): %s" % (host, what, text)


# --------------------------------------------------------------------------- client


def random_suffix(length=5):
    """A DNS-safe random suffix for object names."""
    alphabet = string.ascii_lowercase + string.digits
    chooser = random.SystemRandom()
    return "".join(chooser.choice(alphabet) for dummy in range(length))


def api_path(api_version, plural, name=None, namespace=None, subresource=None):
    """REST path of a collection or object."""
    base = "/api/v1" if api_version == "v1" else "/apis/%s" % api_version
    parts = [base]
    if namespace:
        parts.append("namespaces/%s" % quote(namespace, safe=""))
    parts.append(plural)
    if name:
        parts.append(quote(name, safe=""))
    if subresource:
        parts.append(subresource)
    return "/".join(parts)


class Kube:
    """API access for one module run: requests, discovery, CRUD, cleanup, waits."""

    def __init__(self, module, client=None):
        self.module = module
        params = module.params
        self.request_timeout = params.get("request_timeout") or 20
        self.run_id = params.get("run_id") or random_suffix(8)
        self._cleanup = []
        self._resource_lists = {}
        self.client = client if client is not None else self._connect()
        self.host = self.client.configuration.host

    def _connect(self):
        if not HAS_K8S:
            raise ConfigError("the kubernetes Python library is required: %s" % K8S_IMPORT_ERROR)
        from ansible_collections.kubernetes.core.plugins.module_utils.k8s.client import get_api_client
        from ansible_collections.kubernetes.core.plugins.module_utils.k8s.exceptions import CoreException

        server = check_kubeconfig(self.module.params)
        # Do not repeat a request that timed out (urllib3 retries 3 times by default);
        # a refused connection may be retried once.
        urllib3.util.retry.Retry.DEFAULT = urllib3.util.retry.Retry(total=2, connect=1, read=0, status=0, redirect=3)
        if server:
            probe_tcp(server, timeout=self.module.params.get("connect_timeout") or 5)
        # get_api_client runs discovery without a timeout while it builds the
        # client: first prove, with a bounded request, that the server answers.
        self._probe_version()
        try:
            return get_api_client(module=self.module)
        except ApiException as exc:  # the client runs discovery while it is built
            raise error_from_status(exc.status, _decode(exc.body), "GET", "(discovery while connecting)")
        except (urllib3.exceptions.HTTPError, socket.error, OSError) as exc:
            raise Unreachable(_unreachable_message(exc, describe_target(self.module.params)))
        except CoreException as exc:
            raise ConfigError("%s (%s)" % (to_native(exc), describe_target(self.module.params)))
        except Exception as exc:  # kubeconfig parse errors surface as many types
            raise ConfigError("could not load the kubeconfig: %s (%s)" % (to_native(exc), describe_target(self.module.params)))

    def _probe_version(self):
        """GET /version with the kubeconfig's TLS and credentials, bounded by request_timeout."""
        from ansible_collections.kubernetes.core.plugins.module_utils.k8s import client as core_client

        try:
            configuration = core_client._create_configuration(core_client._create_auth_spec(self.module))
        except Exception as exc:  # kubeconfig parse errors surface as many types
            raise ConfigError("could not load the kubeconfig: %s (%s)" % (to_native(exc), describe_target(self.module.params)))
        api = kubernetes.client.ApiClient(configuration)
        try:
            kubernetes.client.VersionApi(api).get_code(_request_timeout=(self.module.params.get("connect_timeout") or 5, self.request_timeout))
        except ApiException as exc:
            raise error_from_status(exc.status, _decode(exc.body), "GET", "/version")
        except (urllib3.exceptions.HTTPError, socket.error, OSError) as exc:
            raise Unreachable(_unreachable_message(exc, configuration.host))
        finally:
            api.close()

    # -- raw requests -------------------------------------------------------

    def request(self, method, path, body=None, query=None, content_type=None, timeout=None):
        """Send one request; return parsed JSON (or text); raise KubeError."""
        query_params = [(k, v) for k, v in (query or {}).items() if v is not None]
        kwargs = {"query_params": query_params, "serialize": False, "_request_timeout": timeout or self.request_timeout}
        if content_type:
            kwargs["content_type"] = content_type
        try:
            response = self.client.client.request(method, path, body=body, **kwargs)
        except DynamicApiError as exc:
            raise error_from_status(exc.status, _decode(exc.body), method, path)
        except (urllib3.exceptions.HTTPError, socket.error, OSError) as exc:
            raise Unreachable(_unreachable_message(exc, self.host))
        return _decode(response.data)

    # -- discovery ----------------------------------------------------------

    def version(self):
        """The server's /version document."""
        return self.request("GET", "/version")

    def api_groups(self):
        """The /apis APIGroupList."""
        return self.request("GET", "/apis")

    def api_resources(self, group_version):
        """APIResourceList of a group/version, or None when it is not served."""
        if group_version not in self._resource_lists:
            path = "/api/v1" if group_version == "v1" else "/apis/%s" % group_version
            try:
                self._resource_lists[group_version] = self.request("GET", path)
            except (NotFound, ResourceNotServed):
                self._resource_lists[group_version] = None
        return self._resource_lists[group_version]

    def resource_for(self, api_version, kind):
        """(plural, namespaced) of a kind; ResourceNotServed when absent."""
        resources = self.api_resources(api_version)
        if resources is None:
            raise ResourceNotServed(
                "the API server does not serve %s (needed for %s); is its CRD or component installed?" % (api_version, kind)
            )
        for item in resources.get("resources", []):
            if item.get("kind") == kind and "/" not in item.get("name", ""):
                return item["name"], item.get("namespaced", False)
        raise ResourceNotServed("the API server serves %s but not the kind %s; is its CRD installed?" % (api_version, kind))

    # -- CRUD ---------------------------------------------------------------

    def _path(self, api_version, kind, name=None, namespace=None, subresource=None):
        plural, namespaced = self.resource_for(api_version, kind)
        return api_path(api_version, plural, name, namespace if namespaced else None, subresource)

    def get(self, api_version, kind, name, namespace=None):
        """The object, or None when it does not exist."""
        try:
            return self.request("GET", self._path(api_version, kind, name, namespace))
        except NotFound:
            return None

    def list(self, api_version, kind, namespace=None, label_selector=None, field_selector=None, limit=None):
        """Items of a list call (one page when ``limit`` is given, else all pages)."""
        path = self._path(api_version, kind, namespace=namespace)
        items = []
        token = None
        while True:
            query = {"labelSelector": label_selector, "fieldSelector": field_selector, "limit": limit or 500, "continue": token}
            answer = self.request("GET", path, query=query)
            items.extend(answer.get("items") or [])
            token = (answer.get("metadata") or {}).get("continue")
            if not token or limit:
                return items

    def create(self, obj, dry_run=False, track=True):
        """Create an object; unless dry-run, remember it for cleanup."""
        meta = obj.get("metadata", {})
        path = self._path(obj["apiVersion"], obj["kind"], namespace=meta.get("namespace"))
        created = self.request("POST", path, body=obj, query={"dryRun": "All" if dry_run else None})
        if track and not dry_run:
            self.track(created)
        return created

    def delete(self, api_version, kind, name, namespace=None):
        """Delete (background propagation); True if deleted, False if already gone."""
        try:
            self.request(
                "DELETE",
                self._path(api_version, kind, name, namespace),
                body={"kind": "DeleteOptions", "apiVersion": "v1", "propagationPolicy": "Background"},
            )
            return True
        except NotFound:
            return False

    def patch_merge(self, api_version, kind, name, patch, namespace=None, subresource=None):
        """JSON merge patch."""
        path = self._path(api_version, kind, name, namespace, subresource)
        return self.request("PATCH", path, body=patch, content_type="application/merge-patch+json")

    def apply(self, obj, field_manager="ai-conformance-rke2", force=True):
        """Server-side apply."""
        meta = obj["metadata"]
        path = self._path(obj["apiVersion"], obj["kind"], meta["name"], meta.get("namespace"))
        query = {"fieldManager": field_manager, "force": "true" if force else None}
        return self.request("PATCH", path, body=obj, query=query, content_type="application/apply-patch+yaml")

    # -- pods, logs, proxy ----------------------------------------------------

    def pod_logs(self, namespace, name, container=None, tail_lines=None):
        """Text of a pod's log."""
        path = api_path("v1", "pods", name, namespace, "log")
        answer = self.request("GET", path, query={"container": container, "tailLines": tail_lines})
        return answer if isinstance(answer, str) else json.dumps(answer)

    def service_proxy(self, namespace, service, port, path="/", query=None):
        """GET through the API server's service proxy; returns text or JSON."""
        target = "%s:%s" % (service, port) if port else service
        full = "%s/proxy/%s" % (api_path("v1", "services", target, namespace), path.lstrip("/"))
        return self.request("GET", full, query=query)

    def pod_proxy(self, namespace, pod, port, path="/", query=None):
        """GET through the API server's pod proxy (one given pod); returns text or JSON."""
        target = "%s:%s" % (pod, port) if port else pod
        full = "%s/proxy/%s" % (api_path("v1", "pods", target, namespace), path.lstrip("/"))
        return self.request("GET", full, query=query)

    # -- ownership and cleanup ---------------------------------------------

    def labels(self, requirement):
        """Labels that mark an object as ours (found again by cleanup)."""
        return {MANAGED_BY_LABEL: MANAGED_BY_VALUE, REQUIREMENT_LABEL: requirement, RUN_ID_LABEL: self.run_id}

    def track(self, obj):
        """Register a created object for deletion by cleanup()."""
        meta = obj.get("metadata", {})
        self._cleanup.append((obj["apiVersion"], obj["kind"], meta["name"], meta.get("namespace")))

    def temp_namespace(self, requirement):
        """Create a uniquely named namespace labelled as ours; returns its name."""
        name = "aic-%s-%s" % (requirement.replace("_", "-"), random_suffix())
        labels = dict(self.labels(requirement), **POD_SECURITY_LABELS)
        body = {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": name, "labels": labels}}
        self.create(body)
        self._copy_pull_secrets(name, requirement)
        return name

    def _copy_pull_secrets(self, namespace, requirement):
        """Copy the ``image_pull_secrets`` (``ns/name`` or ``name`` in default) into a temporary namespace."""
        for ref in self.module.params.get("image_pull_secrets") or []:
            source_ns, _sep, secret_name = ref.rpartition("/")
            source = self.get("v1", "Secret", secret_name, source_ns or "default")
            if source is None:
                raise NotFound("image pull Secret %s not found (image_pull_secrets names namespace/name, default namespace 'default')" % ref,
                               status=404)
            copy_body = {"apiVersion": "v1", "kind": "Secret", "type": source.get("type"), "data": source.get("data") or {},
                         "metadata": {"name": secret_name, "namespace": namespace, "labels": self.labels(requirement)}}
            self.create(copy_body, track=False)

    def cleanup(self):
        """Delete every tracked object, newest first, namespaces last.

        Never raises; returns {"deleted": [...], "gone": [...], "failed": [...]}.
        """
        report = {"deleted": [], "gone": [], "failed": []}
        ordered = list(reversed(self._cleanup))
        ordered.sort(key=lambda item: item[1] == "Namespace")
        for api_version, kind, name, namespace in ordered:
            label = "%s/%s" % (kind, name) if not namespace else "%s/%s/%s" % (kind, namespace, name)
            try:
                deleted = self.delete(api_version, kind, name, namespace)
                report["deleted" if deleted else "gone"].append(label)
            except KubeError as exc:
                report["failed"].append("%s: %s" % (label, exc))
        self._cleanup = []
        return report

    # -- waits --------------------------------------------------------------

    def wait_for(self, probe, timeout, interval=2.0, what="condition"):
        """Call ``probe()`` until truthy; it may return (done, state) and raise Stuck.

        Raises WaitTimeout naming ``what`` and the last observed state.
        """
        deadline = time.monotonic() + timeout
        state = None
        while True:
            outcome = probe()
            done, state = outcome if isinstance(outcome, tuple) else (outcome, state)
            if done:
                return state if state is not None else done
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise WaitTimeout("%s not reached after %ss; last state: %s" % (what, timeout, _short(state)), body=state)
            time.sleep(min(interval, remaining))

    def wait_for_pods(self, namespace, label_selector, count, phase="Running", timeout=120, interval=2.0):
        """Wait until ``count`` pods reach ``phase``; stop early on a real problem."""

        def probe():
            found = self.list("v1", "Pod", namespace=namespace, label_selector=label_selector)
            for pod in found:
                problem = pod_status.pod_problem(pod)
                if problem:
                    classified = policy.classify_pod(pod)
                    raise Stuck(
                        "pod %s/%s cannot reach %s: %s" % (namespace, pod["metadata"]["name"], phase, problem["message"]),
                        kind=problem["kind"],
                        state=pod_status.summarize(found),
                        cause=classified[0] if classified else None,
                    )
            ready = [p for p in found if pod_status.reached(p, phase)]
            return len(ready) >= count, pod_status.summarize(found)

        return self.wait_for(probe, timeout, interval, "%d pod(s) %s in %s (%s)" % (count, phase, namespace, label_selector))


def _short(value, limit=1500):
    text = value if isinstance(value, str) else json.dumps(value, default=str, sort_keys=True)
    return text if len(text) <= limit else text[:limit] + "..."


# --------------------------------------------------------------------------- preflight helpers


def kubeconfig_path(params):
    """The kubeconfig file the client will read (param, K8S_AUTH_KUBECONFIG, KUBECONFIG, default)."""
    value = params.get("kubeconfig") or os.environ.get("K8S_AUTH_KUBECONFIG")
    if isinstance(value, dict):
        return "<inline kubeconfig>"
    if value:
        return os.path.expanduser(value)
    env = os.environ.get("KUBECONFIG")
    if env:
        return os.path.expanduser(env.split(os.pathsep)[0])
    return os.path.expanduser("~/.kube/config")


def describe_target(params):
    """'kubeconfig X, context Y' for messages."""
    if params.get("host") and not params.get("kubeconfig"):
        return "host %s" % params["host"]
    context = params.get("context") or os.environ.get("K8S_AUTH_CONTEXT")
    if not context:
        context = "%s (current)" % (_current_context(kubeconfig_path(params)) or "<none>")
    return "kubeconfig %s, context %s" % (kubeconfig_path(params), context)


def _current_context(path):
    try:
        with open(path) as handle:
            return (yaml.safe_load(handle) or {}).get("current-context")
    except (IOError, OSError, AttributeError, yaml.YAMLError):
        return None


def check_kubeconfig(params):
    """Fail early and clearly when the kubeconfig or the context is unusable.

    Returns the API server URL of the chosen context (None when not from a file).
    """
    if params.get("host") and (params.get("api_key") or params.get("client_cert") or params.get("username")):
        return params["host"]
    if isinstance(params.get("kubeconfig"), dict):
        return None
    path = kubeconfig_path(params)
    if os.environ.get("KUBERNETES_SERVICE_HOST") and not params.get("kubeconfig") and not os.path.exists(path):
        return None  # in-cluster configuration
    if not os.path.exists(path):
        raise ConfigError("kubeconfig file %s does not exist" % path)
    try:
        with open(path) as handle:
            config = yaml.safe_load(handle) or {}
    except (IOError, OSError, yaml.YAMLError) as exc:
        raise ConfigError("kubeconfig file %s cannot be read: %s" % (path, to_native(exc)))
    if not isinstance(config, dict):
        raise ConfigError("kubeconfig file %s is not a kubeconfig (expected a mapping)" % path)
    contexts = dict((c.get("name"), c.get("context") or {}) for c in config.get("contexts") or [] if isinstance(c, dict))
    wanted = params.get("context") or os.environ.get("K8S_AUTH_CONTEXT") or config.get("current-context")
    known = ", ".join(sorted(c for c in contexts if c)) or "none"
    if not wanted:
        raise ConfigError("kubeconfig file %s has no current-context and no context was given (contexts: %s)" % (path, known))
    if wanted not in contexts:
        raise ConfigError("context %s not found in kubeconfig %s (contexts: %s)" % (wanted, path, known))
    cluster_name = contexts[wanted].get("cluster")
    for item in config.get("clusters") or []:
        if isinstance(item, dict) and item.get("name") == cluster_name:
            return params.get("host") or (item.get("cluster") or {}).get("server")
    raise ConfigError("context %s of kubeconfig %s refers to cluster %s, which the file does not define" % (wanted, path, cluster_name))


def probe_tcp(host_url, timeout=5.0):
    """Open a TCP connection to the API server; raise Unreachable with the reason."""
    parsed = urlparse(host_url)
    port = parsed.port or (443 if parsed.scheme == "https" else 80)
    try:
        conn = socket.create_connection((parsed.hostname, port), timeout=timeout)
        conn.close()
    except socket.timeout:
        raise Unreachable("API server %s unreachable (timed out after %ss)" % (host_url, timeout))
    except (TypeError, ValueError) as exc:
        raise ConfigError("API server URL %r is not usable: %s" % (host_url, to_native(exc)))
    except (socket.error, OSError) as exc:
        raise Unreachable(_unreachable_message(exc, host_url))


# --------------------------------------------------------------------------- module runner


def run_requirement(module, requirement, verify, kube_factory=Kube):
    """Run ``verify(kube, params, result)`` for a requirement module and exit.

    ``verify`` may return a status (e.g. ``not_applicable``) to override the
    derived one.
    Connection problems, KubeErrors escaping ``verify`` and unexpected
    exceptions become an ``error`` check; cleanup always runs and its outcome
    is evidence. Exits with ``changed=False`` and ``result``.
    """
    result = ResultBuilder(requirement)
    kube = None
    status = None
    try:
        kube = kube_factory(module)
        status = verify(kube, module.params, result)
    except Stuck as exc:
        result.outcome("%s_run" % requirement, exc.cause if policy.status_for(exc.cause) == "error" else "timeout",
                       "stopped: %s" % exc)
    except KubeError as exc:
        result.from_exception("%s_run" % requirement, exc)
    except Exception as exc:  # a bug must not leave objects behind or hide the result
        result.error("%s_run" % requirement, "internal error: %s" % to_native(exc), observed=traceback.format_exc())
    finally:
        if kube is not None:
            report = kube.cleanup()
            if any(report.values()):
                result.add_evidence("cleanup", report)
            if report["failed"]:
                result.error("cleanup", "could not delete: %s" % "; ".join(report["failed"]), cause="api_unavailable")
    if status is not None and result.has_failures():
        status = None  # an override (e.g. not_applicable) never hides a failure
    module.exit_json(changed=False, result=validate_result(result.finish(status)))
