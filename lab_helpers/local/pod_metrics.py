"""The metrics-server of the local target: a pod's CPU, read from its container processes.

On a cluster the kubelet's cAdvisor measures each container's cgroup and metrics-server serves it to
the HPA. Locally a container is a process tree (the runtime and any workers it forks), so its CPU is
that tree's user + system time; the HPA turns two readings into millicores.
"""
from __future__ import annotations

from typing import Any

import psutil
from kubernetes.utils import parse_quantity

from ..processes import ProcessRecord, recorded_process


def pod_cpu_seconds(pod: dict[str, Any]) -> float | None:
    """CPU seconds used so far by the pod's running containers; None when none of them runs."""
    records = (((pod.get("status") or {}).get("lab") or {}).get("containers") or {}).values()
    total, found = 0.0, False
    for record in records:
        proc = recorded_process(ProcessRecord.from_json(record), marker=None)
        if proc is None:
            continue
        try:
            for member in [proc, *proc.children(recursive=True)]:
                times = member.cpu_times()
                total += times.user + times.system
            found = True
        except psutil.Error:
            continue
    return total if found else None


def pod_cpu_request_millicores(pod: dict[str, Any]) -> float:
    """The summed CPU requests of the pod's containers, in millicores (0 when none is set)."""
    return sum(float(parse_quantity(((c.get("resources") or {}).get("requests") or {}).get("cpu", "0"))) * 1000
               for c in (pod.get("spec") or {}).get("containers") or [])
