"""A fake Kubernetes API server for module tests and Molecule scenarios.

Built from the RECORDED responses of a real v1.34 apiserver in
``../shared/k8s-fixtures``: discovery documents are served as recorded (byte
for byte until a test edits them) and every error body the fake produces
itself (404, 409, 422, 403, 401, text/plain ``404 page not found``) has the
recorded shape and wording.

In-process (pytest)::

    with FakeKubeAPI() as fake:
        kubeconfig = fake.write_kubeconfig(str(tmp_path / "kubeconfig"))
        fake.on_create("v1", "pods", schedule)      # play a controller
        ...                                          # run the module
        assert fake.objects(namespace="aic-x") == []

Standalone (Molecule)::

    python -m tests.support.fakeapi --kubeconfig PATH [--pidfile PATH] [--scenario NAME]

API at a glance (``FakeKubeAPI``; docstrings have the details):

* life cycle: ``start()``, ``stop()``, context manager, ``url``,
  ``write_kubeconfig(path, context="fake", token=None, extra_contexts=None)``
  (also sets ``.kubeconfig``); ``unreachable_url()`` for connection refused
* discovery: ``remove_group_version(gv)``, ``remove_resource(gv, plural)``,
  ``add_group_version(gv, doc, preferred=None)``, ``resource_list(gv)``,
  ``renamed_resource_list(doc, gv)``
* controllers: ``on_create/on_update/on_delete(gv, plural, fn)``, ``add_reconciler(fn)``,
  ``reconcile()``; raise ``fake.Reject(code, body)`` to answer with an error
* store: ``get_object``, ``objects``, ``put_object``, ``create_object``,
  ``patch_object``, ``set_status``, ``delete_object``, ``create_namespace``,
  ``bind_pod``, ``defaulted``, ``recorded``, ``put_recorded``
* I/O stand-ins: ``set_pod_log(ns, pod, text, container=None)``,
  ``set_service_proxy(ns, svc, port, fn_or_text)``, ``set_pod_proxy(ns, pod, port, fn_or_text)``
  (the proxies route as the apiserver does: Service, then its v1 Endpoints;
  ``endpoints_for(service, pods)`` builds the Endpoints the controller would),
  ``set_aggregated_api(gv, fn, resource_list_doc)`` (an APIService's adapter, e.g. custom metrics)
* faults and auth: ``fail(method, path_regex, status_code=None, body=None,
  fixture=None, times=None, delay=0.0, headers=None, reset=False, answer_delay=0.0)``,
  ``forbid(...)``, ``require_token(t)``,
  ``authorize_with(fn)`` (RBAC: ``tests/support/rbac.py``), ``clear_faults()``
* built-in admission (from namespace labels and objects, recorded wording):
  Pod Security (``pod-security.kubernetes.io/enforce|warn``: 403 / ``Warning``
  headers), LimitRange defaults and min/max, ResourceQuota (403, ``status.used``),
  Lease MicroTime (400), NamespaceLifecycle (403 in a Terminating namespace);
  ``create_pod_for(owner, template, name)`` plays a ReplicaSet controller
  (FailedCreate event, ReplicaFailure condition); ``namespace_deletion_delay``
* inspection: ``requests`` (``Request(method, path, query, headers)``),
  ``requests_to(method, path_regex)``, ``clear_requests()``, ``internal_errors``
* bodies: ``not_found``, ``already_exists``, ``conflict_modified``, ``invalid`` +
  ``cause``, ``forbidden``, ``webhook_denied``, ``status_failure``, ``status_success``

Layout of this file: status bodies, selectors, patches, discovery, object
store, the ``FakeKubeAPI`` class (public helpers, then request routing and
the handlers per verb), the HTTP glue, scenarios and ``main``.

Deliberate simplifications (documented so nobody relies on them): strategic
merge patch is a JSON merge patch (lists are replaced), server-side apply is
an upsert with merge semantics and no field ownership (inject
``409-server-side-apply-field-conflict.json`` with ``fail`` when needed), no
``managedFields``, no schema validation of custom resources (use
``on_create`` + ``Invalid``), the namespace controller deletes a deleted
namespace's content after ``namespace_deletion_delay`` (default 0 s, 5 s on a
real cluster) and the namespace is gone as soon as no finalized content is left,
objects of one group are stored once whatever version they were written with
(no conversion), the aggregated discovery format is never served (clients
fall back to the legacy documents, as they do against old servers).
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import argparse
import base64
import copy
import datetime
import hashlib
import json
import os
import random
import re
import signal
import socket
import struct
import sys
import tempfile
import threading
import time
import traceback
import uuid
from collections import namedtuple
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, unquote, urlsplit

import yaml

try:
    from . import admission
    from .shared import shared_path
except ImportError:  # loaded as a plain file
    sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
    import admission  # type: ignore  # noqa: E402
    from shared import shared_path  # type: ignore  # noqa: E402

PAGE_NOT_FOUND = "404 page not found\n"
PRESET_NAMESPACES = ("default", "kube-system", "kube-public", "kube-node-lease")

# Groups compiled into kube-apiserver: their list items carry no kind/apiVersion
# and their status subresource starts as {} (custom resources keep both).
BUILTIN_GROUPS = frozenset([
    "", "admissionregistration.k8s.io", "apiextensions.k8s.io", "apiregistration.k8s.io", "apps",
    "authentication.k8s.io", "authorization.k8s.io", "autoscaling", "batch", "certificates.k8s.io",
    "coordination.k8s.io", "discovery.k8s.io", "events.k8s.io", "flowcontrol.apiserver.k8s.io",
    "internal.apiserver.k8s.io", "networking.k8s.io", "node.k8s.io", "policy", "rbac.authorization.k8s.io",
    "resource.k8s.io", "scheduling.k8s.io", "storage.k8s.io", "storagemigration.k8s.io",
])
# Built-in resources whose objects have no metadata.generation.
NO_GENERATION = frozenset([
    ("", "namespaces"), ("", "configmaps"), ("", "secrets"), ("", "events"), ("", "endpoints"),
    ("", "serviceaccounts"), ("", "nodes"), ("", "services"), ("", "limitranges"),
    ("coordination.k8s.io", "leases"), ("events.k8s.io", "events"), ("discovery.k8s.io", "endpointslices"),
])
# DELETE answers with the object itself (not a Status) for these.
RETURNS_DELETED_OBJECT = frozenset([("", "pods"), ("", "services"), ("", "namespaces")])
# Field selectors the apiserver supports beyond metadata.name / metadata.namespace.
FIELD_LABELS = {
    ("", "pods"): ("spec.nodeName", "spec.restartPolicy", "spec.schedulerName", "spec.serviceAccountName",
                   "spec.hostNetwork", "status.phase", "status.podIP", "status.nominatedNodeName"),
    ("", "events"): ("involvedObject.kind", "involvedObject.namespace", "involvedObject.name",
                     "involvedObject.uid", "involvedObject.apiVersion", "involvedObject.resourceVersion",
                     "involvedObject.fieldPath", "reason", "reportingComponent", "source", "type"),
    ("events.k8s.io", "events"): ("involvedObject.kind", "involvedObject.namespace", "involvedObject.name",
                                  "involvedObject.uid", "involvedObject.apiVersion", "reason", "type"),
    ("", "secrets"): ("type",),
    ("", "namespaces"): ("status.phase",),
    ("", "nodes"): ("spec.unschedulable",),
    ("", "replicationcontrollers"): ("status.replicas",),
    ("apps", "replicasets"): ("status.replicas",),
    ("batch", "jobs"): ("status.successful",),
}
# Where a field label lives in the object when it is not the dotted path itself.
FIELD_PATHS = {
    ("", "events", "source"): "source.component",
    ("events.k8s.io", "events", "involvedObject.kind"): "regarding.kind",
    ("events.k8s.io", "events", "involvedObject.namespace"): "regarding.namespace",
    ("events.k8s.io", "events", "involvedObject.name"): "regarding.name",
    ("events.k8s.io", "events", "involvedObject.uid"): "regarding.uid",
    ("events.k8s.io", "events", "involvedObject.apiVersion"): "regarding.apiVersion",
}
LOGGED_HEADERS = ("Accept", "Content-Type", "Authorization", "Impersonate-User", "Impersonate-Group", "User-Agent")


# --------------------------------------------------------------------------
# Status bodies (shapes and wording of the recorded ones)
# --------------------------------------------------------------------------

class Reject(Exception):
    """Answer the current request with ``status_code`` and ``body``.

    Raised by hooks (``on_create`` ...) and internally. ``body`` is a dict (sent
    as JSON) or a str (sent as text/plain), e.g. a recorded webhook denial.
    """

    def __init__(self, status_code, body, content_type=None):
        super(Reject, self).__init__("%s %s" % (status_code, body))
        self.status_code = status_code
        self.body = body
        self.content_type = content_type


def status_failure(code, reason, message, details=None):
    """A ``Status`` failure with the apiserver's key order; ``reason`` None is left out."""
    body = {"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure", "message": message}
    if reason is not None:
        body["reason"] = reason
    if details is not None:
        body["details"] = details
    body["code"] = code
    return body


def qualified_resource(group, plural):
    """``pods`` / ``tfjobs.kubeflow.org``: how the apiserver names a resource in messages."""
    return "%s.%s" % (plural, group) if group else plural


def _details(name, group, kind, **extra):
    details = {}
    if name:
        details["name"] = name
    if group:
        details["group"] = group
    details["kind"] = kind
    details.update(extra)
    return details


def not_found(group, plural, name):
    """404 NotFound for an object (``pods "x" not found``)."""
    return status_failure(404, "NotFound", '%s "%s" not found' % (qualified_resource(group, plural), name),
                          _details(name, group, plural))


def already_exists(group, plural, name):
    """409 AlreadyExists (``configmaps "x" already exists``)."""
    return status_failure(409, "AlreadyExists", '%s "%s" already exists' % (qualified_resource(group, plural), name),
                          _details(name, group, plural))


def conflict_modified(group, plural, name):
    """409 Conflict for a stale resourceVersion."""
    message = ('Operation cannot be fulfilled on %s "%s": the object has been modified; please apply your '
               'changes to the latest version and try again' % (qualified_resource(group, plural), name))
    return status_failure(409, "Conflict", message, _details(name, group, plural))


def cause(field, message, reason="FieldValueInvalid"):
    """One ``details.causes`` entry of a 422 (``message`` like ``Required value``)."""
    return {"reason": reason, "message": message, "field": field}


def invalid(kind, group, name, causes):
    """422 Invalid: ``Pod "x" is invalid: spec...: Required value`` (several causes: ``[a, b]``)."""
    texts = ["%s: %s" % (c.get("field"), c.get("message")) for c in causes]
    text = texts[0] if len(texts) == 1 else "[%s]" % ", ".join(texts)
    qualified = "%s.%s" % (kind, group) if group else kind
    message = '%s "%s" is invalid: %s' % (qualified, name or "", text)
    return status_failure(422, "Invalid", message, _details(name, group, kind, causes=list(causes)))


def forbidden(user, verb, group, plural, subresource=None, name=None, namespace=None):
    """403 Forbidden as RBAC words it (``pods is forbidden: User "nobody" cannot list ...``)."""
    resource = "%s/%s" % (plural, subresource) if subresource else plural
    subject = qualified_resource(group, plural) + (' "%s"' % name if name else "")
    scope = 'in the namespace "%s"' % namespace if namespace else "at the cluster scope"
    message = '%s is forbidden: User "%s" cannot %s resource "%s" in API group "%s" %s' % (
        subject, user, verb, resource, group, scope)
    return status_failure(403, "Forbidden", message, _details(name, group, plural))


def forbidden_path(user, verb, path):
    """403 Forbidden for a non-resource URL such as ``/apis``."""
    return status_failure(403, "Forbidden", 'forbidden: User "%s" cannot %s path "%s"' % (user, verb, path), {})


def admission_forbidden(group, plural, name, message, causes=None):
    """403 of a built-in admission plugin: ``pods "x" is forbidden: <message>`` (PodSecurity, quota, LimitRanger)."""
    extra = {"causes": causes} if causes else {}
    return status_failure(403, "Forbidden", '%s "%s" is forbidden: %s' % (qualified_resource(group, plural), name, message),
                          _details(name, group, plural, **extra))


def namespace_terminating(group, plural, name, namespace):
    """403 for new content in a Terminating namespace (NamespaceLifecycle)."""
    return admission_forbidden(group, plural, name, "unable to create new content in namespace %s because it is being "
                               "terminated" % namespace,
                               [{"reason": "NamespaceTerminating", "message": "namespace %s is being terminated" % namespace,
                                 "field": "metadata.namespace"}])


def webhook_denied(webhook, message, code=403, reason="Forbidden"):
    """What the apiserver returns when a validating webhook denies a request.

    ``code=None`` is the webhook that sent only a message: 400, no reason.
    """
    text = 'admission webhook "%s" denied the request: %s' % (webhook, message)
    if code is None:
        return status_failure(400, None, text)
    return status_failure(code, reason, text)


def bad_request(message):
    """400 BadRequest."""
    return status_failure(400, "BadRequest", message)


def method_not_allowed():
    """405 for a verb the resource does not serve."""
    return status_failure(405, "MethodNotAllowed", "the server does not allow this method on the requested resource", {})


def status_success(code=None, details=None):
    """``Status`` Success (DELETE of most resources, binding, eviction)."""
    body = {"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Success"}
    if details is not None:
        body["details"] = details
    if code is not None:
        body["code"] = code
    return body


# --------------------------------------------------------------------------
# Selectors
# --------------------------------------------------------------------------

_LABEL_SET_RE = re.compile(r"^\s*([^\s!=,()]+)\s+(in|notin)\s+\(([^()]*)\)\s*$")
_LABEL_CMP_RE = re.compile(r"^\s*([^\s!=,()]+)\s*(==|!=|=)\s*([^\s!=,()]*)\s*$")
_LABEL_EXISTS_RE = re.compile(r"^\s*(!?)\s*([^\s!=,()]+)\s*$")


def _split_terms(text):
    """Split a selector on commas that are not inside parentheses."""
    terms, depth, current = [], 0, []
    for char in text:
        if char == "(":
            depth += 1
        elif char == ")":
            depth -= 1
        if char == "," and depth == 0:
            terms.append("".join(current))
            current = []
        else:
            current.append(char)
    terms.append("".join(current))
    return [term for term in terms if term.strip()]


def parse_label_selector(text):
    """Parse ``a=b,c!=d,e in (f,g),h notin (i),j,!k`` into ``[(key, op, values)]``.

    Ops: ``=`` (also ``==``), ``!=``, ``in``, ``notin``, ``exists``, ``!exists``.
    Raises ValueError on a malformed selector.
    """
    requirements = []
    for term in _split_terms(text or ""):
        match = _LABEL_SET_RE.match(term)
        if match:
            values = tuple(v.strip() for v in match.group(3).split(",") if v.strip())
            requirements.append((match.group(1), match.group(2), values))
            continue
        match = _LABEL_CMP_RE.match(term)
        if match:
            op = "!=" if match.group(2) == "!=" else "="
            requirements.append((match.group(1), op, (match.group(3),)))
            continue
        match = _LABEL_EXISTS_RE.match(term)
        if match:
            requirements.append((match.group(2), "!exists" if match.group(1) else "exists", ()))
            continue
        raise ValueError("unable to parse requirement: %r" % term.strip())
    return requirements


def labels_match(requirements, labels):
    """True when ``labels`` (dict or None) satisfy every parsed requirement."""
    labels = labels or {}
    for key, op, values in requirements:
        present = key in labels
        value = labels.get(key)
        if op == "=" and value != values[0]:
            return False
        if op == "!=" and present and value == values[0]:
            return False
        if op == "in" and (not present or value not in values):
            return False
        if op == "notin" and present and value in values:
            return False
        if op == "exists" and not present:
            return False
        if op == "!exists" and present:
            return False
    return True


def selector_to_string(selector):
    """A LabelSelector dict (matchLabels/matchExpressions) as a selector string."""
    selector = selector or {}
    terms = ["%s=%s" % (k, v) for k, v in sorted((selector.get("matchLabels") or {}).items())]
    for expr in selector.get("matchExpressions") or []:
        op = expr.get("operator")
        if op in ("In", "NotIn"):
            terms.append("%s %s (%s)" % (expr["key"], op.lower(), ",".join(expr.get("values") or [])))
        elif op == "Exists":
            terms.append(expr["key"])
        elif op == "DoesNotExist":
            terms.append("!" + expr["key"])
    return ",".join(terms)


def selector_matches(selector, labels):
    """True when ``labels`` match a LabelSelector dict (helper for reconcilers)."""
    return labels_match(parse_label_selector(selector_to_string(selector)), labels)


def parse_field_selector(text):
    """Parse ``a=b,c!=d`` into ``[(field, op, value)]``; raises ValueError."""
    requirements = []
    for term in _split_terms(text or ""):
        match = re.match(r"^\s*([^\s!=]+)\s*(==|!=|=)\s*(.*?)\s*$", term)
        if not match:
            raise ValueError("invalid selector: '%s'; can't understand '%s'" % (text, term.strip()))
        requirements.append((match.group(1), "!=" if match.group(2) == "!=" else "=", match.group(3)))
    return requirements


def dotted_value(obj, path):
    """The value at a dotted path of a dict, or None."""
    current = obj
    for part in path.split("."):
        if not isinstance(current, dict):
            return None
        current = current.get(part)
    return current


def _field_string(value):
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


# --------------------------------------------------------------------------
# Patches
# --------------------------------------------------------------------------

class PatchError(ValueError):
    """A patch document that cannot be applied."""


def merge_patch(target, patch):
    """RFC 7386 JSON merge patch (``null`` deletes, lists are replaced)."""
    if not isinstance(patch, dict):
        return copy.deepcopy(patch)
    result = copy.deepcopy(target) if isinstance(target, dict) else {}
    for key, value in patch.items():
        if value is None:
            result.pop(key, None)
        else:
            result[key] = merge_patch(result.get(key), value)
    return result


def _pointer(path):
    if path == "":
        return []
    if not path.startswith("/"):
        raise PatchError("invalid JSON pointer %r" % path)
    return [part.replace("~1", "/").replace("~0", "~") for part in path[1:].split("/")]


def _container(doc, parts, path):
    current = doc
    for part in parts[:-1]:
        if isinstance(current, list):
            try:
                current = current[int(part)]
            except (ValueError, IndexError):
                raise PatchError("path %s not found" % path)
        elif isinstance(current, dict) and part in current:
            current = current[part]
        else:
            raise PatchError("path %s not found" % path)
    return current


def _get_at(doc, path):
    parts = _pointer(path)
    if not parts:
        return doc
    parent = _container(doc, parts, path)
    last = parts[-1]
    try:
        return parent[int(last)] if isinstance(parent, list) else parent[last]
    except (KeyError, ValueError, IndexError, TypeError):
        raise PatchError("path %s not found" % path)


def _remove_at(doc, path):
    parts = _pointer(path)
    parent = _container(doc, parts, path)
    last = parts[-1]
    try:
        if isinstance(parent, list):
            return parent.pop(int(last))
        return parent.pop(last)
    except (KeyError, ValueError, IndexError, TypeError, AttributeError):
        raise PatchError("unable to remove nonexistent key: %s" % path)


def _add_at(doc, path, value, replace=False):
    parts = _pointer(path)
    if not parts:
        return value
    parent = _container(doc, parts, path)
    last = parts[-1]
    if isinstance(parent, list):
        if last == "-" and not replace:
            parent.append(value)
        else:
            try:
                index = int(last)
            except ValueError:
                raise PatchError("invalid index %r in %s" % (last, path))
            if index < 0 or index > len(parent) or (replace and index == len(parent)):
                raise PatchError("index out of range: %s" % path)
            if replace:
                parent[index] = value
            else:
                parent.insert(index, value)
    elif isinstance(parent, dict):
        if replace and last not in parent:
            raise PatchError("replace operation does not apply: doc is missing key: %s" % path)
        parent[last] = value
    else:
        raise PatchError("path %s not found" % path)
    return doc


def json_patch(target, operations):
    """RFC 6902 JSON patch (add, remove, replace, move, copy, test)."""
    if not isinstance(operations, list):
        raise PatchError("a JSON patch must be a list of operations")
    doc = copy.deepcopy(target)
    for op in operations:
        if not isinstance(op, dict) or "path" not in op:
            raise PatchError("invalid JSON patch operation %r" % (op,))
        kind, path = op.get("op"), op["path"]
        if kind == "add":
            doc = _add_at(doc, path, copy.deepcopy(op.get("value")))
        elif kind == "remove":
            _remove_at(doc, path)
        elif kind == "replace":
            doc = _add_at(doc, path, copy.deepcopy(op.get("value")), replace=True)
        elif kind == "move":
            value = _remove_at(doc, op.get("from", ""))
            doc = _add_at(doc, path, value)
        elif kind == "copy":
            doc = _add_at(doc, path, copy.deepcopy(_get_at(doc, op.get("from", ""))))
        elif kind == "test":
            if _get_at(doc, path) != op.get("value"):
                raise PatchError("testing value %s failed" % path)
        else:
            raise PatchError("Unexpected kind: %s" % kind)
    return doc


# --------------------------------------------------------------------------
# Discovery
# --------------------------------------------------------------------------

_VERSION_RE = re.compile(r"^v(\d+)(?:(alpha|beta)(\d+))?$")


def version_priority(version):
    """Sort key: v2 > v1 > v1beta2 > v1beta1 > v1alpha1 > anything else (like the apiserver)."""
    match = _VERSION_RE.match(version)
    if not match:
        return (3, 0, 0, version)
    stage = {None: 0, "beta": 1, "alpha": 2}[match.group(2)]
    return (stage, -int(match.group(1)), -int(match.group(3) or 0), version)


def split_api_version(api_version):
    """``apps/v1`` -> ("apps", "v1"); ``v1`` -> ("", "v1")."""
    if "/" in api_version:
        group, version = api_version.split("/", 1)
        return group, version
    return "", api_version


def discovery_file_name(api_version):
    """``resource.k8s.io/v1`` -> ``apis__resource.k8s.io__v1.json``; ``v1`` -> ``api__v1.json``."""
    group, version = split_api_version(api_version)
    return "api__%s.json" % version if not group else "apis__%s__%s.json" % (group, version)


def _pretty(doc):
    """The byte form of the recorded discovery documents (kubectl's pretty print)."""
    return (json.dumps(doc, indent=2) + "\n").encode("utf-8")


class ResourceType(namedtuple("ResourceType", "group version plural kind namespaced verbs subresources")):
    """One top-level resource of a served group/version, from its APIResourceList."""

    @property
    def api_version(self):
        return "%s/%s" % (self.group, self.version) if self.group else self.version

    @property
    def key(self):
        """Storage key: one store per group and resource, whatever the version."""
        return (self.group, self.plural)

    @property
    def builtin(self):
        return self.group in BUILTIN_GROUPS


class Discovery:
    """The discovery documents the fake serves, loaded from a recorded directory and editable."""

    def __init__(self, directory):
        self.directory = directory
        self.version = self._load("version.json")
        self.api = self._load("api.json")
        self.group_list = self._load("apis.json")
        self.resource_lists = {"v1": self._load("api__v1.json")}
        for group in self.group_list["groups"]:
            for entry in group["versions"]:
                gv = entry["groupVersion"]
                self.resource_lists[gv] = self._load(discovery_file_name(gv))

    def _load(self, name):
        with open(os.path.join(self.directory, name)) as handle:
            return json.load(handle)

    # -- lookups -----------------------------------------------------------
    def served(self, api_version):
        return api_version in self.resource_lists

    def group(self, name):
        """The APIGroup entry of ``/apis`` for a group, or None."""
        for group in self.group_list["groups"]:
            if group["name"] == name:
                return group
        return None

    def resource(self, api_version, plural):
        """ResourceType of a top-level resource, or None when not served."""
        doc = self.resource_lists.get(api_version)
        if doc is None or "/" in plural:
            return None
        entries = doc.get("resources") or []
        for entry in entries:
            if entry["name"] == plural:
                group, version = split_api_version(api_version)
                subs = frozenset(e["name"].split("/", 1)[1] for e in entries if e["name"].startswith(plural + "/"))
                return ResourceType(group, version, plural, entry["kind"], bool(entry.get("namespaced")),
                                    tuple(entry.get("verbs") or ()), subs)
        return None

    def resource_for_kind(self, api_version, kind):
        """ResourceType serving ``kind`` in a group/version, or None."""
        for entry in (self.resource_lists.get(api_version) or {}).get("resources") or []:
            if entry.get("kind") == kind and "/" not in entry["name"]:
                return self.resource(api_version, entry["name"])
        return None

    def resource_types(self):
        """Every top-level ResourceType served."""
        for api_version, doc in self.resource_lists.items():
            for entry in doc.get("resources") or []:
                if "/" not in entry["name"]:
                    yield self.resource(api_version, entry["name"])

    def document(self, path):
        """The document for a discovery path (``/api``, ``/apis/apps/v1`` ...), or None."""
        if path == "/version":
            return self.version
        if path == "/api":
            return self.api
        if path == "/apis":
            return self.group_list
        parts = path.strip("/").split("/")
        if parts[0] == "api" and len(parts) == 2:
            return self.resource_lists.get(parts[1]) if parts[1] == "v1" else None
        if parts[0] == "apis" and len(parts) == 2:
            group = self.group(parts[1])
            if group is None:
                return None
            doc = {"kind": "APIGroup", "apiVersion": "v1"}
            doc.update(group)
            return doc
        if parts[0] == "apis" and len(parts) == 3:
            return self.resource_lists.get("%s/%s" % (parts[1], parts[2]))
        return None

    # -- edits -------------------------------------------------------------
    def remove_group_version(self, api_version):
        """Stop serving a group/version; the group disappears from /apis with its last version."""
        group_name, version = split_api_version(api_version)
        if not group_name:
            raise ValueError("the core v1 API cannot be removed")
        if api_version not in self.resource_lists:
            raise KeyError("%s is not served" % api_version)
        del self.resource_lists[api_version]
        group = self.group(group_name)
        group["versions"] = [v for v in group["versions"] if v["groupVersion"] != api_version]
        if not group["versions"]:
            self.group_list["groups"] = [g for g in self.group_list["groups"] if g["name"] != group_name]
        elif group["preferredVersion"]["groupVersion"] == api_version:
            group["preferredVersion"] = dict(group["versions"][0])

    def remove_resource(self, api_version, plural):
        """Stop serving one resource (and its subresources) of a group/version."""
        doc = self.resource_lists[api_version]
        before = len(doc["resources"])
        doc["resources"] = [r for r in doc["resources"] if r["name"] != plural and not r["name"].startswith(plural + "/")]
        if len(doc["resources"]) == before:
            raise KeyError("%s does not serve %s" % (api_version, plural))

    def add_group_version(self, api_version, resource_list, preferred=None):
        """Serve ``resource_list`` (an APIResourceList) at ``api_version``.

        /apis stays consistent: versions sorted by priority, preferredVersion the
        highest unless ``preferred`` says otherwise (True/False).
        """
        group_name, version = split_api_version(api_version)
        if not group_name:
            raise ValueError("use a group/version, the core v1 API cannot be replaced")
        doc = copy.deepcopy(resource_list)
        doc["groupVersion"] = api_version
        doc.setdefault("kind", "APIResourceList")
        doc.setdefault("apiVersion", "v1")
        self.resource_lists[api_version] = doc
        entry = {"groupVersion": api_version, "version": version}
        group = self.group(group_name)
        if group is None:
            group = {"name": group_name, "versions": [entry], "preferredVersion": dict(entry)}
            self.group_list["groups"].append(group)
            return
        versions = [v for v in group["versions"] if v["groupVersion"] != api_version] + [entry]
        versions.sort(key=lambda v: version_priority(v["version"]))
        group["versions"] = versions
        if preferred is True:
            group["preferredVersion"] = dict(entry)
        elif preferred is None:
            group["preferredVersion"] = dict(versions[0])


def renamed_resource_list(resource_list, api_version):
    """A copy of an APIResourceList presented as another group/version (e.g. v1 -> v1beta1)."""
    doc = copy.deepcopy(resource_list)
    doc["groupVersion"] = api_version
    return doc


# --------------------------------------------------------------------------
# Object store
# --------------------------------------------------------------------------

class ObjectStore:
    """Objects by (group, plural) then (namespace, name), one global resourceVersion.

    Every write bumps the revision and appends a watch event. Callers hold
    ``lock`` (an RLock shared with the server); objects are stored as given,
    copy before handing them out.
    """

    MAX_EVENTS = 5000

    def __init__(self, lock, first_revision=1000):
        self.lock = lock
        self.changed = threading.Condition(lock)
        self.revision = first_revision
        self.events = []  # (revision, type, key, object copy)
        self._objects = {}

    def get(self, key, namespace, name):
        return self._objects.get(key, {}).get((namespace or "", name))

    def items(self, key, namespace=None):
        """Objects of one resource (of one namespace), sorted like etcd keys."""
        bucket = self._objects.get(key, {})
        found = [(k, obj) for k, obj in bucket.items() if namespace is None or k[0] == namespace]
        return [pair[1] for pair in sorted(found, key=lambda pair: pair[0])]

    def keys(self):
        return sorted(self._objects)

    def save(self, key, obj):
        """Store ``obj`` under a new resourceVersion (written into it); returns it."""
        self.revision += 1
        meta = obj["metadata"]
        if "resourceVersion" not in meta:  # keep the apiserver's key order: right after uid
            items = list(meta.items())
            at = [pair[0] for pair in items].index("uid") + 1 if "uid" in meta else len(items)
            obj["metadata"] = meta = dict(items[:at] + [("resourceVersion", "")] + items[at:])
        meta["resourceVersion"] = str(self.revision)
        slot = (meta.get("namespace") or "", meta["name"])
        bucket = self._objects.setdefault(key, {})
        event = "MODIFIED" if slot in bucket else "ADDED"
        bucket[slot] = obj
        self._event(event, key, obj)
        return obj

    def remove(self, key, obj):
        meta = obj["metadata"]
        removed = self._objects.get(key, {}).pop((meta.get("namespace") or "", meta["name"]), None)
        if removed is not None:
            self.revision += 1
            gone = copy.deepcopy(removed)
            gone["metadata"]["resourceVersion"] = str(self.revision)
            self._event("DELETED", key, gone)
        return removed

    def _event(self, kind, key, obj):
        self.events.append((self.revision, kind, key, copy.deepcopy(obj)))
        del self.events[:-self.MAX_EVENTS]
        self.changed.notify_all()


# --------------------------------------------------------------------------
# The fake API server
# --------------------------------------------------------------------------

Request = namedtuple("Request", "method path query headers")
"""One logged request: method, path (no query), query dict (last value wins), headers subset."""


class Fault:
    """A fault rule made by ``FakeKubeAPI.fail``; ``hits`` counts the requests it answered."""

    def __init__(self, method, path_regex, status_code, body, content_type, times, delay, headers=None, reset=False,
                 answer_delay=0.0):
        self.method = None if method in (None, "*") else method.upper()
        self.pattern = re.compile(path_regex)
        self.status_code = status_code
        self.body = body
        self.content_type = content_type
        self.times = times
        self.delay = delay
        self.headers = dict(headers or {})
        self.reset = reset
        self.answer_delay = answer_delay
        self.hits = 0

    def matches(self, method, path):
        if self.times is not None and self.hits >= self.times:
            return False
        return (self.method is None or self.method == method) and bool(self.pattern.search(path))


class _Response:
    def __init__(self, status, data=b"", content_type="application/json", stream=None):
        self.status = status
        self.data = data
        self.content_type = content_type
        self.stream = stream
        self.warnings = []  # raw ``Warning`` header values
        self.headers = {}  # further response headers (e.g. Retry-After of an injected 429)
        self.reset = False  # close the connection with a TCP reset instead of answering


def _json_response(status, body):
    return _Response(status, (json.dumps(body) + "\n").encode("utf-8"))


def _text_response(status, text, content_type="text/plain; charset=utf-8"):
    data = text if isinstance(text, bytes) else text.encode("utf-8")
    return _Response(status, data, content_type)


def _reject_response(reject):
    if isinstance(reject.body, (str, bytes)):
        return _text_response(reject.status_code, reject.body, reject.content_type or "text/plain; charset=utf-8")
    response = _json_response(reject.status_code, reject.body)
    if reject.content_type:
        response.content_type = reject.content_type
    return response


class _Call:
    """The request being handled: method, path, query, headers, raw body."""

    def __init__(self, method, path, query, headers, body):
        self.method = method
        self.path = path
        self.query = query
        self.headers = headers
        self.raw_body = body

    @property
    def dry_run(self):
        return bool(self.query.get("dryRun"))

    @property
    def content_type(self):
        return (self.headers.get("Content-Type") or "application/json").split(";")[0].strip().lower()

    def body(self, want=dict):
        """The parsed body (JSON, or YAML for apply patches); 400 when missing or malformed."""
        text = self.raw_body.decode("utf-8") if self.raw_body else ""
        if not text.strip():
            raise Reject(400, bad_request("the request body is empty"))
        try:
            doc = json.loads(text)
        except ValueError:
            try:
                doc = yaml.safe_load(text)
            except yaml.YAMLError as exc:
                raise Reject(400, bad_request("the request body could not be decoded: %s" % exc))
        if want is not None and not isinstance(doc, want):
            raise Reject(400, bad_request("the request body must be a JSON %s" % ("object" if want is dict else "list")))
        return doc


def unreachable_url(host="127.0.0.1"):
    """``http://HOST:PORT`` where nothing listens (a port the OS just handed out): connection refused."""
    probe = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    try:
        probe.bind((host, 0))
        return "http://%s:%d" % (host, probe.getsockname()[1])
    finally:
        probe.close()


def _now_utc():
    return datetime.datetime.now(datetime.timezone.utc)


def _generate_suffix():
    return "".join(random.choice("bcdfghjklmnpqrstvwxz2456789") for _index in range(5))


_DNS_LABEL = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")
_DNS_SUBDOMAIN = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$")
# Wording of k8s.io/apimachinery/pkg/util/validation (not in the recordings).
_DNS_LABEL_MSG = ("a lowercase RFC 1123 label must consist of lower case alphanumeric characters or '-', and must "
                  "start and end with an alphanumeric character (e.g. 'my-name',  or '123-abc', regex used for "
                  "validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?')")
_DNS_SUBDOMAIN_MSG = ("a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' or '.', "
                      "and must start and end with an alphanumeric character (e.g. 'example.com', regex used for "
                      "validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*')")
_STANDARD_RESOURCES = ("cpu", "memory", "ephemeral-storage", "storage")


def _is_extended_resource(name):
    return "/" in name and not name.startswith("kubernetes.io/") and not name.startswith("requests.")


class FakeKubeAPI:
    """A local fake kube-apiserver over plain HTTP on 127.0.0.1 (see the module docstring).

    Discovery comes from ``discovery_dir`` (default: the recorded
    ``../shared/k8s-fixtures/discovery``), recorded error bodies from
    ``fixtures_dir`` (default ``../shared/k8s-fixtures``). In a pytest run a
    missing ``../shared`` skips the test with the reason.
    """

    Reject = Reject

    def __init__(self, discovery_dir=None, fixtures_dir=None, host="127.0.0.1", port=0):
        self._fixtures_dir = fixtures_dir
        self.discovery = Discovery(discovery_dir or os.path.join(self.fixtures_dir, "discovery"))
        self.host = host
        self.port = port
        self._lock = threading.RLock()
        self.store = ObjectStore(self._lock)
        self.requests = []
        self.internal_errors = []
        self.now = _now_utc
        self._create_hooks = []
        self._update_hooks = []
        self._delete_hooks = []
        self._reconcilers = []
        self._faults = []
        self._forbids = []
        self._token = None
        self._authorizer = None
        self._pod_logs = {}
        self._proxies = {}
        self._pod_proxies = {}
        self._aggregated = {}
        self._server = None
        self._thread = None
        self._stopped = threading.Event()
        self._local = threading.local()  # per request: Warning headers to send
        self.kubeconfig = None  # path of the last kubeconfig written
        # Seconds between a namespace DELETE and the namespace controller deleting
        # its content (5 s on a real cluster; 0 keeps tests fast).
        self.namespace_deletion_delay = 0.0
        self._namespace_deleted_at = {}
        for name in PRESET_NAMESPACES:
            self.create_namespace(name)

    # ------------------------------------------------------------------
    # Life cycle
    # ------------------------------------------------------------------
    @property
    def fixtures_dir(self):
        """The recorded fixtures directory (``../shared/k8s-fixtures``)."""
        if self._fixtures_dir is None:
            self._fixtures_dir = shared_path("k8s-fixtures")
        return self._fixtures_dir

    @property
    def url(self):
        """``http://127.0.0.1:PORT`` (valid once started)."""
        return "http://%s:%d" % (self.host, self.port)

    def start(self):
        """Listen on an OS-chosen port (unless one was given) and serve in a thread."""
        if self._server is not None:
            return self
        self._stopped.clear()
        self._server = _Server((self.host, self.port), self)
        self.port = self._server.server_address[1]
        self.forget_client_caches()
        self._thread = threading.Thread(target=self._server.serve_forever, kwargs={"poll_interval": 0.05},
                                        name="fakeapi-%d" % self.port, daemon=True)
        self._thread.start()
        return self

    def stop(self):
        """Stop serving and close open connections (later requests: connection refused)."""
        if self._server is None:
            return
        self._stopped.set()
        with self._lock:
            self.store.changed.notify_all()
        server, self._server = self._server, None
        server.shutdown()
        server.server_close()
        for connection in list(server.connections):
            try:
                connection.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
        self._thread.join(5)
        self.forget_client_caches()

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc_info):
        self.stop()

    def forget_client_caches(self):
        """Delete the discovery cache files the python clients keep for this URL.

        ``kubernetes.dynamic`` and kubernetes.core cache discovery in the temp
        directory keyed by the server URL; a later fake on the same port with
        other discovery would otherwise be answered from a stale cache.
        """
        host = self.url
        user = None
        try:
            user = os.getlogin() or None
        except OSError:
            pass
        if not user and hasattr(os, "getuid") and os.getuid():
            user = str(os.getuid())
        if not user:
            user = os.environ.get("USERNAME") or None
        core_id = ("%s-%s" % (host, user)) if user else host
        names = ["osrcp-%s.json" % hashlib.md5(host.encode("utf-8")).hexdigest(),
                 "k8srcp-%s.json" % hashlib.sha256(core_id.encode("utf-8")).hexdigest()]
        for name in names:
            try:
                os.remove(os.path.join(tempfile.gettempdir(), name))
            except OSError:
                pass

    def write_kubeconfig(self, path, context="fake", token=None, extra_contexts=None, namespace=None):
        """Write a kubeconfig for this server; returns ``path`` (also kept in ``self.kubeconfig``).

        ``extra_contexts``: ``{name: {"server": URL, "token": T, "namespace": NS}}``
        (each key optional; server defaults to this fake), e.g. a context
        pointing at ``unreachable_url()`` (connection refused), at
        ``fake.url.replace("http:", "https:")`` (TLS handshake error) or
        carrying a wrong token.
        """
        contexts = {context: {"token": token, "namespace": namespace}}
        contexts.update(extra_contexts or {})
        config = {"apiVersion": "v1", "kind": "Config", "preferences": {}, "clusters": [], "users": [],
                  "contexts": [], "current-context": context}
        for name, spec in contexts.items():
            spec = spec or {}
            config["clusters"].append({"name": name, "cluster": {"server": spec.get("server") or self.url}})
            user = {"token": spec["token"]} if spec.get("token") else {}
            config["users"].append({"name": name, "user": user})
            ctx = {"cluster": name, "user": name}
            if spec.get("namespace"):
                ctx["namespace"] = spec["namespace"]
            config["contexts"].append({"name": name, "context": ctx})
        directory = os.path.dirname(os.path.abspath(path))
        if not os.path.isdir(directory):
            os.makedirs(directory)
        with open(path, "w") as handle:
            yaml.safe_dump(config, handle, default_flow_style=False, sort_keys=False)
        self.kubeconfig = path
        return path

    # ------------------------------------------------------------------
    # Discovery edits
    # ------------------------------------------------------------------
    def remove_group_version(self, group_version):
        """Stop serving e.g. ``resource.k8s.io/v1`` (requests to it get the text 404)."""
        with self._lock:
            self.discovery.remove_group_version(group_version)

    def remove_resource(self, group_version, plural):
        """Stop serving one resource, e.g. ``("resource.k8s.io/v1", "resourceslices")``."""
        with self._lock:
            self.discovery.remove_resource(group_version, plural)

    def add_group_version(self, group_version, resource_list_doc, preferred=None):
        """Serve an APIResourceList at ``group_version`` (see ``renamed_resource_list``)."""
        with self._lock:
            self.discovery.add_group_version(group_version, resource_list_doc, preferred)

    def resource_list(self, group_version):
        """A copy of the APIResourceList served for a group/version (None when unserved)."""
        with self._lock:
            doc = self.discovery.resource_lists.get(group_version)
            return copy.deepcopy(doc) if doc is not None else None

    # ------------------------------------------------------------------
    # Controller hooks
    # ------------------------------------------------------------------
    def _hook_key(self, group_version, plural):
        return (split_api_version(group_version)[0], plural)

    def on_create(self, group_version, plural, fn):
        """``fn(obj, fake, dry_run)`` runs before a create is stored (API and apply-creates).

        It may mutate ``obj`` (a mutating webhook, a defaulting controller) or
        raise ``fake.Reject(status_code, body)`` (a validating webhook). Matched
        on group and resource, whatever the version. Also runs for dry-run.
        """
        self._create_hooks.append((self._hook_key(group_version, plural), fn))

    def on_update(self, group_version, plural, fn):
        """``fn(new, old, fake, dry_run)`` runs before an update/patch is stored; may mutate or Reject."""
        self._update_hooks.append((self._hook_key(group_version, plural), fn))

    def on_delete(self, group_version, plural, fn):
        """``fn(obj, fake, dry_run)`` runs before an API delete; may Reject."""
        self._delete_hooks.append((self._hook_key(group_version, plural), fn))

    def add_reconciler(self, fn):
        """``fn(fake)`` runs after every successful, non-dry-run mutating request and on ``reconcile()``.

        Reconcilers play controllers: set statuses, bind pods, create children
        (use ``put_object``/``set_status``/``patch_object``/``bind_pod``, which
        do not trigger reconcilers themselves).
        """
        self._reconcilers.append(fn)

    def reconcile(self, max_rounds=20):
        """Run the reconcilers until a round changes nothing (at most ``max_rounds``)."""
        with self._lock:
            for _round in range(max_rounds):
                before = self.store.revision
                self._namespace_controller()
                self._quota_controller()
                for fn in list(self._reconcilers):
                    fn(self)
                if self.store.revision == before:
                    return

    def _run_hooks(self, hooks, key, *args):
        for hook_key, fn in hooks:
            if hook_key == key:
                fn(*args)

    # ------------------------------------------------------------------
    # Store helpers for tests and reconcilers
    # ------------------------------------------------------------------
    def resource_type(self, api_version, plural_or_kind):
        """The ResourceType for a plural or a kind of a served group/version (None if unserved)."""
        with self._lock:
            return (self.discovery.resource(api_version, plural_or_kind)
                    or self.discovery.resource_for_kind(api_version, plural_or_kind))

    def _type_or_error(self, api_version, plural_or_kind):
        rt = self.resource_type(api_version, plural_or_kind)
        if rt is None:
            raise KeyError("%s %s is not served by the fake" % (api_version, plural_or_kind))
        return rt

    def get_object(self, api_version, plural, name, namespace=None):
        """A copy of a stored object (apiVersion as requested), or None."""
        with self._lock:
            rt = self._type_or_error(api_version, plural)
            obj = self.store.get(rt.key, namespace if rt.namespaced else None, name)
            return self._present(rt, obj) if obj is not None else None

    def objects(self, api_version=None, plural=None, namespace=None, kind=None):
        """Copies of stored objects, filtered by group (of ``api_version``), plural, kind, namespace."""
        group = split_api_version(api_version)[0] if api_version is not None else None
        found = []
        with self._lock:
            for key in self.store.keys():
                if (group is not None and key[0] != group) or (plural is not None and key[1] != plural):
                    continue
                for obj in self.store.items(key, namespace):
                    if kind is None or obj.get("kind") == kind:
                        found.append(copy.deepcopy(obj))
        return found

    def put_object(self, obj, plural=None):
        """Store ``obj`` as given (create or overwrite), no hooks/validation/reconcile; returns a copy.

        Fills uid, creationTimestamp, generation and a new resourceVersion. The
        resource is found from apiVersion + kind (or ``plural``).
        """
        obj = copy.deepcopy(obj)
        with self._lock:
            rt = self._type_or_error(obj["apiVersion"], plural or obj["kind"])
            obj.setdefault("kind", rt.kind)
            meta = obj.setdefault("metadata", {})
            if rt.namespaced:
                meta.setdefault("namespace", "default")
            else:
                meta.pop("namespace", None)
            current = self.store.get(rt.key, meta.get("namespace"), meta["name"])
            if current is not None:
                meta.setdefault("uid", current["metadata"].get("uid"))
                meta.setdefault("creationTimestamp", current["metadata"].get("creationTimestamp"))
            self._stamp(rt, obj)
            return copy.deepcopy(self.store.save(rt.key, obj))

    def create_object(self, obj, dry_run=False):
        """Create like a POST from a controller: defaults, validation, ``on_create`` hooks, 409; returns a copy.

        Raises ``Reject`` as the API would answer. Reconcilers are not run (a
        reconciler is usually the caller).
        """
        obj = copy.deepcopy(obj)
        with self._lock:
            rt = self._type_or_error(obj["apiVersion"], obj["kind"])
            namespace = (obj.get("metadata") or {}).get("namespace") if rt.namespaced else None
            return self._present(rt, self._create_object(rt, namespace, obj, dry_run))

    def defaulted(self, obj):
        """A copy of ``obj`` with what the apiserver fills in on create (pods: requests from limits,
        tolerations, status Pending and qosClass; namespaces: label and phase; ...)."""
        obj = copy.deepcopy(obj)
        obj.setdefault("metadata", {})
        self._defaults(self._type_or_error(obj["apiVersion"], obj["kind"]), obj)
        return obj

    def patch_object(self, api_version, plural, name, patch, namespace=None):
        """Merge-patch a stored object directly (no hooks); returns a copy. KeyError if missing."""
        with self._lock:
            rt = self._type_or_error(api_version, plural)
            current = self.store.get(rt.key, namespace if rt.namespaced else None, name)
            if current is None:
                raise KeyError("%s %s/%s not found" % (plural, namespace, name))
            new = merge_patch(current, patch)
            if new == current:
                return copy.deepcopy(current)
            return copy.deepcopy(self.store.save(rt.key, new))

    def set_status(self, api_version, plural, name, status, namespace=None):
        """Replace the status of a stored object (a controller writing status); returns a copy."""
        with self._lock:
            rt = self._type_or_error(api_version, plural)
            current = self.store.get(rt.key, namespace if rt.namespaced else None, name)
            if current is None:
                raise KeyError("%s %s/%s not found" % (plural, namespace, name))
            if current.get("status") == status:
                return copy.deepcopy(current)
            new = copy.deepcopy(current)
            new["status"] = copy.deepcopy(status)
            return copy.deepcopy(self.store.save(rt.key, new))

    def delete_object(self, api_version, plural, name, namespace=None, force=False):
        """Delete like the API does (finalizers, namespace content, owner GC) without hooks.

        ``force`` ignores finalizers. Returns the removed/terminating copy or None.
        """
        with self._lock:
            rt = self._type_or_error(api_version, plural)
            current = self.store.get(rt.key, namespace if rt.namespaced else None, name)
            if current is None:
                return None
            return copy.deepcopy(self._remove(rt.key, current, force=force)[0])

    def create_namespace(self, name, labels=None):
        """Create (or overwrite) an Active namespace; returns a copy."""
        obj = {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": name, "labels": dict(labels or {})}}
        rt = self.discovery.resource("v1", "namespaces")
        self._defaults(rt, obj)
        return self.put_object(obj)

    def bind_pod(self, namespace, name, node_name):
        """Play the scheduler: set spec.nodeName and PodScheduled=True; returns a copy."""
        with self._lock:
            pod = self.store.get(("", "pods"), namespace, name)
            if pod is None:
                raise KeyError("pod %s/%s not found" % (namespace, name))
            self._bind(pod, node_name)
            return copy.deepcopy(self.store.save(("", "pods"), pod))

    def _bind(self, pod, node_name):
        pod.setdefault("spec", {})["nodeName"] = node_name
        status = pod.setdefault("status", {})
        conditions = [c for c in status.get("conditions") or [] if c.get("type") != "PodScheduled"]
        conditions.append({"type": "PodScheduled", "status": "True", "lastProbeTime": None,
                           "lastTransitionTime": self._timestamp()})
        status["conditions"] = conditions

    def recorded(self, relative_path):
        """The parsed recorded fixture file, e.g. ``recorded("errors/404-get-missing-pod.json")``."""
        if not relative_path.endswith(".json"):
            relative_path += ".json"
        with open(os.path.join(self.fixtures_dir, relative_path)) as handle:
            return json.load(handle)

    def put_recorded(self, relative_path):
        """Store the object(s) of a recorded fixture (``objects/...``; Lists store each item)."""
        doc = self.recorded(relative_path)
        doc = doc.get("response", doc) if "status_code" in doc else doc
        if doc.get("kind", "").endswith("List") and "items" in doc:
            kind = doc["kind"][:-len("List")]
            items = [dict(item, apiVersion=item.get("apiVersion", doc["apiVersion"]), kind=item.get("kind", kind))
                     for item in doc["items"]]
        else:
            items = [doc]
        with self._lock:
            for item in items:
                namespace = item.get("metadata", {}).get("namespace")
                if namespace and self.store.get(("", "namespaces"), None, namespace) is None:
                    self.create_namespace(namespace)
            return [self.put_object(item) for item in items]

    # ------------------------------------------------------------------
    # Pod logs and service proxy
    # ------------------------------------------------------------------
    def set_pod_log(self, namespace, name, text, container=None):
        """Text served by ``GET .../pods/NAME/log`` (for ``container``, or any container when None)."""
        with self._lock:
            self._pod_logs[(namespace, name, container)] = text

    def set_service_proxy(self, namespace, name, port, fn_or_text):
        """What the pods behind Service NAME answer through ``.../services/[SCHEME:]NAME[:PORT]/proxy/PATH``.

        ``fn_or_text`` is a str/bytes (the body for any path) or
        ``fn(method, path, query, body_bytes)`` returning a str/bytes/dict/list
        body or ``(status, body[, content_type])``. ``port`` (as in the URL, or the
        Service port name it resolves to) None matches any port. The request is
        routed as the apiserver does (``pkg/registry/core/service/storage``, answers
        recorded in ``errors/``): 404 without the Service; 503 ``no service port N
        found`` for an undeclared port number; 503 ``no endpoints available`` while
        its v1 Endpoints have no ready address for the port (EndpointSlices are not
        read); then this handler, or, without one, 503 ``error trying to reach
        service: dial tcp IP:PORT: connect: connection refused``.
        """
        with self._lock:
            self._proxies[(namespace, name, None if port is None else str(port))] = fn_or_text

    def set_pod_proxy(self, namespace, name, port, fn_or_text):
        """What pod NAME answers through ``.../pods/NAME[:PORT]/proxy/PATH`` (same handler forms).

        As the apiserver: 404 without the pod, 400 ``address not allowed`` while it
        has no ``status.podIP``, the handler, else 503 connection refused.
        """
        with self._lock:
            self._pod_proxies[(namespace, name, None if port is None else str(port))] = fn_or_text

    def set_aggregated_api(self, group_version, fn, resource_list_doc=None):
        """Serve ``group_version`` as an aggregated API (an APIService backed by an adapter).

        ``resource_list_doc`` puts the group/version into ``/apis``; the API's own
        paths, its discovery document included (rest path ``""``), are answered by
        ``fn(method, rest_path, query)`` returning a body or ``(status, body)``,
        as the adapter behind an APIService answers them.
        ``fn`` None removes the API again (``404 page not found``).
        """
        with self._lock:
            if fn is None:
                self._aggregated.pop(group_version, None)
                if self.discovery.served(group_version):
                    self.discovery.remove_group_version(group_version)
                return
            self._aggregated[group_version] = fn
            if resource_list_doc is not None:
                if self.discovery.served(group_version):
                    self.discovery.remove_group_version(group_version)
                self.discovery.add_group_version(group_version, resource_list_doc)

    @staticmethod
    def endpoints_for(service, pods, ready=True):
        """The v1 Endpoints the endpoints controller keeps for ``service`` over ``pods`` (with IPs).

        One subset; each pod an address (``ip``, ``nodeName``, ``targetRef``) under
        ``addresses`` (ready) or ``notReadyAddresses``; ports named as the Service's
        with the target port number. No pods: no ``subsets`` key (as recorded).
        """
        meta = service["metadata"]
        endpoints = {"apiVersion": "v1", "kind": "Endpoints",
                     "metadata": {"name": meta["name"], "namespace": meta["namespace"],
                                  "labels": {"endpoints.kubernetes.io/managed-by": "endpoint-controller"}}}
        addresses = []
        for pod in pods:
            pmeta = pod["metadata"]
            addresses.append({"ip": (pod.get("status") or {}).get("podIP"), "nodeName": (pod.get("spec") or {}).get("nodeName"),
                              "targetRef": {"kind": "Pod", "namespace": pmeta["namespace"], "name": pmeta["name"],
                                            "uid": pmeta.get("uid", "")}})
        if addresses:
            ports = [{"name": p.get("name", ""), "port": p.get("targetPort", p["port"]), "protocol": p.get("protocol", "TCP")}
                     for p in service["spec"]["ports"]]
            endpoints["subsets"] = [{"addresses" if ready else "notReadyAddresses": addresses, "ports": ports}]
        return endpoints

    # ------------------------------------------------------------------
    # Fault injection and auth
    # ------------------------------------------------------------------
    def fail(self, method, path_regex, status_code=None, body=None, fixture=None, times=None, delay=0.0, headers=None,
             reset=False, answer_delay=0.0):
        """Answer matching requests with an error instead of handling them; returns the ``Fault``.

        ``method``: "GET", ... or None/"*" for any; ``path_regex`` is searched in
        the path (no query). ``fixture`` names a recorded error file (``errors/``
        relative, ``.json`` optional) whose ``response`` and status code are sent
        (``status_code`` overrides the code). ``body``: dict (JSON) or str
        (text/plain); neither: a generic Status for the code. ``times``: how many
        requests it answers (None: all). ``delay``: seconds to wait first; with no
        status code the request is then handled normally (a slow server).
        ``headers``: response headers sent with the error (``{"Retry-After": "1"}``).
        ``reset``: close the connection with a TCP reset instead of answering.
        ``answer_delay``: handle the request normally, then wait this long before
        answering (the server did it, the client may time out first).
        """
        content_type = None
        if fixture is not None:
            name = fixture if "/" in fixture else "errors/" + fixture
            recorded = self.recorded(name)
            body = recorded["response"]
            status_code = status_code or recorded["status_code"]
        if status_code is not None and body is None:
            body = status_failure(status_code, _REASONS.get(status_code, "InternalError"),
                                  "injected failure (%d)" % status_code)
        rule = Fault(method, path_regex, status_code, body, content_type, times, delay, headers, reset, answer_delay)
        with self._lock:
            self._faults.append(rule)
        return rule

    def clear_faults(self):
        """Drop every fault, forbid and token rule."""
        with self._lock:
            self._faults = []
            self._forbids = []
            self._token = None

    def require_token(self, token):
        """Requests without ``Authorization: Bearer <token>`` get the recorded 401 body."""
        body = self.recorded("errors/401-invalid-bearer-token.json")["response"]
        with self._lock:
            self._token = (token, body)

    def forbid(self, method=None, path_regex=".*", user="nobody", times=None):
        """RBAC-deny matching requests with a 403 worded like the apiserver's for that request.

        Resource requests get e.g. ``pods is forbidden: User "nobody" cannot list
        resource "pods" in API group "" in the namespace "x"``; other paths (discovery)
        ``forbidden: User "nobody" cannot get path "/apis"``.
        """
        rule = Fault(method, path_regex, 403, None, None, times, 0.0)
        rule.user = user
        with self._lock:
            self._forbids.append(rule)
        return rule

    def authorize_with(self, authorizer):
        """Authorize every request with ``authorizer(request)``: None allows, a dict is the 403 body sent.

        E.g. ``tests.support.rbac.Authorizer(rules)`` plays RBAC for one ClusterRole; None removes it.
        """
        self._authorizer = authorizer

    def requests_to(self, method=None, path_regex=".*"):
        """Logged requests with that method (None: any) whose path matches ``path_regex``."""
        pattern = re.compile(path_regex)
        return [r for r in list(self.requests)
                if (method is None or r.method == method.upper()) and pattern.search(r.path)]

    def clear_requests(self):
        del self.requests[:]

    # ------------------------------------------------------------------
    # Object life cycle: stamping, defaults, validation, removal
    # ------------------------------------------------------------------
    def _timestamp(self):
        return self.now().strftime("%Y-%m-%dT%H:%M:%SZ")

    def _tracks_generation(self, rt):
        return rt.key not in NO_GENERATION

    def _stamp(self, rt, obj):
        """uid, creationTimestamp and generation of a new object (metadata in the apiserver's key order)."""
        meta = obj["metadata"]
        meta.setdefault("uid", str(uuid.uuid4()))
        meta.setdefault("creationTimestamp", self._timestamp())
        if self._tracks_generation(rt):
            meta.setdefault("generation", 1)
        order = ["name", "generateName", "namespace", "uid", "resourceVersion", "generation", "creationTimestamp",
                 "deletionTimestamp", "deletionGracePeriodSeconds", "labels", "annotations", "ownerReferences",
                 "finalizers"]
        ordered = dict((k, meta[k]) for k in order if k in meta)
        ordered.update((k, v) for k, v in meta.items() if k not in ordered)
        obj["metadata"] = ordered

    def _present(self, rt, obj, in_list=False):
        """A copy for a client: apiVersion of the request; list items of built-ins carry no kind/apiVersion."""
        out = copy.deepcopy(obj)
        if in_list and rt.builtin:
            out.pop("apiVersion", None)
            out.pop("kind", None)
            return out
        rest = dict((k, v) for k, v in out.items() if k not in ("apiVersion", "kind"))
        result = {"kind": rt.kind, "apiVersion": rt.api_version}
        result.update(rest)
        return result

    def _defaults(self, rt, obj):
        """What the apiserver's create strategies fill in (the parts checks rely on)."""
        meta = obj["metadata"]
        if rt.key == ("", "namespaces"):
            labels = meta.get("labels") or {}
            labels["kubernetes.io/metadata.name"] = meta.get("name")
            meta["labels"] = dict(sorted(labels.items()))
            obj.setdefault("spec", {}).setdefault("finalizers", ["kubernetes"])
            obj["status"] = {"phase": "Active"}
            return
        if rt.key == ("", "pods"):
            self._pod_defaults(obj)
            return
        if rt.key in (("apps", "deployments"), ("apps", "statefulsets"), ("apps", "replicasets")):
            obj.setdefault("spec", {}).setdefault("replicas", 1)
        if "status" in rt.subresources and rt.key != ("", "nodes"):
            initial = {("", "services"): {"loadBalancer": {}},
                       ("", "persistentvolumeclaims"): {"phase": "Pending"},
                       ("autoscaling", "horizontalpodautoscalers"): {"desiredReplicas": 0, "currentMetrics": None}}
            if rt.builtin:
                obj["status"] = copy.deepcopy(initial.get(rt.key, {}))
            else:
                obj.pop("status", None)

    def _pod_defaults(self, pod):
        spec = pod.setdefault("spec", {})
        for container in (spec.get("initContainers") or []) + (spec.get("containers") or []):
            if not isinstance(container, dict):
                continue
            resources = container.setdefault("resources", {})
            for section in ("limits", "requests"):
                if section in resources:
                    resources[section] = dict((k, str(v)) for k, v in (resources[section] or {}).items())
            for name, value in (resources.get("limits") or {}).items():
                resources.setdefault("requests", {}).setdefault(name, value)
            container.setdefault("terminationMessagePath", "/dev/termination-log")
            container.setdefault("terminationMessagePolicy", "File")
            image = container.get("image") or ""
            tagged = ":" in image.rsplit("/", 1)[-1] and not image.endswith(":latest")
            container.setdefault("imagePullPolicy", "IfNotPresent" if tagged or "@" in image else "Always")
        spec.setdefault("restartPolicy", "Always")
        spec.setdefault("terminationGracePeriodSeconds", 30)
        spec.setdefault("dnsPolicy", "ClusterFirst")
        spec.setdefault("serviceAccountName", "default")
        spec.setdefault("serviceAccount", spec["serviceAccountName"])
        spec.setdefault("securityContext", {})
        spec.setdefault("schedulerName", "default-scheduler")
        tolerations = spec.setdefault("tolerations", [])
        for key in ("node.kubernetes.io/not-ready", "node.kubernetes.io/unreachable"):
            if not any(t.get("key") == key for t in tolerations if isinstance(t, dict)):
                tolerations.append({"key": key, "operator": "Exists", "effect": "NoExecute", "tolerationSeconds": 300})
        spec.setdefault("priority", 0)
        spec.setdefault("enableServiceLinks", True)
        spec.setdefault("preemptionPolicy", "PreemptLowerPriority")
        pod["status"] = {"phase": "Pending", "qosClass": pod_qos_class(pod)}

    def _validate(self, rt, obj):
        """Built-in validation the apiserver does before admission webhooks; raises a 422 Reject."""
        meta = obj["metadata"]
        name = meta.get("name")
        causes = []
        if not name:
            causes.append(cause("metadata.name", "Required value: name or generateName is required",
                                "FieldValueRequired"))
        elif rt.key == ("", "namespaces") and (len(name) > 63 or not _DNS_LABEL.match(name)):
            message = "must be no more than 63 characters" if len(name) > 63 else _DNS_LABEL_MSG
            causes.append(cause("metadata.name", 'Invalid value: "%s": %s' % (name, message)))
        elif rt.key != ("", "namespaces") and (len(name) > 253 or not _DNS_SUBDOMAIN.match(name)):
            message = "must be no more than 253 characters" if len(name) > 253 else _DNS_SUBDOMAIN_MSG
            causes.append(cause("metadata.name", 'Invalid value: "%s": %s' % (name, message)))
        if rt.key == ("", "pods"):
            causes.extend(self._pod_causes(obj))
        if causes:
            raise Reject(422, invalid(rt.kind, rt.group, name, causes))

    def _pod_causes(self, pod):
        spec = pod.get("spec") or {}
        containers = spec.get("containers") or []
        if not containers:
            return [cause("spec.containers", "Required value", "FieldValueRequired")]
        causes = []
        for index, container in enumerate(containers):
            path = "spec.containers[%d]" % index
            if not container.get("name"):
                causes.append(cause(path + ".name", "Required value", "FieldValueRequired"))
            if not container.get("image"):
                causes.append(cause(path + ".image", "Required value", "FieldValueRequired"))
            resources = container.get("resources") or {}
            limits, requests = resources.get("limits") or {}, resources.get("requests") or {}
            for resource, value in sorted(requests.items()):
                if not _is_extended_resource(resource):
                    continue
                if resource not in limits:
                    causes.append(cause(path + ".resources.limits",
                                        "Required value: Limit must be set for non overcommitable resources",
                                        "FieldValueRequired"))
                elif str(limits[resource]) != str(value):
                    causes.append(cause(path + ".resources.requests", 'Invalid value: "%s": must be equal to %s limit of %s'
                                        % (value, resource, limits[resource])))
        return causes

    def _remove(self, key, obj, force=False, orphan=False):
        """Delete a stored object: finalizers make it Terminating; namespaces take their content,
        owners their dependents (unless ``orphan``). Returns (object, removed?)."""
        meta = obj["metadata"]
        if meta.get("finalizers") and not force:
            if not meta.get("deletionTimestamp"):
                meta["deletionTimestamp"] = self._timestamp()
                meta["deletionGracePeriodSeconds"] = 0
                self.store.save(key, obj)
            return obj, False
        if key == ("", "namespaces") and not force:
            if not meta.get("deletionTimestamp"):
                meta["deletionTimestamp"] = self._timestamp()
                obj["status"] = {"phase": "Terminating"}
                self.store.save(key, obj)
                self._namespace_deleted_at[meta["name"]] = time.monotonic()
            self._namespace_controller()
            return obj, self.store.get(key, None, meta["name"]) is None
        self.store.remove(key, obj)
        if key == ("", "namespaces"):
            for other in self.store.keys():
                for child in self.store.items(other, meta["name"]):
                    self._remove(other, child, force=True)
            for log_key in [k for k in self._pod_logs if k[0] == meta["name"]]:
                del self._pod_logs[log_key]
            self._namespace_deleted_at.pop(meta["name"], None)
        if not orphan and meta.get("uid"):
            for other in self.store.keys():
                for child in self.store.items(other):
                    owners = child["metadata"].get("ownerReferences") or []
                    if any(ref.get("uid") == meta["uid"] for ref in owners):
                        self._remove(other, child)
        return obj, True

    # -- built-in admission and controllers ------------------------------------
    def _decode_checks(self, rt, obj):
        """What the apiserver refuses while decoding: Lease MicroTime fields need exactly 6 fractional digits."""
        if rt.key != ("coordination.k8s.io", "leases"):
            return
        spec = obj.get("spec") or {}
        for field in ("acquireTime", "renewTime"):
            if spec.get(field) is None:
                continue
            try:
                spec[field] = admission.parse_microtime(spec[field])
            except ValueError as exc:
                raise Reject(400, bad_request('%s in version "%s" cannot be handled as a %s: %s'
                                              % (rt.kind, rt.version, rt.kind, exc)))

    def _namespace_object(self, namespace):
        return self.store.get(("", "namespaces"), None, namespace) if namespace else None

    def _namespace_lifecycle(self, rt, obj):
        """NamespaceLifecycle: no new content in a Terminating namespace."""
        namespace = obj["metadata"].get("namespace")
        ns = self._namespace_object(namespace)
        if ns is not None and ns["metadata"].get("deletionTimestamp"):
            raise Reject(403, namespace_terminating(rt.group, rt.plural, obj["metadata"].get("name"), namespace))

    def _in_namespace(self, plural, namespace):
        return self.store.items(("", plural), namespace) if namespace else []

    def _mutating_admission(self, rt, obj):
        """LimitRanger defaults (default requests and limits of Container LimitRanges)."""
        if rt.key == ("", "pods"):
            ranges = self._in_namespace("limitranges", obj["metadata"].get("namespace"))
            if ranges:
                admission.limit_range_defaults(obj, ranges)
                obj["status"]["qosClass"] = pod_qos_class(obj)

    def _validating_admission(self, rt, obj):
        """LimitRanger min/max, PodSecurity (namespace labels), ResourceQuota; 403 or Warning headers."""
        meta = obj["metadata"]
        namespace, name = meta.get("namespace"), meta.get("name")
        if not namespace:
            return
        if rt.key == ("", "pods"):
            errors = admission.limit_range_violations(obj, self._in_namespace("limitranges", namespace))
            if errors:
                raise Reject(403, admission_forbidden(rt.group, rt.plural, name, admission.aggregate(errors)))
        ns = self._namespace_object(namespace) or {}
        denied, warnings = admission.pod_security_admission(ns["metadata"].get("labels"), rt.group, rt.plural, obj)
        if denied:
            raise Reject(403, admission_forbidden(rt.group, rt.plural, name, denied))
        for text in warnings:
            self._warn(text)
        self._quota_admission(rt, obj)

    def _quota_admission(self, rt, obj):
        namespace, name = obj["metadata"]["namespace"], obj["metadata"].get("name")
        quotas = self._in_namespace("resourcequotas", namespace)
        if not quotas:
            return
        if rt.key == ("", "pods"):
            for quota in quotas:
                error = admission.quota_constraint_error((quota.get("spec") or {}).get("hard") or {}, obj)
                if error:
                    raise Reject(403, admission_forbidden(rt.group, rt.plural, name, "failed quota: %s: %s"
                                                          % (quota["metadata"]["name"], error)))
        requested = admission.object_usage(rt.group, rt.plural, obj)
        for quota in quotas:
            hard = (quota.get("spec") or {}).get("hard") or {}
            used = self._usage(namespace, hard)
            error = admission.quota_exceeded_error(quota["metadata"]["name"], hard, used, requested)
            if error:
                raise Reject(403, admission_forbidden(rt.group, rt.plural, name, error))

    def _usage(self, namespace, hard):
        """What the namespace's objects use of each resource in ``hard`` (Decimals)."""
        usages = []
        for key in self.store.keys():
            for obj in self.store.items(key, namespace):
                usages.append(admission.object_usage(key[0], key[1], obj))
        return dict((r, sum((u.get(r, 0) for u in usages), admission.Decimal(0))) for r in hard)

    def _quota_controller(self):
        """Play the quota controller: status.hard and status.used of every ResourceQuota."""
        for quota in self.store.items(("", "resourcequotas")):
            hard = (quota.get("spec") or {}).get("hard") or {}
            usages = [admission.object_usage(key[0], key[1], obj)
                      for key in self.store.keys() for obj in self.store.items(key, quota["metadata"]["namespace"])]
            status = {"hard": dict(hard), "used": admission.quota_used(hard, usages)}
            if quota.get("status") != status:
                updated = copy.deepcopy(quota)
                updated["status"] = status
                self.store.save(("", "resourcequotas"), updated)

    def _namespace_controller(self):
        """Play the namespace controller for Terminating namespaces (after ``namespace_deletion_delay``).

        Deletes the content; objects with finalizers stay (Terminating) and the
        namespace keeps ``phase: Terminating`` with the five recorded conditions
        until they are gone; then the namespace is removed.
        """
        for ns in self.store.items(("", "namespaces")):
            name = ns["metadata"]["name"]
            if not ns["metadata"].get("deletionTimestamp"):
                continue
            started = self._namespace_deleted_at.setdefault(name, time.monotonic())
            if time.monotonic() - started < self.namespace_deletion_delay:
                continue
            remaining, finalizers = {}, {}
            for key in self.store.keys():
                if key == ("", "namespaces"):
                    continue
                for child in list(self.store.items(key, name)):
                    child, removed = self._remove(key, child)
                    if not removed:
                        remaining[key] = remaining.get(key, 0) + 1
                        for finalizer in child["metadata"].get("finalizers") or []:
                            finalizers[finalizer] = finalizers.get(finalizer, 0) + 1
            if not remaining:
                self.store.remove(("", "namespaces"), ns)
                self._namespace_deleted_at.pop(name, None)
                for log_key in [k for k in self._pod_logs if k[0] == name]:
                    del self._pod_logs[log_key]
                continue
            conditions = admission.namespace_deletion_conditions(remaining, finalizers, self._timestamp())
            old = dict((c["type"], c) for c in (ns.get("status") or {}).get("conditions") or [])
            for condition in conditions:  # keep lastTransitionTime while status and message hold
                before = old.get(condition["type"])
                if before and (before.get("status"), before.get("message")) == (condition["status"], condition["message"]):
                    condition["lastTransitionTime"] = before.get("lastTransitionTime")
            if (ns.get("status") or {}).get("conditions") != conditions:
                updated = copy.deepcopy(ns)
                updated["status"] = {"phase": "Terminating", "conditions": conditions}
                self.store.save(("", "namespaces"), updated)

    def create_pod_for(self, owner, template, name):
        """Play a ReplicaSet/Job controller creating pod ``name`` from ``template`` for ``owner``.

        The pod goes through the API's create path (LimitRange, Pod Security,
        quota). A refusal is what the real controller records: a Warning
        ``FailedCreate`` event on the owner (``Error creating: <message>``) and
        a ``ReplicaFailure=True/FailedCreate`` condition; returns None then,
        else the created pod.
        """
        meta = owner["metadata"]
        pod = {"apiVersion": "v1", "kind": "Pod",
               "metadata": dict(copy.deepcopy((template or {}).get("metadata") or {}), name=name,
                                namespace=meta["namespace"],
                                ownerReferences=[{"apiVersion": owner["apiVersion"], "kind": owner["kind"],
                                                  "name": meta["name"], "uid": meta.get("uid"), "controller": True,
                                                  "blockOwnerDeletion": True}]),
               "spec": copy.deepcopy((template or {}).get("spec") or {})}
        try:
            return self.create_object(pod)
        except Reject as reject:
            message = reject.body.get("message") if isinstance(reject.body, dict) else str(reject.body)
            with self._lock:
                self._failed_create(owner, "Error creating: %s" % message)
            return None

    def _failed_create(self, owner, message):
        meta = owner["metadata"]
        now = self._timestamp()
        event_name = "%s.%s" % (meta["name"], hashlib.md5(message.encode("utf-8")).hexdigest()[:16])
        current = self.store.get(("", "events"), meta["namespace"], event_name)
        count = (current or {}).get("count", 0) + 1
        component = "job-controller" if owner["kind"] == "Job" else "replicaset-controller"
        self.put_object({"apiVersion": "v1", "kind": "Event",
                         "metadata": {"name": event_name, "namespace": meta["namespace"]},
                         "involvedObject": {"kind": owner["kind"], "namespace": meta["namespace"], "name": meta["name"],
                                            "uid": meta.get("uid"), "apiVersion": owner["apiVersion"],
                                            "resourceVersion": meta.get("resourceVersion")},
                         "reason": "FailedCreate", "message": message, "source": {"component": component},
                         "firstTimestamp": (current or {}).get("firstTimestamp", now), "lastTimestamp": now,
                         "count": count, "type": "Warning", "eventTime": None, "reportingComponent": component,
                         "reportingInstance": ""})
        rt = self.resource_type(owner["apiVersion"], owner["kind"])
        stored = self.store.get(rt.key, meta["namespace"], meta["name"]) if rt is not None else None
        if stored is None or owner["kind"] == "Job":
            return
        status = copy.deepcopy(stored.get("status") or {})
        conditions = [c for c in status.get("conditions") or [] if c.get("type") != "ReplicaFailure"]
        conditions.append({"type": "ReplicaFailure", "status": "True", "lastUpdateTime": now, "lastTransitionTime": now,
                           "reason": "FailedCreate", "message": message.replace("Error creating: ", "", 1)})
        status["conditions"] = conditions
        if status != stored.get("status"):
            updated = copy.deepcopy(stored)
            updated["status"] = status
            self.store.save(rt.key, updated)

    def _create_object(self, rt, namespace, obj, dry_run):
        """Create path shared by POST and apply: namespace, defaults, validation, hooks, 409, store."""
        meta = obj.setdefault("metadata", {})
        if not isinstance(meta, dict):
            raise Reject(400, bad_request("metadata must be an object"))
        self._decode_checks(rt, obj)
        if rt.namespaced:
            if meta.get("namespace") and namespace and meta["namespace"] != namespace:
                raise Reject(400, bad_request("the namespace of the provided object does not match the namespace "
                                              "sent on the request"))
            meta["namespace"] = namespace or meta.get("namespace")
            if self.store.get(("", "namespaces"), None, meta["namespace"]) is None:
                raise Reject(404, not_found("", "namespaces", meta["namespace"]))
        else:
            meta.pop("namespace", None)
        obj["apiVersion"], obj["kind"] = rt.api_version, rt.kind
        for field in ("uid", "resourceVersion", "creationTimestamp", "deletionTimestamp", "deletionGracePeriodSeconds",
                      "generation", "managedFields", "selfLink"):
            meta.pop(field, None)
        if not meta.get("name") and meta.get("generateName"):
            while True:
                meta["name"] = meta["generateName"] + _generate_suffix()
                if self.store.get(rt.key, meta.get("namespace"), meta["name"]) is None:
                    break
        self._namespace_lifecycle(rt, obj)
        self._defaults(rt, obj)
        self._mutating_admission(rt, obj)
        self._validate(rt, obj)
        self._run_hooks(self._create_hooks, rt.key, obj, self, dry_run)
        self._validating_admission(rt, obj)
        if self.store.get(rt.key, meta.get("namespace"), meta["name"]) is not None:
            raise Reject(409, already_exists(rt.group, rt.plural, meta["name"]))
        self._stamp(rt, obj)
        if dry_run:
            return obj
        return self.store.save(rt.key, obj)

    def _update_object(self, rt, current, candidate, dry_run, subresource=None):
        """Update path shared by PUT and PATCH (and their /status): keeps identity, status rules,
        generation, finalizer-driven removal; a no-op keeps the resourceVersion."""
        new = copy.deepcopy(candidate)
        new["apiVersion"], new["kind"] = current.get("apiVersion", rt.api_version), rt.kind
        self._decode_checks(rt, new)
        meta = new.setdefault("metadata", {})
        old_meta = current["metadata"]
        for field in ("name", "namespace", "uid", "creationTimestamp", "deletionTimestamp",
                      "deletionGracePeriodSeconds", "generation", "resourceVersion"):
            if field in old_meta:
                meta[field] = old_meta[field]
            else:
                meta.pop(field, None)
        if subresource == "status":
            status = new.get("status")
            new = copy.deepcopy(current)
            if status is None:
                new.pop("status", None)
            else:
                new["status"] = status
        elif "status" in rt.subresources:
            if "status" in current:
                new["status"] = copy.deepcopy(current["status"])
            else:
                new.pop("status", None)
        if self._tracks_generation(rt) and new.get("spec") != current.get("spec"):
            new["metadata"]["generation"] = old_meta.get("generation", 0) + 1
        self._run_hooks(self._update_hooks, rt.key, new, copy.deepcopy(current), self, dry_run)
        if rt.key == ("", "namespaces"):
            for text in admission.namespace_enforce_warnings(
                    old_meta["name"], old_meta.get("labels"), meta.get("labels"),
                    self.store.items(("", "pods"), old_meta["name"])):
                self._warn(text)
        self._stamp(rt, new)
        if new == current:
            return current
        if new["metadata"].get("deletionTimestamp") and not new["metadata"].get("finalizers"):
            if not dry_run:
                self._remove(rt.key, current, force=True)
            return new
        if dry_run:
            return new
        return self.store.save(rt.key, new)

    # ------------------------------------------------------------------
    # Request handling
    # ------------------------------------------------------------------
    def _dispatch(self, method, raw_path, headers, body):
        """Handle one HTTP request; never raises."""
        split = urlsplit(raw_path)
        path = unquote(split.path) or "/"
        query = dict((k, v[-1]) for k, v in parse_qs(split.query, keep_blank_values=True).items())
        logged = dict((h, headers.get(h)) for h in LOGGED_HEADERS if headers.get(h) is not None)
        request = Request(method, path, query, logged)
        self.requests.append(request)
        call = _Call(method, path, query, headers, body)
        self._local.warnings = []
        try:
            with self._lock:
                self._namespace_controller()
            answer_delay = 0.0
            for fault in self._matching_faults(method, path):
                if fault.delay:
                    self._stopped.wait(fault.delay)
                if fault.reset:
                    response = _Response(0)
                    response.reset = True
                    return response
                if fault.status_code is not None:
                    response = _reject_response(Reject(fault.status_code, copy.deepcopy(fault.body)))
                    response.headers = dict(fault.headers)
                    return response
                answer_delay = max(answer_delay, fault.answer_delay)
            token = self._token
            if token is not None and headers.get("Authorization") != "Bearer %s" % token[0]:
                return _json_response(401, token[1])
            denial = self._authorizer(request) if self._authorizer is not None else None
            if denial is not None:
                return _json_response(403, denial)
            response = self._route(call)
        except Reject as reject:
            return _reject_response(reject)
        except Exception:  # a bug in the fake or in a hook: make it loud
            return self._internal_error()
        response.warnings = [admission.warning_header(text) for text in self._local.warnings]
        if method in ("POST", "PUT", "PATCH", "DELETE") and 200 <= response.status < 300 and not call.dry_run:
            try:
                self.reconcile()
            except Reject as reject:
                return _reject_response(reject)
            except Exception:
                return self._internal_error()
        if answer_delay:
            self._stopped.wait(answer_delay)
        return response

    def _warn(self, text):
        """Send ``text`` as a ``Warning`` header with the current answer (API requests only)."""
        warnings = getattr(self._local, "warnings", None)
        if warnings is not None and text not in warnings:
            warnings.append(text)

    def _internal_error(self):
        text = traceback.format_exc()
        self.internal_errors.append(text)
        sys.stderr.write("fakeapi internal error:\n%s" % text)
        return _json_response(500, status_failure(500, "InternalError", "fakeapi internal error: %s"
                                                  % text.strip().splitlines()[-1]))

    def _matching_faults(self, method, path):
        """Delay-only rules that match, then the first matching error rule (each counts a hit)."""
        found = []
        with self._lock:
            for rule in self._faults:
                if rule.matches(method, path):
                    rule.hits += 1
                    found.append(rule)
                    if rule.status_code is not None or rule.reset:
                        break
        return found

    def _check_forbidden(self, call, verb, rt=None, name=None, namespace=None, subresource=None):
        with self._lock:
            rule = next((r for r in self._forbids if r.matches(call.method, call.path)), None)
            if rule is None:
                return
            rule.hits += 1
        if rt is None:
            raise Reject(403, forbidden_path(rule.user, verb, call.path))
        raise Reject(403, forbidden(rule.user, verb, rt.group, rt.plural, subresource, name, namespace))

    def _route(self, call):
        path = call.path.rstrip("/") or "/"
        if path in ("/healthz", "/livez", "/readyz"):
            return _text_response(200, "ok")
        with self._lock:
            aggregated = self._aggregated_handler(path)
        if aggregated is not None:
            handler, rest = aggregated
            result = handler(call.method, rest, dict(call.query))
            status = 200
            if isinstance(result, tuple):
                status, result = result
            return _proxy_response(status, result)
        with self._lock:
            doc = self.discovery.document(path)
            if doc is not None:
                self._check_forbidden(call, "get")
                if call.method != "GET":
                    raise Reject(405, method_not_allowed())
                return _Response(200, _pretty(doc))
            segments = path.strip("/").split("/")
            if segments[0] == "api" and len(segments) >= 3:
                group, version, rest = "", segments[1], segments[2:]
            elif segments[0] == "apis" and len(segments) >= 4:
                group, version, rest = segments[1], segments[2], segments[3:]
            else:
                raise Reject(404, PAGE_NOT_FOUND)
            api_version = "%s/%s" % (group, version) if group else version
            if not self.discovery.served(api_version):
                raise Reject(404, PAGE_NOT_FOUND)
            namespace = None
            if rest[0] == "namespaces" and len(rest) >= 3:
                candidate = self.discovery.resource(api_version, rest[2])
                if candidate is not None and candidate.namespaced:
                    namespace, rest = rest[1], rest[2:]
            rt = self.discovery.resource(api_version, rest[0])
            if rt is None or (rt.namespaced and namespace is None and len(rest) > 1):
                raise Reject(404, PAGE_NOT_FOUND)
            name = rest[1] if len(rest) > 1 else None
            subresource = rest[2] if len(rest) > 2 else None
            if subresource is not None and (subresource not in rt.subresources
                                            or (len(rest) > 3 and subresource != "proxy")):
                raise Reject(404, PAGE_NOT_FOUND)
        verb = _verb(call, name)
        self._check_forbidden(call, verb, rt, name, namespace, subresource)
        if subresource is None and verb not in rt.verbs:
            raise Reject(405, method_not_allowed())
        if subresource is not None:
            return self._subresource(rt, namespace, name, subresource, call)
        if rt.verbs == ("create",):
            return self._create_only(rt, namespace, call)
        handler = {"list": self._list, "watch": self._watch, "create": self._create,
                   "deletecollection": self._delete_collection}.get(verb)
        if handler is not None:
            return handler(rt, namespace, call)
        return {"get": self._get, "update": self._replace, "patch": self._patch,
                "delete": self._delete}[verb](rt, namespace, name, call)

    # -- collection verbs ---------------------------------------------------
    def _selectors(self, rt, call):
        """The request's parsed (label, field) selectors; 400 when malformed or unsupported."""
        try:
            labels = parse_label_selector(call.query.get("labelSelector"))
            fields = parse_field_selector(call.query.get("fieldSelector"))
        except ValueError as exc:
            raise Reject(400, bad_request(str(exc)))
        allowed = ("metadata.name", "metadata.namespace") + FIELD_LABELS.get(rt.key, ())
        for field in (f[0] for f in fields):
            if field not in allowed:
                raise Reject(400, bad_request("field label not supported: %s" % field))
        return labels, fields

    def _object_matches(self, rt, obj, selectors):
        labels, fields = selectors
        if not labels_match(labels, obj["metadata"].get("labels")):
            return False
        return all((_field_string(dotted_value(obj, FIELD_PATHS.get(rt.key + (field,), field))) == value) == (op == "=")
                   for field, op, value in fields)

    def _selected(self, rt, namespace, call):
        """Stored objects of the request's scope that match its label and field selectors."""
        selectors = self._selectors(rt, call)
        return [obj for obj in self.store.items(rt.key, namespace) if self._object_matches(rt, obj, selectors)]

    def _list(self, rt, namespace, call):
        with self._lock:
            items = self._selected(rt, namespace, call)
            revision = str(self.store.revision)
            token = call.query.get("continue")
            if token:
                try:
                    start = tuple(json.loads(base64.urlsafe_b64decode(token.encode("ascii")).decode("utf-8"))["after"])
                except (ValueError, KeyError, TypeError):
                    raise Reject(400, bad_request("continue key is not valid: %s" % token))
                items = [o for o in items if (o["metadata"].get("namespace") or "", o["metadata"]["name"]) > start]
            meta = {"resourceVersion": revision}
            limit = int(call.query.get("limit") or 0)
            if limit and len(items) > limit:
                last = items[limit - 1]["metadata"]
                after = [last.get("namespace") or "", last["name"]]
                meta["continue"] = base64.urlsafe_b64encode(json.dumps({"after": after}).encode("utf-8")).decode("ascii")
                meta["remainingItemCount"] = len(items) - limit
                items = items[:limit]
            body = {"kind": rt.kind + "List", "apiVersion": rt.api_version, "metadata": meta,
                    "items": [self._present(rt, o, in_list=True) for o in items]}
        return _json_response(200, body)

    def _watch(self, rt, namespace, call):
        """Stream watch events (JSON lines) until ``timeoutSeconds`` (default and cap 60 s) or stop."""
        selectors = self._selectors(rt, call)
        with self._lock:
            since = call.query.get("resourceVersion")
            initial = []
            if not since or since == "0":
                initial = [{"type": "ADDED", "object": self._present(rt, o)}
                           for o in self.store.items(rt.key, namespace) if self._object_matches(rt, o, selectors)]
                since = self.store.revision
            since = int(since)
        deadline = time.time() + min(float(call.query.get("timeoutSeconds") or 60), 60)

        def wanted(key, obj):
            in_scope = namespace is None or obj["metadata"].get("namespace") == namespace
            return key == rt.key and in_scope and self._object_matches(rt, obj, selectors)

        def stream():
            last = since
            for event in initial:
                yield (json.dumps(event) + "\n").encode("utf-8")
            while not self._stopped.is_set():
                with self._lock:
                    pending = [e for e in self.store.events if e[0] > last]
                    if not pending:
                        remaining = deadline - time.time()
                        if remaining <= 0:
                            return
                        self.store.changed.wait(min(remaining, 0.5))
                        continue
                    last = pending[-1][0]
                    lines = [{"type": kind, "object": self._present(rt, obj)}
                             for _rev, kind, key, obj in pending if wanted(key, obj)]
                for event in lines:
                    yield (json.dumps(event) + "\n").encode("utf-8")

        return _Response(200, content_type="application/json", stream=stream())

    def _create(self, rt, namespace, call):
        obj = call.body()
        with self._lock:
            created = self._create_object(rt, namespace, obj, call.dry_run)
            return _json_response(201, self._present(rt, created))

    def _create_only(self, rt, namespace, call):
        """Reviews and bindings: answered, never stored."""
        obj = call.body()
        with self._lock:
            obj["apiVersion"], obj["kind"] = rt.api_version, rt.kind
            obj.setdefault("metadata", {})
            if rt.key == ("", "bindings"):
                return self._bind_request(namespace, obj["metadata"].get("name"), obj, call)
            obj["status"] = copy.deepcopy(_REVIEW_STATUS.get(rt.kind, {}))
            self._run_hooks(self._create_hooks, rt.key, obj, self, call.dry_run)
            return _json_response(201, obj)

    def _delete_collection(self, rt, namespace, call):
        with self._lock:
            deleted = []
            for obj in self._selected(rt, namespace, call):
                self._run_hooks(self._delete_hooks, rt.key, copy.deepcopy(obj), self, call.dry_run)
                if not call.dry_run:
                    obj = self._remove(rt.key, obj, orphan=call.query.get("propagationPolicy") == "Orphan")[0]
                deleted.append(self._present(rt, obj, in_list=True))
            body = {"kind": rt.kind + "List", "apiVersion": rt.api_version,
                    "metadata": {"resourceVersion": str(self.store.revision)}, "items": deleted}
        return _json_response(200, body)

    # -- item verbs ---------------------------------------------------------
    def _stored(self, rt, namespace, name):
        obj = self.store.get(rt.key, namespace, name)
        if obj is None:
            raise Reject(404, not_found(rt.group, rt.plural, name))
        return obj

    def _get(self, rt, namespace, name, call):
        with self._lock:
            return _json_response(200, self._present(rt, self._stored(rt, namespace, name)))

    def _check_identity(self, body, name, current):
        meta = body.get("metadata") or {}
        if meta.get("name") and meta["name"] != name:
            raise Reject(400, bad_request("the name of the object (%s) does not match the name on the URL (%s)"
                                          % (meta["name"], name)))
        version = meta.get("resourceVersion")
        if version and version != current["metadata"].get("resourceVersion"):
            return False
        return True

    def _replace(self, rt, namespace, name, call, subresource=None):
        body = call.body()
        with self._lock:
            current = self._stored(rt, namespace, name)
            if not self._check_identity(body, name, current):
                raise Reject(409, conflict_modified(rt.group, rt.plural, name))
            updated = self._update_object(rt, current, body, call.dry_run, subresource)
            return _json_response(200, self._present(rt, updated))

    def _patched(self, current, call):
        """Apply the request's patch (by Content-Type) to ``current``."""
        kind = call.content_type
        if kind == "application/json-patch+json":
            operations = call.body(want=list)
            try:
                return json_patch(current, operations), None
            except PatchError as exc:
                raise Reject(422, status_failure(422, "Invalid", str(exc)))
        if kind in ("application/merge-patch+json", "application/strategic-merge-patch+json",
                    "application/apply-patch+yaml"):
            patch = call.body()
            return merge_patch(current, patch), patch
        raise Reject(415, status_failure(415, "UnsupportedMediaType",
                                         "the body of the request was in an unknown format - accepted media types "
                                         "include: application/json-patch+json, application/merge-patch+json, "
                                         "application/apply-patch+yaml"))

    def _patch(self, rt, namespace, name, call, subresource=None):
        apply = call.content_type == "application/apply-patch+yaml"
        if apply and not call.query.get("fieldManager"):
            raise Reject(422, invalid("PatchOptions", "meta.k8s.io", "", [
                cause("fieldManager", "Required value: is required for apply patch", "FieldValueRequired")]))
        with self._lock:
            current = self.store.get(rt.key, namespace, name)
            if current is None:
                if not apply or subresource is not None:
                    raise Reject(404, not_found(rt.group, rt.plural, name))
                obj = call.body()
                if not self._check_identity(obj, name, {"metadata": {}}):
                    raise Reject(409, conflict_modified(rt.group, rt.plural, name))
                obj.setdefault("metadata", {})["name"] = name
                created = self._create_object(rt, namespace, obj, call.dry_run)
                return _json_response(201, self._present(rt, created))
            new, patch = self._patched(current, call)
            if isinstance(patch, dict) and not self._check_identity(patch, name, current):
                raise Reject(409, conflict_modified(rt.group, rt.plural, name))
            updated = self._update_object(rt, current, new, call.dry_run, subresource)
            return _json_response(200, self._present(rt, updated))

    def _delete(self, rt, namespace, name, call):
        with self._lock:
            current = self._stored(rt, namespace, name)
            self._run_hooks(self._delete_hooks, rt.key, copy.deepcopy(current), self, call.dry_run)
            if call.dry_run:
                result, removed = copy.deepcopy(current), True
            else:
                result, removed = self._remove(rt.key, current, orphan=call.query.get("propagationPolicy") == "Orphan")
            if not removed:
                shown = self._present(rt, result)
                if rt.key == ("", "namespaces"):
                    shown["status"] = {"phase": "Terminating"}  # the controller's conditions come later
                return _json_response(200, shown)
            if rt.key in RETURNS_DELETED_OBJECT:
                shown = self._present(rt, result)
                if rt.key == ("", "namespaces"):
                    shown["metadata"]["deletionTimestamp"] = self._timestamp()
                    shown["status"] = {"phase": "Terminating"}
                elif rt.key == ("", "pods") and (shown.get("spec") or {}).get("nodeName"):
                    shown["metadata"]["deletionTimestamp"] = self._timestamp()
                    shown["metadata"]["deletionGracePeriodSeconds"] = int(
                        call.query.get("gracePeriodSeconds") or shown["spec"].get("terminationGracePeriodSeconds", 30))
                return _json_response(200, shown)
            details = _details(name, rt.group, rt.plural, uid=result["metadata"].get("uid"))
            return _json_response(200, status_success(details=details))

    # -- subresources -------------------------------------------------------
    def _subresource(self, rt, namespace, name, subresource, call):
        if subresource == "status":
            if call.method == "GET":
                return self._get(rt, namespace, name, call)
            if call.method in ("PUT", "PATCH"):
                return (self._replace if call.method == "PUT" else self._patch)(rt, namespace, name, call, "status")
        elif subresource == "scale":
            return self._scale(rt, namespace, name, call)
        elif subresource == "log" and call.method == "GET":
            return self._pod_log(namespace, name, call)
        elif subresource == "proxy" and rt.key == ("", "services"):
            return self._service_proxy(namespace, name, call)
        elif subresource == "proxy" and rt.key == ("", "pods"):
            return self._pod_proxy(namespace, name, call)
        elif subresource == "binding" and call.method == "POST":
            with self._lock:
                return self._bind_request(namespace, name, call.body(), call)
        elif subresource == "eviction" and call.method == "POST":
            with self._lock:
                pod = self._stored(rt, namespace, name)
                self._run_hooks(self._delete_hooks, rt.key, copy.deepcopy(pod), self, call.dry_run)
                if not call.dry_run:
                    self._remove(rt.key, pod)
            return _json_response(201, status_success(code=201))
        raise Reject(405, method_not_allowed())

    def _bind_request(self, namespace, name, binding, call):
        pod = self.store.get(("", "pods"), namespace, name)
        if pod is None:
            raise Reject(404, not_found("", "pods", name))
        if (pod.get("spec") or {}).get("nodeName"):
            raise Reject(409, status_failure(409, "Conflict", 'Operation cannot be fulfilled on pods/binding "%s": '
                                             'pod %s is already assigned to node "%s"'
                                             % (name, name, pod["spec"]["nodeName"]),
                                             {"name": name, "kind": "pods/binding"}))
        if not call.dry_run:
            self._bind(pod, ((binding.get("target") or {}).get("name")))
            self.store.save(("", "pods"), pod)
        return _json_response(201, status_success(code=201))

    def _scale(self, rt, namespace, name, call):
        with self._lock:
            current = self._stored(rt, namespace, name)
            scale = scale_of(current)
            if call.method == "GET":
                return _json_response(200, scale)
            if call.method == "PUT":
                wanted = call.body()
                if not self._check_identity(wanted, name, current):
                    raise Reject(409, conflict_modified(rt.group, rt.plural, name))
            elif call.method == "PATCH":
                wanted = self._patched(scale, call)[0]
            else:
                raise Reject(405, method_not_allowed())
            replicas = (wanted.get("spec") or {}).get("replicas")
            new = copy.deepcopy(current)
            new.setdefault("spec", {})["replicas"] = replicas
            updated = self._update_object(rt, current, new, call.dry_run)
            return _json_response(200, scale_of(updated))

    def _pod_log(self, namespace, name, call):
        with self._lock:
            pod = self._stored(self.discovery.resource("v1", "pods"), namespace, name)
            spec = pod.get("spec") or {}
            names = [c.get("name") for c in spec.get("containers") or []]
            all_names = names + [c.get("name") for c in spec.get("initContainers") or []]
            container = call.query.get("container")
            if not container:
                if len(names) != 1:
                    raise Reject(400, bad_request("a container name must be specified for pod %s, choose one of: [%s]"
                                                  % (name, " ".join(names))))
                container = names[0]
            elif container not in all_names:
                raise Reject(400, bad_request("container %s is not valid for pod %s" % (container, name)))
            text = self._pod_logs.get((namespace, name, container))
            if text is None:
                text = self._pod_logs.get((namespace, name, None))
            if text is None:
                if (pod.get("status") or {}).get("phase", "Pending") == "Pending":
                    raise Reject(400, bad_request('container "%s" in pod "%s" is waiting to start: ContainerCreating'
                                                  % (container, name)))
                text = ""
        tail = call.query.get("tailLines")
        if tail is not None:
            lines = text.splitlines(True)
            text = "".join(lines[-int(tail):]) if int(tail) > 0 else ""
        return _text_response(200, text)

    def _proxy_path(self, kind, namespace, name_port, call):
        prefix = "/api/v1/namespaces/%s/%s/%s/proxy" % (namespace, kind, name_port)
        return (call.path[len(prefix):] if call.path.startswith(prefix) else "/") or "/"

    def _aggregated_handler(self, path):
        """(handler, rest path) when ``path`` lies below an aggregated API with a handler, else None."""
        for group_version, handler in self._aggregated.items():
            prefix = "/apis/%s" % group_version
            if path == prefix or path.startswith(prefix + "/"):
                return handler, path[len(prefix):]
        return None

    def _service_proxy(self, namespace, name_port, call):
        # "svc", "svc:port" or "scheme:svc:port" (utilnet.SplitSchemeNamePort)
        parts = name_port.split(":")
        if len(parts) > 3 or not parts[-2 if len(parts) == 3 else 0]:
            raise Reject(400, bad_request('invalid service request "%s"' % name_port))
        service, port = (parts[0], "") if len(parts) == 1 else (parts[-2], parts[-1])
        with self._lock:
            svc = self.store.get(("", "services"), namespace, service)
            if svc is None:
                raise Reject(404, not_found("", "services", service))
            port_name = port
            if port.isdigit():
                declared = [p for p in (svc.get("spec") or {}).get("ports") or [] if str(p.get("port")) == port]
                if not declared:
                    raise Reject(503, status_failure(503, "ServiceUnavailable",
                                                     'no service port %s found for service "%s"' % (port, service)))
                port_name = declared[0].get("name") or ""
            endpoints = self.store.get(("", "endpoints"), namespace, service)
            if endpoints is None:
                raise Reject(404, not_found("", "endpoints", service))
            if not endpoints.get("subsets"):
                raise Reject(503, status_failure(503, "ServiceUnavailable", 'no endpoints available for service "%s"' % service))
            target = None
            for subset in endpoints["subsets"]:
                for entry in subset.get("ports") or []:
                    if subset.get("addresses") and (entry.get("name") or "") == port_name and target is None:
                        target = (subset["addresses"][0].get("ip"), entry.get("port"))
            if target is None:  # the real message names the whole id here
                raise Reject(503, status_failure(503, "ServiceUnavailable", 'no endpoints available for service "%s"' % name_port))
            handler = None
            for key in (port, port_name, None):
                handler = self._proxies.get((namespace, service, key))
                if handler is not None:
                    break
        return self._backend(handler, target, self._proxy_path("services", namespace, name_port, call), call)

    def _pod_proxy(self, namespace, name_port, call):
        parts = name_port.split(":")
        pod_name, port = (parts[0], "") if len(parts) == 1 else (parts[-2], parts[-1])
        with self._lock:
            pod = self.store.get(("", "pods"), namespace, pod_name)
            if pod is None:
                raise Reject(404, not_found("", "pods", pod_name))
            ip = (pod.get("status") or {}).get("podIP")
            if not ip:
                raise Reject(400, bad_request("address not allowed"))
            handler = self._pod_proxies.get((namespace, pod_name, port), self._pod_proxies.get((namespace, pod_name, None)))
        return self._backend(handler, (ip, port or 80), self._proxy_path("pods", namespace, name_port, call), call)

    def _backend(self, handler, target, path, call):
        """The proxied pod's answer, or the apiserver's 503 when nothing listens there."""
        if handler is None:
            raise Reject(503, status_failure(503, "ServiceUnavailable", "error trying to reach service: dial tcp %s:%s: "
                                             "connect: connection refused" % target))
        result = handler(call.method, path, dict(call.query), call.raw_body) if callable(handler) else handler
        status, content_type = 200, None
        if isinstance(result, tuple):
            status, content_type, result = result[0], (result[2] if len(result) > 2 else None), result[1]
        return _proxy_response(status, result, content_type)


# --------------------------------------------------------------------------
# Small pure helpers used above
# --------------------------------------------------------------------------

_REASONS = {400: "BadRequest", 401: "Unauthorized", 403: "Forbidden", 404: "NotFound", 405: "MethodNotAllowed",
            409: "Conflict", 410: "Expired", 415: "UnsupportedMediaType", 422: "Invalid", 429: "TooManyRequests",
            500: "InternalError", 503: "ServiceUnavailable", 504: "Timeout"}

# Status of create-only review resources (the admin identity is allowed everything).
_REVIEW_STATUS = {
    "SelfSubjectAccessReview": {"allowed": True},
    "SubjectAccessReview": {"allowed": True},
    "LocalSubjectAccessReview": {"allowed": True},
    "SelfSubjectRulesReview": {"resourceRules": [{"verbs": ["*"], "apiGroups": ["*"], "resources": ["*"]}],
                               "nonResourceRules": [{"verbs": ["*"], "nonResourceURLs": ["*"]}], "incomplete": False},
    "TokenReview": {"authenticated": True,
                    "user": {"username": "kubernetes-admin", "groups": ["system:masters", "system:authenticated"]}},
    "SelfSubjectReview": {"userInfo": {"username": "kubernetes-admin",
                                       "groups": ["system:masters", "system:authenticated"]}},
}


def _verb(call, name):
    """The RBAC verb of a request."""
    if call.method == "GET":
        if name:
            return "get"
        return "watch" if call.query.get("watch", "").lower() in ("true", "1") else "list"
    if call.method == "DELETE":
        return "delete" if name else "deletecollection"
    return {"POST": "create", "PUT": "update", "PATCH": "patch"}.get(call.method, call.method.lower())


def pod_qos_class(pod):
    """Guaranteed / Burstable / BestEffort from cpu and memory requests and limits (extended resources do not count)."""
    containers = ((pod.get("spec") or {}).get("containers") or []) + ((pod.get("spec") or {}).get("initContainers") or [])
    any_set, guaranteed = False, bool(containers)
    for container in containers:
        resources = (container or {}).get("resources") or {}
        limits, requests = resources.get("limits") or {}, resources.get("requests") or {}
        for resource in ("cpu", "memory"):
            if resource in limits or resource in requests:
                any_set = True
            if resource not in limits or str(requests.get(resource, limits.get(resource))) != str(limits[resource]):
                guaranteed = False
    if not any_set:
        return "BestEffort"
    return "Guaranteed" if guaranteed else "Burstable"


def scale_of(obj):
    """The autoscaling/v1 Scale of an object (the /scale subresource)."""
    meta = obj["metadata"]
    scale_meta = dict((k, meta[k]) for k in ("name", "namespace", "uid", "resourceVersion", "creationTimestamp")
                      if k in meta)
    status = {"replicas": (obj.get("status") or {}).get("replicas", 0)}
    selector = selector_to_string((obj.get("spec") or {}).get("selector"))
    if selector:
        status["selector"] = selector
    return {"kind": "Scale", "apiVersion": "autoscaling/v1", "metadata": scale_meta,
            "spec": {"replicas": (obj.get("spec") or {}).get("replicas", 0)}, "status": status}


def _proxy_response(status, body, content_type=None):
    if isinstance(body, (dict, list)):
        response = _json_response(status, body)
        if content_type:
            response.content_type = content_type
        return response
    if body is None:
        body = ""
    return _text_response(status, body, content_type or "text/plain; charset=utf-8")


# --------------------------------------------------------------------------
# HTTP glue
# --------------------------------------------------------------------------

class _Server(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True

    def __init__(self, address, fake):
        self.fake = fake
        self.connections = set()
        ThreadingHTTPServer.__init__(self, address, _Handler)


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "fake-kube-apiserver"
    sys_version = ""
    disable_nagle_algorithm = True  # headers and body go out in two writes: avoid 40 ms delayed-ACK stalls

    def setup(self):
        BaseHTTPRequestHandler.setup(self)
        self.server.connections.add(self.connection)

    def finish(self):
        try:
            BaseHTTPRequestHandler.finish(self)
        finally:
            self.server.connections.discard(self.connection)

    def log_message(self, *args):
        pass

    def _handle(self):
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length > 0 else b""
        response = self.server.fake._dispatch(self.command, self.path, self.headers, body)
        if response.reset:
            self.close_connection = True
            try:
                self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
                self.connection.close()
            except OSError:
                pass
            return
        try:
            self.send_response(response.status)
            self.send_header("Content-Type", response.content_type)
            self.send_header("Cache-Control", "no-cache, private")
            for name, value in response.headers.items():
                self.send_header(name, value)
            for warning in response.warnings:
                self.send_header("Warning", warning)
            if response.stream is None:
                self.send_header("Content-Length", str(len(response.data)))
                self.end_headers()
                self.wfile.write(response.data)
                return
            self.send_header("Transfer-Encoding", "chunked")
            self.end_headers()
            for chunk in response.stream:
                self.wfile.write(b"%x\r\n%s\r\n" % (len(chunk), chunk))
                self.wfile.flush()
            self.wfile.write(b"0\r\n\r\n")
        except OSError:  # client went away or the fake was stopped
            self.close_connection = True

    do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = _handle


# --------------------------------------------------------------------------
# Scenarios (presets by name) and standalone mode
# --------------------------------------------------------------------------

def _scenario_default(fake):
    """Everything recorded: resource.k8s.io/v1 served."""


def _scenario_dra_missing(fake):
    """No resource.k8s.io group at all."""
    fake.remove_group_version("resource.k8s.io/v1")


def _scenario_dra_beta_only(fake):
    """resource.k8s.io served only as v1beta1 (the v1 resources renamed)."""
    beta = renamed_resource_list(fake.resource_list("resource.k8s.io/v1"), "resource.k8s.io/v1beta1")
    fake.remove_group_version("resource.k8s.io/v1")
    fake.add_group_version("resource.k8s.io/v1beta1", beta)


SCENARIOS = {
    "default": _scenario_default,
    "dra-missing": _scenario_dra_missing,
    "dra-beta-only": _scenario_dra_beta_only,
}
"""Presets for ``--scenario``: name -> fn(fake). Later requirements add theirs."""


def main(argv=None):
    """Run a fake until SIGTERM/SIGINT; writes the kubeconfig and pidfile, prints the URL when ready."""
    parser = argparse.ArgumentParser(prog="python -m tests.support.fakeapi", description=__doc__.splitlines()[0])
    parser.add_argument("--kubeconfig", required=True, help="kubeconfig file to write")
    parser.add_argument("--pidfile", help="file to write this process id into")
    parser.add_argument("--scenario", default="default", choices=sorted(SCENARIOS), help="preset to apply")
    parser.add_argument("--port", type=int, default=0, help="port (default: chosen by the OS)")
    parser.add_argument("--token", help="bearer token to require (written into the kubeconfig)")
    parser.add_argument("--namespace-deletion-delay", type=float, default=0.0,
                        help="seconds before the namespace controller deletes a deleted namespace's content (real: 5)")
    parser.add_argument("--discovery-dir", help="discovery documents (default: ../shared/k8s-fixtures/discovery)")
    parser.add_argument("--fixtures-dir", help="recorded fixtures (default: ../shared/k8s-fixtures)")
    args = parser.parse_args(argv)
    try:
        fake = FakeKubeAPI(discovery_dir=args.discovery_dir, fixtures_dir=args.fixtures_dir, port=args.port)
    except BaseException as exc:  # pytest.skip's exception when ../shared is absent
        if isinstance(exc, (KeyboardInterrupt, SystemExit)):
            raise
        sys.stderr.write("fakeapi: cannot start: %s\n" % exc)
        return 2
    SCENARIOS[args.scenario](fake)
    fake.namespace_deletion_delay = args.namespace_deletion_delay
    if args.token:
        fake.require_token(args.token)
    stopped = threading.Event()

    def on_signal(signum, frame):
        stopped.set()

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    fake.start()
    try:
        fake.write_kubeconfig(args.kubeconfig, token=args.token)
        if args.pidfile:
            with open(args.pidfile, "w") as handle:
                handle.write("%d\n" % os.getpid())
        sys.stdout.write("%s\n" % fake.url)
        sys.stdout.flush()
        while not stopped.wait(0.2):
            pass
    finally:
        fake.stop()
        if args.pidfile and os.path.exists(args.pidfile):
            os.remove(args.pidfile)
    return 0


if __name__ == "__main__":
    sys.exit(main())
