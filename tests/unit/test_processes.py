"""Finding recorded processes again without hitting a reused pid, and stopping their groups."""
import asyncio
import socket
import subprocess
import sys
import time

import psutil
import pytest

from lab_helpers.processes import (ProcessRecord, free_port, group_members, port_free, recorded_process, stop_group,
                                   stop_group_async)

SLEEPER = "import time; time.sleep(30)"
# A leader that forks a child ignoring SIGTERM: only SIGKILL after the grace period ends it.
STUBBORN = ("import os, signal, time\n"
            "if os.fork() == 0:\n"
            "    signal.signal(signal.SIGTERM, signal.SIG_IGN)\n"
            "    time.sleep(30)\n"
            "time.sleep(30)\n")


@pytest.fixture
def spawn():
    started = []

    def start(source: str) -> psutil.Process:
        child = subprocess.Popen([sys.executable, "-c", source, "lab-marker"], start_new_session=True)
        started.append(child)
        proc = psutil.Process(child.pid)
        # Between fork and exec the child still shows our command line: wait for its own, as a recorder would.
        deadline = time.monotonic() + 10
        while "lab-marker" not in proc.cmdline() and time.monotonic() < deadline:
            time.sleep(0.01)
        return proc

    yield start
    for child in started:
        stop_group(child.pid, grace=0)
        child.wait()


def test_a_recorded_process_is_found_only_with_its_start_time_and_marker(spawn):
    proc = spawn(SLEEPER)
    record = ProcessRecord.of(proc)
    assert ProcessRecord.from_json(record.to_json()) == record
    assert recorded_process(record, "lab-marker").pid == proc.pid
    assert recorded_process(record, lambda argv: "lab-marker" in argv).pid == proc.pid
    assert recorded_process(ProcessRecord(proc.pid, record.create_time + 1), "lab-marker") is None  # a reused pid
    assert recorded_process(record, "someone-else") is None
    assert recorded_process(None, None) is None and ProcessRecord.from_json({"port": 1}) is None


def test_stop_group_kills_a_child_that_ignores_sigterm(spawn):
    leader = spawn(STUBBORN)
    deadline = time.monotonic() + 5
    while len(group_members(leader.pid)) < 2 and time.monotonic() < deadline:
        time.sleep(0.05)
    members = group_members(leader.pid, "lab-marker")
    assert len(members) == 2
    started = time.monotonic()
    assert stop_group(leader, grace=0.3)
    assert time.monotonic() - started >= 0.3  # the stubborn child needed the SIGKILL
    assert not [p for p in members if p.is_running() and p.status() != psutil.STATUS_ZOMBIE]


def test_the_async_stop_does_not_block_the_loop(spawn):
    proc = spawn(SLEEPER)

    async def scenario():
        ticks = 0

        async def ticker():
            nonlocal ticks
            while True:
                ticks += 1
                await asyncio.sleep(0.01)

        task = asyncio.create_task(ticker())
        assert await stop_group_async(proc, grace=1.0)
        task.cancel()
        return ticks

    assert asyncio.run(scenario()) >= 1
    assert not proc.is_running() or proc.status() == psutil.STATUS_ZOMBIE


def test_free_port_is_bindable_and_port_free_sees_a_squatter():
    port = free_port()
    assert port_free(port)
    with socket.create_server(("127.0.0.1", port)):
        assert not port_free(port)


def test_a_port_whose_server_stopped_is_free_despite_its_time_wait_connections():
    """A restarted daemon keeps the gateway's port although its closed connections linger in TIME_WAIT."""
    with socket.create_server(("127.0.0.1", 0)) as server:
        port = server.getsockname()[1]
        client = socket.create_connection(("127.0.0.1", port))
        accepted, _ = server.accept()
        accepted.close()  # the server closes first: its side of the connection goes to TIME_WAIT
        time.sleep(0.05)
        client.close()
    assert port_free(port)
