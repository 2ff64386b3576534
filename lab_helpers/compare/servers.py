"""Standalone servers of the comparison: started by hand, recorded, stoppable by `python -m lab_helpers down`.

Path (a) and (c) run outside the local target, so its `down` would not know them. Each one is started in
a session of its own on a port the kernel picks (`free_port`, as the local kubelet picks its pods' ports, so
the two never collide), and recorded in ``<lab home>/compare/servers.json`` with its pid and start time. A
notebook stops them at its end; after an interrupted run `stop_recorded` (called by ``down``) finds them
again — only if the pid still names the process we started (same start time, our port on its command line).
"""
from __future__ import annotations

import json
import os
import time
from collections.abc import Iterable
from pathlib import Path

import psutil

from ..bench.runtimes import Server
from ..paths import lab_home
from ..processes import ProcessRecord, recorded_process, stop_group

STOP_GRACE_S = 10.0


def records_path(home: Path | None = None) -> Path:
    return (home or lab_home()) / "compare" / "servers.json"


def _read(path: Path) -> dict[str, dict]:
    try:
        records = json.loads(path.read_text())
    except (FileNotFoundError, ValueError):
        return {}
    return records if isinstance(records, dict) else {}


def _write(path: Path, records: dict[str, dict]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(json.dumps(records, indent=1))
    os.replace(tmp, path)


class StandaloneServer(Server):
    """A `bench.runtimes.Server` that is recorded while it runs and knows how long it took to become ready."""

    def __init__(self, name: str, argv: list[str], port: int, ready_path: str = "/", home: Path | None = None):
        self.records = records_path(home)
        self.port = port
        self.started = time.monotonic()
        super().__init__(name, argv, port, ready_path)
        records = _read(self.records)
        records[name] = {**ProcessRecord.of(self.process).to_json(), "port": port}
        _write(self.records, records)

    def wait_ready(self, headers: dict[str, str] | None = None) -> float:
        """Seconds from the start of the process to its first ready answer."""
        super().wait_ready(headers)
        return time.monotonic() - self.started

    def rss_bytes(self) -> int:
        return tree_rss(self.process)

    def stop(self) -> None:
        super().stop()
        stop_group(self.popen.pid, grace=0)  # what its leader left behind (Triton's backend stubs), if anything
        records = _read(self.records)
        if records.pop(self.name, None) is not None:
            _write(self.records, records)


def tree_rss(root: psutil.Process) -> int:
    """Resident memory of a process and all its descendants (pages shared between them counted in each)."""
    total = 0
    for proc in [root, *root.children(recursive=True)]:
        try:
            total += proc.memory_info().rss
        except psutil.Error:
            pass
    return total


def stop_all(servers: Iterable[StandaloneServer]) -> None:
    for server in servers:
        server.stop()


def recorded(home: Path | None = None) -> list[str]:
    """Names of the standalone servers recorded as running (none once a run has stopped them)."""
    return sorted(_read(records_path(home)))


def stop_recorded(home: Path | None = None) -> list[str]:
    """Stop every recorded server still running (an interrupted notebook's), forget the records; their names."""
    path = records_path(home)
    stopped = []
    for name, record in _read(path).items():
        port = str(record.get("port"))
        proc = recorded_process(ProcessRecord.from_json(record), lambda argv: port in " ".join(argv))
        if proc is not None and stop_group(proc, STOP_GRACE_S):
            stopped.append(name)
    path.unlink(missing_ok=True)
    return stopped
