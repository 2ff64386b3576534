"""The version of the code a control plane runs: a hash of this package's own source files.

A daemon outlives the notebook kernel that started it; after a `git pull` it would go on running
the old code. It records this hash in ``daemon.json`` and `connect()` replaces a daemon whose hash
differs from the one of the code on disk.
"""
from __future__ import annotations

import hashlib
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[1]


def code_version() -> str:
    """12 hex digits over every ``lab_helpers/**/*.py`` (path and content), stable across machines.

    Read from disk on every call (a few ms): a long-lived kernel must compare what is on disk now.
    """
    digest = hashlib.sha256()
    for path in sorted(PACKAGE.rglob("*.py")):
        digest.update(path.relative_to(PACKAGE).as_posix().encode() + b"\0")
        digest.update(path.read_bytes() + b"\0")
    return digest.hexdigest()[:12]
