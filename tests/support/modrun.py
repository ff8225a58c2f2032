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
