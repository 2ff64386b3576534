"""Hubble's flow log on a cluster, through the ``hubble`` CLI (``hubble observe -o jsonpb``).

Hubble must be enabled in Cilium with its Relay, and the CLI must reach the Relay (by default on
localhost:4245 after ``cilium hubble port-forward``; ``HUBBLE_SERVER`` points it elsewhere).
https://docs.cilium.io/en/stable/observability/hubble/setup/
"""
from __future__ import annotations

import shutil
import subprocess

from ..errors import TargetUnavailable
from ..policy.flows import Flow, parse_hubble

DEFAULT_LAST = 1000
OBSERVE_TIMEOUT_S = 30.0
HOW_TO_ENABLE = ("enable Hubble and its Relay (`cilium hubble enable`, or the Helm values hubble.enabled=true and "
                 "hubble.relay.enabled=true), run `cilium hubble port-forward` so the Relay answers on "
                 "localhost:4245 (or set HUBBLE_SERVER), and install the hubble CLI "
                 "(https://docs.cilium.io/en/stable/observability/hubble/setup/)")


def hubble_flows(namespace: str | None = None, last: int | None = None) -> list[Flow]:
    """The last flows to pods in `namespace` (all namespaces if None), oldest first."""
    hubble = shutil.which("hubble")
    if hubble is None:
        raise TargetUnavailable(f"the hubble CLI is not on PATH: {HOW_TO_ENABLE}")
    command = [hubble, "observe", "-o", "jsonpb", "--last", str(last or DEFAULT_LAST)]
    if namespace:
        command += ["--to-namespace", namespace]
    try:
        done = subprocess.run(command, capture_output=True, text=True, timeout=OBSERVE_TIMEOUT_S, check=False)
    except subprocess.TimeoutExpired:
        raise TargetUnavailable(f"`hubble observe` did not answer within {OBSERVE_TIMEOUT_S:g}s: is the Relay "
                                f"reachable? {HOW_TO_ENABLE}") from None
    if done.returncode != 0:
        said = (done.stderr.strip().splitlines() or ["no output"])[-1]
        raise TargetUnavailable(f"`hubble observe` failed ({said}): {HOW_TO_ENABLE}")
    return parse_hubble(done.stdout.splitlines())
