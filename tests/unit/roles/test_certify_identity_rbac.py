"""The shipped ClusterRole of the certifying identity allows every API call the certification modules make.

Runs every module test (``tests/unit/plugins/modules``, so modules added later
are covered without editing this file) against the fake API server with the
request log plugin, maps each request to its RBAC attributes as the apiserver
does and checks it against ``roles/certify_identity/vars/main.yml``. A failure
prints the missing rules ready to paste, with a request and a test that needs each.
"""

import json
import os
import subprocess
import sys

import pytest
import yaml

from tests.support import rbac
from tests.support.playbook import REPO_ROOT

MODULE_TESTS = os.path.join("tests", "unit", "plugins", "modules")


@pytest.fixture(scope="module")
def module_requests(tmp_path_factory):
    """Every request the module tests sent to their fake API servers."""
    log = str(tmp_path_factory.mktemp("requests") / "requests.jsonl")
    env = dict(os.environ, AIC_REQUEST_LOG=log)
    env.pop("PYTEST_XDIST_WORKER", None)
    proc = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-p", "tests.support.request_log",
                           "-p", "no:xdist", MODULE_TESTS], cwd=REPO_ROOT, env=env, capture_output=True, text=True,
                          timeout=1200, check=False)
    assert os.path.exists(log), proc.stdout[-3000:] + proc.stderr[-3000:]
    with open(log) as handle:
        requests = [json.loads(line) for line in handle]
    assert requests, proc.stdout[-3000:]
    return requests


def test_every_rule_says_why_it_is_there():
    rules = rbac.documented_rules()
    for rule in rules:
        assert len(rule.get("why") or "") > 20, rule
        assert set(rule) <= {"why", "namespace", "apiGroups", "resources", "verbs", "resourceNames"}, rule
        assert "*" not in rule["verbs"] + rule["resources"] + rule["apiGroups"], rule
    documented = open(os.path.join(REPO_ROOT, "docs", "rbac.md")).read()
    for rule in rules:
        for resource in rule["resources"]:
            assert "`%s`" % resource in documented, "docs/rbac.md does not explain %s" % resource


def test_namespaced_rules_apply_in_their_namespace_only():
    rules = rbac.shipped_rules()
    lease = rbac.Attributes("create", "coordination.k8s.io", "leases", None, None, "kube-system", "/")
    assert rbac.allowed(rules, lease)
    assert not rbac.allowed(rules, lease._replace(namespace="default"))
    assert not rbac.allowed(rules, lease._replace(verb="get", name="someone-elses-lease"))
    daemonset = rbac.Attributes("get", "apps", "daemonsets", None, "nvidia-device-plugin-daemonset", "gpu-operator", "/")
    assert rbac.allowed(rules, daemonset) and not rbac.allowed(rules, daemonset._replace(namespace="kube-system"))


def test_no_cluster_admin_powers():
    rules = rbac.shipped_rules()
    for verb, group, resource in [("create", "rbac.authorization.k8s.io", "clusterrolebindings"), ("get", "", "secrets"),
                                  ("create", "apiextensions.k8s.io", "customresourcedefinitions"),
                                  ("patch", "helm.cattle.io", "helmcharts"), ("impersonate", "", "users"),
                                  ("delete", "", "nodes"), ("create", "", "pods/exec")]:
        resource, dummy, sub = resource.partition("/")
        attrs = rbac.Attributes(verb, group, resource, sub or None, None, "x", "/")
        assert not rbac.allowed(rules, attrs), attrs.describe()


# Tests that move what a namespaced rule is bound to (a namespace, a name) with a module option; the role has a
# variable for each (certify_identity_lock_namespace, _lock_name, _accelerator_namespace),
# so their requests are checked with the namespaced rules unbound from namespace and names.
OPTION_TESTS = (
    "test_run_lock.py::test_lock_namespace_is_configurable",
    "test_accelerator_metrics.py::test_options_override_the_profile",
)


def test_shipped_rules_allow_every_request_of_the_module_tests(module_requests):
    """Every request the module tests made is allowed by the rules as the role applies them by default."""
    rules = rbac.shipped_rules()
    loose = rbac.relaxed(rules)
    missing = {}
    for request in module_requests:
        option_test = (request["test"] or "").endswith(OPTION_TESTS)
        for attrs in rbac.request_attributes(request["method"], request["path"], request["query"], request["content_type"]):
            if not rbac.allowed(loose if option_test else rules, attrs):
                key = json.dumps(attrs.rule(), sort_keys=True)
                missing.setdefault(key, (attrs, request))
    lines = []
    for key, (attrs, request) in sorted(missing.items()):
        lines.append("%s  # needed to %s: %s %s (test %s)" % (
            yaml.safe_dump(attrs.rule(), default_flow_style=True).strip(), attrs.describe(), request["method"],
            request["path"], request["test"]))
    assert not missing, ("roles/certify_identity/vars/main.yml (certify_identity_rules) lacks %d rule(s); add them with a "
                         "`why` and a row in docs/rbac.md:\n  - %s" % (len(lines), "\n  - ".join(lines)))


def test_the_log_covers_every_module(module_requests):
    """Each module with tests made requests (the plugin saw them), so the check above is not vacuous."""
    tests = set(r["test"].split("::")[0].rsplit("/", 1)[-1] for r in module_requests if r["test"])
    expected = set(n for n in os.listdir(os.path.join(REPO_ROOT, MODULE_TESTS)) if n.startswith("test_") and n.endswith(".py"))
    assert expected <= tests, expected - tests
