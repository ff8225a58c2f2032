"""pytest plugin: write every request the fake API servers of a test run received to a JSON-lines file.

``AIC_REQUEST_LOG=/path/log.jsonl python -m pytest -p tests.support.request_log tests/unit/plugins/modules``
appends one line per request (``test``, ``method``, ``path``, ``query``,
``content_type``) when each ``FakeKubeAPI`` stops. Used by the RBAC coverage
test to collect what the modules really call.
"""

import json
import os

import pytest

from tests.support.fakeapi import FakeKubeAPI

ENV = "AIC_REQUEST_LOG"
_current = {"test": None}


def _write(fake):
    path = os.environ.get(ENV)
    if not path:
        return
    with open(path, "a") as handle:
        for request in list(fake.requests):
            handle.write(json.dumps({"test": _current["test"], "method": request.method, "path": request.path,
                                     "query": request.query, "content_type": request.headers.get("Content-Type")}) + "\n")
    del fake.requests[:]


def pytest_configure(config):
    if not os.environ.get(ENV) or getattr(FakeKubeAPI.stop, "logs_requests", False):
        return
    original = FakeKubeAPI.stop

    def stop(self):
        _write(self)
        return original(self)

    stop.logs_requests = True
    FakeKubeAPI.stop = stop


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_protocol(item, nextitem):
    _current["test"] = item.nodeid
    yield
