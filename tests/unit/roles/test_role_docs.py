"""Every role's documentation (meta/argument_specs.yml, what ansible-doc shows) matches its defaults and has an example."""

import os

import pytest
import yaml

from tests.support.playbook import REPO_ROOT

ROLES = sorted(os.listdir(os.path.join(REPO_ROOT, "roles")))


def load(role, *parts):
    path = os.path.join(REPO_ROOT, "roles", role, *parts)
    if not os.path.exists(path):
        return {}
    with open(path) as handle:
        return yaml.safe_load(handle) or {}


@pytest.mark.parametrize("role", ROLES)
def test_documented_defaults_are_the_defaults(role):
    specs = load(role, "meta", "argument_specs.yml")["argument_specs"]
    defaults = load(role, "defaults", "main.yml")
    main = specs["main"].get("options") or {}
    assert set(defaults) <= set(main), "undocumented in roles/%s/meta/argument_specs.yml: %s" % (role, sorted(set(defaults) - set(main)))
    for entry, spec in specs.items():
        for name, option in (spec.get("options") or {}).items():
            assert option.get("description"), "%s %s: no description" % (entry, name)
            if name in defaults:
                assert option.get("default") == defaults[name], (
                    "roles/%s/meta/argument_specs.yml (%s) documents %s default %r; defaults/main.yml sets %r"
                    % (role, entry, name, option.get("default"), defaults[name]))


@pytest.mark.parametrize("role", ROLES)
def test_main_entry_point_shows_an_example(role):
    description = load(role, "meta", "argument_specs.yml")["argument_specs"]["main"]["description"]
    lines = description if isinstance(description, list) else [description]
    assert any(line.startswith("Example - C(") for line in lines), "roles/%s: add an 'Example - C(...)' description line" % role
