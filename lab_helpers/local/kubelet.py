"""The kubelet of the local target: each Pod object becomes its init containers and containers, as processes.

What a learner sees with `kubectl describe pod` is played from the pod spec: init containers run
to completion in order; each container runs its image's program (`local/images.py`: ENTRYPOINT,
``command``/``args``, ``$(VAR)``, ``env``); ``restartPolicy`` Always / OnFailure / Never decides
restarts (with CrashLoopBackOff back-off) and whether the pod ends ``Succeeded`` or ``Failed`` by
exit code; readiness and liveness probes (httpGet, tcpSocket, exec) come from the spec, a failing
readiness probe only takes the pod out of its Services' endpoints, a failing liveness probe
restarts the container; the memory limit is enforced by killing the process like the kernel's OOM
killer (exit code 137, reason OOMKilled); the tail of a container's log is its termination message.

Simplified, and said here: a pod is a set of processes in a directory on the host (that directory
stands for ``/``), and each container port is mapped to a loopback host port (`runtime.pod`).
Back-off is 1 s doubling to 16 s (a real kubelet: 10 s to 5 min), memory is sampled every 250 ms,
startup probes and gRPC probes are not run, a deleted Pod is stopped at once (no deletionTimestamp).
Processes run in their own session, so a control plane that dies leaves the data plane serving;
a restarted kubelet adopts the processes recorded in the pod's status.
"""
from __future__ import annotations

import asyncio
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

import httpx
import psutil
from kubernetes.utils.quantity import parse_quantity

from ..processes import ProcessRecord, free_port, recorded_process, stop_group_async
from ..runtime.pod import PORTS_ENV, ROOT_ENV, format_ports
from .controllers.base import DONE, Loop, Result
from .images import ImageNotFound, LocalImage, container_argv, container_env, find_image, process_env
from .pods import container_port, finished
from .store import CLUSTER, Store, now_iso, now_micro

BACKOFF_START, BACKOFF_CAP = 1.0, 16.0
MEMORY_SAMPLE_SECONDS = 0.25
TERMINATION_GRACE = 5.0  # the lab's default; a pod's terminationGracePeriodSeconds overrides it
NODE = "local-node"


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


def exposed_ports(spec: dict[str, Any]) -> set[int]:
    """Container ports that get a host port: declared ones, those the images expose, numeric probe ports."""
    ports: set[int] = set()
    for container in [*(spec.get("initContainers") or []), *(spec.get("containers") or [])]:
        ports |= {int(p["containerPort"]) for p in container.get("ports") or []}
        try:
            ports |= set(find_image(container.get("image", "")).exposes)
        except ImageNotFound:
            pass
        for probe in (container.get("readinessProbe"), container.get("livenessProbe")):
            port = ((probe or {}).get("httpGet") or (probe or {}).get("tcpSocket") or {}).get("port")
            if isinstance(port, int) or str(port or "").isdigit():
                ports.add(int(port))
    return ports


def running_container(record: dict[str, Any], pod_dir: Path) -> psutil.Process | None:
    """The recorded container process if it still runs in this pod's directory (not a reused pid)."""
    proc = recorded_process(ProcessRecord.from_json(record), marker=None)
    try:
        return proc if proc is not None and proc.cwd() == str(pod_dir) else None
    except psutil.Error:
        return None


def transitions(previous: list[dict[str, Any]], statuses: dict[str, str]) -> list[dict[str, Any]]:
    """Pod conditions with ``lastTransitionTime`` moved only when a condition's status changes, as the
    kubelet's status manager keeps it."""
    before = {c["type"]: c for c in previous}
    return [before[kind] if kind in before and before[kind]["status"] == status else
            {"type": kind, "status": status, "lastProbeTime": None, "lastTransitionTime": now_micro()}
            for kind, status in statuses.items()]


@dataclass
class ContainerExit:
    exit_code: int | None
    reason: str
    message: str
    started_at: str
    finished_at: str

    def terminated(self) -> dict[str, Any]:
        return {"exitCode": self.exit_code, "reason": self.reason, "message": self.message,
                "startedAt": self.started_at, "finishedAt": self.finished_at}


def cluster_network(gateway_url: str | None) -> dict[str, str]:
    """How a local pod reaches a Service by its cluster name (``http://<svc>.<ns>.svc.cluster.local``): the
    gateway, which serves every Service under that name, is the pod's HTTP proxy, while loopback (the pod's own
    ports, the lab's MLflow) stays direct. Simplified: HTTP only, for clients that honour the proxy variables
    (httpx, urllib, requests do); a cluster does this with DNS and kube-proxy."""
    if not gateway_url:
        return {}
    return {"HTTP_PROXY": gateway_url, "http_proxy": gateway_url,
            "NO_PROXY": "127.0.0.1,localhost,::1", "no_proxy": "127.0.0.1,localhost,::1"}


class PodWorker:
    """Drives one Pod: init containers, containers, probes, restarts, phase. The only writer of its status."""

    def __init__(self, store: Store, pod: dict[str, Any], home: Path,
                 gateway_url: Callable[[], str | None] = lambda: None):
        self.store, self.home = store, home
        self.gateway_url = gateway_url
        meta = pod["metadata"]
        self.namespace, self.name, self.uid = meta.get("namespace", CLUSTER), meta["name"], meta["uid"]
        self.spec = pod["spec"]
        self.dir = home / "pods" / self.namespace / self.name
        status = pod.get("status") or {}
        self.status: dict[str, Any] = {k: v for k, v in status.items() if k not in ("conditions",)}
        self.conditions: list[dict[str, Any]] = list(status.get("conditions") or [])
        lab = self.status.setdefault("lab", {})
        lab.setdefault("containers", {})
        self.processes: dict[str, psutil.Process] = {}
        self.done: set[str] = set()     # containers that will not run again (restartPolicy said so)
        self.killing: dict[str, str] = {}  # container -> why the kubelet is killing it (liveness)
        self.task: asyncio.Task | None = None
        self.stopping = False

    # --- status -----------------------------------------------------------------------------------
    @property
    def policy(self) -> str:
        return self.spec.get("restartPolicy", "Always")

    def _statuses(self, key: str) -> dict[str, dict[str, Any]]:
        return {s["name"]: s for s in self.status.get(key) or []}

    def _set_container(self, name: str, init: bool = False, **fields: Any) -> None:
        key = "initContainerStatuses" if init else "containerStatuses"
        specs = self.spec.get("initContainers" if init else "containers") or []
        current = self._statuses(key)
        spec = next(c for c in specs if c["name"] == name)
        entry = current.get(name) or {"name": name, "image": spec.get("image", ""), "ready": False,
                                      "started": False, "restartCount": 0, "state": {}, "lastState": {}}
        entry.update(fields)
        current[name] = entry
        self.status[key] = [current[c["name"]] for c in specs if c["name"] in current]
        self._publish()

    def _phase(self) -> str:
        containers = self.spec.get("containers") or []
        states = self._statuses("containerStatuses")
        if self.status.get("phase") == "Failed" and not self.status.get("initialized"):
            return "Failed"  # an init container failed under restartPolicy Never
        if containers and all(c["name"] in self.done for c in containers):
            codes = [(states.get(c["name"], {}).get("state", {}).get("terminated") or {}).get("exitCode")
                     for c in containers]
            return "Succeeded" if all(code == 0 for code in codes) else "Failed"
        if any(s.get("restartCount") or "running" in s.get("state", {}) for s in states.values()):
            return "Running"
        return "Pending"

    def _publish(self) -> None:
        if self.stopping:
            return
        containers = self.spec.get("containers") or []
        states = self._statuses("containerStatuses")
        ready = bool(containers) and all(states.get(c["name"], {}).get("ready") for c in containers)
        phase = self._phase()
        self.status["phase"] = phase
        initialized = bool(self.status.get("initialized"))
        done = phase in ("Succeeded", "Failed")
        self.conditions = transitions(self.conditions, {
            "PodScheduled": "True", "Initialized": str(initialized),
            "ContainersReady": str(ready and not done), "Ready": str(ready and not done)})
        self.store.set_status("Pod", self.namespace, self.name, {**self.status, "conditions": self.conditions})

    def _event(self, reason: str, message: str, type_: str = "Normal") -> None:
        pod = self.store.find("Pod", self.namespace, self.name)
        if pod and not self.stopping:
            self.store.record_event(pod, reason, message, type_)

    # --- lifecycle --------------------------------------------------------------------------------
    def start(self) -> None:
        self.task = asyncio.get_running_loop().create_task(self._run(), name=f"pod {self.name}")

    async def stop(self) -> None:
        """Terminate like a pod deletion: SIGTERM, grace period, SIGKILL."""
        self.stopping = True
        if self.task:
            self.task.cancel()
        grace = float(self.spec.get("terminationGracePeriodSeconds", TERMINATION_GRACE))
        await asyncio.gather(*(self._kill(p, grace) for p in self.processes.values()))
        self.processes.clear()

    def detach(self) -> None:
        """Stop supervising but leave the processes serving (the control plane hands over to a newer one)."""
        self.stopping = True
        if self.task:
            self.task.cancel()

    @staticmethod
    async def _kill(proc: psutil.Process, grace: float) -> None:
        """SIGTERM the container's process group, SIGKILL after `grace` (a process group: its children too)."""
        await stop_group_async(proc, grace)

    async def _run(self) -> None:
        self.dir.mkdir(parents=True, exist_ok=True)
        lab = self.status["lab"]
        if "startTime" not in self.status:
            self.status.update(phase="Pending", podIP="127.0.0.1", hostIP="127.0.0.1", startTime=now_iso())
            self._event("Scheduled", f"Successfully assigned {self.namespace}/{self.name} to {NODE}")
        if "ports" not in lab:
            lab["ports"] = {str(port): free_port() for port in sorted(exposed_ports(self.spec))}
        self._publish()
        if not await self._init_containers():
            return
        await asyncio.gather(*(self._supervise(c) for c in self.spec.get("containers") or []))

    def _environment(self, container: dict[str, Any], image: LocalImage) -> tuple[list[str], dict[str, str]]:
        declared = container_env(container, image)
        pod_env = {ROOT_ENV: str(self.dir), PORTS_ENV: format_ports(
            {int(k): v for k, v in self.status["lab"]["ports"].items()}), **cluster_network(self.gateway_url())}
        return container_argv(container, image, declared), process_env(image, declared, pod_env)

    async def _resolve(self, container: dict[str, Any], init: bool) -> tuple[list[str], dict[str, str]]:
        """The argv and env of a container; waits with back-off while its image or config cannot be resolved."""
        backoff = BACKOFF_START
        while True:
            try:
                return self._environment(container, find_image(container.get("image", "")))
            except ImageNotFound as exc:
                reason, message = ("ErrImagePull" if backoff == BACKOFF_START else "ImagePullBackOff"), str(exc)
            except ValueError as exc:
                reason, message = "CreateContainerConfigError", str(exc)
            self._set_container(container["name"], init, state={"waiting": {"reason": reason, "message": message}})
            self._event("Failed", f"Error: {reason}: {message}", "Warning")
            await asyncio.sleep(backoff)
            backoff = min(backoff * 2, BACKOFF_CAP)

    async def _init_containers(self) -> bool:
        """Run init containers in order (once: completed ones are not rerun); False if the pod failed."""
        inits = self.spec.get("initContainers") or []
        done = {n for n, s in self._statuses("initContainerStatuses").items()
                if (s.get("state", {}).get("terminated") or {}).get("exitCode") == 0}
        backoff = BACKOFF_START
        for container in inits:
            name = container["name"]
            while name not in done:
                exit_ = await self._run_process(container, init=True)
                if exit_.exit_code == 0:
                    self._set_container(name, True, ready=True, state={"terminated": exit_.terminated()})
                    done.add(name)
                    break
                if self.policy == "Never":
                    self._set_container(name, True, state={"terminated": exit_.terminated()})
                    self.status["phase"] = "Failed"
                    self._publish()
                    return False
                self._back_off(name, True, exit_, backoff)  # the pod stays Pending (kubectl: Init:CrashLoopBackOff)
                await asyncio.sleep(backoff)
                backoff = min(backoff * 2, BACKOFF_CAP)
        self.status["initialized"] = True
        self._publish()
        return True

    async def _supervise(self, container: dict[str, Any]) -> None:
        """Run a container until restartPolicy says it is done; CrashLoopBackOff between restarts."""
        name = container["name"]
        backoff = BACKOFF_START
        adopt = True
        while not self.stopping:
            exit_ = await self._run_process(container, init=False, adopt=adopt)
            adopt = False
            if self.stopping:
                return
            restart = self.policy == "Always" or (self.policy == "OnFailure" and exit_.exit_code != 0)
            if not restart:
                self.done.add(name)
                self._set_container(name, ready=False, started=False, state={"terminated": exit_.terminated()})
                return
            self._back_off(name, False, exit_, backoff)
            await asyncio.sleep(backoff)
            backoff = min(backoff * 2, BACKOFF_CAP)

    def _back_off(self, name: str, init: bool, exit_: ContainerExit, backoff: float) -> None:
        """A failed container (init or not) waits in CrashLoopBackOff with its last exit beside, as a kubelet shows
        it, and the kubelet's BackOff event says so (the lab adds the exit to the event's message)."""
        restarts = self._statuses("initContainerStatuses" if init else "containerStatuses")[name].get("restartCount", 0)
        waiting = {"reason": "CrashLoopBackOff",
                   "message": f"back-off {backoff:.0f}s restarting failed container={name} pod={self.name}"}
        self._set_container(name, init, ready=False, started=False, restartCount=restarts + 1,
                            state={"waiting": waiting}, lastState={"terminated": exit_.terminated()})
        self._event("BackOff", f"Back-off restarting failed container {name} in pod {self.name}"
                               f" (exit code {exit_.exit_code}, {exit_.reason}: {exit_.message})", "Warning")

    async def _run_process(self, container: dict[str, Any], init: bool, adopt: bool = False) -> ContainerExit:
        """Start (or adopt) the container's process and wait for it to end, enforcing memory and probes."""
        name = container["name"]
        log_path = self.dir / f"{name}.log"
        records = self.status["lab"]["containers"]
        proc = running_container(records.get(name) or {}, self.dir) if adopt else None
        child: asyncio.subprocess.Process | None = None
        started = now_micro()
        if proc is not None:
            started = (self._statuses("containerStatuses").get(name, {}).get("state", {}).get("running") or
                       {}).get("startedAt", started)
            self._event("Adopted", f"control plane restarted; container {name} (pid {proc.pid}) still running, "
                                   "adopted")
        else:
            argv, env = await self._resolve(container, init)
            with open(log_path, "ab") as out:
                try:
                    child = await asyncio.create_subprocess_exec(
                        *argv, stdout=out, stderr=asyncio.subprocess.STDOUT, cwd=str(self.dir),
                        start_new_session=True, env=env)
                except OSError as exc:  # the command is not there: StartError, as containerd reports it
                    message = f"failed to create containerd task: exec: {argv[0]!r}: {exc.strerror}"
                    return ContainerExit(128, "StartError", message, started, now_micro())
            proc = psutil.Process(child.pid)
            records[name] = ProcessRecord.of(proc).to_json()
            self._event("Started", f"Started container {name}")
        self.processes[name] = proc
        readiness = container.get("readinessProbe") if not init else None
        self._set_container(name, init, ready=not init and readiness is None, started=True,
                            state={"running": {"startedAt": started}})
        probes = [] if init else [asyncio.get_running_loop().create_task(task) for task in (
            self._readiness(container) if readiness else None,
            self._liveness(container) if container.get("livenessProbe") else None) if task is not None]
        try:
            oom = await self._watch(proc, child, memory_limit(container))
        finally:
            for probe in probes:
                probe.cancel()
        code = await child.wait() if child is not None else None  # an adopted process: its exit code went to init
        self.processes.pop(name, None)
        if oom is not None:
            said = tail(log_path)  # the log's tail, if the process wrote any before the kill
            message = f"memory limit {container['resources']['limits']['memory']} exceeded (RSS {oom / 2**20:.0f}Mi)"
            return ContainerExit(137, "OOMKilled", message + (f"; {said}" if said else ""), started, now_micro())
        if code is not None and code < 0:
            code = 128 - code
        why = self.killing.pop(name, "")
        return ContainerExit(code, "Completed" if code == 0 else "Error", why or tail(log_path), started, now_micro())

    async def _watch(self, proc: psutil.Process, child: asyncio.subprocess.Process | None,
                     limit: int | None) -> int | None:
        """Wait for the process to end; kill it (and return its RSS) if it goes over the memory limit."""
        while True:
            if child is not None:
                try:
                    await asyncio.wait_for(asyncio.shield(child.wait()), MEMORY_SAMPLE_SECONDS)
                    return None
                except TimeoutError:
                    pass
            else:
                try:
                    if not proc.is_running() or proc.status() == psutil.STATUS_ZOMBIE:
                        return None
                except psutil.NoSuchProcess:
                    return None
                await asyncio.sleep(MEMORY_SAMPLE_SECONDS)
            if limit is not None:
                rss = tree_rss(proc)
                if rss > limit:
                    await self._kill(proc, grace=0)
                    return rss

    # --- probes -----------------------------------------------------------------------------------
    async def _probe_once(self, probe: dict[str, Any], client: httpx.AsyncClient) -> tuple[bool, str]:
        """One probe: (passed, why not)."""
        timeout = float(probe.get("timeoutSeconds", 1))
        pod = {"spec": self.spec}
        if "httpGet" in probe or "tcpSocket" in probe:
            action = probe.get("httpGet") or probe["tcpSocket"]
            number = container_port(pod, action.get("port"))
            port = self.status["lab"]["ports"].get(str(number))
            if port is None:
                return False, f"port {action.get('port')!r} is not a port of this pod"
            if "tcpSocket" in probe:
                try:
                    _, writer = await asyncio.wait_for(asyncio.open_connection("127.0.0.1", port), timeout)
                    writer.close()
                    return True, ""
                except (OSError, TimeoutError) as exc:
                    return False, f"dial tcp 127.0.0.1:{number}: {exc}"
            url = f"http://127.0.0.1:{port}{action.get('path', '/')}"
            try:
                response = await client.get(url, timeout=timeout)
            except httpx.HTTPError as exc:
                return False, f'Get "{action.get("path", "/")}": {type(exc).__name__}'
            return 200 <= response.status_code < 400, f"HTTP probe failed with statuscode: {response.status_code}"
        if "exec" in probe:
            container = next(c for c in self.spec["containers"] if c.get("livenessProbe") is probe
                             or c.get("readinessProbe") is probe)
            _, env = self._environment(container, find_image(container.get("image", "")))
            proc = await asyncio.create_subprocess_exec(*probe["exec"]["command"], cwd=str(self.dir), env=env,
                                                        stdout=asyncio.subprocess.DEVNULL,
                                                        stderr=asyncio.subprocess.DEVNULL)
            try:
                code = await asyncio.wait_for(proc.wait(), timeout)
            except TimeoutError:
                proc.kill()
                return False, f"command timed out after {timeout:g}s"
            return code == 0, f"command exited with {code}"
        return False, "the local kubelet runs httpGet, tcpSocket and exec probes only"

    async def _probe_loop(self, probe: dict[str, Any], on_change) -> None:
        """Run `probe` every periodSeconds; call on_change(passing, why) when the thresholds flip it."""
        period = float(probe.get("periodSeconds", 10))
        needed_ok, needed_fail = int(probe.get("successThreshold", 1)), int(probe.get("failureThreshold", 3))
        await asyncio.sleep(float(probe.get("initialDelaySeconds", 0)))
        passing, oks, fails = None, 0, 0
        async with httpx.AsyncClient() as client:
            while True:
                ok, why = await self._probe_once(probe, client)
                oks, fails = (oks + 1, 0) if ok else (0, fails + 1)
                if passing is not True and oks >= needed_ok:
                    passing = True
                    on_change(True, "")
                elif passing is not False and fails >= needed_fail:
                    passing = False
                    on_change(False, why)
                await asyncio.sleep(period)

    async def _readiness(self, container: dict[str, Any]) -> None:
        name = container["name"]

        def changed(ready: bool, why: str) -> None:
            was = self._statuses("containerStatuses").get(name, {}).get("ready")
            self._set_container(name, ready=ready)
            if was and not ready:
                self._event("Unhealthy", f"Readiness probe failed: {why}", "Warning")

        await self._probe_loop(container["readinessProbe"], changed)

    async def _liveness(self, container: dict[str, Any]) -> None:
        name = container["name"]

        def changed(alive: bool, why: str) -> None:
            if alive:
                return
            self._event("Unhealthy", f"Liveness probe failed: {why}", "Warning")
            self._event("Killing", f"Container {name} failed liveness probe, will be restarted")
            self.killing[name] = f"Liveness probe failed: {why}"
            proc = self.processes.get(name)
            if proc is not None:
                grace = float(self.spec.get("terminationGracePeriodSeconds", TERMINATION_GRACE))
                asyncio.get_running_loop().create_task(self._kill(proc, grace))

        await self._probe_loop(container["livenessProbe"], changed)


class Kubelet(Loop):
    """Keeps one PodWorker per Pod object; stops the worker when its Pod is deleted."""

    name = "kubelet"
    watches = ("Pod",)

    def __init__(self, store: Store, home: Path, gateway_url: Callable[[], str | None] = lambda: None):
        self.store, self.home = store, home
        self.gateway_url = gateway_url  # the pods' way to cluster Service names (`cluster_network`)
        self.workers: dict[str, PodWorker] = {}
        # Deleted pods still terminating (SIGTERM, grace period): the loop does not wait for them, so
        # the reconciles after a deletion (the replacement pod, routes, status) are not held up by it.
        self.terminating: set[asyncio.Task[None]] = set()

    async def sync(self) -> Result:
        pods = {p["metadata"]["uid"]: p for p in self.store.list("Pod")}
        for uid, pod in pods.items():
            if uid not in self.workers and not finished(pod):
                worker = PodWorker(self.store, pod, self.home, self.gateway_url)
                self.workers[uid] = worker
                worker.start()
        for uid in [u for u in self.workers if u not in pods]:
            task = asyncio.get_running_loop().create_task(self.workers.pop(uid).stop(), name=f"terminate pod {uid}")
            self.terminating.add(task)
            task.add_done_callback(self.terminating.discard)
        return DONE

    async def shutdown(self) -> None:
        """Stop every container (used by `down`, not by a crash or a handover)."""
        await asyncio.gather(*(w.stop() for w in self.workers.values()), *self.terminating)
        self.workers.clear()

    def detach(self) -> None:
        """Leave every container running for the next control plane to adopt."""
        for worker in self.workers.values():
            worker.detach()
        self.workers.clear()
