"""A real `prometheus` process for the local target: started, reloaded, adopted, stopped.

Everything lives in one directory (``<lab home>/prometheus/``): ``prometheus.yml``, ``rules/``,
the TSDB in ``data/``, ``prometheus.log``, and ``process.json`` (pid, process start time and port).
The process runs in a session of its own, so a killed control plane leaves it scraping; the next
control plane adopts it from ``process.json`` (same pid, same start time, same config file) the way
the kubelet adopts runtimes, and keeps its port so URLs stay valid. Configuration changes are
applied with ``POST /-/reload`` (``--web.enable-lifecycle``), never by a restart.
"""
from __future__ import annotations

import asyncio
import contextlib
import json
import os
import shutil
import subprocess
import time
from pathlib import Path
from typing import Any

import httpx
import psutil
import yaml

from ..errors import LabError
from ..processes import ProcessRecord, free_port, port_free, recorded_process, stop_group, stop_group_async

HOST = "127.0.0.1"
READY_TIMEOUT_S = 30.0
STOP_GRACE_S = 10.0
RETENTION = "2d"
LOG_TAIL_LINES = 10
INSTALL_HINT = ("install it with `sudo apt-get install prometheus` (Debian/Ubuntu; `make` does this on a fresh "
                "machine) or put a release from https://prometheus.io/download/ on PATH")


def require_binary(name: str) -> str:
    """The path of a Prometheus tool (`prometheus`, `promtool`), or a LabError saying how to install it."""
    path = shutil.which(name)
    if path is None:
        raise LabError(f"the `{name}` binary is not on PATH: {INSTALL_HINT}")
    return path


def config_path(directory: Path) -> Path:
    return directory / "prometheus.yml"


def record_path(directory: Path) -> Path:
    return directory / "process.json"


def _read_record(directory: Path) -> dict[str, Any]:
    try:
        record = json.loads(record_path(directory).read_text())
    except (FileNotFoundError, ValueError):
        return {}
    return record if isinstance(record, dict) else {}


def _forget_process(directory: Path) -> None:
    """Keep only the port in the record, so the next start serves on the same URL."""
    port = _read_record(directory).get("port")
    if port:
        _write_atomically(record_path(directory), json.dumps({"port": port}))
    else:
        record_path(directory).unlink(missing_ok=True)


def running_prometheus(directory: Path) -> psutil.Process | None:
    """The recorded Prometheus if it still runs with this directory's config (not a reused pid)."""
    marker = f"--config.file={config_path(directory)}"
    return recorded_process(ProcessRecord.from_json(_read_record(directory)), lambda argv: marker in argv)


def _write_atomically(path: Path, text: str) -> None:
    """Prometheus may read at any moment (a reload): it must never see half a file."""
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(text)
    os.replace(tmp, path)


class PrometheusProcess:
    """One Prometheus server for a directory, on a loopback port fixed for the directory's lifetime."""

    def __init__(self, directory: Path, binary: str = "prometheus"):
        self.dir = directory
        self.binary = binary
        (self.dir / "rules").mkdir(parents=True, exist_ok=True)
        self.config_path = config_path(directory)
        self.log_path = self.dir / "prometheus.log"
        self._child: subprocess.Popen | None = None
        self._proc = running_prometheus(directory)
        # An adopted server may run a configuration older than the files: reload once. A rejected reload
        # leaves the files ahead of the server too, so the next apply tries again.
        self._adopted = self._files_ahead = self._proc is not None
        saved = _read_record(directory).get("port")
        self.port: int = saved if saved and (self._proc is not None or port_free(saved, HOST)) else free_port(HOST)
        if self._proc is None:  # remember the port now, so a restarted control plane serves on the same URL
            _write_atomically(record_path(directory), json.dumps({"port": self.port}))

    @property
    def url(self) -> str:
        return f"http://{HOST}:{self.port}"

    @property
    def pid(self) -> int | None:
        return self._proc.pid if self._proc is not None else None

    def running(self) -> bool:
        if self._child is not None and self._child.poll() is not None:
            return False
        try:
            return self._proc is not None and self._proc.is_running() and self._proc.status() != psutil.STATUS_ZOMBIE
        except psutil.Error:
            return False

    def write(self, config: dict[str, Any], rules: dict[str, str]) -> bool:
        """Write `config`, its rule_files pointing here, and exactly these rule files; True if anything changed."""
        changed = False
        rules_dir = self.dir / "rules"
        for stale in set(p.name for p in rules_dir.glob("*.yaml")) - set(rules):
            (rules_dir / stale).unlink()
            changed = True
        for name, text in rules.items():
            path = rules_dir / name
            if not path.exists() or path.read_text() != text:
                _write_atomically(path, text)
                changed = True
        text = yaml.safe_dump({**config, "rule_files": [str(rules_dir / "*.yaml")]}, sort_keys=False)
        if not self.config_path.exists() or self.config_path.read_text() != text:
            _write_atomically(self.config_path, text)
            changed = True
        return changed

    def command(self) -> list[str]:
        return [require_binary(self.binary),
                f"--config.file={self.config_path}",
                f"--storage.tsdb.path={self.dir / 'data'}",
                f"--storage.tsdb.retention.time={RETENTION}",
                f"--web.listen-address={HOST}:{self.port}",
                "--web.enable-lifecycle",
                "--log.level=warn"]

    async def start(self, timeout: float = READY_TIMEOUT_S) -> None:
        """Start the server on `self.port` and wait until `/-/ready`; LabError with its log if it fails."""
        command = self.command()
        offset = self.log_path.stat().st_size if self.log_path.exists() else 0
        with open(self.log_path, "ab") as log:
            self._child = subprocess.Popen(command, stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
                                           cwd=self.dir, start_new_session=True)
        self._proc = psutil.Process(self._child.pid)
        self._adopted = self._files_ahead = False
        _write_atomically(record_path(self.dir), json.dumps({**ProcessRecord.of(self._proc).to_json(),
                                                             "port": self.port}))
        deadline = time.monotonic() + timeout
        async with httpx.AsyncClient(timeout=1.0) as client:
            while time.monotonic() < deadline:
                if self._child.poll() is not None:
                    raise LabError(f"prometheus exited with code {self._child.returncode} right after starting on "
                                   f"{HOST}:{self.port}; {self._log_tail(offset)}")
                with contextlib.suppress(httpx.HTTPError):
                    if (await client.get(f"{self.url}/-/ready")).status_code == 200:
                        return
                await asyncio.sleep(0.1)
        await self.stop()
        raise LabError(f"prometheus on {HOST}:{self.port} was not ready after {timeout:g} s; "
                       f"{self._log_tail(offset)}")

    async def reload(self) -> None:
        """Apply the files on disk (`POST /-/reload`); on rejection the old configuration stays active."""
        try:
            async with httpx.AsyncClient(timeout=10.0) as client:
                response = await client.post(f"{self.url}/-/reload")
        except httpx.HTTPError as exc:
            raise LabError(f"prometheus at {self.url} did not take the reload request: {exc}") from None
        if response.status_code != 200:
            raise LabError(f"prometheus rejected the new configuration (the previous one stays active): "
                           f"{response.text.strip()}; details in {self.log_path}")

    async def apply(self, config: dict[str, Any], rules: dict[str, str]) -> str:
        """Make the server run this configuration; returns what it did: "started", "adopted" (first reload of a
        server an earlier control plane started), "reloaded" or "unchanged"."""
        if self.write(config, rules):
            self._files_ahead = True
        if not self.running():
            await self.start()
            return "started"
        if not self._files_ahead:
            return "unchanged"
        await self.reload()
        outcome = "adopted" if self._adopted else "reloaded"
        self._adopted = self._files_ahead = False
        return outcome

    async def stop(self) -> None:
        """SIGTERM the server (it flushes its TSDB head), SIGKILL after a grace period; forget the record."""
        proc, child = self._proc, self._child
        self._proc = self._child = None
        if proc is not None:
            await stop_group_async(proc, STOP_GRACE_S)
        if child is not None:
            child.wait()
        _forget_process(self.dir)

    def _log_tail(self, offset: int) -> str:
        with open(self.log_path, "rb") as log:
            log.seek(offset)
            lines = log.read().decode(errors="replace").strip().splitlines()
        return "last lines of its log:\n" + "\n".join(lines[-LOG_TAIL_LINES:]) if lines else "its log is empty"


def stop_prometheus(directory: Path) -> bool:
    """Stop the Prometheus recorded in `directory` if it is still ours (for `down` after a crashed daemon)."""
    proc = running_prometheus(directory)
    if proc is not None:
        stop_group(proc, STOP_GRACE_S)
    _forget_process(directory)
    return proc is not None
