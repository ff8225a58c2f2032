#!/usr/bin/env bash
# Create .venv/ with the pinned requirements and a collections path holding
# kubernetes.core (from the `ansible` wheel on PyPI; Galaxy is not reachable)
# and this collection (a symlink to the repo root). Re-running is fast and
# changes nothing once everything is in place.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"

PYTHON="${PYTHON:-python3}"
VENV="$ROOT/.venv"
COLLECTIONS="$ROOT/.collections/ansible_collections"
ANSIBLE_WHEEL_VERSION="12.3.0"          # ships kubernetes.core 6.2.0
REQUIREMENTS="${1:-requirements.txt}"
STAMP="$VENV/.installed-$(basename "$REQUIREMENTS")"

if [ ! -x "$VENV/bin/python" ]; then
  echo "setup: creating $VENV"
  "$PYTHON" -m venv "$VENV"
fi

# Install only when the requirements changed since the last install.
want="$(cat "$REQUIREMENTS" requirements.txt | sha256sum | cut -d' ' -f1)"
if [ ! -f "$STAMP" ] || [ "$(cat "$STAMP")" != "$want" ]; then
  echo "setup: installing $REQUIREMENTS into .venv"
  "$VENV/bin/python" -m pip install --quiet --disable-pip-version-check --upgrade pip
  "$VENV/bin/python" -m pip install --quiet --disable-pip-version-check -r "$REQUIREMENTS"
  echo "$want" > "$STAMP"
fi

# kubernetes.core from the ansible community wheel.
if [ ! -f "$COLLECTIONS/kubernetes/core/MANIFEST.json" ]; then
  echo "setup: extracting kubernetes.core from ansible==$ANSIBLE_WHEEL_VERSION"
  tmp="$(mktemp -d)"
  trap 'rm -rf "$tmp"' EXIT
  "$VENV/bin/python" -m pip download --quiet --disable-pip-version-check --no-deps \
    "ansible==$ANSIBLE_WHEEL_VERSION" -d "$tmp"
  "$VENV/bin/python" - "$tmp"/ansible-*.whl "$ROOT/.collections" <<'PY'
import sys, zipfile
wheel, dest = sys.argv[1], sys.argv[2]
prefix = "ansible_collections/kubernetes/core/"
with zipfile.ZipFile(wheel) as zf:
    members = [m for m in zf.namelist() if m.startswith(prefix)]
    zf.extractall(dest, members)
print(f"setup: extracted {len(members)} files of kubernetes.core")
PY
fi

# This collection, found as ai_conformance.rke2.
mkdir -p "$COLLECTIONS/ai_conformance"
if [ "$(readlink "$COLLECTIONS/ai_conformance/rke2" 2>/dev/null)" != "$ROOT" ]; then
  ln -sfn "$ROOT" "$COLLECTIONS/ai_conformance/rke2"
fi

# Playbooks find the collections next to them (Ansible searches <playbook dir>/collections), so
# they work from any folder, without this checkout's ansible.cfg.
# (collections beside site.yml too: playbooks imported by a playbook do not add their own folder).
if [ "$(readlink "$ROOT/playbooks/collections" 2>/dev/null)" != "../.collections" ]; then
  ln -sfn ../.collections "$ROOT/playbooks/collections"
fi
if [ "$(readlink "$ROOT/collections" 2>/dev/null)" != ".collections" ]; then
  ln -sfn .collections "$ROOT/collections"
fi

# ansible-test sanity wants to download get-pip; give it one that uses ensurepip. scripts/test.sh
# runs ansible-test with HOME=.ansible/test-home (inside the checkout, ignored), where it looks for it.
GETPIP="$ROOT/.ansible/test-home/.ansible/test/cache/get_pip_24_2.py"
if [ ! -f "$GETPIP" ]; then
  mkdir -p "$(dirname "$GETPIP")"
  cat > "$GETPIP" <<'PY'
"""Offline stand-in for get-pip.py: bootstrap pip with ensurepip."""
import ensurepip
import sys

sys.exit(ensurepip._main(["--upgrade", "--default-pip"]) or 0)
PY
fi
echo "setup: ready (.venv, .collections)"
