"""Provision then certify, as site.yml does: localhost in rke2_servers (everything up to systemd
run for real under a scratch prefix), the certify phase pointed by provision.yml at the fetched
kubeconfig, which leads to the fake API server.

Run twice: the second provisioning changes nothing. cluster_autoscaling is not_applicable with
notes when declared so, failed with reasons otherwise (the fake has no autoscaler).
"""

import copy
import hashlib
import io
import json
import os
import re
import sys
import tarfile

import pytest
import yaml

from tests.support import playbook
from tests.support.fakeapi import FakeKubeAPI
from tests.support.shared import fixture_response

VERSION = "v1.34.11+rke2r1"

SITE = """
- name: Provision
  ansible.builtin.import_playbook: {root}/playbooks/provision.yml
- name: Certify
  ansible.builtin.import_playbook: {root}/playbooks/certify.yml
"""


def fake_release(directory):
    """rke2.linux-amd64.tar.gz laid out like the real one, and its sha256sum-amd64.txt."""
    os.makedirs(directory)
    files = {
        "bin/rke2": b"#!/bin/sh\necho 'rke2 version %s (test)'\n" % VERSION.encode(),
        "lib/systemd/system/rke2-server.service": b"[Service]\nExecStart=/usr/local/bin/rke2 server\n",
        "lib/systemd/system/rke2-agent.service": b"[Service]\nExecStart=/usr/local/bin/rke2 agent\n",
        "share/rke2/LICENSE.txt": b"Apache License 2.0 (test release)\n",
    }
    tarball = os.path.join(directory, "rke2.linux-amd64.tar.gz")
    with tarfile.open(tarball, "w:gz") as tar:
        for name, data in sorted(files.items()):
            info = tarfile.TarInfo(name)
            info.size = len(data)
            info.mode = 0o755 if name.startswith("bin/") else 0o644
            info.mtime = 1767225600
            tar.addfile(info, io.BytesIO(data))
    with open(tarball, "rb") as handle:
        digest = hashlib.sha256(handle.read()).hexdigest()
    with open(os.path.join(directory, "sha256sum-amd64.txt"), "w") as handle:
        handle.write("%s  rke2.linux-amd64.tar.gz\n" % digest)


@pytest.fixture
def site(tmp_path):
    with FakeKubeAPI() as fake:
        prefix = tmp_path / "node"
        rke2_dir = prefix / "etc" / "rancher" / "rke2"
        os.makedirs(str(rke2_dir))
        # what RKE2 writes on the first server once it runs: here, access to the fake
        fake.write_kubeconfig(str(rke2_dir / "rke2.yaml"))
        fake_release(str(tmp_path / "artifacts"))
        (tmp_path / "site.yml").write_text(SITE.format(root=playbook.REPO_ROOT))
        inventory = {"all": {"children": {"rke2_servers": {"hosts": {"localhost": {
            "ansible_connection": "local",
            "ansible_python_interpreter": sys.executable,
            "rke2_become": False,
            "rke2_manage_service": False,
            "rke2_root_prefix": str(prefix),
            "rke2_install_method": "artifacts",
            "rke2_artifact_dir": str(tmp_path / "artifacts"),
            "rke2_kubeconfig_local_path": str(tmp_path / "controller" / "kubeconfig.yaml"),
            "rke2_kubeconfig_server": fake.url,
            "rke2_host_config": {"node-label": ["nvidia.com/gpu.present=true"]},
        }}}, "rke2_agents": {"hosts": {}}}}}
        (tmp_path / "inventory.yml").write_text(yaml.safe_dump(inventory))
        fake.tmp = tmp_path
        yield fake


def run_site(fake, **extra):
    extra_vars = {"conformance_requirements": ["cluster_autoscaling"], "conformance_report_dir": str(fake.tmp / "report"),
                  "conformance_timeout": 10}
    extra_vars.update(extra)
    # the inventory adds localhost to rke2_servers, with the same connection and interpreter as run_playbook's
    rc, out, dummy = playbook.run_playbook(str(fake.tmp / "site.yml"), fake.tmp, extra_vars, args=("-i", str(fake.tmp / "inventory.yml")))
    return rc, out


def changed_rke2_tasks(out):
    """Names of tasks of the rke2 role that reported a change."""
    changed = []
    for block in re.split(r"\nTASK \[", out)[1:]:
        title = block.split("]", 1)[0]
        if title.startswith("ai_conformance.rke2.rke2 :") and re.search(r"^changed: \[", block, re.MULTILINE):
            changed.append(title)
    return changed


def results(fake):
    with open(str(fake.tmp / "report" / "results.json")) as handle:
        return {r["requirement"]: r for r in json.load(handle)["requirements"]}


def test_provision_twice_then_cluster_autoscaling_not_applicable_when_declared(site):
    rc, out = run_site(site, cluster_autoscaling_provided=False)
    assert rc == 0, out[-3000:]
    assert changed_rke2_tasks(out), "the first run installs and configures"
    config = yaml.safe_load((site.tmp / "node" / "etc" / "rancher" / "rke2" / "config.yaml").read_text())
    # ingress-controller: the Gateway API add-on (gateway_api_enabled, default true) makes Traefik RKE2's ingress controller
    assert config == {"ingress-controller": "traefik", "node-label": ["nvidia.com/gpu.present=true"], "tls-san": ["localhost"],
                      "token-file": "/etc/rancher/rke2/token"}
    fetched = yaml.safe_load((site.tmp / "controller" / "kubeconfig.yaml").read_text())
    assert fetched["clusters"][0]["cluster"]["server"] == site.url

    result = results(site)["cluster_autoscaling"]
    assert result["status"] == "not_applicable"
    assert any("faq.md" in note for note in result["notes"])

    rc, out = run_site(site, cluster_autoscaling_provided=False)
    assert rc == 0, out[-3000:]
    assert changed_rke2_tasks(out) == []
    assert re.search(r"TASK \[ai_conformance\.rke2\.rke2 : Write config\.yaml\] \**\nok: \[localhost\]", out)
    assert re.search(r"^localhost +: ok=\d+ +changed=0 ", out, re.MULTILINE)  # the new report is not a change


def test_cluster_autoscaling_fails_with_reasons_without_an_autoscaler(site):
    node = copy.deepcopy(fixture_response("k8s-fixtures", "objects", "node-gpu-node-1.final.json"))
    for key in ("resourceVersion", "uid", "creationTimestamp", "managedFields"):
        node["metadata"].pop(key, None)
    site.put_object(node)
    rc, out = run_site(site)
    assert rc != 0  # a MUST requirement is not met
    assert "MUST requirement(s) of checklist 1.34 not met: cluster_autoscaling" in out
    result = results(site)["cluster_autoscaling"]
    assert result["status"] == "failed"
    failed = {c["name"]: c["message"] for c in result["checks"] if c["status"] == "failed"}
    assert sorted(failed) == ["accelerator_node_group", "autoscaler_deployment", "provider_ids"]
    assert "gpu-node-1" in failed["provider_ids"]
