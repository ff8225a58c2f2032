# Entry points; every target sets up .venv first (fast when nothing changed).
SHELL := /bin/bash
VENV := .venv
PY := $(VENV)/bin/python
export ANSIBLE_COLLECTIONS_PATH := $(CURDIR)/.collections
export ANSIBLE_CONFIG := $(CURDIR)/ansible.cfg
SANITY_DIR := $(CURDIR)/tests/output/collection/ansible_collections/ai_conformance/rke2

.PHONY: setup setup-test run test unit sanity lint molecule test-cluster clean

setup:
	@bash scripts/setup.sh requirements.txt

setup-test:
	@bash scripts/setup.sh requirements-test.txt

## Provision (when the inventory has RKE2 hosts) and certify the cluster of the kubeconfig.
run: setup
	$(VENV)/bin/ansible-playbook site.yml -i inventory/hosts.yml $(ARGS)

## Every test: unit + module tests, ansible-lint, ansible-test sanity and units, Molecule.
test: setup-test
	@bash scripts/test.sh

unit: setup-test
	$(PY) -m pytest tests/unit -q -rs -n 2

lint: setup-test
	$(VENV)/bin/ansible-lint --offline --profile production

sanity: setup-test
	@bash scripts/test.sh sanity

molecule: setup-test
	@bash scripts/test.sh molecule

## Certify a real cluster: KUBECONFIG=... make test-cluster [REQUIREMENTS=dra_support,ai_inference]
test-cluster: setup
	$(VENV)/bin/ansible-playbook playbooks/certify.yml \
	  $(if $(REQUIREMENTS),-e conformance_requirements=$(REQUIREMENTS)) $(ARGS)

clean:
	rm -rf tests/output .pytest_cache conformance-report
