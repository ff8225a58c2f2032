"""Role azure_autoscaler run by ansible-playbook against the fake API server.

The HelmCharts it applies are validated against the real helm-controller CRD
(../shared/crds/helm-controller); azure.json is written under a scratch prefix.
The fake plays helm-controller's result by holding Available deployments.
"""

import base64
import json
import stat
import sys

import pytest
import yaml

from tests.support import crdschema, playbook
from tests.support.fakeapi import FakeKubeAPI

SECRET = "s3cr3t-client-Secret-value"

PLAYBOOK = """
- name: Nodes
  hosts: nodes
  gather_facts: false
  tasks:
    - name: RKE2 options
      ansible.builtin.include_role:
        name: ai_conformance.rke2.azure_autoscaler
        tasks_from: rke2_options
    - name: azure.json
      ansible.builtin.include_role:
        name: ai_conformance.rke2.azure_autoscaler
        tasks_from: nodes
    - name: Keep the published RKE2 options
      ansible.builtin.copy:
        content: "{{ azure_autoscaler_rke2_config | to_json }}"
        dest: "{{ out_dir }}/{{ inventory_hostname }}.rke2.json"
        mode: "0600"
      delegate_to: localhost

- name: Cluster
  hosts: localhost
  gather_facts: false
  tasks:
    - name: HelmCharts
      ansible.builtin.include_role:
        name: ai_conformance.rke2.azure_autoscaler
"""


def available(name):
    return {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": name, "namespace": "kube-system"},
            "spec": {"replicas": 1, "selector": {"matchLabels": {"app": name}},
                     "template": {"metadata": {"labels": {"app": name}}, "spec": {"containers": [{"name": "c", "image": "x"}]}}},
            "status": {"replicas": 1, "availableReplicas": 1,
                       "conditions": [{"type": "Available", "status": "True", "reason": "MinimumReplicasAvailable",
                                       "message": "Deployment has minimum availability."}]}}


@pytest.fixture
def fake(tmp_path):
    crdschema.load_crds("helm-controller")  # skips with a reason when ../shared is absent
    with FakeKubeAPI() as server:
        server.kubeconfig = server.write_kubeconfig(str(tmp_path / "kubeconfig"))
        yield server


def run(tmp_path, fake, **extra):
    (tmp_path / "play.yml").write_text(PLAYBOOK)
    inventory = {"all": {"children": {
        "rke2_servers": {"hosts": {"server-1": {}}},
        "rke2_agents": {"hosts": {"gpu-1": {}}},
        "nodes": {"children": {"rke2_servers": {}, "rke2_agents": {}}}},
        "vars": {"ansible_connection": "local", "ansible_python_interpreter": sys.executable}}}
    (tmp_path / "inventory.yml").write_text(yaml.safe_dump(inventory))
    extra_vars = {
        "out_dir": str(tmp_path),
        "azure_autoscaler_root_prefix": str(tmp_path / "root") + "/{{ inventory_hostname }}",
        "azure_autoscaler_kubeconfig": fake.kubeconfig,
        "azure_autoscaler_tenant_id": "72f988bf-0000-4000-8000-000000000001",
        "azure_autoscaler_subscription_id": "0b6c2a0e-1111-4c3a-9d7e-2f0b8c1d2e3f",
        "azure_autoscaler_client_id": "5c1f7d2e-2222-4d4e-8f9a-3b2c1d0e9f8a",
        "azure_autoscaler_client_secret": SECRET,
        "azure_autoscaler_resource_group": "rke2-ai",
        "azure_autoscaler_location": "westeurope",
        "azure_autoscaler_cloud_config": {"vnetName": "rke2-vnet", "subnetName": "nodes", "useInstanceMetadata": False},
        "azure_autoscaler_node_groups": [{"name": "rke2-gpu-vmss", "minSize": 0, "maxSize": 3}],
        "azure_autoscaler_ca_values": {"extraArgs": {"scale-down-unneeded-time": "5m"}},
        "azure_autoscaler_wait_timeout": 4,
    }
    extra_vars.update(extra)
    # the inventory adds the nodes (local connection, this Python) to run_playbook's localhost
    rc, out, dummy = playbook.run_playbook(str(tmp_path / "play.yml"), tmp_path, extra_vars, args=("-i", str(tmp_path / "inventory.yml")),
                                           timeout=240)
    return rc, out


def recap_changed(out):
    return {line.split()[0]: int(line.split("changed=")[1].split()[0]) for line in out.splitlines() if "changed=" in line and " : ok=" in line}


def helmcharts(fake):
    return {o["metadata"]["name"]: o for o in fake.objects(kind="HelmChart", namespace="kube-system")}


def test_applies_valid_pinned_helmcharts_idempotently(fake, tmp_path):
    fake.put_object(available("cloud-controller-manager"))
    fake.put_object(available("cluster-autoscaler"))
    rc, out = run(tmp_path, fake)
    assert rc == 0, out
    assert SECRET not in out

    charts = helmcharts(fake)
    assert sorted(charts) == ["cloud-provider-azure", "cluster-autoscaler"]
    for chart in charts.values():
        manifest = {k: chart[k] for k in ("apiVersion", "kind", "spec")}
        manifest["metadata"] = {"name": chart["metadata"]["name"], "namespace": chart["metadata"]["namespace"]}
        crdschema.validate("helm-controller", manifest)
        assert chart["metadata"]["labels"]["app.kubernetes.io/part-of"] == "ai-conformance-rke2"
        assert "app.kubernetes.io/managed-by" not in chart["metadata"]["labels"]  # certify cleanup must not delete it

    ccm = charts["cloud-provider-azure"]["spec"]
    assert (ccm["chart"], ccm["version"], ccm["bootstrap"], ccm["targetNamespace"]) == ("cloud-provider-azure", "1.34.5", True, "kube-system")
    assert ccm["repo"] == "https://raw.githubusercontent.com/kubernetes-sigs/cloud-provider-azure/master/helm/repo"
    values = yaml.safe_load(ccm["valuesContent"])
    # the reference procedure's --set values
    assert values["cloudControllerManager"]["imageRepository"] == "mcr.microsoft.com/oss/kubernetes"
    assert values["cloudControllerManager"]["imageName"] == "azure-cloud-controller-manager"
    assert values["cloudNodeManager"]["imageRepository"] == "mcr.microsoft.com/oss/kubernetes"
    assert values["cloudNodeManager"]["imageName"] == "azure-cloud-node-manager"
    assert values["cloudControllerManager"]["configureCloudRoutes"] is False
    assert values["cloudControllerManager"]["allocateNodeCidrs"] is False
    assert values["cloudControllerManager"]["nodeSelector"] == {"node-role.kubernetes.io/control-plane": "true"}

    ca = charts["cluster-autoscaler"]["spec"]
    assert (ca["chart"], ca["version"], ca["repo"]) == ("cluster-autoscaler", "9.52.1", "https://kubernetes.github.io/autoscaler")
    values = yaml.safe_load(ca["valuesContent"])
    assert values["cloudProvider"] == "azure" and values["azureVMType"] == "vmss"
    assert values["autoscalingGroups"] == [{"name": "rke2-gpu-vmss", "minSize": 0, "maxSize": 3}]
    assert values["image"] == {"repository": "registry.k8s.io/autoscaling/cluster-autoscaler", "tag": "v1.34.1"}
    assert values["extraArgs"]["scale-down-unneeded-time"] == "5m"  # user values merged recursively
    assert values["extraArgs"]["expander"] == "least-waste"
    assert SECRET not in json.dumps(charts)
    assert ca["valuesSecrets"] == [{"name": "cluster-autoscaler-azure-values", "keys": ["values.yaml"]}]

    secret = fake.get_object("v1", "secrets", "cluster-autoscaler-azure-values", "kube-system")
    credentials = yaml.safe_load(base64.b64decode(secret["data"]["values.yaml"]))
    assert credentials["azureClientSecret"] == SECRET
    assert credentials["azureResourceGroup"] == "rke2-ai"

    for host in ("server-1", "gpu-1"):
        path = tmp_path / "root" / host / "etc" / "kubernetes" / "azure.json"
        assert stat.S_IMODE(path.stat().st_mode) == 0o600
        config = json.loads(path.read_text())
        assert config["useManagedIdentityExtension"] is False
        assert config["useInstanceMetadata"] is True  # forced even though the user dict said false
        assert config["aadClientSecret"] == SECRET
        assert (config["vmType"], config["vnetName"], config["location"]) == ("vmss", "rke2-vnet", "westeurope")

    assert json.loads((tmp_path / "server-1.rke2.json").read_text()) == {
        "kubelet-arg": ["cloud-provider=external"], "disable-cloud-controller": True}
    assert json.loads((tmp_path / "gpu-1.rke2.json").read_text()) == {"kubelet-arg": ["cloud-provider=external"]}

    rc, out = run(tmp_path, fake)
    assert rc == 0, out
    assert set(recap_changed(out).values()) == {0}, out


def test_min_equal_max_node_group_is_refused_before_anything_is_applied(fake, tmp_path):
    rc, out = run(tmp_path, fake, azure_autoscaler_node_groups=[{"name": "rke2-gpu-vmss", "minSize": 2, "maxSize": 2}])
    assert rc != 0
    assert "cannot scale, so it cannot show autoscaling" in out
    assert helmcharts(fake) == {}


def test_missing_credentials_are_named_not_shown(fake, tmp_path):
    rc, out = run(tmp_path, fake, azure_autoscaler_tenant_id="", azure_autoscaler_location="")
    assert rc != 0
    assert "azure.json needs azure_autoscaler_tenant_id, azure_autoscaler_location (empty now)" in out
    assert SECRET not in out


def test_deployment_that_never_becomes_available_fails_in_bounded_time(fake, tmp_path):
    fake.put_object(available("cloud-controller-manager"))
    rc, out = run(tmp_path, fake, azure_autoscaler_wait_timeout=2)
    assert rc != 0
    assert "Deployment kube-system/cluster-autoscaler was not Available within 2 s" in out
    assert "it does not exist: see the helm-install job of its HelmChart" in out
