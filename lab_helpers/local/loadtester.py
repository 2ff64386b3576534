"""flagger-loadtester on the local target: run a webhook's ``cmd`` (a ``hey`` command) in the background.

As the real load tester (https://github.com/fluxcd/flagger/tree/main/pkg/loadtester): a ``cmd``
task is accepted at once and run in the background; while one command runs, the same command
submitted again is skipped ("command skipped ... is already running"), and a command is killed after
the tester's timeout. The command names cluster URLs; here each ``http://<service>.<namespace>...``
URL is sent to the local gateway instead, keeping the ``-host`` the command gives (or the Service's
cluster name when it gives none), so the gateway routes it as the cluster would.

Simplified: only ``hey`` commands (Debian package ``hey``), and each command's output goes to
``loadtester/<n>.log`` under the lab home rather than the tester's log.
"""
from __future__ import annotations

import asyncio
import logging
import re
import shlex
import shutil
from pathlib import Path
from typing import Callable

log = logging.getLogger("lab.loadtester")

TIMEOUT_S = 3600.0  # the load tester's -timeout default (1h)
_CLUSTER_URL = re.compile(r"^http://(?P<host>[a-z0-9][a-z0-9.-]*)(?::\d+)?(?P<path>/.*)?$")


class LoadTestError(ValueError):
    """The command cannot run here; the message says why and what would."""


def local_argv(command: str, gateway_url: str, hey: str = "hey") -> list[str]:
    """`command` with its cluster URL pointed at the local gateway and a ``-host`` header for routing."""
    argv = shlex.split(command)
    if not argv or Path(argv[0]).name != "hey":
        raise LoadTestError(f"the local load tester runs hey commands only, got {command!r}")
    urls = [i for i, arg in enumerate(argv) if _CLUSTER_URL.match(arg)]
    if len(urls) != 1:
        raise LoadTestError(f"a hey command names exactly one http:// URL, got {len(urls)} in {command!r}")
    index = urls[-1]
    match = _CLUSTER_URL.match(argv[index])
    assert match is not None
    rewritten = [hey, *argv[1:index], f"{gateway_url.rstrip('/')}{match['path'] or '/'}", *argv[index + 1:]]
    if "-host" not in argv:
        host = match["host"]
        parts = host.split(".")
        if len(parts) == 2:  # <service>.<namespace>: the Service's full cluster name
            host = f"{host}.svc.cluster.local"
        rewritten[1:1] = ["-host", host]
    return rewritten


class LoadTester:
    """Runs submitted commands as background processes, one of each at a time."""

    def __init__(self, gateway_url: Callable[[], str], logs: Path, timeout_s: float = TIMEOUT_S):
        self.gateway_url = gateway_url
        self.logs = logs
        self.timeout_s = timeout_s
        self.running: dict[str, asyncio.subprocess.Process] = {}
        self.tasks: dict[str, asyncio.Task[None]] = {}  # per command, from submit until it ends (kept referenced)
        self.started = 0

    def submit(self, command: str, canary: str) -> None:
        """Accept a task (as the tester's 202): start it unless the same command is still running."""
        if command in self.tasks:  # running, or submitted and not spawned yet
            log.info("command skipped %s is already running (canary %s)", command, canary)
            return
        hey = shutil.which("hey")
        if hey is None:
            raise LoadTestError("the load test needs `hey` (Debian package hey: apt-get install -y hey)")
        argv = local_argv(command, self.gateway_url(), hey)
        self.started += 1
        task = asyncio.get_running_loop().create_task(self._run(command, argv, canary, self.started))
        self.tasks[command] = task
        task.add_done_callback(lambda _: self.tasks.pop(command, None))

    async def _run(self, command: str, argv: list[str], canary: str, number: int) -> None:
        self.logs.mkdir(parents=True, exist_ok=True)
        with open(self.logs / f"{number}.log", "wb") as out:
            process = await asyncio.create_subprocess_exec(*argv, stdout=out, stderr=asyncio.subprocess.STDOUT)
            self.running[command] = process
            log.info("task starting %s (canary %s, pid %d)", command, canary, process.pid)
            try:
                await asyncio.wait_for(process.wait(), self.timeout_s)
            except TimeoutError:
                process.kill()
                await process.wait()
            finally:
                self.running.pop(command, None)

    async def stop(self) -> None:
        """Kill every running command, and cancel those not spawned yet (the control plane is stopping)."""
        for command, task in list(self.tasks.items()):
            if command not in self.running:
                task.cancel()
        for process in list(self.running.values()):
            if process.returncode is None:
                process.kill()
                await process.wait()
        self.running.clear()
