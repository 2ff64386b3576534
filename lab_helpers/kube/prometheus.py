"""Where the cluster's Prometheus answers: ``$PROMETHEUS_URL``, else a port-forward to kube-prometheus-stack."""
from __future__ import annotations

import os
from contextlib import AbstractContextManager, ExitStack
from typing import Callable

from ..prom.client import PromClient
from .portforward import ForwardedPort

PROMETHEUS_URL_ENV = "PROMETHEUS_URL"
NAMESPACE, SERVICE, PORT = "monitoring", "kube-prometheus-stack-prometheus", 9090

PortForward = Callable[..., AbstractContextManager[ForwardedPort]]


def cluster_prom_client(port_forward: PortForward, namespace: str = NAMESPACE, service: str = SERVICE,
                        port: int = PORT) -> PromClient:
    """The cluster's Prometheus: ``$PROMETHEUS_URL``, else a port-forward held open until `close()`."""
    url = os.environ.get(PROMETHEUS_URL_ENV)
    if url:
        return PromClient(url, unreachable_hint=f"Check {PROMETHEUS_URL_ENV}={url} (and the port-forward behind it, "
                                                f"e.g. `kubectl -n {namespace} port-forward svc/{service} {port}`).")
    stack = ExitStack()
    forwarded = stack.enter_context(port_forward(f"svc/{service}", port, namespace=namespace))
    return PromClient(forwarded.url, on_close=stack.close, unreachable_hint=(
        f"The port-forward to {namespace}/svc/{service}:{port} broke ({'; '.join(forwarded.errors) or 'no error'}); "
        f"set {PROMETHEUS_URL_ENV} to reach Prometheus another way."))
