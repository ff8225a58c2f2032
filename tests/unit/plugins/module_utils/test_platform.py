from ansible_collections.ai_conformance.rke2.plugins.module_utils import platform
from tests.support.shared import load_json


def test_recorded_version_document():
    info = platform.describe_version(load_json("k8s-fixtures", "discovery", "version.json"))
    assert info["kubernetes_version"] == "v1.34.9" and info["kubernetes_minor"] == "1.34"


def test_rke2_is_recognised():
    info = platform.describe_version({"gitVersion": "v1.34.1+rke2r1"})
    assert info == {"git_version": "v1.34.1+rke2r1", "kubernetes_version": "v1.34.1", "kubernetes_minor": "1.34", "platform": "rke2"}
    assert platform.describe_version({"gitVersion": "v1.33.5+k3s1"})["platform"] == "k3s"


def test_access_problems_from_recorded_reviews():
    nobody = load_json("k8s-fixtures", "objects", "selfsubjectaccessreview-nobody-create-tfjobs.json")["response"]
    admin = load_json("k8s-fixtures", "objects", "selfsubjectaccessreview-admin-create-tfjobs.json")["response"]
    attrs = {"verb": "create", "resource": "tfjobs", "group": "kubeflow.org"}
    assert platform.access_problems([(attrs, admin["status"])]) == []
    assert platform.access_problems([(attrs, nobody["status"])]) == ["cannot create tfjobs.kubeflow.org"]


def test_cluster_name_from_kubeconfig(tmp_path):
    path = tmp_path / "config"
    path.write_text("current-context: a\ncontexts:\n- name: a\n  context: {cluster: rke2-prod, user: u}\n- name: b\n  context: {cluster: other}\n")
    assert platform.kubeconfig_cluster_name(str(path)) == ("rke2-prod", "a")
    assert platform.kubeconfig_cluster_name(str(path), "b") == ("other", "a")
    assert platform.kubeconfig_cluster_name(str(tmp_path / "missing")) == (None, None)


def test_rke2_version_comes_from_the_recorded_nodes():
    server = platform.describe_version(load_json("k8s-fixtures", "discovery", "version.json"))
    node = load_json("k8s-fixtures", "objects", "node-gpu-node-1.final.json")["response"]
    info = platform.describe_nodes(server, [node])
    assert server["platform"] == "kubernetes"  # the recorded server reports v1.34.9 without a suffix
    assert info["platform_version"] == "v1.34.9+rke2r1" and info["platform"] == "rke2"
    assert info["node_versions"] == ["v1.34.9+rke2r1"]


def test_mixed_node_versions_report_the_oldest_and_plain_kubernetes_keeps_the_server_version():
    nodes = [{"status": {"nodeInfo": {"kubeletVersion": v}}} for v in ("v1.34.10+rke2r1", "v1.34.9+rke2r2", "v1.34.9+rke2r2")]
    info = platform.describe_nodes({"git_version": "v1.34.10+rke2r1", "platform": "rke2"}, nodes)
    assert info["platform_version"] == "v1.34.9+rke2r2" and info["node_versions"] == ["v1.34.9+rke2r2", "v1.34.10+rke2r1"]
    plain = platform.describe_nodes({"git_version": "v1.34.9", "platform": "kubernetes"}, [{"status": {"nodeInfo": {"kubeletVersion": "v1.34.9"}}}])
    assert plain["platform_version"] == "v1.34.9" and plain["platform"] == "kubernetes"
    assert platform.describe_nodes({"git_version": "v1.34.9"}, [])["platform_version"] == "v1.34.9"
