"""The kubelet of the local target: each Pod object becomes an init step and a runtime process.

It plays the pod lifecycle a learner sees with `kubectl describe pod`: the storage-initializer init
container, the `kserve-container` with a readiness probe, restarts with exponential back-off
(CrashLoopBackOff), the memory limit enforced by killing the process like the kernel's OOM killer
(exit code 137, reason OOMKilled), and exit codes with the tail of stderr as termination message.
Processes run in their own session, so a crashed control plane leaves the data plane serving; a
restarted daemon adopts the processes it finds alive.
"""
from __future__ import annotations

import asyncio
import os
import signal
import socket
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

import httpx
import psutil
from kubernetes.utils.quantity import parse_quantity

from .store import CLUSTER, Store, now_iso

# Kubelet backs off 10 s doubling to 5 min; the lab keeps the shape at a scale a notebook can watch.
BACKOFF_START, BACKOFF_CAP = 1.0, 16.0
MEMORY_SAMPLE_SECONDS = 0.25
READINESS_PERIOD = 0.2
TERMINATION_GRACE = 5.0
RUNTIME_MARKER = "lab_helpers.runtime.server"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def tail(path: Path, lines: int = 3) -> str:
    try:
        text = path.read_text(errors="replace").strip().splitlines()
    except FileNotFoundError:
        return ""
    return " | ".join(line.strip() for line in text[-lines:])


def memory_limit(container: dict[str, Any]) -> int | None:
    limit = ((container.get("resources") or {}).get("limits") or {}).get("memory")
    return int(parse_quantity(limit)) if limit else None


def tree_rss(proc: psutil.Process) -> int:
    """RSS of the process and its children: what a cgroup would charge to the container."""
    try:
        procs = [proc, *proc.children(recursive=True)]
    except psutil.NoSuchProcess:
        return 0
    total = 0
    for p in procs:
        try:
            total += p.memory_info().rss
        except psutil.NoSuchProcess:
            pass
    return total


@dataclass
class ContainerExit:
    exit_code: int | None
    reason: str
    message: str


class PodWorker:
    """Drives one Pod: init container, main container, probes, restarts. Owns the pod's status."""

    def __init__(self, store: Store, pod: dict[str, Any], home: Path, wake: Callable[[], None]):
        self.store, self.home, self.wake = store, home, wake
        meta = pod["metadata"]
        self.namespace, self.name, self.uid = meta.get("namespace", CLUSTER), meta["name"], meta["uid"]
        self.dir = home / "pods" / self.namespace / self.name
        self.proc: psutil.Process | None = None
        self.task: asyncio.Task | None = None
        self.stopping = False

    # status helpers -----------------------------------------------------------------------------
    def _pod(self) -> dict[str, Any] | None:
        return self.store.find("Pod", self.namespace, self.name)

    def _set_status(self, **changes: Any) -> None:
        pod = self._pod()
        if pod is None:
            return
        status = dict(pod.get("status") or {})
        status.update(changes)
        ready = bool(status.get("containerStatuses")) and all(c.get("ready") for c in status["containerStatuses"])
        status["conditions"] = [
            {"type": "Initialized", "status": str(status.get("initialized", False))},
            {"type": "ContainersReady", "status": str(ready)},
            {"type": "Ready", "status": str(ready)},
        ]
        self.store.set_status("Pod", self.namespace, self.name, status)
        self.wake()

    def _event(self, reason: str, message: str, type_: str = "Normal") -> None:
        pod = self._pod()
        if pod:
            self.store.record_event(pod, reason, message, type_)

    # lifecycle ----------------------------------------------------------------------------------
    def start(self) -> None:
        self.task = asyncio.get_running_loop().create_task(self._run(), name=f"pod {self.name}")

    async def stop(self) -> None:
        """Terminate like a pod deletion: SIGTERM, grace period, SIGKILL."""
        self.stopping = True
        if self.task:
            self.task.cancel()
        await self._kill(graceful=True)

    async def _kill(self, graceful: bool) -> None:
        proc, self.proc = self.proc, None
        if proc is None:
            return
        try:
            if graceful:
                os.killpg(proc.pid, signal.SIGTERM)
                deadline = time.monotonic() + TERMINATION_GRACE
                while proc.is_running() and proc.status() != psutil.STATUS_ZOMBIE and time.monotonic() < deadline:
                    await asyncio.sleep(0.05)
            os.killpg(proc.pid, signal.SIGKILL)
        except (ProcessLookupError, psutil.NoSuchProcess, PermissionError):
            pass

    async def _run(self) -> None:
        pod = self._pod()
        if pod is None:
            return
        self.dir.mkdir(parents=True, exist_ok=True)
        adopted = self._adopt(pod)
        restarts = (pod.get("status") or {}).get("containerStatuses", [{}])[0].get("restartCount", 0)
        backoff = BACKOFF_START
        if not adopted:
            self._set_status(phase="Pending", podIP="127.0.0.1", hostIP="127.0.0.1", startTime=now_iso())
            self._event("Scheduled", f"Successfully assigned {self.namespace}/{self.name} to local-node")
            while not await self._init_containers(pod):
                await asyncio.sleep(backoff)
                backoff = min(backoff * 2, BACKOFF_CAP)
            backoff = BACKOFF_START
        while not self.stopping:
            exit_ = await self._main_container(pod, adopted, restarts)
            adopted = False
            if self.stopping:
                return
            restarts += 1
            state = {"waiting": {"reason": "CrashLoopBackOff",
                                 "message": f"back-off {backoff:.0f}s restarting failed container=kserve-container"
                                            f" pod={self.name}"}}
            self._container_status(pod, ready=False, restarts=restarts, state=state, last=exit_)
            self._event("BackOff", f"Back-off restarting failed container kserve-container in pod {self.name}"
                                   f" (exit code {exit_.exit_code}, {exit_.reason}: {exit_.message})", "Warning")
            await asyncio.sleep(backoff)
            backoff = min(backoff * 2, BACKOFF_CAP)

    def _adopt(self, pod: dict[str, Any]) -> bool:
        """After a daemon restart, keep serving from a runtime process that is still alive."""
        lab = (pod.get("status") or {}).get("lab") or {}
        pid = lab.get("pid")
        if not pid:
            return False
        try:
            proc = psutil.Process(pid)
            if proc.create_time() != lab.get("createTime") or RUNTIME_MARKER not in " ".join(proc.cmdline()):
                return False
        except (psutil.NoSuchProcess, psutil.AccessDenied):
            return False
        self.proc = proc
        self._event("Adopted", f"control plane restarted; runtime process {pid} still serving, adopted")
        return True

    async def _init_containers(self, pod: dict[str, Any]) -> bool:
        """Run the storage-initializer (if any); False when it failed (the pod retries with back-off)."""
        inits = pod["spec"].get("initContainers") or []
        statuses = []
        for container in inits:
            self._set_status(initialized=False, initContainerStatuses=[
                {"name": container["name"], "ready": False, "restartCount": 0,
                 "state": {"running": {"startedAt": now_iso()}}}])
            self._event("Started", f"Started container {container['name']}")
            log = self.dir / f"{container['name']}.log"
            with open(log, "wb") as out:
                proc = await asyncio.create_subprocess_exec(
                    *container["command"], *container.get("args", []), stdout=out, stderr=asyncio.subprocess.STDOUT,
                    cwd=str(self.dir), start_new_session=True)
                code = await proc.wait()
            if code != 0:
                message = tail(log, 2)
                prev = (self._pod() or {}).get("status", {}).get("initContainerStatuses") or [{}]
                count = prev[0].get("restartCount", 0) + 1 if prev[0].get("state", {}).get("terminated") else 1
                self._set_status(phase="Pending", initialized=False, initContainerStatuses=[
                    {"name": container["name"], "ready": False, "restartCount": count,
                     "state": {"terminated": {"exitCode": code, "reason": "Error", "message": message,
                                              "finishedAt": now_iso()}},
                     "lastState": {"terminated": {"exitCode": code, "reason": "Error", "message": message}}}])
                self._event("BackOff", f"init container {container['name']} failed (exit code {code}): {message}",
                            "Warning")
                return False
            statuses.append({"name": container["name"], "ready": True, "restartCount": 0,
                             "state": {"terminated": {"exitCode": 0, "reason": "Completed"}}})
        self._set_status(initialized=True, initContainerStatuses=statuses)
        return True

    def _container_status(self, pod: dict[str, Any], ready: bool, restarts: int, state: dict[str, Any],
                          last: ContainerExit | None = None, **lab: Any) -> None:
        previous = ((self._pod() or {}).get("status") or {}).get("containerStatuses") or [{}]
        status = {"name": "kserve-container", "image": pod["spec"]["containers"][0].get("image", ""),
                  "ready": ready, "started": "running" in state, "restartCount": restarts, "state": state,
                  "lastState": previous[0].get("lastState", {})}
        if last is not None:
            status["lastState"] = {"terminated": {"exitCode": last.exit_code, "reason": last.reason,
                                                  "message": last.message, "finishedAt": now_iso()}}
        changes: dict[str, Any] = {"containerStatuses": [status], "phase": "Running" if "running" in state else "Pending"}
        if lab:
            changes["lab"] = lab
        self._set_status(**changes)

    async def _main_container(self, pod: dict[str, Any], adopted: bool, restarts: int) -> ContainerExit:
        container = pod["spec"]["containers"][0]
        limit = memory_limit(container)
        stderr_log = self.dir / "kserve-container.log"
        child: asyncio.subprocess.Process | None = None
        if adopted and self.proc is not None:
            lab = pod["status"]["lab"]
            port = lab["port"]
        else:
            port = free_port()
            argv = [a.replace("$(PORT)", str(port)) for a in (*container["command"], *container.get("args", []))]
            with open(stderr_log, "ab") as out:
                child = await asyncio.create_subprocess_exec(
                    *argv, stdout=out, stderr=asyncio.subprocess.STDOUT, cwd=str(self.dir), start_new_session=True,
                    env={**os.environ, **{e["name"]: str(e.get("value", "")) for e in container.get("env", [])}})
            self.proc = psutil.Process(child.pid)
            lab = {"pid": child.pid, "port": port, "createTime": self.proc.create_time()}
            self._event("Started", f"Started container kserve-container (pid {child.pid}, port {port})")
        running = {"running": {"startedAt": now_iso()}}
        self._container_status(pod, ready=False, restarts=restarts, state=running, **lab)
        probe = asyncio.get_running_loop().create_task(self._probe(pod, port, restarts, running, lab))
        oom = await self._watch(child, limit)
        probe.cancel()
        if child is not None:
            code = await child.wait()
        else:
            code = None  # not our child after a restart: the exit code went to init
        self.proc = None
        if oom is not None:
            return ContainerExit(137, "OOMKilled", f"memory limit {container['resources']['limits']['memory']} "
                                                   f"exceeded (RSS {oom / 2**20:.0f}Mi); {tail(stderr_log)}")
        if code is not None and code < 0:
            code = 128 - code
        return ContainerExit(code, "Completed" if code == 0 else "Error", tail(stderr_log))

    async def _watch(self, child: asyncio.subprocess.Process | None, limit: int | None) -> int | None:
        """Wait for the process to end; kill it (and return its RSS) if it goes over the memory limit."""
        proc = self.proc
        while proc is not None:
            if child is not None and child.returncode is not None:
                return None
            try:
                if child is None and (not proc.is_running() or proc.status() == psutil.STATUS_ZOMBIE):
                    return None
            except psutil.NoSuchProcess:
                return None
            if limit is not None:
                rss = tree_rss(proc)
                if rss > limit:
                    await self._kill(graceful=False)
                    if child is not None:
                        await child.wait()
                    return rss
            await asyncio.sleep(MEMORY_SAMPLE_SECONDS)
        return None

    async def _probe(self, pod: dict[str, Any], port: int, restarts: int, running: dict[str, Any],
                     lab: dict[str, Any]) -> None:
        """Readiness probe on the V2 health endpoint; flips containerStatuses[0].ready."""
        url = f"http://127.0.0.1:{port}/v2/health/ready"
        ready = False
        async with httpx.AsyncClient(timeout=1.0) as client:
            while True:
                try:
                    ok = (await client.get(url)).status_code == 200
                except httpx.HTTPError:
                    ok = False
                if ok != ready:
                    ready = ok
                    self._container_status(pod, ready=ready, restarts=restarts, state=running, **lab)
                    if not ready:
                        self._event("Unhealthy", "Readiness probe failed", "Warning")
                await asyncio.sleep(READINESS_PERIOD if not ready else 1.0)


class Kubelet:
    """Keeps one PodWorker per Pod object; stops the worker when its Pod is deleted."""

    def __init__(self, store: Store, home: Path, wake: Callable[[], None]):
        self.store, self.home, self.wake = store, home, wake
        self.workers: dict[str, PodWorker] = {}

    async def sync(self) -> None:
        pods = {p["metadata"]["uid"]: p for p in self.store.list("Pod")}
        for uid, pod in pods.items():
            if uid not in self.workers:
                worker = PodWorker(self.store, pod, self.home, self.wake)
                self.workers[uid] = worker
                worker.start()
        for uid in [u for u in self.workers if u not in pods]:
            await self.workers.pop(uid).stop()

    async def shutdown(self) -> None:
        """Stop every runtime (used by `down`, not by a crash)."""
        await asyncio.gather(*(w.stop() for w in self.workers.values()))
        self.workers.clear()

    def endpoint(self, pod: dict[str, Any]) -> str | None:
        lab = (pod.get("status") or {}).get("lab") or {}
        return f"http://127.0.0.1:{lab['port']}" if lab.get("port") else None
