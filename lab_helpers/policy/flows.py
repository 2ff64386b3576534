"""The flow log: one record per policy verdict, shaped like Hubble's flows, from either target.

Hubble (Cilium's observability layer) records every forwarded and dropped flow with its source and
destination identity, port, L7 request and verdict; ``hubble observe`` reads them from a per-node
ring buffer (4095 flows by default). The local agent keeps the same kind of ring buffer in the
control plane (lost with it on a restart, as Hubble's is); on a cluster `parse_hubble` reads the
JSON lines of ``hubble observe -o jsonpb``
(https://docs.cilium.io/en/stable/observability/hubble/).
"""
from __future__ import annotations

import collections
import json
from dataclasses import asdict, dataclass
from datetime import datetime, timezone
from typing import Any, Iterable
from urllib.parse import urlsplit

RING_CAPACITY = 4095
FORWARDED, DROPPED = "FORWARDED", "DROPPED"


@dataclass(frozen=True)
class Flow:
    """One verdict: who called (identity and address), what (destination, port, L7 method/path), and why."""

    time: str
    verdict: str            # FORWARDED or DROPPED (an L7 denial is DROPPED at L7: the 403 is Envoy's answer)
    layer: str              # L3_L4 or L7: where the verdict was made
    source: str             # identity: "<namespace>/<labels>" or "reserved:<name>"
    source_address: str
    destination: str        # "<namespace>/<service or pod>"
    port: int
    method: str = ""
    path: str = ""
    reason: str = ""

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


class FlowLog:
    """A bounded ring of the most recent flows (memory stays fixed however much traffic is seen).

    A verdict is recorded as a plain tuple with its time as a number; the `Flow` with its ISO time is built
    only when someone reads the log, so the request that caused the flow pays for neither.
    """

    def __init__(self, capacity: int = RING_CAPACITY):
        self._flows: collections.deque[tuple[Any, ...]] = collections.deque(maxlen=capacity)

    def record(self, at: float, verdict: str, layer: str, source: str, source_address: str, destination: str,
               port: int, method: str = "", path: str = "", reason: str = "") -> None:
        """One verdict at `at` (seconds since the epoch); the fields are those of `Flow`."""
        self._flows.append((at, verdict, layer, source, source_address, destination, port, method, path, reason))

    def recent(self, namespace: str | None = None, last: int | None = None) -> list[Flow]:
        """Oldest first; only flows to `namespace` if given; the `last` N if given."""
        prefix = f"{namespace}/" if namespace is not None else ""
        rows = [row for row in self._flows if row[5].startswith(prefix)]
        rows = rows[-last:] if last else rows
        return [Flow(datetime.fromtimestamp(row[0], timezone.utc).isoformat(timespec="milliseconds"), *row[1:])
                for row in rows]


def _identity(endpoint: dict[str, Any]) -> str:
    labels = [label for label in endpoint.get("labels") or [] if label.startswith("k8s:")
              and not label.startswith(("k8s:io.kubernetes.", "k8s:io.cilium."))]
    if not endpoint.get("namespace"):
        reserved = [label for label in endpoint.get("labels") or [] if label.startswith("reserved:")]
        return reserved[0] if reserved else "reserved:world"
    shown = ",".join(sorted(label[len("k8s:"):] for label in labels))
    return f"{endpoint['namespace']}/{shown or '(no labels)'}"


def parse_hubble(lines: Iterable[str]) -> list[Flow]:
    """Flows from ``hubble observe -o jsonpb`` output (one JSON object per line, each with a ``flow``)."""
    flows = []
    for line in lines:
        if not line.strip():
            continue
        flow = json.loads(line).get("flow") or {}
        source, destination = flow.get("source") or {}, flow.get("destination") or {}
        l4 = flow.get("l4") or {}
        port = next((int(v.get("destination_port", 0)) for v in l4.values() if isinstance(v, dict)), 0)
        http = (flow.get("l7") or {}).get("http") or {}
        flows.append(Flow(
            time=flow.get("time", ""), verdict=flow.get("verdict", ""), layer=flow.get("Type", ""),
            source=_identity(source), source_address=(flow.get("IP") or {}).get("source", ""),
            destination=f"{destination.get('namespace', '')}/{destination.get('pod_name', '')}", port=port,
            method=http.get("method", ""), path=urlsplit(http.get("url", "")).path if http.get("url") else "",
            reason=flow.get("drop_reason_desc", "") or ("" if http.get("code", 0) != 403 else "L7 rule: 403")))
    return flows
