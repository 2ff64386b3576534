"""The local flagger-loadtester: a webhook's hey command pointed at the gateway, one copy of a command at a time."""
from __future__ import annotations

import asyncio
import os
import stat
from pathlib import Path

import pytest

from lab_helpers.local.loadtester import LoadTester, LoadTestError, local_argv

GATEWAY = "http://127.0.0.1:18080/"


def test_the_cluster_url_goes_to_the_gateway_keeping_path_and_an_explicit_host() -> None:
    command = ("hey -z 2m -q 5 -m POST -d '{\"inputs\": [1, 2]}' -host iris-rollout-lab.example.com "
               "http://cilium-gateway-lab-gateway.lab/v2/models/iris-rollout/infer")
    assert local_argv(command, GATEWAY, "/usr/bin/hey") == [
        "/usr/bin/hey", "-z", "2m", "-q", "5", "-m", "POST", "-d", '{"inputs": [1, 2]}',
        "-host", "iris-rollout-lab.example.com", "http://127.0.0.1:18080/v2/models/iris-rollout/infer"]


@pytest.mark.parametrize("url, host, path", [
    ("http://iris-rollout-canary.lab/v2/health/ready", "iris-rollout-canary.lab.svc.cluster.local",
     "/v2/health/ready"),
    ("http://iris-rollout-canary.lab:80", "iris-rollout-canary.lab.svc.cluster.local", "/"),
    ("http://iris-rollout.lab.svc.cluster.local:8080/x", "iris-rollout.lab.svc.cluster.local", "/x"),
])
def test_without_host_the_services_cluster_name_is_sent(url, host, path) -> None:
    assert local_argv(f"hey -n 10 {url}", GATEWAY) == ["hey", "-host", host, "-n", "10",
                                                       f"http://127.0.0.1:18080{path}"]


@pytest.mark.parametrize("command, message", [
    ("curl http://iris.lab/", "runs hey commands only"),
    ("", "runs hey commands only"),
    ("hey -n 10", "exactly one http:// URL, got 0"),
    ("hey http://a.lab/ http://b.lab/", "exactly one http:// URL, got 2"),
])
def test_other_commands_are_refused_saying_why(command, message) -> None:
    with pytest.raises(LoadTestError, match=message):
        local_argv(command, GATEWAY)


@pytest.fixture
def fake_hey(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A `hey` on PATH that records its arguments and runs until killed or told to stop."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    script = bin_dir / "hey"
    script.write_text('#!/bin/sh\necho "$@" >> "$HEY_CALLS"\nwhile [ ! -e "$HEY_STOP" ]; do sleep 0.02; done\n')
    script.chmod(script.stat().st_mode | stat.S_IEXEC)
    monkeypatch.setenv("PATH", f"{bin_dir}{os.pathsep}{os.environ['PATH']}")
    monkeypatch.setenv("HEY_CALLS", str(tmp_path / "calls"))
    monkeypatch.setenv("HEY_STOP", str(tmp_path / "stop"))
    return tmp_path


async def until(condition, timeout: float = 5.0) -> None:
    async def poll() -> None:
        while not condition():
            await asyncio.sleep(0.01)
    await asyncio.wait_for(poll(), timeout)


def test_a_command_still_running_is_skipped_and_runs_again_once_done(fake_hey: Path) -> None:
    command = "hey -z 1m http://iris-rollout.lab/v2/models/iris-rollout/infer"
    calls, stop = fake_hey / "calls", fake_hey / "stop"

    async def go() -> None:
        tester = LoadTester(lambda: GATEWAY, fake_hey / "logs")
        tester.submit(command, "iris-rollout.lab")
        tester.submit(command, "iris-rollout.lab")  # before the first is even spawned
        await until(lambda: command in tester.running and calls.exists())
        tester.submit(command, "iris-rollout.lab")  # while it runs
        tester.submit("hey -n 1 http://other.lab/", "other.lab")  # another command runs beside it
        await until(lambda: len(calls.read_text().splitlines()) == 2)
        assert tester.started == 2
        stop.touch()
        await until(lambda: not tester.tasks)
        stop.unlink()
        tester.submit(command, "iris-rollout.lab")
        await until(lambda: len(calls.read_text().splitlines()) == 3)
        await tester.stop()
        assert not tester.running

    asyncio.run(go())
    lines = calls.read_text().splitlines()
    assert lines[0] == "-host iris-rollout.lab.svc.cluster.local -z 1m http://127.0.0.1:18080/v2/models/iris-rollout/infer"
    assert sorted((fake_hey / "logs").iterdir()) == [fake_hey / "logs" / f"{n}.log" for n in (1, 2, 3)]


def test_a_command_past_the_timeout_is_killed(fake_hey: Path) -> None:
    async def go() -> LoadTester:
        tester = LoadTester(lambda: GATEWAY, fake_hey / "logs", timeout_s=0.2)
        tester.submit("hey http://iris.lab/", "iris.lab")
        await until(lambda: not tester.tasks)
        return tester

    assert asyncio.run(go()).running == {}


def test_without_hey_the_submit_fails_naming_the_package(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PATH", str(tmp_path))

    async def go() -> None:
        LoadTester(lambda: GATEWAY, tmp_path / "logs").submit("hey http://iris.lab/", "iris.lab")

    with pytest.raises(LoadTestError, match="apt-get install -y hey"):
        asyncio.run(go())
