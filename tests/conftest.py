"""Make `tests.support` importable and the collection importable as ansible_collections.ai_conformance.rke2."""

import os
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
COLLECTIONS = os.path.join(ROOT, ".collections")
for path in (ROOT, COLLECTIONS):
    if path not in sys.path:
        sys.path.insert(0, path)
