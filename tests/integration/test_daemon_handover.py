"""A daemon started from older code is replaced by connect(), not reused (no models: a few seconds)."""
from __future__ import annotations

import json
import time

import psutil
import pytest

from lab_helpers.local.control import STOP_TIMEOUT, ensure_daemon, running
from lab_helpers.local.version import code_version

pytestmark = pytest.mark.integration


def test_a_daemon_of_older_code_is_handed_over_to_a_new_one(local_home, capsys):
    first = ensure_daemon(local_home)
    assert first["code_version"] == code_version()
    assert ensure_daemon(local_home)["pid"] == first["pid"]  # same code: reused

    info_path = local_home / "daemon.json"
    info_path.write_text(json.dumps({**json.loads(info_path.read_text()), "code_version": "old"}))
    started = time.monotonic()
    second = ensure_daemon(local_home)
    assert time.monotonic() - started < STOP_TIMEOUT  # the old daemon left by itself, it was not SIGKILLed
    assert "runs older code: restarting it" in capsys.readouterr().out
    assert second["pid"] != first["pid"] and not psutil.pid_exists(first["pid"])
    assert running(local_home) == second and second["code_version"] == code_version()
