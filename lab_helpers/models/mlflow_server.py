"""A real `mlflow server` for the local target: started on demand, shared, outliving the kernel.

Locally the registry stores artifacts as plain ``file://`` paths (``--no-serve-artifacts``), so a
registered model's URI is a directory the lab's storage initializer can copy. On a cluster the
same registry API answers with the bucket's ``s3://`` paths instead.

State lives in ``<lab home>/mlflow/``: ``mlflow.db`` (sqlite backend), ``artifacts/``,
``server.log`` and ``server.json`` (pid and port of the running server). Any process that calls
`ensure_mlflow_server` reuses a healthy server from that record.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import asdict, dataclass
from pathlib import Path

import httpx
import psutil

from ..errors import LabError
from ..local.store import private_file
from ..paths import lab_home
from ..processes import free_port, group_members, stop_group
from ..progress import Dots

HOST = "127.0.0.1"
HEALTH_PATH = "/health"
HEALTH_REQUEST_TIMEOUT = 2.0
# A live server may answer slowly under load: give it this long before calling it stale.
STALE_GRACE_SECONDS = 6.0
STOP_GRACE_SECONDS = 10.0
PORT_ATTEMPTS = 3
LOG_TAIL_LINES = 20
UVICORN_APP = "mlflow.server.fastapi_app:app"  # what `mlflow server` runs its worker with


@dataclass(frozen=True)
class ServerRecord:
    """What `server.json` holds: enough to find, check and stop the server from any process."""

    pid: int
    port: int
    backend_store_uri: str

    @property
    def uri(self) -> str:
        return f"http://{HOST}:{self.port}"


def ensure_mlflow_server(home: Path | None = None, timeout: float = 60) -> str:
    """The tracking URI of this lab home's MLflow server, starting one if none is healthy.

    A record whose process is gone, or not an MLflow server of this home, or not answering
    ``GET /health``, is stale: its processes are stopped and a fresh server is started.
    """
    state = _state_dir(home)
    with _locked(state):
        record = _read_record(state)
        if record is not None:
            if _is_live_server(record) and _becomes_healthy(record.uri, STALE_GRACE_SECONDS):
                return record.uri
            _stop_group(record)
            _record_path(state).unlink(missing_ok=True)
        return _start(state, timeout)


def stop_mlflow_server(home: Path | None = None) -> bool:
    """Stop this lab home's MLflow server; True if a server was running. Its data is kept."""
    state = _state_dir(home)
    with _locked(state):
        record = _read_record(state)
        if record is None:
            return False
        stopped = _stop_group(record)
        _record_path(state).unlink(missing_ok=True)
        return stopped


def _state_dir(home: Path | None) -> Path:
    state = (Path(home).resolve() if home else lab_home()) / "mlflow"
    state.mkdir(parents=True, exist_ok=True)
    return state


def _record_path(state: Path) -> Path:
    return state / "server.json"


def _log_path(state: Path) -> Path:
    return state / "server.log"


@contextlib.contextmanager
def _locked(state: Path) -> Iterator[None]:
    """One process at a time decides whether to start or stop (notebook, daemon, tests)."""
    with open(state / "server.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        yield


def _read_record(state: Path) -> ServerRecord | None:
    path = _record_path(state)
    try:
        return ServerRecord(**json.loads(path.read_text()))
    except FileNotFoundError:
        return None
    except (ValueError, TypeError):
        path.unlink()  # unreadable: nothing can be found through it
        return None


def _write_record(state: Path, record: ServerRecord) -> None:
    tmp = _record_path(state).with_suffix(".tmp")
    tmp.write_text(json.dumps(asdict(record)))
    os.replace(tmp, _record_path(state))


def _start(state: Path, timeout: float) -> str:
    """Start a server on a free port; retry on another port if one was taken meanwhile."""
    executable = Path(sys.executable).parent / "mlflow"
    if not executable.exists():
        raise LabError(f"no mlflow executable beside {sys.executable}: install mlflow into this environment")
    artifacts = state / "artifacts"
    artifacts.mkdir(exist_ok=True)
    backend_store_uri = f"sqlite:///{private_file(state / 'mlflow.db')}"
    for _ in range(PORT_ATTEMPTS):
        port = free_port(HOST)
        log_offset = _log_path(state).stat().st_size if _log_path(state).exists() else 0
        with open(_log_path(state), "ab") as log:
            process = subprocess.Popen(
                _command(executable, port, backend_store_uri, artifacts.as_uri()),
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                cwd=state,
                env=_server_env(),
                start_new_session=True,  # its own process group: outlives the kernel, stops as one
            )
        record = ServerRecord(pid=process.pid, port=port, backend_store_uri=backend_store_uri)
        _write_record(state, record)
        outcome = _wait_until_healthy(process, record.uri, timeout)
        if outcome == "healthy":
            return record.uri
        log_tail = _log_tail(state, log_offset)
        _stop_group(record)
        _record_path(state).unlink(missing_ok=True)
        if outcome == "exited" and "address already in use" in log_tail.lower():
            continue
        what = (
            f"exited with code {process.returncode}"
            if outcome == "exited"
            else f"was not healthy after {timeout:g} s"
        )
        raise LabError(f"MLflow server on port {port} {what}; last lines of {_log_path(state)}:\n{log_tail}")
    raise LabError(f"MLflow server: {PORT_ATTEMPTS} free ports were taken before the server could bind them")


def _command(executable: Path, port: int, backend_store_uri: str, artifact_root: str) -> list[str]:
    return [
        str(executable), "server",
        "--host", HOST,
        "--port", str(port),
        "--workers", "1",
        "--backend-store-uri", backend_store_uri,
        "--no-serve-artifacts",
        "--default-artifact-root", artifact_root,
        # MLflow's host-header check (DNS-rebinding guard): only the address it is bound to.
        "--allowed-hosts", f"{HOST}:{port},localhost:{port}",
    ]  # fmt: skip


def _server_env() -> dict[str, str]:
    """No background job runner (five more processes, for GenAI jobs the lab never runs), no telemetry."""
    return {**os.environ, "MLFLOW_SERVER_ENABLE_JOB_EXECUTION": "false", "MLFLOW_DISABLE_TELEMETRY": "true"}


def _wait_until_healthy(process: subprocess.Popen, uri: str, timeout: float) -> str:
    """Return "healthy", "exited" or "timeout"; show the wait (a cold start takes a while)."""
    started = time.monotonic()
    dots = Dots(f"starting the MLflow server (timeout {timeout:.0f} s)")
    outcome = "timeout"
    while time.monotonic() - started < timeout:
        if process.poll() is not None:
            outcome = "exited"
            break
        if _healthy(uri):
            outcome = "healthy"
            break
        time.sleep(0.5)
        dots.tick()
    else:
        outcome = "healthy" if _healthy(uri) else "timeout"
    dots.done("ready" if outcome == "healthy" else outcome)
    return outcome


def _healthy(uri: str) -> bool:
    try:
        return httpx.get(uri + HEALTH_PATH, timeout=HEALTH_REQUEST_TIMEOUT).status_code == 200
    except httpx.HTTPError:
        return False


def _becomes_healthy(uri: str, within: float) -> bool:
    deadline = time.monotonic() + within
    while not _healthy(uri):
        if time.monotonic() > deadline:
            return False
        time.sleep(0.5)
    return True


def _is_live_server(record: ServerRecord) -> bool:
    """The recorded pid still leads the `mlflow server` group of this home on this port (not a reused pid)."""
    return any(member.pid == record.pid for member in _server_group(record))


def _stop_group(record: ServerRecord) -> bool:
    """SIGTERM the server's process group (CLI + uvicorn worker), SIGKILL what outlives the grace."""
    return bool(_server_group(record)) and stop_group(record.pid, STOP_GRACE_SECONDS)


def _server_group(record: ServerRecord) -> list[psutil.Process]:
    """Live members of the group the recorded server led, if one of them is that server.

    The worker is matched too, so a worker orphaned by a killed CLI is still stopped; a record whose
    pid now names something else (or its group) yields nothing to stop.
    """
    return group_members(record.pid, lambda cmdline: _is_server_process(cmdline, record))


def _is_server_process(cmdline: list[str], record: ServerRecord) -> bool:
    """The `mlflow server` CLI of this home, or the uvicorn worker it runs on the recorded port."""
    if str(record.port) not in cmdline:
        return False
    is_cli = "server" in cmdline and record.backend_store_uri in cmdline
    return is_cli or UVICORN_APP in cmdline


def _log_tail(state: Path, offset: int) -> str:
    with open(_log_path(state), "rb") as log:
        log.seek(offset)
        lines = log.read().decode(errors="replace").splitlines()
    return "\n".join(lines[-LOG_TAIL_LINES:])
