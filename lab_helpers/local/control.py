"""Start, find and stop the local control plane: `up`, `down`, `status`, and on-demand start for connect()."""
from __future__ import annotations

import json
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import httpx
import psutil

from ..errors import TargetUnavailable
from ..paths import lab_home
from ..processes import stop_group
from ..progress import Dots
from .kubelet import running_container
from .version import code_version

START_TIMEOUT = 30.0
STOP_TIMEOUT = 20.0


def _alive(info: dict[str, Any]) -> bool:
    try:
        return httpx.get(f"http://127.0.0.1:{info['api_port']}/healthz", timeout=1.0).status_code == 200
    except httpx.HTTPError:
        return False


def running(home: Path | None = None) -> dict[str, Any] | None:
    """Connection info of a healthy daemon, or None."""
    path = (home or lab_home()) / "daemon.json"
    try:
        info = json.loads(path.read_text())
    except (FileNotFoundError, ValueError):
        return None
    return info if psutil.pid_exists(info.get("pid", -1)) and _alive(info) else None


def needs_restart(info: dict[str, Any], current: str) -> bool:
    """A running daemon must be replaced when it runs other code than what is on disk now (a `git pull`)."""
    return info.get("code_version") != current


def stop_daemon(info: dict[str, Any], sig: signal.Signals, timeout: float = STOP_TIMEOUT) -> None:
    """Signal the daemon (SIGTERM: stop everything; SIGUSR1: hand over, runtimes keep serving) and wait for it
    to exit, SIGKILL after `timeout`; it is gone on return, so a new daemon can bind the same ports."""
    try:
        process = psutil.Process(info["pid"])
        process.send_signal(sig)
        try:
            process.wait(timeout=timeout)
        except psutil.TimeoutExpired:
            process.kill()
            process.wait(timeout=timeout)
    except psutil.NoSuchProcess:
        pass


def ensure_daemon(home: Path | None = None, timeout: float = START_TIMEOUT) -> dict[str, Any]:
    """Reuse the running daemon, if it runs this code, or start one detached (it outlives the notebook kernel)."""
    home = home or lab_home()
    info, current = running(home), code_version()
    if info and not needs_restart(info, current):
        return info
    if info:
        # The versions are hashes that differ every time: kept out of notebook outputs, in `status` instead.
        print("the local control plane runs older code: restarting it; runtimes keep serving")
        stop_daemon(info, signal.SIGUSR1)
    home.mkdir(parents=True, exist_ok=True)
    (home / "daemon.json").unlink(missing_ok=True)
    log = open(home / "daemon.log", "ab")
    proc = subprocess.Popen([sys.executable, "-m", "lab_helpers.local.daemon", "--home", str(home)],
                            stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, start_new_session=True)
    dots = Dots("starting the local control plane")
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            break
        info = running(home)
        if info:
            dots.done()
            return info
        dots.tick()
        time.sleep(0.2)
    dots.done("failed")
    last = (home / "daemon.log").read_text(errors="replace").strip().splitlines()[-5:]
    raise TargetUnavailable("the local control plane did not start (see .lab/daemon.log; "
                            "runbook: runbooks/local-target.md):\n" + "\n".join(last))


def container_processes(home: Path) -> list[psutil.Process]:
    """Container processes recorded in the store, checked to really be ours before anyone kills them."""
    db = home / "store.sqlite"
    if not db.exists():
        return []
    found = []
    with sqlite3.connect(str(db)) as conn:
        for (body,) in conn.execute("SELECT body FROM objects WHERE kind='Pod'"):
            pod = json.loads(body)
            pod_dir = home / "pods" / pod["metadata"].get("namespace", "") / pod["metadata"]["name"]
            records = (((pod.get("status") or {}).get("lab") or {}).get("containers") or {}).values()
            found += [proc for proc in (running_container(r, pod_dir) for r in records) if proc is not None]
    return found


def up() -> int:
    info = ensure_daemon()
    print(f"local target up: API 127.0.0.1:{info['api_port']}, gateway http://127.0.0.1:{info['gateway_port']}")
    return 0


def down(home: Path | None = None) -> int:
    """Stop the daemon (it terminates its runtimes), any runtime left from a crashed daemon, and MLflow."""
    home = home or lab_home()
    info = running(home)
    if info:
        stop_daemon(info, signal.SIGTERM)
    for process in container_processes(home):
        stop_group(process, grace=0)
    from ..models.mlflow_server import stop_mlflow_server
    from ..prom.process import stop_prometheus

    stop_prometheus(home / "prometheus")
    stop_mlflow_server(home)
    print("local target down")
    return 0


def status(home: Path | None = None) -> int:
    home = home or lab_home()
    info = running(home)
    if not info:
        print("local target: not running (start it with `python -m lab_helpers up`)")
        return 1
    token = (home / "token").read_text().strip()
    state = httpx.get(f"http://127.0.0.1:{info['api_port']}/status",
                      headers={"Authorization": f"Bearer {token}"}, timeout=5).json()
    print(f"local target: running (pid {state['pid']}, up {state['uptime']} s), "
          f"gateway http://127.0.0.1:{info['gateway_port']}")
    for kind, count in sorted(state["objects"].items()):
        print(f"  {kind:<28} {count}")
    for pod, phase in sorted(state["pods"].items()):
        print(f"  pod {pod}: {phase}")
    return 0
