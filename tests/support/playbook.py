"""Run ansible-playbook from tests: in a clone and in the copy ansible-test runs."""

import json
import os
import re
import shutil
import subprocess
import sys
import time

import yaml

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def collections_path():
    """.collections of a clone, or the ansible_collections root ansible-test runs the copy from."""
    marker = os.sep + "ansible_collections" + os.sep
    if marker in REPO_ROOT:
        return REPO_ROOT.split(marker)[0]
    return os.path.join(REPO_ROOT, ".collections")


def ansible_playbook():
    """The ansible-playbook on PATH (ansible-test's injector under ansible-test units), else this Python's."""
    found = shutil.which("ansible-playbook")
    if found:
        return [found]
    beside = os.path.join(os.path.dirname(sys.executable), "ansible-playbook")
    return [beside] if os.path.exists(beside) else [sys.executable, "-m", "ansible", "playbook"]


def playbook_env(tmp_path, **extra):
    """Environment of a run: this collection and kubernetes.core, a private ANSIBLE_HOME and remote tmp
    (nothing written into the user's ~/.ansible), no colour."""
    env = dict(os.environ, ANSIBLE_COLLECTIONS_PATH=collections_path(), ANSIBLE_NOCOLOR="1", ANSIBLE_FORCE_COLOR="0",
               ANSIBLE_HOME=str(tmp_path / "ansible-home"), ANSIBLE_REMOTE_TMP=str(tmp_path / "ansible-home" / "remote-tmp"),
               PIP_CACHE_DIR=str(tmp_path / "pip-cache"), ANSIBLE_CONFIG=os.path.join(REPO_ROOT, "ansible.cfg"))
    env.update(extra)
    return env


def run_playbook(playbook, tmp_path, extra_vars=None, args=(), env=None, timeout=300):
    """Run a playbook on localhost; returns (rc, output, seconds)."""
    command = ansible_playbook() + [playbook, "-i", "localhost,", "-c", "local",
                                    "-e", "ansible_python_interpreter=" + sys.executable]
    if extra_vars:
        command += ["-e", json.dumps(extra_vars)]
    command += list(args)
    start = time.monotonic()
    proc = subprocess.run(command, cwd=REPO_ROOT, env=env or playbook_env(tmp_path), capture_output=True, text=True,
                          timeout=timeout, check=False)
    return proc.returncode, proc.stdout + proc.stderr, time.monotonic() - start


def certify(tmp_path, extra_vars, env=None, timeout=300):
    """playbooks/certify.yml with ``extra_vars``; returns (rc, output, seconds)."""
    return run_playbook(os.path.join(REPO_ROOT, "playbooks", "certify.yml"), tmp_path, extra_vars, env=env, timeout=timeout)


RECAP = re.compile(r"localhost\s+: ok=(\d+)\s+changed=(\d+)\s+unreachable=(\d+)\s+failed=(\d+)")


def run_recapped(playbook, tmp_path, variables, check=False, timeout=300):
    """Run ``playbook`` on localhost (``--check`` when ``check``), quiet about the implicit inventory.

    Returns {"rc", "changed", "failed", "out"} read from the play recap (which must be there).
    """
    env = playbook_env(tmp_path, ANSIBLE_LOCALHOST_WARNING="0", ANSIBLE_INVENTORY_UNPARSED_WARNING="0")
    rc, out, dummy = run_playbook(playbook, tmp_path, variables, args=["--check"] if check else [], env=env, timeout=timeout)
    recap = RECAP.search(out)
    assert recap, out
    return {"rc": rc, "changed": int(recap.group(2)), "failed": int(recap.group(4)), "out": out}


def run_role(role, tmp_path, variables, check=False, timeout=300):
    """A play of this collection's ``role`` alone, run with ``run_recapped``."""
    play = [{"name": role, "hosts": "localhost", "gather_facts": False, "roles": [{"role": "ai_conformance.rke2." + role}]}]
    path = tmp_path / ("%s-play.yml" % role)
    path.write_text(yaml.safe_dump(play))
    return run_recapped(str(path), tmp_path, variables, check=check, timeout=timeout)
