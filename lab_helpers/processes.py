"""Processes the lab started and recorded: find them again safely, stop their groups, pick their ports.

Runtimes, Prometheus and the MLflow server run in sessions of their own so they outlive whoever started
them; the next control plane (or `down`) finds them from a record in a file. A pid alone is not enough:
once the process exits the kernel hands the pid to anything else, and signalling it would hit a bystander.
So a record holds the process start time too, and the command line must still carry a marker of ours.
"""
from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import socket
import time
from collections.abc import Callable, Generator, Mapping
from dataclasses import dataclass
from typing import Any

import psutil

HOST = "127.0.0.1"
POLL_SECONDS = 0.05
KILL_WAIT_SECONDS = 5.0  # SIGKILL cannot be refused: this only waits for the kernel to finish the job

# A substring of the space-joined command line, or a predicate over its arguments; None checks nothing.
Marker = Callable[[list[str]], bool] | str | None


def free_port(host: str = HOST) -> int:
    """A port nothing listens on now (the kernel's choice), for a server about to be started."""
    with socket.socket() as probe:
        probe.bind((host, 0))
        return probe.getsockname()[1]


def port_free(port: int, host: str = HOST) -> bool:
    """Whether `port` can be bound now: a recorded port is reused only then, so URLs stay valid.

    Probed with SO_REUSEADDR, as the servers bind (aiohttp, Go's net.Listen): the connections a stopped server
    closed linger in TIME_WAIT on its port for a minute, which blocks only a bind without it. Otherwise a
    restarted daemon would move the gateway, and pods holding its address (their HTTP proxy) lose it."""
    with socket.socket() as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind((host, port))
        except OSError:
            return False
    return True


@dataclass(frozen=True)
class ProcessRecord:
    """What identifies a process across pid reuse: its pid and its start time (JSON keys pid, createTime)."""

    pid: int
    create_time: float

    @classmethod
    def of(cls, proc: psutil.Process) -> ProcessRecord:
        return cls(proc.pid, proc.create_time())

    def to_json(self) -> dict[str, Any]:
        return {"pid": self.pid, "createTime": self.create_time}

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> ProcessRecord | None:
        """The record in `data` (a Pod's status.lab, Prometheus' process.json), None if it holds none."""
        pid, create_time = data.get("pid"), data.get("createTime")
        if isinstance(pid, int) and isinstance(create_time, (int, float)):
            return cls(pid, float(create_time))
        return None


def _matches(cmdline: list[str], marker: Marker) -> bool:
    if marker is None:
        return True
    if isinstance(marker, str):
        return marker in " ".join(cmdline)
    return marker(cmdline)


def recorded_process(record: ProcessRecord | None, marker: Marker) -> psutil.Process | None:
    """The live process `record` names, if it is still the one we started (same start time, our marker)."""
    if record is None:
        return None
    try:
        proc = psutil.Process(record.pid)
        if proc.create_time() != record.create_time or proc.status() == psutil.STATUS_ZOMBIE:
            return None
        return proc if _matches(proc.cmdline(), marker) else None
    except psutil.Error:
        return None


def group_members(pgid: int, marker: Marker = None) -> list[psutil.Process]:
    """Live processes of group `pgid`; with a marker, none unless one of them matches it.

    For servers that record only their group leader's pid: a worker orphaned by a killed leader is still
    found, and a group id that now names someone else's group yields nothing to stop.
    """
    members = []
    for proc in psutil.process_iter(["status"] if marker is None else ["cmdline", "status"]):
        with contextlib.suppress(psutil.Error, ProcessLookupError):
            if proc.info["status"] != psutil.STATUS_ZOMBIE and os.getpgid(proc.pid) == pgid:
                members.append(proc)
    if marker is None:
        return members
    return members if any(_matches(m.info["cmdline"] or [], marker) for m in members) else []


def _signal_group(pgid: int, sig: signal.Signals) -> bool:
    try:
        os.killpg(pgid, sig)
    except (ProcessLookupError, PermissionError):
        return False
    return True


def _alive(procs: list[psutil.Process]) -> list[psutil.Process]:
    alive = []
    for proc in procs:
        with contextlib.suppress(psutil.Error):
            if proc.is_running() and proc.status() != psutil.STATUS_ZOMBIE:
                alive.append(proc)
    return alive


def _waiting(procs: list[psutil.Process], limit: float) -> Generator[float, None, None]:
    deadline = time.monotonic() + limit
    while _alive(procs) and time.monotonic() < deadline:
        yield POLL_SECONDS


def _stopping(target: int | psutil.Process, grace: float) -> Generator[float, None, bool]:
    """The stop sequence, yielding how long to sleep between checks: one body for the sync and async callers."""
    pgid = target.pid if isinstance(target, psutil.Process) else target
    members = group_members(pgid)
    if not _signal_group(pgid, signal.SIGTERM):
        return False
    yield from _waiting(members, grace)
    leftover = group_members(pgid)  # a fresh look: it includes what forked meanwhile
    if leftover and _signal_group(pgid, signal.SIGKILL):
        yield from _waiting(leftover, KILL_WAIT_SECONDS)
    return True


def stop_group(target: int | psutil.Process, grace: float) -> bool:
    """SIGTERM a process group (a pgid, or the process leading it), SIGKILL what is left after `grace`.

    False when there was no such group to signal. For callers off the event loop; see `stop_group_async`.
    """
    steps = _stopping(target, grace)
    try:
        while True:
            time.sleep(next(steps))
    except StopIteration as done:
        return done.value


async def stop_group_async(target: int | psutil.Process, grace: float) -> bool:
    """`stop_group` for the daemon's event loop: it waits with asyncio.sleep, so the gateway keeps serving."""
    steps = _stopping(target, grace)
    try:
        while True:
            await asyncio.sleep(next(steps))
    except StopIteration as done:
        return done.value
