"""roles/monitoring (rendered HelmCharts and ServiceMonitor validated against the real CRDs, values, pins, wait
expressions) and the verification roles ai_service_metrics and pod_autoscaling (every module option passed).

The role variables are rendered with Ansible's own Templar, as a play would.
"""

import json
import os
import re

import pytest
import yaml
from ansible.parsing.dataloader import DataLoader
from ansible.template import Templar

from ansible_collections.ai_conformance.rke2.plugins.module_utils import metrics_app as app
from tests.support import crdschema

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))


def render(name, **overrides):
    loader = DataLoader()
    variables = {}
    for part in ("defaults", "vars"):
        variables.update(loader.load_from_file(os.path.join(ROOT, "roles", "monitoring", part, "main.yml"), trusted_as_template=True))
    variables.update(overrides)
    return json.loads(json.dumps(Templar(loader=loader, variables=variables).template(variables[name])))


def values(chart):
    return yaml.safe_load(chart["spec"]["valuesContent"])


@pytest.mark.parametrize("name,chart,version", [("monitoring_prometheus_helmchart", "kube-prometheus-stack", "91.5.0"),
                                                ("monitoring_adapter_helmchart", "prometheus-adapter", "5.3.0")])
def test_helmcharts_are_valid_pinned_and_labelled_as_installer(name, chart, version):
    rendered = render(name)
    crdschema.validate("helm-controller", rendered)
    assert rendered["metadata"]["namespace"] == "kube-system"
    assert rendered["metadata"]["labels"]["app.kubernetes.io/managed-by"] == "ai-conformance-rke2-installer"
    spec = rendered["spec"]
    assert (spec["repo"], spec["chart"], spec["version"], spec["targetNamespace"]) == (
        "https://prometheus-community.github.io/helm-charts", chart, version, "monitoring")


def test_prometheus_selects_monitors_of_every_namespace():
    spec = values(render("monitoring_prometheus_helmchart"))["prometheus"]["prometheusSpec"]
    assert spec["serviceMonitorSelectorNilUsesHelmValues"] is False and spec["podMonitorSelectorNilUsesHelmValues"] is False
    for key in ("serviceMonitorSelector", "serviceMonitorNamespaceSelector", "podMonitorSelector", "podMonitorNamespaceSelector"):
        assert spec[key] == {}, key


def test_prometheus_values_merge_recursively():
    chart = render("monitoring_prometheus_helmchart", monitoring_prometheus_values={
        "prometheus": {"prometheusSpec": {"retention": "2d"}}, "grafana": {"enabled": False}})
    merged = values(chart)
    assert merged["grafana"] == {"enabled": False}
    assert merged["prometheus"]["prometheusSpec"]["retention"] == "2d"
    assert merged["prometheus"]["prometheusSpec"]["serviceMonitorSelector"] == {}
    crdschema.validate("helm-controller", chart)


def test_adapter_values_point_at_prometheus_and_register_no_resource_metrics():
    adapter = values(render("monitoring_adapter_helmchart"))
    assert adapter["prometheus"] == {"url": "http://prometheus-operated.monitoring.svc", "port": 9090}
    # rules.resource null removes the chart's resource rules: no v1beta1.metrics.k8s.io beside RKE2's metrics-server
    assert "resource" in adapter["rules"] and adapter["rules"]["resource"] is None
    assert adapter["rules"]["default"] is False


def test_adapter_rules_serve_gpu_utilization_and_the_test_family():
    rules = values(render("monitoring_adapter_helmchart"))["rules"]["custom"]
    gpu, test = rules
    assert gpu["seriesQuery"] == 'DCGM_FI_DEV_GPU_UTIL{exported_namespace!="",exported_pod!=""}'
    assert gpu["resources"]["overrides"] == {"exported_namespace": {"resource": "namespace"}, "exported_pod": {"resource": "pod"}}
    assert gpu["name"]["as"] == "gpu_utilization"
    pattern = test["name"]["matches"]
    for metric in (app.GAUGE, app.COUNTER):
        assert metric.startswith(app.FAMILY_PREFIX) and re.match(pattern, metric)
    assert test["name"]["as"] == "${1}"
    assert test["resources"]["overrides"]["pod"] == {"resource": "pod"}
    for rule in rules:
        assert "<<.Series>>{<<.LabelMatchers>>}" in rule["metricsQuery"] and "<<.GroupBy>>" in rule["metricsQuery"]
    extra = {"seriesQuery": "vllm_num_requests_running", "resources": {"template": "<<.Resource>>"}, "metricsQuery": "x"}
    assert values(render("monitoring_adapter_helmchart", monitoring_adapter_extra_rules=[extra]))["rules"]["custom"][-1] == extra


def test_dcgm_service_monitor_is_the_reference_procedures():
    monitor = render("monitoring_dcgm_servicemonitor")
    crdschema.validate("prometheus-operator", monitor)
    assert monitor["spec"]["selector"] == {"matchLabels": {"app": "nvidia-dcgm-exporter"}}
    assert monitor["spec"]["namespaceSelector"] == {"matchNames": ["gpu-operator"]}
    assert monitor["spec"]["endpoints"] == [{"port": "gpu-metrics", "path": "/metrics", "interval": "15s"}]
    groups = {"gpu_nodes": []}
    assert render("monitoring_dcgm_service_monitor", groups=groups) is True  # no GPU Operator add-on
    groups = {"gpu_nodes": ["gpu-1"]}  # the gpu_operator add-on runs; its own ServiceMonitor is auto (on)
    assert render("monitoring_dcgm_service_monitor", groups=groups) is False
    assert render("monitoring_dcgm_service_monitor", groups=groups, gpu_operator_dcgm_service_monitor="false") is True
    assert render("monitoring_dcgm_service_monitor", groups=groups, gpu_operator_dcgm_service_monitor=False) is True
    assert render("monitoring_dcgm_service_monitor", groups=groups, gpu_operator_enabled=False) is True
    assert render("monitoring_dcgm_service_monitor", groups={"gpu_nodes": []}, gpu_operator_enabled=True) is False


def test_namespace_allows_node_exporter():
    namespace = render("monitoring_namespace_object")
    assert namespace["metadata"]["labels"]["pod-security.kubernetes.io/enforce"] == "privileged"
    assert namespace["metadata"]["labels"]["app.kubernetes.io/managed-by"] == "ai-conformance-rke2-installer"


def cond(type_, status, reason=""):
    return {"type": type_, "status": status, "reason": reason}


def test_wait_expressions():
    assert render("_monitoring_prometheus_available") is False
    assert render("_monitoring_prometheus_state") == "no Prometheus object yet"
    look = {"resources": [{"metadata": {"name": "kps-prometheus"},
                           "status": {"conditions": [cond("Available", "False", "NoPodReady"), cond("Reconciled", "True")]}}]}
    assert render("_monitoring_prometheus_available", _monitoring_prometheus=look) is False
    assert render("_monitoring_prometheus_state", _monitoring_prometheus=look) == (
        "kps-prometheus: Available=False (NoPodReady), Reconciled=True")
    look["resources"][0]["status"]["conditions"][0] = cond("Available", "True")
    assert render("_monitoring_prometheus_available", _monitoring_prometheus=look) is True
    assert render("_monitoring_apiservice_available") is False
    apiservice = {"resources": [{"status": {"conditions": [cond("Available", "False", "MissingEndpoints")]}}]}
    assert render("_monitoring_apiservice_available", _monitoring_apiservice=apiservice) is False
    assert render("_monitoring_apiservice_conditions", _monitoring_apiservice=apiservice)[0]["reason"] == "MissingEndpoints"
    apiservice["resources"][0]["status"]["conditions"][0] = cond("Available", "True", "Passed")
    assert render("_monitoring_apiservice_available", _monitoring_apiservice=apiservice) is True
    assert render("_monitoring_crd_established", _monitoring_crd={"resources": []}) is False
    assert render("_monitoring_crd_established", _monitoring_crd={"resources": [{"status": {"conditions": [cond("Established", "True")]}}]}) is True


def load(*parts):
    with open(os.path.join(ROOT, *parts)) as handle:
        return yaml.safe_load(handle)


def test_monitoring_argument_specs_match_the_defaults():
    options = load("roles", "monitoring", "meta", "argument_specs.yml")["argument_specs"]["main"]["options"]
    defaults = load("roles", "monitoring", "defaults", "main.yml")
    assert set(options) == set(defaults)
    for name, spec in options.items():
        assert spec.get("default") == defaults[name], name
        assert spec.get("description"), name


def test_addons_playbook_includes_the_role_with_its_tag():
    plays = load("playbooks", "addons.yml")
    task = [t for t in plays[0]["tasks"] if (t.get("ansible.builtin.include_role") or {}).get("name") == "ai_conformance.rke2.monitoring"]
    assert len(task) == 1 and task[0]["tags"] == ["monitoring"]
    assert "monitoring_enabled" in task[0]["when"]


@pytest.mark.parametrize("requirement", ["ai_service_metrics", "pod_autoscaling"])
def test_verification_role_passes_every_module_option(requirement):
    module = __import__("ansible_collections.ai_conformance.rke2.plugins.modules.%s" % requirement, fromlist=["DOCUMENTATION"])
    documented = yaml.safe_load(module.DOCUMENTATION)["options"]
    task = load("roles", requirement, "tasks", "main.yml")[0]["ai_conformance.rke2.%s" % requirement]
    defaults = load("roles", requirement, "defaults", "main.yml")
    options = load("roles", requirement, "meta", "argument_specs.yml")["argument_specs"]["main"]["options"]
    assert set(documented) | {"timeout", "run_id"} == set(task)
    assert set(options) == set(defaults) == set("%s_%s" % (requirement, o) for o in task)
    for name in documented:
        default = documented[name].get("default", "")
        assert defaults["%s_%s" % (requirement, name)] == default, name
        assert options["%s_%s" % (requirement, name)]["default"] == default, name
    assert "300" in defaults["%s_timeout" % requirement]


@pytest.mark.parametrize("requirement", ["ai_service_metrics", "pod_autoscaling"])
def test_module_documentation_matches_the_argument_spec(requirement):
    from unittest import mock

    from ansible_collections.ai_conformance.rke2.plugins.module_utils.kube import COMMON_ARG_SPEC, common_argument_spec

    module = __import__("ansible_collections.ai_conformance.rke2.plugins.modules.%s" % requirement, fromlist=["main"])
    documented = yaml.safe_load(module.DOCUMENTATION)["options"]
    captured = {}

    class Built(Exception):
        pass

    def build(argument_spec, supports_check_mode):
        captured.update(argument_spec)
        assert supports_check_mode is True
        raise Built()

    with mock.patch.object(module, "AnsibleK8SModule", build):
        with pytest.raises(Built):
            module.main()
    own = dict((k, v) for k, v in captured.items() if k not in common_argument_spec() or k in documented)
    assert not set(own) & set(COMMON_ARG_SPEC)
    assert set(own) == set(documented)
    for name, spec in own.items():
        for attr in ("type", "default", "choices", "elements"):
            assert spec.get(attr) == documented[name].get(attr), (name, attr)
