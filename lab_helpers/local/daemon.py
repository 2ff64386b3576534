"""The local control plane process: API server, control loops, kubelet and gateway in one asyncio loop.

Started detached by `control.ensure_daemon()`; `python -m lab_helpers.local.daemon --home DIR`.
SIGTERM stops it and every runtime it runs (`down`); SIGKILL leaves the runtimes serving and a
restarted daemon adopts them, as a node keeps its pods while the API server is down.
"""
from __future__ import annotations

import argparse
import asyncio
import json
import logging
import os
import secrets
import signal
import time
from pathlib import Path

from aiohttp import web

from ..gateway.metrics import RequestMetrics, metrics_handler
from ..gateway.proxy import Gateway
from ..gateway.routes import RouteTable
from .apiserver import make_app
from .controllers.base import Context, ns
from .controllers.flux import HelmReleaseController, SourceController
from .controllers.kserve import InferenceServiceController
from .controllers.monitoring import MonitoringController
from .controllers.workloads import DeploymentController, GarbageCollector
from .kubelet import Kubelet, free_port
from .routing import build_routes
from .store import Store

log = logging.getLogger("lab.daemon")
RESYNC_SECONDS = 0.5
MIN_PASS_GAP = 0.05
BOOT_NAMESPACES = ("default", "kube-system", "flux-system")


def ensure_token(home: Path) -> str:
    """A random token in a file only this user can read: the API's only credential."""
    path = home / "token"
    if not path.exists():
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as f:
            f.write(secrets.token_urlsafe(32))
    os.chmod(path, 0o600)
    return path.read_text().strip()


def warm_validation() -> None:
    from ..validation import validate

    validate({"apiVersion": "serving.kserve.io/v1beta1", "kind": "InferenceService", "metadata": {"name": "warm"},
              "spec": {"predictor": {"model": {"modelFormat": {"name": "mlflow"}}}}}, "warm-up")


def _port(preferred: int | None) -> int:
    """Reuse the port of the previous run when free, so curl commands in notebooks stay valid."""
    if preferred:
        import socket

        with socket.socket() as s:
            try:
                s.bind(("127.0.0.1", preferred))
                return preferred
            except OSError:
                pass
    return free_port()


class ControlPlane:
    def __init__(self, home: Path):
        self.home = home
        self.store = Store(home / "store.sqlite")
        self.wake_event = asyncio.Event()
        self.store.listeners.append(lambda *_: self.wake_event.set())
        ctx = Context(self.store, home, self.wake_event.set)
        self.kubelet = Kubelet(self.store, home, self.wake_event.set)
        self.controllers = [SourceController(ctx), HelmReleaseController(ctx), InferenceServiceController(ctx),
                            DeploymentController(ctx)]
        self.gc = GarbageCollector(self.store)
        self.table = RouteTable()
        self.request_metrics = RequestMetrics()
        self.gateway = Gateway(self.table, observers=[self.request_metrics.observe],
                               own_paths={"/metrics": metrics_handler(self.request_metrics.registry)})
        self.monitoring = MonitoringController(ctx, gateway_port=lambda: self.gateway.port)
        self.controllers.append(self.monitoring)
        self.stopping = asyncio.Event()
        self.started = time.time()
        self._routes_signature = None

    def status(self) -> dict:
        counts = {kind: len(self.store.list(kind)) for kind in self.store.kinds()}
        return {"pid": os.getpid(), "uptime": round(time.time() - self.started, 1), "objects": counts,
                "pods": {f"{ns(p)}/{p['metadata']['name']}": (p.get("status") or {}).get("phase")
                         for p in self.store.list("Pod")}}

    async def reconcile_pass(self) -> None:
        for controller in self.controllers:
            for kind in controller.kinds:
                for obj in self.store.list(kind):
                    try:
                        await controller.reconcile(obj)
                    except Exception as exc:  # one broken object must not stop the loop for the others
                        log.exception("reconcile %s %s/%s", kind, ns(obj), obj["metadata"]["name"])
                        self.store.record_event(obj, "ReconcileError", f"{type(exc).__name__}: {exc}", "Warning")
        self.gc.collect()
        await self.kubelet.sync()
        await self.monitoring.sync()
        routes = build_routes(self.store, self.kubelet)
        if routes != self._routes_signature:
            self.table.replace(routes)
            self._routes_signature = routes

    def seed(self) -> None:
        """Namespaces a cluster has from the start; flux-system because Flux is bootstrapped (`flux install`)."""
        for name in BOOT_NAMESPACES:
            if self.store.find("Namespace", "", name) is None:
                self.store.apply({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": name}})

    async def run(self) -> None:
        self.seed()
        # Parse the CRD schemas now, off the loop, so the first apply does not wait for them.
        asyncio.get_running_loop().run_in_executor(None, warm_validation)
        ports_file = self.home / "ports.json"
        saved = json.loads(ports_file.read_text()) if ports_file.exists() else {}
        token = ensure_token(self.home)
        gateway_port = await self.gateway.start(port=_port(saved.get("gateway_port")))
        runner = web.AppRunner(make_app(self.store, token, self.wake_event.set, self.status), access_log=None)
        await runner.setup()
        api_port = _port(saved.get("api_port"))
        await web.TCPSite(runner, "127.0.0.1", api_port).start()
        ports = {"api_port": api_port, "gateway_port": gateway_port, "prometheus_port": self.monitoring.port}
        ports_file.write_text(json.dumps(ports))
        info = self.home / "daemon.json"
        info.write_text(json.dumps({**ports, "pid": os.getpid(), "started": self.started}))
        loop = asyncio.get_running_loop()
        loop.add_signal_handler(signal.SIGTERM, self.stopping.set)
        loop.add_signal_handler(signal.SIGINT, self.stopping.set)
        log.info("control plane up: api 127.0.0.1:%s gateway 127.0.0.1:%s", api_port, gateway_port)
        try:
            while not self.stopping.is_set():
                self.wake_event.clear()
                await self.reconcile_pass()
                await asyncio.sleep(MIN_PASS_GAP)
                try:
                    await asyncio.wait_for(self.wake_event.wait(), RESYNC_SECONDS)
                except TimeoutError:
                    pass
        finally:
            log.info("stopping: terminating runtimes")
            await self.kubelet.shutdown()
            await self.monitoring.shutdown()
            await self.gateway.stop()
            await runner.cleanup()
            info.unlink(missing_ok=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--home", type=Path, required=True)
    args = parser.parse_args()
    args.home.mkdir(parents=True, exist_ok=True)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    import uvloop  # the gateway is on the hot path: uvloop's loop is markedly faster (kserve brings it)

    uvloop.run(ControlPlane(args.home).run())


if __name__ == "__main__":
    main()
