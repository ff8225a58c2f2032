"""Locate the team's shared test data (../shared beside the repo).

Tests that need it call `shared_path(...)`; when the data is absent the test
is skipped with a printed reason instead of passing silently.
"""

import json
import os

import pytest

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def shared_root():
    """The shared data directory, or None when it is not there."""
    candidates = [os.environ.get("AI_CONFORMANCE_SHARED"), os.path.join(os.path.dirname(REPO_ROOT), "shared")]
    for path in candidates:
        if path and os.path.isdir(path):
            return path
    return None


def shared_path(*parts):
    """Absolute path of a file under ../shared; skips the test if missing."""
    root = shared_root()
    if root is None:
        pytest.skip("../shared (team test data) is not beside the repo; set AI_CONFORMANCE_SHARED")
    path = os.path.join(root, *parts)
    if not os.path.exists(path):
        pytest.skip("shared test data missing: %s" % path)
    return path


def load_json(*parts):
    """Parsed JSON of a shared fixture file."""
    with open(shared_path(*parts)) as handle:
        return json.load(handle)


def fixture_response(*parts):
    """The recorded API response body of a wrapped fixture (errors/, objects/, events/)."""
    return load_json(*parts)["response"]
