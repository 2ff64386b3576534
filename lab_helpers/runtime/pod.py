"""What a local container sees of its pod: its filesystem root and its port mapping.

On a cluster each pod has its own mount namespace (``/mnt/models`` is the pod's emptyDir volume) and
its own network namespace (every pod listens on 8080). Local pods are plain processes on one host,
so the kubelet gives each a directory that stands for ``/`` and a loopback host port for each
container port, in two environment variables; the lab's images resolve paths and ports through
these two functions. Outside a local pod (a test, a bench) both are the identity.
"""
from __future__ import annotations

import os
from pathlib import Path

ROOT_ENV = "LAB_POD_ROOT"
PORTS_ENV = "LAB_POD_PORTS"


def pod_path(path: str | Path) -> Path:
    """An absolute path inside the pod (``/mnt/models``) as a path on the host."""
    path = Path(path)
    root = os.environ.get(ROOT_ENV)
    if root and path.is_absolute():
        return Path(root) / path.relative_to(path.anchor)
    return path


def format_ports(mapping: dict[int, int]) -> str:
    """The PORTS_ENV value for {container port: host port}."""
    return ",".join(f"{container}={host}" for container, host in sorted(mapping.items()))


def listen_port(container_port: int) -> int:
    """The host port this pod's `container_port` is mapped to (the port itself outside a local pod)."""
    for pair in filter(None, os.environ.get(PORTS_ENV, "").split(",")):
        container, _, host = pair.partition("=")
        if int(container) == int(container_port):
            return int(host)
    return int(container_port)
