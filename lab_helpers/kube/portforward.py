"""A loopback port forwarded into the cluster, for MLflow, Prometheus or the ingress gateway.

Like ``kubectl port-forward``: a Service is resolved to one ready pod behind it and the Service
port to that pod's port. Each local connection opens its own Kubernetes port-forward stream
(`kubernetes.stream.portforward`), because one stream carries exactly one TCP connection.
"""
from __future__ import annotations

import select
import socket
import sys
import threading
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any, Callable, Iterator

from kubernetes import client as k8s_client
from kubernetes.client.exceptions import ApiException, ApiValueError
from kubernetes.stream import portforward as k8s_portforward

from ..errors import Forbidden, LabError, TargetUnavailable
from .transport import KubeApi, Target, load_api_client
from .resources import KINDS

LOOPBACK = "127.0.0.1"
_POLL_S = 0.2
_POD_KINDS = {"pod", "pods", "po"}
_SERVICE_KINDS = {"svc", "service", "services"}


@dataclass
class ForwardedPort:
    """Where the forward listens, what it reaches, and upstream failures seen so far."""
    port: int
    pod: str
    pod_port: int
    errors: list[str] = field(default_factory=list)

    @property
    def url(self) -> str:
        return f"http://{LOOPBACK}:{self.port}"


def _is_ready(pod: dict[str, Any]) -> bool:
    status = pod.get("status") or {}
    ready = any(c.get("type") == "Ready" and c.get("status") == "True" for c in status.get("conditions") or [])
    return status.get("phase") == "Running" and ready and not (pod.get("metadata") or {}).get("deletionTimestamp")


def _named_container_port(pod: dict[str, Any], port_name: str) -> int | None:
    for container in (pod.get("spec") or {}).get("containers") or []:
        for port in container.get("ports") or []:
            if port.get("name") == port_name:
                return int(port["containerPort"])
    return None


def resolve_target(api: KubeApi, namespace: str, service_or_pod: str, remote_port: int) -> tuple[str, int]:
    """(pod name, pod port) for ``pod/NAME``, ``svc/NAME`` (a Service port) or a bare pod NAME."""
    kind, _, name = service_or_pod.rpartition("/")
    kind = kind.lower() or "pod"
    pods = KINDS["Pod"]
    if kind in _POD_KINDS:
        pod = api.call("get", Target(pods, namespace, name), "GET", pods.path(namespace, name))
        if not _is_ready(pod):
            raise LabError(f"pod {namespace}/{name} is not running and ready (phase "
                           f"{(pod.get('status') or {}).get('phase')}): nothing to forward to")
        return name, remote_port
    if kind not in _SERVICE_KINDS:
        raise LabError(f"cannot forward to {service_or_pod!r}: name a pod (pod/NAME or NAME) or a service (svc/NAME)")
    services = KINDS["Service"]
    service = api.call("get", Target(services, namespace, name), "GET", services.path(namespace, name))
    spec = service.get("spec") or {}
    port = next((p for p in spec.get("ports") or [] if p.get("port") == remote_port), None)
    if port is None:
        offered = ", ".join(str(p.get("port")) for p in spec.get("ports") or []) or "none"
        raise LabError(f"service {namespace}/{name} has no port {remote_port} (its ports: {offered})")
    selector = spec.get("selector") or {}
    if not selector:
        raise LabError(f"service {namespace}/{name} has no pod selector: forward to one of its pods instead")
    label_selector = ",".join(f"{k}={v}" for k, v in sorted(selector.items()))
    candidates = api.call("list", Target(pods, namespace), "GET", pods.path(namespace),
                          query={"labelSelector": label_selector}).get("items") or []
    ready = sorted((p for p in candidates if _is_ready(p)), key=lambda p: p["metadata"]["name"])
    if not ready:
        raise LabError(f"service {namespace}/{name} has no ready pod behind it (selector {label_selector}); "
                       f"`kubectl get pods -n {namespace} -l {label_selector}` shows why")
    pod = ready[0]
    target_port = port.get("targetPort", remote_port)
    if isinstance(target_port, str):
        resolved = _named_container_port(pod, target_port)
        if resolved is None:
            raise LabError(f"service {namespace}/{name} targets port {target_port!r}, which pod "
                           f"{pod['metadata']['name']} does not declare")
        target_port = resolved
    return pod["metadata"]["name"], int(target_port)


def open_pod_stream(api_client: k8s_client.ApiClient, namespace: str, pod: str, port: int) -> socket.socket:
    """One Kubernetes port-forward stream to `pod`:`port`, as a connected socket."""
    core = k8s_client.CoreV1Api(api_client)
    try:
        forward = k8s_portforward(core.connect_get_namespaced_pod_portforward, pod, namespace, ports=str(port))
    except (ApiException, ApiValueError) as exc:
        reason = (getattr(exc, "reason", None) or str(exc)).split(" -+-+- ")[0]  # drop echoed headers/body
        if "403" in reason:
            raise Forbidden(f"port-forward to pod {namespace}/{pod} is forbidden: RBAC must grant 'create' on "
                            f"'pods/portforward' (`kubectl auth can-i create pods/portforward -n {namespace}`)")
        raise TargetUnavailable(f"port-forward to pod {namespace}/{pod}:{port} failed: {reason}") from None
    return forward.socket(port)


class LoopbackRelay:
    """Listens on 127.0.0.1 and pipes every accepted connection to a fresh upstream socket."""

    def __init__(self, open_upstream: Callable[[], Any], port: int = 0, errors: list[str] | None = None):
        self._open_upstream = open_upstream
        self._requested_port = port
        self.errors = errors if errors is not None else []
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []
        self._open: set[Any] = set()
        self._lock = threading.Lock()
        self._listener: socket.socket | None = None

    @property
    def port(self) -> int:
        if self._listener is None:
            raise RuntimeError("the relay is not listening")
        return self._listener.getsockname()[1]

    def __enter__(self) -> LoopbackRelay:
        listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            listener.bind((LOOPBACK, self._requested_port))
        except OSError as exc:
            listener.close()
            raise LabError(f"cannot listen on {LOOPBACK}:{self._requested_port}: {exc} "
                           f"(use local_port=0 for a free port)") from None
        listener.listen()
        self._listener = listener
        self._spawn(self._accept_loop)
        return self

    def __exit__(self, *exc_info: Any) -> None:
        self._stop.set()
        with self._lock:
            for sock in list(self._open):
                sock.close()
        for thread in self._threads:
            thread.join(timeout=5)
        if self._listener is not None:
            self._listener.close()

    def _spawn(self, target: Callable[..., None], *args: Any) -> None:
        self._threads = [t for t in self._threads if t.is_alive()]
        thread = threading.Thread(target=target, args=args, daemon=True, name=f"lab-port-forward-{self.port}")
        self._threads.append(thread)
        thread.start()

    def _accept_loop(self) -> None:
        assert self._listener is not None
        while not self._stop.is_set():
            readable, _, _ = select.select([self._listener], [], [], _POLL_S)
            if readable:
                connection, _ = self._listener.accept()
                self._spawn(self._pipe, connection)

    def _pipe(self, local: socket.socket) -> None:
        try:
            upstream = self._open_upstream()
        except Exception as exc:  # any failure ends this one connection, reported, never the relay
            local.close()
            message = f"upstream connection failed: {exc}"
            self.errors.append(message)
            print(f"port-forward {LOOPBACK}:{self.port}: {message}", file=sys.stderr)
            return
        pair = (local, upstream)
        with self._lock:
            self._open.update(pair)
        try:
            while not self._stop.is_set():
                readable, _, _ = select.select(pair, [], [], _POLL_S)
                for sock in readable:
                    data = sock.recv(65536)
                    if not data:
                        return
                    (upstream if sock is local else local).sendall(data)
        except (OSError, ValueError):  # a side reset or was closed by __exit__
            return
        finally:
            with self._lock:
                self._open.difference_update(pair)
            for sock in pair:
                sock.close()


@contextmanager
def port_forward(namespace: str, service_or_pod: str, remote_port: int, local_port: int = 0, *,
                 api_client: k8s_client.ApiClient | None = None) -> Iterator[ForwardedPort]:
    """Serve ``127.0.0.1:local_port`` (0: a free port) forwarded to a pod or service port.

    ``with port_forward("monitoring", "svc/prometheus-operated", 9090) as fwd: ... fwd.url ...``
    Uses `api_client`, else the current kubeconfig context.
    """
    if api_client is None:
        api_client, context = load_api_client()
    else:
        context = "given ApiClient"
    api = KubeApi(api_client, context)
    pod, pod_port = resolve_target(api, namespace, service_or_pod, remote_port)
    forwarded = ForwardedPort(port=0, pod=pod, pod_port=pod_port)
    relay = LoopbackRelay(lambda: open_pod_stream(api_client, namespace, pod, pod_port), local_port,
                          errors=forwarded.errors)
    with relay:
        forwarded.port = relay.port
        yield forwarded
