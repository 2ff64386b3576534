"""Where the local target's Prometheus answers: the port the control plane recorded in ``daemon.json``."""
from __future__ import annotations

import json
from pathlib import Path

from ..errors import LabError, TargetUnavailable
from ..prom.client import RUNBOOK, PromClient


def local_prom_client(home: Path) -> PromClient:
    """The local control plane's Prometheus (port from ``daemon.json``)."""
    info_path = home / "daemon.json"
    try:
        info = json.loads(info_path.read_text())
    except (FileNotFoundError, ValueError):
        raise TargetUnavailable(f"the local control plane is not running ({info_path} missing): "
                                "connect('local') starts it") from None
    if not info.get("prometheus_port"):
        raise LabError(f"{info_path} names no prometheus_port: this control plane runs no Prometheus stand-in")
    return PromClient(f"http://127.0.0.1:{info['prometheus_port']}", unreachable_hint=(
        "On the local target Prometheus runs once kube-prometheus-stack is installed: "
        "lab.apply('manifests/platform/kube-prometheus-stack.yaml') and wait for HelmRelease "
        f"monitoring/kube-prometheus-stack; its events say why it is not running. See {RUNBOOK}"))
