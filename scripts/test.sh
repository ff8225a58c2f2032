#!/usr/bin/env bash
# Run every test stage (or the ones named as arguments) and print a totals line.
# Stages: unit, lint, sanity, units, molecule. Expects .venv (scripts/setup.sh requirements-test.txt).
set -uo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT" || exit 1
VENV="$ROOT/.venv"
export PATH="$VENV/bin:$PATH"
export ANSIBLE_COLLECTIONS_PATH="$ROOT/.collections"
export ANSIBLE_CONFIG="$ROOT/ansible.cfg"
export ANSIBLE_NOCOLOR=1 PY_COLORS=0
# Keep what ansible-lint/molecule install (they put the collection under test into
# $ANSIBLE_HOME/collections) inside the checkout, not in ~/.ansible.
export ANSIBLE_HOME="$ROOT/.ansible"
export ANSIBLE_REMOTE_TMP="$ROOT/.ansible/remote-tmp"
# caches of pip, ansible-lint (ansible-compat) and Molecule's ephemeral dirs: in the checkout too
export XDG_CACHE_HOME="$ROOT/.cache/xdg"
# ansible-test keeps its caches (virtualenvs, the get-pip script) in ~/.ansible/test: give it a
# home inside the checkout (ignored), keeping the user's pip configuration.
TEST_HOME="$ROOT/.ansible/test-home"
STAGES=("$@")
[ ${#STAGES[@]} -eq 0 ] && STAGES=(unit lint sanity units molecule)
# outside the repo: inside it, git would hide the copy (tests/output is ignored)
SANITY_ROOT="${TMPDIR:-/tmp}/ai-conformance-rke2-test"
SANITY_DIR="$SANITY_ROOT/ansible_collections/ai_conformance/rke2"

declare -A RESULT
failed=0

stage_unit() {
  # two workers: much of the time is spent waiting on subprocesses; -rs prints why a test was skipped
  python -m pytest tests/unit -q -rs -p no:cacheprovider -n 2
}

stage_lint() {
  # shell scripts too (ansible-test sanity's shellcheck only sees *.sh)
  shellcheck scripts/*.sh .ci/run && ansible-lint --offline --profile production
}

# ansible-test needs the collection at .../ansible_collections/<ns>/<name>: test a copy of the working tree.
copy_collection() {
  rm -rf "$SANITY_ROOT"
  mkdir -p "$SANITY_DIR"
  git ls-files -z --cached --others --exclude-standard | xargs -0 -I{} cp --parents {} "$SANITY_DIR"/ 2>/dev/null
  ln -sfn "$ROOT/.collections/ansible_collections/kubernetes" "$SANITY_ROOT/ansible_collections/kubernetes"
  # tests that read ../shared find it beside the copy as well (ansible-test drops unknown env vars)
  [ -d "$ROOT/../shared" ] && ln -sfn "$(cd "$ROOT/../shared" && pwd)" "$SANITY_ROOT/ansible_collections/ai_conformance/shared"
  return 0
}

run_ansible_test() {
  local config_home="${XDG_CONFIG_HOME:-$HOME/.config}"  # pip's user configuration stays the user's
  XDG_CONFIG_HOME="$config_home" HOME="$TEST_HOME" ansible-test "$@"
}

stage_sanity() {
  copy_collection
  (cd "$SANITY_DIR" && run_ansible_test sanity --python 3.11 --color no)
}

stage_units() {
  copy_collection
  # the plugin unit tests; role and playbook tests (tests/unit/roles, playbooks) run in the unit stage
  (cd "$SANITY_DIR" && run_ansible_test units --python 3.11 --color no --num-workers 1 tests/unit/plugins/)
}

stage_molecule() {
  local rc=0
  for dir in extensions/molecule/*/; do
    scenario="$(basename "$dir")"
    [ -f "extensions/molecule/$scenario/molecule.yml" ] || continue
    [ "$scenario" = default ] && continue  # placeholder that silences Molecule's shared-state lookup
    echo "== molecule test -s $scenario"
    (cd extensions && molecule test -s "$scenario") || rc=1
  done
  return $rc
}

for stage in "${STAGES[@]}"; do
  echo "=============== $stage"
  start=$(date +%s)
  if "stage_$stage"; then RESULT[$stage]="passed"; else RESULT[$stage]="failed"; failed=$((failed + 1)); fi
  echo "=============== $stage ${RESULT[$stage]} in $(( $(date +%s) - start ))s"
done

passed=$(( ${#STAGES[@]} - failed ))
echo
for stage in "${STAGES[@]}"; do printf '  %-9s %s\n' "$stage" "${RESULT[$stage]}"; done
echo "stages: $passed passed, $failed failed"
[ "$failed" -eq 0 ]
