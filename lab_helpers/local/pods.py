"""Reading a local Pod's status: readiness, and the host port behind each container port.

The kubelet records the pod's port mapping in ``status.lab.ports`` ({container port: host port},
keys as strings in JSON) and each container's process in ``status.lab.containers``; the route
table, Prometheus' configuration and `down` read them here.
"""
from __future__ import annotations

from typing import Any


def pod_ready(pod: dict[str, Any]) -> bool:
    return any(c.get("type") == "Ready" and c.get("status") == "True"
               for c in (pod.get("status") or {}).get("conditions") or [])


def finished(pod: dict[str, Any]) -> bool:
    return (pod.get("status") or {}).get("phase") in ("Succeeded", "Failed")


def port_mapping(pod: dict[str, Any]) -> dict[int, int]:
    return {int(k): int(v) for k, v in (((pod.get("status") or {}).get("lab") or {}).get("ports") or {}).items()}


def container_port(pod: dict[str, Any], port: int | str) -> int | None:
    """A port as a probe or a Service's targetPort gives it: a number, or the name of a declared port."""
    if isinstance(port, int) or str(port).isdigit():
        return int(port)
    for container in (pod.get("spec") or {}).get("containers") or []:
        for declared in container.get("ports") or []:
            if declared.get("name") == port:
                return int(declared["containerPort"])
    return None


def host_port(pod: dict[str, Any], port: int | str) -> int | None:
    """The loopback port where this pod's `port` answers, once its process has one."""
    number = container_port(pod, port)
    return port_mapping(pod).get(number) if number is not None else None
