"""playbooks/addons.yml end to end against the fake API server, with every installer role and default variables.

The fake plays RKE2 (Traefik deployed by its HelmChart, the Gateway API CRDs),
the helm-controller (a HelmChart of ours becomes its namespace and Available
Deployments) and the operators the roles wait for. A run installs everything,
a second run changes nothing, check mode creates nothing.

Adding an installer role: one ``Installer`` line in ``INSTALLERS`` (what the fake
plays for it, what must exist afterwards, and only the variables a test cannot
avoid, such as a local manifest copy instead of a download).
"""

from collections import namedtuple

import pytest
import yaml

from tests.support.fakeapi import FakeKubeAPI
from tests.support.gpu_cluster import recorded_node
from tests.support.kubectl import kubectl
from tests.support.playbook import REPO_ROOT, run_recapped
from tests.unit.roles.test_gateway_api_playbook import Rke2
from tests.unit.roles.test_gpu_operator_playbook import Operator
from tests.unit.roles.test_monitoring_playbook import HelmController as MonitoringCharts
from tests.unit.roles.test_training_operator_apply import build_manifests_with_ca, play_operator

PLAYBOOK = REPO_ROOT + "/playbooks/addons.yml"
HELMCHART = ("helm.cattle.io/v1", "helmcharts")


class HelmController:
    """RKE2's helm-controller: a HelmChart of ours in kube-system becomes its target namespace and Available Deployments."""

    def __init__(self, fake):
        self.releases = {}
        fake.add_reconciler(self.reconcile)

    def release(self, chart, deployments):
        self.releases[chart] = deployments

    def reconcile(self, fake):
        for chart in fake.objects(HELMCHART[0], HELMCHART[1], namespace="kube-system"):
            name, spec = chart["metadata"]["name"], chart["spec"]
            if name not in self.releases:
                continue
            target = spec.get("targetNamespace") or "default"
            if fake.get_object("v1", "namespaces", target) is None:
                fake.create_namespace(target)
            for deployment in self.releases[name]:
                if fake.get_object("apps/v1", "deployments", deployment, target) is None:
                    fake.put_object(available_deployment(deployment, target))


def available_deployment(name, namespace):
    return {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": name, "namespace": namespace, "generation": 1},
            "spec": {"replicas": 1, "selector": {"matchLabels": {"app": name}},
                     "template": {"metadata": {"labels": {"app": name}}, "spec": {"containers": [{"name": name, "image": name}]}}},
            "status": {"observedGeneration": 1, "replicas": 1, "readyReplicas": 1, "availableReplicas": 1, "updatedReplicas": 1,
                       "conditions": [{"type": "Available", "status": "True", "reason": "MinimumReplicasAvailable"}]}}


def helm_release(chart, deployments):
    """Setup of an installer that is one HelmChart: the helm-controller installs ``deployments``."""
    return lambda fake, helm, manifests: helm.release(chart, deployments)


def helmchart_installed(name, version):
    def check(fake):
        chart = fake.get_object(HELMCHART[0], HELMCHART[1], name, "kube-system")
        assert chart is not None and str(chart["spec"]["version"]) == version, chart
    return check


def setup_gateway_api(fake, helm, manifests):
    Rke2(fake)


def gateway_api_installed(fake):
    hcc = fake.get_object("helm.cattle.io/v1", "helmchartconfigs", "rke2-traefik", "kube-system")
    assert yaml.safe_load(hcc["spec"]["valuesContent"])["providers"]["kubernetesGateway"]["enabled"] is True


def setup_training_operator(fake, helm, manifests):
    play_operator(fake)


def training_operator_installed(fake):
    assert fake.get_object("apps/v1", "deployments", "training-operator", "kubeflow") is not None
    assert fake.get_object("apiextensions.k8s.io/v1", "customresourcedefinitions", "tfjobs.kubeflow.org") is not None


def training_operator_vars(manifests):
    # no download in tests: the pinned release's manifests from a local copy, rendered with the pinned kubectl
    return {"training_operator_source": "local", "training_operator_local_dir": manifests,
            "training_operator_kustomize_binary": kubectl()}


def setup_gpu_operator(fake, helm, manifests):
    recorded_node(fake, "node-gpu-node-1.final.json", gpus=0)
    Operator(fake)


def gpu_operator_installed(fake):
    helmchart_installed("gpu-operator", str(yaml.safe_load(open(REPO_ROOT + "/roles/gpu_operator/defaults/main.yml"))[
        "gpu_operator_chart_version"]))(fake)
    assert fake.get_object("nvidia.com/v1", "clusterpolicies", "cluster-policy")["status"]["state"] == "ready"


def monitoring_installed(fake):
    helmchart_installed("kube-prometheus-stack", "91.5.0")(fake)
    helmchart_installed("prometheus-adapter", "5.3.0")(fake)


Installer = namedtuple("Installer", "role setup installed variables")
INSTALLERS = [
    Installer("gateway_api", setup_gateway_api, gateway_api_installed, None),
    Installer("volcano", helm_release("volcano", ["volcano-admission", "volcano-controllers", "volcano-scheduler"]),
              helmchart_installed("volcano", "1.15.1"), None),
    Installer("training_operator", setup_training_operator, training_operator_installed, training_operator_vars),
    Installer("monitoring", lambda fake, helm, manifests: MonitoringCharts(fake), monitoring_installed, None),
    # on by default when the inventory group gpu_nodes has hosts
    Installer("gpu_operator", setup_gpu_operator, gpu_operator_installed, lambda manifests: {"gpu_operator_enabled": True}),
]


@pytest.fixture(scope="module")
def manifests(tmp_path_factory):
    """A local copy of the Training Operator's manifests (the role downloads them by default)."""
    return build_manifests_with_ca(str(tmp_path_factory.mktemp("manifests")))


@pytest.fixture
def cluster(manifests):
    with FakeKubeAPI() as fake:
        helm = HelmController(fake)
        for installer in INSTALLERS:
            installer.setup(fake, helm, manifests)
        yield fake


def addons(fake, tmp_path, manifests, check=False, **extra):
    """playbooks/addons.yml on the fake cluster with default variables; returns rc, changed, output."""
    variables = {"conformance_install_addons": True, "conformance_kubeconfig": fake.write_kubeconfig(str(tmp_path / "kubeconfig"))}
    for installer in INSTALLERS:
        variables.update(installer.variables(manifests) if installer.variables else {})
    variables.update(extra)
    outcome = run_recapped(PLAYBOOK, tmp_path, variables, check=check, timeout=600)
    return outcome["rc"], outcome["changed"], outcome["out"]


def ran(out, role):
    """True when a task of ``role`` ran (not only its include)."""
    return "TASK [ai_conformance.rke2.%s : " % role in out


def snapshot(fake):
    return dict(("%s/%s/%s" % (o.get("kind"), o["metadata"].get("namespace", ""), o["metadata"]["name"]),
                 o["metadata"].get("resourceVersion")) for o in fake.objects())


def test_every_installer_with_defaults_then_nothing_changes(cluster, tmp_path, manifests):
    rc, changed, out = addons(cluster, tmp_path, manifests)
    assert rc == 0, out
    assert changed > 0
    for installer in INSTALLERS:
        assert ran(out, installer.role), installer.role
        installer.installed(cluster)
    assert cluster.get_object(HELMCHART[0], HELMCHART[1], "kueue", "kube-system") is None  # gang_scheduler defaults to volcano
    installed = snapshot(cluster)
    rc, changed, out = addons(cluster, tmp_path, manifests)
    assert rc == 0 and changed == 0, out
    assert snapshot(cluster) == installed


def test_check_mode_creates_nothing(cluster, tmp_path, manifests):
    before = snapshot(cluster)
    rc, changed, out = addons(cluster, tmp_path, manifests, check=True)
    assert rc == 0, out
    for installer in INSTALLERS:
        assert ran(out, installer.role), installer.role
    assert snapshot(cluster) == before
    writes = [(r.method, r.path) for r in cluster.requests
              if r.method in ("POST", "PUT", "PATCH", "DELETE") and r.query.get("dryRun") != "All"]
    assert writes == []


def test_kueue_is_installed_instead_when_chosen(tmp_path, manifests):
    with FakeKubeAPI() as fake:
        HelmController(fake).release("kueue", ["kueue-controller-manager"])
        others_off = dict(("%s_enabled" % i.role, False) for i in INSTALLERS if i.role != "volcano")
        rc, changed, out = addons(fake, tmp_path, manifests, gang_scheduler="kueue", **others_off)
        assert rc == 0, out
        helmchart_installed("kueue", "0.19.2")(fake)
        assert fake.get_object(HELMCHART[0], HELMCHART[1], "volcano", "kube-system") is None
