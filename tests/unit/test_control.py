"""When `connect("local")` replaces a running daemon: it runs other code than what is on disk now."""
from __future__ import annotations

import re

import pytest

from lab_helpers.local import version
from lab_helpers.local.control import needs_restart
from lab_helpers.local.version import code_version


@pytest.mark.parametrize("info, restart", [
    ({"pid": 1, "code_version": "abc123abc123"}, False),
    ({"pid": 1, "code_version": "0ld0ld0ld0ld"}, True),
    ({"pid": 1}, True),  # a daemon from before versions were recorded
])
def test_a_daemon_is_restarted_only_when_its_code_differs(info, restart):
    assert needs_restart(info, "abc123abc123") is restart


def test_the_code_version_follows_the_source_files_paths_and_contents(tmp_path, monkeypatch):
    monkeypatch.setattr(version, "PACKAGE", tmp_path)
    (tmp_path / "local").mkdir()
    (tmp_path / "local" / "a.py").write_text("x = 1\n")
    (tmp_path / "notes.txt").write_text("not code")
    first = code_version()
    assert re.fullmatch(r"[0-9a-f]{12}", first) and code_version() == first
    (tmp_path / "notes.txt").write_text("still not code")
    assert code_version() == first
    (tmp_path / "local" / "a.py").write_text("x = 2\n")
    changed = code_version()
    assert changed != first
    (tmp_path / "local" / "a.py").rename(tmp_path / "local" / "b.py")
    assert code_version() not in (first, changed)


def test_the_package_has_a_code_version():
    assert re.fullmatch(r"[0-9a-f]{12}", code_version())
