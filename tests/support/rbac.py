"""RBAC as the apiserver applies it, for tests: request attributes and rule matching.

``request_attributes`` parses a request the way kube-apiserver's
RequestInfoFactory does (``k8s.io/apiserver/pkg/endpoints/request/requestinfo.go``)
into the attributes RBAC authorizes; ``allowed``/``rule_allows`` follow
``k8s.io/kubernetes/plugin/pkg/auth/authorizer/rbac`` (``RuleAllows``).
``Authorizer`` plugs the shipped rules into the fake API server
(``fake.authorize_with``) so a module runs as the certifying identity would.
"""

import json
import os
from collections import namedtuple

from tests.support.fakeapi import forbidden, forbidden_path

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
ROLE_DIR = os.path.join(REPO_ROOT, "roles", "certify_identity")
RULES_FILE = os.path.join(ROLE_DIR, "vars", "main.yml")

# Non-resource URLs every authenticated identity may GET through the default
# ClusterRoles system:discovery, system:public-info-viewer and system:basic-user.
DISCOVERY_PATHS = ("/api", "/api/*", "/apis", "/apis/*", "/healthz", "/livez", "/readyz", "/version", "/version/",
                   "/openapi", "/openapi/*")
# A namespace name followed by one of these is a subresource of the namespace itself.
NAMESPACE_SUBRESOURCES = ("status", "finalize")
SERVICE_ACCOUNT_USER = "system:serviceaccount:ai-conformance:ai-conformance-certify"


class Attributes(namedtuple("Attributes", "verb group resource subresource name namespace path")):
    """What RBAC authorizes: a resource request (``resource`` set) or a non-resource ``path``."""

    @property
    def resource_request(self):
        return self.resource is not None

    def describe(self):
        """``list pods (group "") in namespace x`` / ``get path /version``: for failure messages."""
        if not self.resource_request:
            return "%s path %s" % (self.verb, self.path)
        resource = self.resource + ("/" + self.subresource if self.subresource else "")
        where = 'in namespace "%s"' % self.namespace if self.namespace else "cluster-wide"
        return '%s %s (API group "%s") %s' % (self.verb, resource, self.group, where)

    def rule(self):
        """The smallest RBAC rule that allows this request (printed when one is missing)."""
        if not self.resource_request:
            return {"nonResourceURLs": [self.path], "verbs": [self.verb]}
        resource = self.resource + ("/" + self.subresource if self.subresource else "")
        return {"apiGroups": [self.group], "resources": [resource], "verbs": [self.verb]}


def _verb(method, name, query):
    if method in ("GET", "HEAD"):
        if name:
            return "get"
        return "watch" if str(query.get("watch", "")).lower() in ("true", "1") else "list"
    if method == "DELETE":
        return "delete" if name else "deletecollection"
    return {"POST": "create", "PUT": "update", "PATCH": "patch"}.get(method, method.lower())


def request_attributes(method, path, query=None, content_type=None):
    """The RBAC attributes a request needs, as a list.

    A server-side apply (PATCH ``application/apply-patch+yaml``) also needs
    ``create``: the apiserver checks it when the apply creates the object
    (handlers/patch.go ``withAuthorization``).
    """
    query = query or {}
    parts = [p for p in path.split("/") if p]
    if parts[:1] == ["api"] and len(parts) >= 3:
        group, rest = "", parts[2:]
    elif parts[:1] == ["apis"] and len(parts) >= 4:
        group, rest = parts[1], parts[3:]
    else:
        return [Attributes(method.lower(), None, None, None, None, None, path)]
    namespace = None
    if rest[0] == "namespaces" and len(rest) > 1:
        namespace = rest[1]
        if len(rest) > 2 and rest[2] not in NAMESPACE_SUBRESOURCES:
            rest = rest[2:]
    resource = rest[0]
    name = rest[1] if len(rest) > 1 else None
    subresource = rest[2] if len(rest) > 2 else None
    verb = _verb(method, name, query)
    if name is None and verb == "list":
        for term in (query.get("fieldSelector") or "").split(","):
            if term.startswith("metadata.name="):
                name = term.split("=", 1)[1]
    found = [Attributes(verb, group, resource, subresource, name, namespace, path)]
    if method == "PATCH" and (content_type or "").startswith("application/apply-patch"):
        found.append(found[0]._replace(verb="create"))
    return found


def _matches(values, wanted):
    return "*" in values or wanted in values


def rule_allows(rule, attrs):
    """True when one PolicyRule allows the request (RBAC RuleAllows).

    A rule with a ``namespace`` key (ours: granted by a Role there) applies to that namespace only.
    """
    if rule.get("namespace") and rule["namespace"] != attrs.namespace:
        return False
    if not _matches(rule.get("verbs") or [], attrs.verb):
        return False
    if not attrs.resource_request:
        urls = rule.get("nonResourceURLs") or []
        return any(u == "*" or u == attrs.path or (u.endswith("*") and attrs.path.startswith(u[:-1])) for u in urls)
    if not _matches(rule.get("apiGroups") or [], attrs.group):
        return False
    resources = rule.get("resources") or []
    if attrs.subresource:
        wanted = "%s/%s" % (attrs.resource, attrs.subresource)
        if not ("*" in resources or wanted in resources or "*/" + attrs.subresource in resources):
            return False
    elif not _matches(resources, attrs.resource):
        return False
    names = rule.get("resourceNames") or []
    return not names or attrs.name in names


def discovery_allowed(attrs):
    """Non-resource requests the default discovery ClusterRoles allow every authenticated identity."""
    return not attrs.resource_request and attrs.verb == "get" and rule_allows(
        {"nonResourceURLs": list(DISCOVERY_PATHS), "verbs": ["get"]}, attrs)


def allowed(rules, attrs):
    """True when ``rules`` (ClusterRole rules bound cluster-wide, and Role rules with their ``namespace``)
    or the discovery roles allow ``attrs``."""
    return discovery_allowed(attrs) or any(rule_allows(rule, attrs) for rule in rules)


def documented_rules():
    """``certify_identity_rules`` as the role renders them (its defaults and vars), ``why`` included."""
    from ansible.parsing.dataloader import DataLoader
    from ansible.template import Templar

    loader = DataLoader()
    variables = {}
    for part in ("defaults", "vars"):
        variables.update(loader.load_from_file(os.path.join(ROLE_DIR, part, "main.yml"), trusted_as_template=True))
    rendered = Templar(loader=loader, variables=variables).template(variables["certify_identity_rules"])
    return json.loads(json.dumps(rendered))


def shipped_rules(drop=None):
    """The certifying identity's rules as the role applies them (``why`` removed, ``namespace`` kept).

    ``drop``: a predicate on the documented rule; matching rules are left out
    (to show what a missing permission does).
    """
    return [dict((k, v) for k, v in rule.items() if k != "why") for rule in documented_rules() if not (drop and drop(rule))]


def relaxed(rules):
    """The rules with the namespaced ones unbound from their namespace and names.

    Those come from role variables (``certify_identity_lock_namespace``, ``..._lock_name``,
    ``..._accelerator_namespace``) that follow the modules' options; a test that sets such
    an option to another value is covered once the variable is set alike.
    """
    loose = []
    for rule in rules:
        if rule.get("namespace"):
            rule = dict((k, v) for k, v in rule.items() if k not in ("namespace", "resourceNames"))
        loose.append(rule)
    return loose


def cluster_rules(rules):
    """The rules of the ClusterRole (those without a namespace), as stored."""
    return [dict((k, v) for k, v in rule.items() if k != "namespace") for rule in rules if not rule.get("namespace")]


def granted(fake, name="ai-conformance-certify"):
    """The rules the fake's store grants: ClusterRole ``name`` plus each Role ``name`` with its namespace."""
    rules = list(fake.get_object("rbac.authorization.k8s.io/v1", "clusterroles", name)["rules"])
    for role in fake.objects("rbac.authorization.k8s.io/v1", "roles"):
        if role["metadata"]["name"] == name:
            rules.extend(dict(rule, namespace=role["metadata"]["namespace"]) for rule in role["rules"])
    return rules


class Authorizer:
    """``fake.authorize_with(Authorizer(rules))``: deny what the rules do not allow, worded as RBAC does."""

    def __init__(self, rules, user=SERVICE_ACCOUNT_USER):
        self.rules = rules
        self.user = user
        self.denied = []

    def __call__(self, request):
        for attrs in request_attributes(request.method, request.path, request.query,
                                        request.headers.get("Content-Type")):
            if allowed(self.rules, attrs):
                continue
            self.denied.append(attrs)
            if not attrs.resource_request:
                return forbidden_path(self.user, attrs.verb, attrs.path)
            return forbidden(self.user, attrs.verb, attrs.group, attrs.resource, attrs.subresource, attrs.name,
                             attrs.namespace)
        return None
