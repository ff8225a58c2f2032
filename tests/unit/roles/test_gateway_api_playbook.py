"""Run roles/gateway_api with ansible-playbook against the fake API server.

The fake plays RKE2: a HelmChart rke2-traefik and its DaemonSet exist; a reconciler plays
helm-controller + the DaemonSet controller (when the HelmChartConfig enables the Gateway API
provider, the pods roll out with --providers.kubernetesgateway) and the apiextensions
controller (applied CRDs become Established). Checks idempotence, check mode, the CRD policy
and the failure messages.
"""

import glob
import os

import pytest
import yaml

from tests.support.fakeapi import FakeKubeAPI, unreachable_url
from tests.support.playbook import run_role
from tests.support.shared import shared_path

CRD_NAMES = ["gatewayclasses", "gateways", "httproutes", "grpcroutes", "referencegrants"]
HCC = ("helm.cattle.io/v1", "helmchartconfigs")
OLD_ARGS = ["--entryPoints.web.address=:8000/tcp", "--providers.kubernetescrd", "--providers.kubernetesingress"]


def gateway_crds():
    docs = []
    for path in sorted(glob.glob(os.path.join(shared_path("crds", "gateway-api"), "*.yaml"))):
        with open(path) as handle:
            docs.extend(d for d in yaml.safe_load_all(handle) if d)
    return docs


class Rke2:
    def __init__(self, fake, crds=True, traefik=True, rolls_out=True):
        self.fake = fake
        self.rolls_out = rolls_out
        if crds:
            for crd in gateway_crds():
                crd["status"] = {"conditions": [{"type": "Established", "status": "True", "reason": "InitialNamesAccepted"}]}
                fake.put_object(crd)
        if traefik:
            fake.put_object({"apiVersion": "helm.cattle.io/v1", "kind": "HelmChart",
                             "metadata": {"name": "rke2-traefik", "namespace": "kube-system"},
                             "spec": {"chart": "rke2-traefik", "targetNamespace": "kube-system"}})
            fake.put_object(self.daemonset(OLD_ARGS, 1))
        fake.add_reconciler(self.reconcile)

    @staticmethod
    def daemonset(args, generation):
        return {"apiVersion": "apps/v1", "kind": "DaemonSet",
                "metadata": {"name": "rke2-traefik", "namespace": "kube-system", "generation": generation},
                "spec": {"selector": {"matchLabels": {"app": "traefik"}}, "template": {
                    "metadata": {"labels": {"app": "traefik"}},
                    "spec": {"containers": [{"name": "rke2-traefik", "image": "rancher/hardened-traefik", "args": args}]}}},
                "status": {"observedGeneration": generation, "desiredNumberScheduled": 2, "currentNumberScheduled": 2,
                           "updatedNumberScheduled": 2, "numberAvailable": 2, "numberReady": 2}}

    def reconcile(self, fake):
        for crd in fake.objects("apiextensions.k8s.io/v1", "customresourcedefinitions"):
            if not (crd.get("status") or {}).get("conditions"):
                fake.set_status("apiextensions.k8s.io/v1", "customresourcedefinitions", crd["metadata"]["name"],
                                {"conditions": [{"type": "Established", "status": "True", "reason": "InitialNamesAccepted"}]})
        hcc = fake.get_object(HCC[0], HCC[1], "rke2-traefik", "kube-system")
        ds = fake.get_object("apps/v1", "daemonsets", "rke2-traefik", "kube-system")
        if not (hcc and ds and self.rolls_out):
            return
        values = yaml.safe_load(hcc["spec"]["valuesContent"]) or {}
        enabled = values.get("providers", {}).get("kubernetesGateway", {}).get("enabled")
        args = ds["spec"]["template"]["spec"]["containers"][0]["args"]
        if enabled and "--providers.kubernetesgateway" not in args:
            fake.put_object(self.daemonset(OLD_ARGS + ["--providers.kubernetesgateway"], ds["metadata"]["generation"] + 1))


@pytest.fixture()
def fake():
    with FakeKubeAPI() as server:
        yield server


def playbook(fake, tmp_path, extra_vars=None, check=False):
    variables = {"gateway_api_kubeconfig": fake.write_kubeconfig(str(tmp_path / "kubeconfig")),
                 "gateway_api_traefik_rollout_delay": 1, "gateway_api_traefik_rollout_timeout": 4}
    variables.update(extra_vars or {})
    return run_role("gateway_api", tmp_path, variables, check=check)


def hcc_values(fake):
    hcc = fake.get_object(HCC[0], HCC[1], "rke2-traefik", "kube-system")
    return yaml.safe_load(hcc["spec"]["valuesContent"]) if hcc else None


def test_enables_the_provider_waits_for_the_rollout_and_is_idempotent(fake, tmp_path):
    Rke2(fake)
    first = playbook(fake, tmp_path, {"gateway_api_traefik_values": {"logs": {"general": {"level": "DEBUG"}}}})
    assert first["rc"] == 0 and first["changed"] == 1, first["out"]
    assert hcc_values(fake) == {"providers": {"kubernetesGateway": {"enabled": True}}, "logs": {"general": {"level": "DEBUG"}}}
    ds = fake.get_object("apps/v1", "daemonsets", "rke2-traefik", "kube-system")
    assert "--providers.kubernetesgateway" in ds["spec"]["template"]["spec"]["containers"][0]["args"]
    assert not fake.requests_to("POST", "customresourcedefinitions") and not fake.requests_to("PATCH", "customresourcedefinitions")
    second = playbook(fake, tmp_path, {"gateway_api_traefik_values": {"logs": {"general": {"level": "DEBUG"}}}})
    assert second["rc"] == 0 and second["changed"] == 0, second["out"]


def test_check_mode_changes_nothing(fake, tmp_path):
    Rke2(fake, crds=False)
    bundle = tmp_path / "standard-install.yaml"
    bundle.write_text(yaml.safe_dump_all(gateway_crds()))
    result = playbook(fake, tmp_path, {"gateway_api_crds_src": str(bundle)}, check=True)
    assert result["rc"] == 0 and result["failed"] == 0, result["out"]
    assert result["changed"] == 2  # would apply the CRDs and the HelmChartConfig
    assert hcc_values(fake) is None
    assert fake.objects("apiextensions.k8s.io/v1", "customresourcedefinitions") == []
    assert not [r for r in fake.requests if r.method in ("POST", "PUT", "DELETE")
                or (r.method == "PATCH" and "dryRun" not in r.query)]


def test_auto_installs_missing_crds_from_a_local_file(fake, tmp_path):
    Rke2(fake, crds=False)
    bundle = tmp_path / "standard-install.yaml"
    bundle.write_text(yaml.safe_dump_all(gateway_crds()))
    result = playbook(fake, tmp_path, {"gateway_api_crds_src": str(bundle)})
    assert result["rc"] == 0, result["out"]
    names = sorted(c["metadata"]["name"] for c in fake.objects("apiextensions.k8s.io/v1", "customresourcedefinitions"))
    assert ["%s.gateway.networking.k8s.io" % n for n in sorted(CRD_NAMES)] == [n for n in names if n.split(".")[0] in CRD_NAMES]
    # installed: the second run leaves them alone (auto = only when missing)
    fake.clear_requests()
    again = playbook(fake, tmp_path, {"gateway_api_crds_src": str(bundle)})
    assert again["changed"] == 0 and not fake.requests_to("PATCH", "customresourcedefinitions"), again["out"]


def test_crds_missing_and_install_disabled_fails_clearly(fake, tmp_path):
    Rke2(fake, crds=False)
    result = playbook(fake, tmp_path, {"gateway_api_install_crds": "false"})
    assert result["rc"] != 0
    assert "lacks the Gateway API CRDs gatewayclasses.gateway.networking.k8s.io" in result["out"]
    assert hcc_values(fake) is None


def test_without_rke2_traefik_the_role_says_what_to_configure(fake, tmp_path):
    Rke2(fake, traefik=False)
    result = playbook(fake, tmp_path)
    assert result["rc"] != 0
    assert "RKE2 does not deploy Traefik" in result["out"] and "ingress-controller" in result["out"]
    assert hcc_values(fake) is None


def test_rollout_that_never_happens_fails_within_the_timeout_with_the_state(fake, tmp_path):
    Rke2(fake, rolls_out=False)
    result = playbook(fake, tmp_path)
    assert result["rc"] != 0
    assert "did not roll out with --providers.kubernetesgateway within 4s" in result["out"]
    assert "--providers.kubernetesingress" in result["out"]  # the args it saw


def test_unreachable_crd_url_names_it_and_the_air_gapped_option(fake, tmp_path):
    Rke2(fake, crds=False)
    url = unreachable_url() + "/standard-install.yaml"
    result = playbook(fake, tmp_path, {"gateway_api_crds_url": url})
    assert result["rc"] != 0
    assert "Could not load the Gateway API CRDs (v1.4.1) from %s" % url in result["out"], result["out"]
    assert "set gateway_api_crds_src to its path on the controller" in result["out"]
    assert "Connection refused" in result["out"]
    assert hcc_values(fake) is None


def test_missing_local_crd_file_is_named(fake, tmp_path):
    Rke2(fake, crds=False)
    missing = str(tmp_path / "nowhere.yaml")
    result = playbook(fake, tmp_path, {"gateway_api_crds_src": missing})
    assert result["rc"] != 0
    assert missing in result["out"] and "set gateway_api_crds_src" not in result["out"], result["out"]
