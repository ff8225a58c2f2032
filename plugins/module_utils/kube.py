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

import datetime
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
# The installer roles label what they install with this value: never selected by cleanup.
INSTALLER_MANAGED_BY_VALUE = "ai-conformance-rke2-installer"

# The run lock: a coordination.k8s.io/v1 Lease held by the certify run (holderIdentity = run id).
LOCK_NAMESPACE = "kube-system"
LOCK_NAME = "ai-conformance-rke2"
LOCK_HOST_ANNOTATION = "ai-conformance.rke2/host"
LOCK_USER_ANNOTATION = "ai-conformance.rke2/user"
LOCK_STARTED_ANNOTATION = "ai-conformance.rke2/started"

LOCK_ARG_SPEC = {
    "lock_namespace": {"type": "str", "default": LOCK_NAMESPACE},
    "lock_name": {"type": "str", "default": LOCK_NAME},
}

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
    "cleanup_timeout": {"type": "int", "default": 60},
    # test pods (testpods.py): tolerations, image mirror, pull secrets, image overrides
    "tolerations": {"type": "list", "elements": "dict", "default": []},
    "image_registry": {"type": "str"},
    "image_pull_secrets": {"type": "list", "elements": "str", "default": [], "no_log": False},
    "images": {"type": "dict", "default": {}},
}
COMMON_ARG_SPEC.update(LOCK_ARG_SPEC)


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


class NoAnswer(Unreachable):
    """The request was sent but no answer came within the request timeout (it may have been carried out)."""


class LockLost(KubeError):
    """The run lock this run held was taken over by another run."""


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


RETRY_STATUSES = (429, 500, 502, 503, 504)
# Methods whose repetition has no further effect: retried after 429/5xx/connection resets.
IDEMPOTENT_METHODS = ("GET", "HEAD", "PUT", "DELETE")


def _timed_out(exc):
    """Whether a connection-level exception (or its reason) is a time-out."""
    seen = 0
    while exc is not None and seen < 5:
        if isinstance(exc, socket.timeout) or "timeout" in type(exc).__name__.lower() or "timed out" in to_native(exc).lower():
            return True
        exc = getattr(exc, "reason", None)
        seen += 1
    return False


def retry_delay(attempt, base, cap, retry_after=None, retry_after_cap=None):
    """Seconds before retry ``attempt`` (1, 2, ...): Retry-After when the server sent one, else exponential."""
    if retry_after is not None:
        try:
            return max(0.0, min(float(retry_after), retry_after_cap if retry_after_cap is not None else cap))
        except (TypeError, ValueError):
            pass  # an HTTP date: fall back to the backoff
    return min(cap, base * (2 ** (attempt - 1)))


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


def _pool_retries():
    """urllib3 retries of our pools: a refused connection once, never a sent request (our own layer decides)."""
    return urllib3.util.retry.Retry(total=1, connect=1, read=0, status=0, other=0, redirect=0, raise_on_status=False)


def microtime(moment=None):
    """A MicroTime (``2026-12-01T17:03:10.375514Z``): exactly 6 fractional digits, as the API requires."""
    moment = moment or datetime.datetime.now(datetime.timezone.utc)
    return moment.astimezone(datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def parse_time(text):
    """An RFC 3339 time of the API (with or without fraction) as an aware datetime, or None."""
    if not text:
        return None
    value = str(text).replace("Z", "+00:00")
    for layout in ("%Y-%m-%dT%H:%M:%S.%f%z", "%Y-%m-%dT%H:%M:%S%z"):
        try:
            return datetime.datetime.strptime(value, layout)
        except ValueError:
            continue
    return None


def lease_holder(lease, now=None):
    """What a run lock Lease says: holder run id, host, user, start, renew time, expiry and whether it expired."""
    spec = (lease or {}).get("spec") or {}
    annotations = ((lease or {}).get("metadata") or {}).get("annotations") or {}
    now = now or datetime.datetime.now(datetime.timezone.utc)
    renewed = parse_time(spec.get("renewTime")) or parse_time(spec.get("acquireTime"))
    duration = spec.get("leaseDurationSeconds") or 0
    expires = renewed + datetime.timedelta(seconds=duration) if renewed else None
    return {
        "run_id": spec.get("holderIdentity"),
        "host": annotations.get(LOCK_HOST_ANNOTATION),
        "user": annotations.get(LOCK_USER_ANNOTATION),
        "started": annotations.get(LOCK_STARTED_ANNOTATION) or spec.get("acquireTime"),
        "renewed": spec.get("renewTime"),
        "duration_s": duration,
        "expires": expires.strftime("%Y-%m-%dT%H:%M:%SZ") if expires else None,
        "expired": not spec.get("holderIdentity") or expires is None or expires <= now,
    }


def describe_holder(holder):
    """One phrase naming a lock holder: run id, host, user, start."""
    return "run %s on host %s by user %s, started %s (lease renewed %s, expires %s unless renewed)" % (
        holder.get("run_id"), holder.get("host") or "?", holder.get("user") or "?", holder.get("started") or "?",
        holder.get("renewed") or "?", holder.get("expires") or "?")


class Kube:
    """API access for one module run: requests, discovery, CRUD, cleanup, waits."""

    # Bounded retries of idempotent requests after 429, 5xx and connection resets.
    max_retries = 3
    retry_backoff = 0.5  # seconds before the first retry, doubled for each further one
    retry_backoff_cap = 8.0
    retry_after_cap = 10.0  # Retry-After is honoured up to this many seconds
    cleanup_interval = 1.0  # seconds between checks that deleted namespaces are gone

    def __init__(self, module, client=None):
        self.module = module
        params = module.params
        self.request_timeout = params.get("request_timeout") or 20
        self.run_id = params.get("run_id") or random_suffix(8)
        self.cleanup_timeout = params.get("cleanup_timeout")
        if self.cleanup_timeout is None:
            self.cleanup_timeout = 60
        self._cleanup = []
        self._unanswered = []  # creates without answer: (api_version, kind, namespace, name, generateName)
        self._resource_lists = {}
        self._lock = None
        if params.get("run_id") and params.get("lock_namespace") and params.get("lock_name"):
            self._lock = {"namespace": params["lock_namespace"], "name": params["lock_name"], "held": False,
                          "renewed": None, "interval": 10.0}
        self.client = client if client is not None else self._connect()
        self.host = self.client.configuration.host
        self.renew_lock(force=True)

    def _connect(self):
        if not HAS_K8S:
            raise ConfigError("the kubernetes Python library is required: %s" % K8S_IMPORT_ERROR)
        from ansible_collections.kubernetes.core.plugins.module_utils.k8s.client import get_api_client
        from ansible_collections.kubernetes.core.plugins.module_utils.k8s.exceptions import CoreException

        server = check_kubeconfig(self.module.params)
        self.target = use_merged_kubeconfig(self.module.params)
        if server:
            probe_tcp(server, timeout=self.module.params.get("connect_timeout") or 5)
        # get_api_client runs discovery without a timeout while it builds the
        # client: first prove, with a bounded request, that the server answers.
        self._probe_version()
        try:
            client = get_api_client(module=self.module)
            # Our pools never repeat a sent request (urllib3 retries 3 times by default, also after a
            # read time-out); request() retries idempotent requests itself. Set per pool manager,
            # never through urllib3's process-wide Retry.DEFAULT.
            pool_manager = client.client.client.rest_client.pool_manager
            pool_manager.connection_pool_kw["retries"] = _pool_retries()
            pool_manager.clear()
            return client
        except ApiException as exc:  # the client runs discovery while it is built
            raise error_from_status(exc.status, _decode(exc.body), "GET", "(discovery while connecting)")
        except (urllib3.exceptions.HTTPError, socket.error, OSError) as exc:
            raise Unreachable(_unreachable_message(exc, self.target))
        except CoreException as exc:
            raise ConfigError("%s (%s)" % (to_native(exc), self.target))
        except Exception as exc:  # kubeconfig parse errors surface as many types
            raise ConfigError("could not load the kubeconfig: %s (%s)" % (to_native(exc), self.target))

    def _probe_version(self):
        """GET /version with the kubeconfig's TLS and credentials, bounded by request_timeout."""
        # kubernetes.core has no public way to build the configuration without running
        # discovery; these two private functions exist in the kubernetes.core range pinned in
        # galaxy.yml (tests/unit/plugins/module_utils/test_kube.py fails when they move).
        from ansible_collections.kubernetes.core.plugins.module_utils.k8s import client as core_client

        try:
            configuration = core_client._create_configuration(core_client._create_auth_spec(self.module))
        except Exception as exc:  # kubeconfig parse errors surface as many types
            raise ConfigError("could not load the kubeconfig: %s (%s)" % (to_native(exc), self.target))
        configuration.retries = _pool_retries()
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

    def request(self, method, path, body=None, query=None, content_type=None, timeout=None, retry=True):
        """Send one request; return parsed JSON (or text); raise KubeError.

        Idempotent requests (GET, HEAD, PUT, DELETE) are retried, at most
        ``max_retries`` times with exponential backoff (or the server's
        Retry-After, capped), after 429, 5xx and connection resets; POST and
        PATCH never are. A time-out is not retried (NoAnswer).
        """
        if self._lock is not None and not self._lock.get("busy"):
            self.renew_lock()  # throttled: a request every third of the lease duration at most
        query_params = [(k, v) for k, v in (query or {}).items() if v is not None]
        kwargs = {"query_params": query_params, "serialize": False, "_request_timeout": timeout or self.request_timeout}
        if content_type:
            kwargs["content_type"] = content_type
        retries = self.max_retries if retry and method.upper() in IDEMPOTENT_METHODS else 0
        attempt = 0
        while True:
            attempt += 1
            retry_after = None
            try:
                response = self.client.client.request(method, path, body=body, **kwargs)
                return _decode(response.data)
            except DynamicApiError as exc:
                error = error_from_status(exc.status, _decode(exc.body), method, path)
                if exc.status not in RETRY_STATUSES or attempt > retries:
                    if attempt > 1:
                        error.message = "%s (after %d attempts)" % (error.message, attempt)
                        error.args = (error.message,)
                    raise error
                retry_after = (getattr(exc, "headers", None) or {}).get("Retry-After")
            except (urllib3.exceptions.HTTPError, socket.error, OSError) as exc:
                if _timed_out(exc):
                    raise NoAnswer(_unreachable_message(exc, self.host))
                if attempt > retries:
                    raise Unreachable(_unreachable_message(exc, self.host))
            time.sleep(retry_delay(attempt, self.retry_backoff, self.retry_backoff_cap, retry_after, self.retry_after_cap))

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
        """Create an object; unless dry-run, remember it for cleanup.

        When the create gets no answer (time-out) the server may still have
        carried it out: the object is looked up (by name, or by our run-id
        label and generateName prefix); if it exists with our run id it is
        tracked and returned, else NoAnswer is raised and cleanup() looks for it
        again (deleting it only when it carries our run id).
        """
        meta = obj.get("metadata", {})
        path = self._path(obj["apiVersion"], obj["kind"], namespace=meta.get("namespace"))
        try:
            created = self.request("POST", path, body=obj, query={"dryRun": "All" if dry_run else None})
        except NoAnswer as exc:
            if dry_run or not track:
                raise
            meta = obj.get("metadata", {})
            self._unanswered.append((obj["apiVersion"], obj["kind"], meta.get("namespace"), meta.get("name"),
                                     meta.get("generateName") or ""))
            found = self._find_ours(*self._unanswered[-1])
            if len(found) == 1:
                self.track(dict(found[0], apiVersion=obj["apiVersion"], kind=obj["kind"]))
                return found[0]
            raise NoAnswer("%s; the object was not found (yet): cleanup deletes it if it appears with our run id" % exc)
        if track and not dry_run:
            self.track(created)
        return created

    def _find_ours(self, api_version, kind, namespace, name, prefix):
        """Objects of an unanswered create that exist and carry our run id: by name, else by label and prefix."""
        try:
            if name:
                found = self.get(api_version, kind, name, namespace)
                found = [found] if found is not None else []
            else:
                found = [o for o in self.list(api_version, kind, namespace=namespace,
                                              label_selector="%s=%s" % (RUN_ID_LABEL, self.run_id))
                         if o["metadata"]["name"].startswith(prefix)]
        except KubeError:
            return []
        return [o for o in found if ((o.get("metadata") or {}).get("labels") or {}).get(RUN_ID_LABEL) == self.run_id]

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
        """GET through the API server's service proxy; returns text or JSON (not retried: the answer is the backend's)."""
        full = "%s%s/proxy/%s" % (api_path("v1", "services", service, namespace), ":%s" % quote(str(port), safe="") if port else "",
                                  path.lstrip("/"))
        return self.request("GET", full, query=query, retry=False)

    def pod_proxy(self, namespace, pod, port, path="/", query=None):
        """GET through the API server's pod proxy (one given pod of a Service); returns text or JSON."""
        full = "%s%s/proxy/%s" % (api_path("v1", "pods", pod, namespace), ":%s" % quote(str(port), safe="") if port else "",
                                  path.lstrip("/"))
        return self.request("GET", full, query=query, retry=False)

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
        """Delete every tracked object, newest first, namespaces last, then wait for the namespaces to go.

        Never raises; returns {"deleted": [...], "gone": [...], "failed": [...],
        "stuck": [...]}: ``stuck`` lists the namespaces still there after
        ``cleanup_timeout`` seconds, each with its phase and status conditions.
        """
        report = {"deleted": [], "gone": [], "failed": [], "stuck": []}
        self._lock = None  # our objects go whatever became of the run lock (a LockLost must not keep them)
        for api_version, kind, namespace, name, prefix in self._unanswered:  # creates that got no answer
            for item in self._find_ours(api_version, kind, namespace, name, prefix):
                self._cleanup.append((api_version, kind, item["metadata"]["name"], namespace))
        ordered = []
        for entry in reversed(self._cleanup):
            if entry not in ordered:
                ordered.append(entry)
        ordered.sort(key=lambda item: item[1] == "Namespace")
        namespaces = []
        for api_version, kind, name, namespace in ordered:
            label = "%s/%s" % (kind, name) if not namespace else "%s/%s/%s" % (kind, namespace, name)
            try:
                deleted = self.delete(api_version, kind, name, namespace)
                report["deleted" if deleted else "gone"].append(label)
                if kind == "Namespace" and api_version == "v1" and deleted:
                    namespaces.append(name)
            except KubeError as exc:
                report["failed"].append("%s: %s" % (label, exc))
        self._cleanup = []
        self._unanswered = []
        report["stuck"] = self.wait_namespaces_gone(namespaces, self.cleanup_timeout)
        return report

    def wait_namespaces_gone(self, names, timeout):
        """Wait (bounded) until the namespaces are gone; returns those still there with phase and conditions."""
        pending = list(names)
        deadline = time.monotonic() + max(timeout, 0)
        states = {}
        while pending:
            still = []
            for name in pending:
                try:
                    current = self.get("v1", "Namespace", name)
                except KubeError as exc:
                    states[name] = {"namespace": name, "phase": "unknown", "conditions": [], "error": to_native(exc)}
                    still.append(name)
                    continue
                if current is not None:
                    status = current.get("status") or {}
                    states[name] = {"namespace": name, "phase": status.get("phase"),
                                    "conditions": status.get("conditions") or []}
                    still.append(name)
            pending = still
            remaining = deadline - time.monotonic()
            if not pending or remaining <= 0:
                break
            time.sleep(min(self.cleanup_interval, remaining))
        return [states[name] for name in pending]

    # -- run lock -----------------------------------------------------------

    def _lease_path(self, namespace, name=None):
        return api_path("coordination.k8s.io/v1", "leases", name, namespace)

    def read_lease(self, namespace, name):
        """The Lease, or None."""
        try:
            return self.request("GET", self._lease_path(namespace, name))
        except NotFound:
            return None

    def renew_lock(self, force=False):
        """Renew the run lock (a Lease whose holder is our run id) when it is due; raise LockLost when taken over.

        Called when the Kube is built, before requests and inside every wait
        (throttled to every third of the lease duration), so modules need no code
        for it. Nothing happens when no run id was given or the Lease is not ours
        (a module run on its own, check mode).
        """
        lock = self._lock
        if lock is None or (not force and lock["renewed"] is not None
                            and time.monotonic() - lock["renewed"] < lock["interval"]):
            return
        lock["renewed"] = time.monotonic()
        lock["busy"] = True
        try:
            self._renew(lock)
        finally:
            lock["busy"] = False

    def _renew(self, lock):
        try:
            lease = self.read_lease(lock["namespace"], lock["name"])
        except KubeError:
            return  # RBAC or API trouble: the next wait tries again
        holder = lease_holder(lease)
        if lease is None or holder["run_id"] != self.run_id:
            if lock["held"]:
                raise LockLost("the run lock %s/%s of run %s was taken over: %s" % (
                    lock["namespace"], lock["name"], self.run_id,
                    describe_holder(holder) if lease is not None else "the Lease was deleted"))
            self._lock = None  # not a locked run: stop looking
            return
        lease["spec"]["renewTime"] = microtime()
        try:
            self.request("PUT", self._lease_path(lock["namespace"], lock["name"]), body=lease)
        except KubeError:
            return  # a conflict or API trouble: the next wait tries again
        lock["held"] = True
        lock["interval"] = max(1.0, (lease["spec"].get("leaseDurationSeconds") or 30) / 3.0)

    # -- waits --------------------------------------------------------------

    def wait_for(self, probe, timeout, interval=2.0, what="condition"):
        """Call ``probe()`` until truthy; it may return (done, state) and raise Stuck.

        Raises WaitTimeout naming ``what`` and the last observed state.
        """
        deadline = time.monotonic() + timeout
        state = None
        while True:
            self.renew_lock()
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


KUBECONFIG_HINT = (
    "Point at a cluster with KUBECONFIG=/path/to/kubeconfig (a:b merges several, as kubectl does), "
    "-e conformance_kubeconfig=/path/to/kubeconfig, or make run ARGS='-e conformance_kubeconfig=/path/to/kubeconfig'; "
    "on an RKE2 server the admin kubeconfig is /etc/rancher/rke2/rke2.yaml."
)
# File references in a kubeconfig that are relative to the file that holds them (kubectl ResolvePaths).
_KUBECONFIG_FILE_FIELDS = {"clusters": ("certificate-authority",), "users": ("client-certificate", "client-key", "tokenFile")}
_KUBECONFIG_SECTIONS = (("clusters", "cluster"), ("users", "user"), ("contexts", "context"))


def kubeconfig_paths(params):
    """The kubeconfig files the client reads, in order (param, K8S_AUTH_KUBECONFIG, KUBECONFIG, default).

    Each value may list several files separated by ``os.pathsep``, as KUBECONFIG does.
    """
    value = params.get("kubeconfig") or os.environ.get("K8S_AUTH_KUBECONFIG")
    if isinstance(value, dict):
        return []
    text = value or os.environ.get("KUBECONFIG") or "~/.kube/config"
    return [os.path.expanduser(path) for path in text.split(os.pathsep) if path]


def kubeconfig_path(params):
    """The kubeconfig file(s) the client reads, for messages (``a:b`` when several are merged)."""
    value = params.get("kubeconfig") or os.environ.get("K8S_AUTH_KUBECONFIG")
    if isinstance(value, dict):
        return "<inline kubeconfig>"
    return os.pathsep.join(kubeconfig_paths(params))


def merge_kubeconfigs(configs):
    """Merge ``[(path, kubeconfig dict)]`` as kubectl merges KUBECONFIG=a:b.

    The first file that defines a cluster, user or context name wins; current-context
    comes from the first file that sets one; relative file references are resolved
    against the folder of the file that holds them.
    """
    merged = {"apiVersion": "v1", "kind": "Config", "preferences": {}, "clusters": [], "users": [], "contexts": []}
    seen = dict((section, set()) for section, dummy in _KUBECONFIG_SECTIONS)
    for path, config in configs:
        if not merged.get("current-context") and config.get("current-context"):
            merged["current-context"] = config["current-context"]
        base = os.path.dirname(os.path.abspath(path))
        for section, key in _KUBECONFIG_SECTIONS:
            for item in config.get(section) or []:
                if not isinstance(item, dict) or item.get("name") in seen[section]:
                    continue
                seen[section].add(item.get("name"))
                body = dict(item.get(key) or {})
                for field in _KUBECONFIG_FILE_FIELDS.get(section, ()):
                    if body.get(field) and not os.path.isabs(os.path.expanduser(body[field])):
                        body[field] = os.path.join(base, body[field])
                merged[section].append({"name": item.get("name"), key: body})
    return merged


def load_kubeconfig(params):
    """The kubeconfig the client will use, merged from every listed file that exists; raises ConfigError."""
    if isinstance(params.get("kubeconfig"), dict):
        return params["kubeconfig"]
    paths = kubeconfig_paths(params)
    existing = [path for path in paths if os.path.exists(path)]
    if not existing:
        raise ConfigError("kubeconfig file %s does not exist. %s" % (kubeconfig_path(params), KUBECONFIG_HINT))
    configs = []
    for path in existing:
        try:
            with open(path) as handle:
                config = yaml.safe_load(handle) or {}
        except (IOError, OSError, yaml.YAMLError) as exc:
            raise ConfigError("kubeconfig file %s cannot be read: %s" % (path, to_native(exc)))
        if not isinstance(config, dict):
            raise ConfigError("kubeconfig file %s is not a kubeconfig (expected a mapping)" % path)
        configs.append((path, config))
    return configs[0][1] if len(configs) == 1 else merge_kubeconfigs(configs)


def describe_target(params):
    """'kubeconfig X, context Y' for messages."""
    if params.get("host") and not params.get("kubeconfig"):
        return "host %s" % params["host"]
    context = params.get("context") or os.environ.get("K8S_AUTH_CONTEXT")
    if not context:
        context = "%s (current)" % (_current_context(params) or "<none>")
    return "kubeconfig %s, context %s" % (kubeconfig_path(params), context)


def _current_context(params):
    try:
        return load_kubeconfig(params).get("current-context")
    except (ConfigError, AttributeError):
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
    if os.environ.get("KUBERNETES_SERVICE_HOST") and not params.get("kubeconfig") \
            and not any(os.path.exists(p) for p in kubeconfig_paths(params)):
        return None  # in-cluster configuration
    config = load_kubeconfig(params)
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


def use_merged_kubeconfig(params):
    """When several kubeconfig files are listed, hand the client the kubectl-style merge (a dict) instead.

    Returns the description of the target for messages (taken before the swap).
    """
    target = describe_target(params)
    if isinstance(params.get("kubeconfig"), dict) or params.get("host") and not params.get("kubeconfig"):
        return target
    if len([p for p in kubeconfig_paths(params) if os.path.exists(p)]) > 1:
        params["kubeconfig"] = load_kubeconfig(params)
    return target


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


def stuck_message(stuck, timeout):
    """One sentence naming the namespaces still there after cleanup and their True conditions."""
    parts = []
    for item in stuck:
        reasons = ["%s: %s" % (c.get("reason") or c.get("type"), c.get("message")) for c in item.get("conditions") or []
                   if c.get("status") == "True"]
        detail = ("; " + "; ".join(reasons)) if reasons else (", " + item["error"] if item.get("error") else "")
        parts.append("%s (%s%s)" % (item["namespace"], item.get("phase") or "?", detail))
    return "namespace(s) still not gone %ss after deletion: %s" % (timeout, ", ".join(parts))


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
            if report["stuck"]:
                result.error("cleanup_namespaces", stuck_message(report["stuck"], kube.cleanup_timeout),
                             observed=report["stuck"], expected="deleted namespaces gone", cause="namespace_terminating")
    if status is not None and result.has_failures():
        status = None  # an override (e.g. not_applicable) never hides a failure
    module.exit_json(changed=False, result=validate_result(result.finish(status)))
