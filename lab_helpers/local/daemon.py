"""The local control plane process: API server, control loops, kubelet and gateway in one asyncio loop.

Started detached by `control.ensure_daemon()`; `python -m lab_helpers.local.daemon --home DIR`.
SIGTERM stops it and every runtime it runs (`down`). SIGUSR1 hands over: the daemon exits and
leaves its runtimes and Prometheus serving for a newer daemon to adopt (after a `git pull`); a
SIGKILL does the same less tidily, as a node keeps its pods while the API server is down.
All control loops run in one `Manager`; the gateway shares the event loop, so nothing here blocks.
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

from ..gateway.inference_logger import InferenceLogger
from ..gateway.interceptor import Interceptor, RouteKey
from ..gateway.interceptor_metrics import InterceptorMetrics
from ..gateway.metrics import RequestMetrics, metrics_handler
from ..gateway.proxy import Gateway
from ..gateway.routes import RouteTable
from ..policy.enforcement import PolicyEnforcer
from ..policy.flows import FlowLog
from ..processes import free_port, port_free
from .apiserver import make_app
from .controllers.autoscaling import HorizontalPodAutoscalerController
from .controllers.base import Context, ns
from .controllers.cilium import CiliumAgent
from .controllers.cronjobs import CronJobController
from .controllers.flagger import CanaryController
from .controllers.flux import HelmReleaseController, SourceController
from .controllers.jobs import JobController
from .controllers.keda import ScaledObjectController
from .controllers.keda_http import HTTPScaledObjectController
from .controllers.kserve import InferenceServiceController
from .controllers.monitoring import MonitoringController, PrometheusConfigLoop
from .controllers.workloads import DeploymentController, GarbageCollector
from .kubelet import Kubelet
from .loadtester import LoadTester
from .manager import Manager
from .migrations import migrate
from .routing import RoutingLoop
from .store import Store
from .version import code_version

log = logging.getLogger("lab.daemon")
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
    from ..manifests.validation import validate

    validate({"apiVersion": "serving.kserve.io/v1beta1", "kind": "InferenceService", "metadata": {"name": "warm"},
              "spec": {"predictor": {"model": {"modelFormat": {"name": "mlflow"}}}}}, "warm-up")


def _port(preferred: int | None) -> int:
    """Reuse the port of the previous run when free, so curl commands in notebooks stay valid."""
    return preferred if preferred and port_free(preferred) else free_port()


class ControlPlane:
    def __init__(self, home: Path):
        self.home = home
        self.store = Store(home / "store.sqlite")
        ctx = Context(self.store, home)
        self.kubelet = Kubelet(self.store, home, gateway_url=lambda: f"http://127.0.0.1:{self.gateway.port}"
                               if self.gateway.port else None)
        self.table = RouteTable()
        self.request_metrics = RequestMetrics()
        self.interceptor = Interceptor(self.table, on_pending=self._route_pending,
                                       in_flight=lambda host: self.gateway.in_flight(host))
        interceptor_metrics = InterceptorMetrics(self.request_metrics.registry, self.interceptor)
        flows = FlowLog()
        enforcer = PolicyEnforcer(flows, is_intercepted=lambda host: self.interceptor.route_for(host) is not None)
        self.cilium = CiliumAgent(self.store, enforcer, flows)
        # The gateway plays KServe's agent sidecar for pods whose InferenceService has a logger.
        self.inference_logger = InferenceLogger(self.request_metrics.registry,
                                                gateway_url=lambda: f"http://127.0.0.1:{self.gateway.port}")
        self.gateway = Gateway(self.table, filters=[self.interceptor.hold], admit=enforcer.admit,
                               observers=[self.request_metrics.observe, interceptor_metrics.observe,
                                          self.inference_logger.observe],
                               own_paths={"/metrics": metrics_handler(self.request_metrics.registry),
                                          "/interceptor/holds": self.interceptor.holds_page})
        self.monitoring = MonitoringController(ctx, gateway_port=lambda: self.gateway.port)
        self.keda = ScaledObjectController(ctx, self.interceptor, prometheus_url=self._prometheus_url)
        self.loadtester = LoadTester(gateway_url=lambda: f"http://127.0.0.1:{self.gateway.port}",
                                     logs=home / "loadtester")
        self.manager = Manager(self.store, [
            SourceController(ctx), HelmReleaseController(ctx), InferenceServiceController(ctx),
            HorizontalPodAutoscalerController(ctx), self.keda, HTTPScaledObjectController(ctx),
            DeploymentController(ctx), JobController(ctx), CronJobController(ctx), GarbageCollector(self.store),
            self.kubelet, RoutingLoop(self.store, self.table, self.interceptor, self.inference_logger), self.monitoring,
            PrometheusConfigLoop(self.monitoring), self.cilium,
            CanaryController(ctx, prometheus_url=self._prometheus_url, loadtester=self.loadtester)])
        self.stopping = asyncio.Event()
        self.handover = False
        self.started = time.time()

    def _prometheus_url(self) -> str | None:
        return f"http://127.0.0.1:{self.monitoring.port}" if self.monitoring.port else None

    def _route_pending(self, key: RouteKey) -> None:
        """The interceptor holds a first request for a route: KEDA's external-push, woken at once."""
        kind, namespace, route = key
        for name in self.keda.scaled_objects_for_route(kind, namespace, route):
            self.keda.push(namespace, name)
            self.manager.wake(self.keda, "ScaledObject", namespace, name)

    def status(self) -> dict:
        counts = {kind: len(self.store.list(kind)) for kind in self.store.kinds()}
        return {"pid": os.getpid(), "uptime": round(time.time() - self.started, 1), "objects": counts,
                "code_version": code_version(),
                "pods": {f"{ns(p)}/{p['metadata']['name']}": (p.get("status") or {}).get("phase")
                         for p in self.store.list("Pod")}}

    def seed(self) -> None:
        """Namespaces a cluster has from the start; flux-system because Flux is bootstrapped (`flux install`)."""
        for name in BOOT_NAMESPACES:
            if self.store.find("Namespace", "", name) is None:
                self.store.apply({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": name}})

    def _hand_over(self) -> None:
        self.handover = True
        self.stopping.set()

    async def run(self) -> None:
        for step in migrate(self.store):
            log.info("store migrated: %s", step)
        self.seed()
        # Parse the CRD schemas now, off the loop, so the first apply does not wait for them.
        asyncio.get_running_loop().run_in_executor(None, warm_validation)
        ports_file = self.home / "ports.json"
        saved = json.loads(ports_file.read_text()) if ports_file.exists() else {}
        token = ensure_token(self.home)
        await self.cilium.sync()  # policies are enforced from the gateway's first request, as after a node reboot
        gateway_port = await self.gateway.start(port=_port(saved.get("gateway_port")))
        await self.inference_logger.start()
        app = make_app(self.store, token, self.status)
        app.add_routes(self.cilium.routes())
        runner = web.AppRunner(app, access_log=None)
        await runner.setup()
        api_port = _port(saved.get("api_port"))
        await web.TCPSite(runner, "127.0.0.1", api_port).start()
        ports = {"api_port": api_port, "gateway_port": gateway_port, "prometheus_port": self.monitoring.port}
        ports_file.write_text(json.dumps(ports))
        info = self.home / "daemon.json"
        info.write_text(json.dumps({**ports, "pid": os.getpid(), "started": self.started,
                                    "code_version": code_version()}))
        loop = asyncio.get_running_loop()
        loop.add_signal_handler(signal.SIGTERM, self.stopping.set)
        loop.add_signal_handler(signal.SIGINT, self.stopping.set)
        loop.add_signal_handler(signal.SIGUSR1, self._hand_over)
        log.info("control plane up (code %s): api 127.0.0.1:%s gateway 127.0.0.1:%s", code_version(), api_port,
                 gateway_port)
        try:
            await self.manager.run(self.stopping)
        finally:
            if self.handover:
                log.info("handing over: runtimes and Prometheus keep serving for the next control plane")
                self.kubelet.detach()
            else:
                log.info("stopping: terminating runtimes")
                await self.kubelet.shutdown()
                await self.monitoring.shutdown()
            await self.loadtester.stop()
            await self.gateway.stop()
            await self.inference_logger.stop()
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
