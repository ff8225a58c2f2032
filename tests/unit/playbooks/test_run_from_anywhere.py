"""After scripts/setup.sh the playbooks work from any folder, without this checkout's ansible.cfg.

They find the collections beside them (Ansible searches ``<playbook dir>/collections``:
``playbooks/collections`` and ``collections`` are links to ``.collections`` made by setup).
"""

import json
import os
import subprocess

import pytest

from tests.support.fakeapi import FakeKubeAPI
from tests.support.playbook import REPO_ROOT, ansible_playbook


def run_elsewhere(tmp_path, playbook, extra_vars):
    for link in ("collections", os.path.join("playbooks", "collections")):
        if not os.path.exists(os.path.join(REPO_ROOT, link, "ansible_collections", "ai_conformance", "rke2")):
            pytest.fail("%s is missing: run scripts/setup.sh (it links it to .collections)" % link)
    env = dict((k, v) for k, v in os.environ.items() if not k.startswith("ANSIBLE_") and k != "K8S_AUTH_KUBECONFIG")
    env.update(ANSIBLE_HOME=str(tmp_path / "ansible-home"), ANSIBLE_NOCOLOR="1", ANSIBLE_LOCALHOST_WARNING="0",
               ANSIBLE_INVENTORY_UNPARSED_WARNING="0", ANSIBLE_REMOTE_TMP=str(tmp_path / "ansible-home" / "tmp"))
    command = ansible_playbook() + [os.path.join(REPO_ROOT, playbook), "-e", json.dumps(extra_vars)]
    proc = subprocess.run(command, cwd=str(tmp_path), env=env, capture_output=True, text=True, timeout=300, check=False)
    return proc.returncode, proc.stdout + proc.stderr


def test_certify_from_another_folder(tmp_path):
    with FakeKubeAPI() as fake:
        kubeconfig = fake.write_kubeconfig(str(tmp_path / "kubeconfig"))
        rc, out = run_elsewhere(tmp_path, "playbooks/certify.yml", {"conformance_kubeconfig": kubeconfig,
                                                                    "conformance_requirements": "dra_support",
                                                                    "conformance_report_dir": str(tmp_path / "report")})
    assert rc == 0, out
    assert (tmp_path / "report" / "results.json").exists()


@pytest.mark.parametrize("playbook", ["site.yml", "playbooks/addons.yml", "playbooks/certify_identity.yml"])
def test_other_playbooks_find_their_roles_from_another_folder(tmp_path, playbook):
    # addons and certify_identity only need to load; site.yml gets as far as the certify phase's input check
    rc, out = run_elsewhere(tmp_path, playbook, {"conformance_version": "9.9", "conformance_install_addons": False,
                                                 "certify_identity_kubeconfig_dest": str(tmp_path / "k"),
                                                 "conformance_kubeconfig": str(tmp_path / "none")})
    assert "was not found" not in out, out
    if playbook == "site.yml":
        assert "Unknown conformance_version 9.9" in out, out
    elif playbook == "playbooks/addons.yml":
        assert rc == 0, out
    else:
        assert "kubeconfig file %s does not exist" % (tmp_path / "none") in out, out
