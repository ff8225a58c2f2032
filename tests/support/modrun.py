"""Run a module's main() in-process, as Ansible would, and return its JSON answer."""

import json

import pytest
from ansible.module_utils.testing import patch_module_args


def run_module(module, args, capsys, check_mode=False):
    """Returns the parsed exit_json/fail_json output; ``failed`` is set when the module failed."""
    args = dict(args)
    if check_mode:
        args["_ansible_check_mode"] = True
    with patch_module_args(args):
        with pytest.raises(SystemExit):
            module.main()
    out = capsys.readouterr().out
    return json.loads(out)


def checks(result):
    """A result's checks by name."""
    return {check["name"]: check for check in result["checks"]}


def requirement_result(results, requirement):
    """The one result of ``requirement`` in a parsed results.json."""
    found = [r for r in results["requirements"] if r["requirement"] == requirement]
    assert len(found) == 1, results
    return found[0]
