"""Request metrics of the gateway, named as the Gateway API data plane's Envoy names them (ADR 0006).

On the target cluster the Gateway API implementation is Cilium's: an Envoy that turns every backend
Service of an HTTPRoute into a cluster named ``<namespace>:<service>:<port>``, prefixed with the
CiliumEnvoyConfig it belongs to (``<gateway namespace>/cilium-gateway-<gateway>/``), and Envoy's
Prometheus output writes the ``:`` as ``_``
(https://github.com/cilium/cilium/blob/main/operator/pkg/model/translation/envoy_cluster.go,
https://www.envoyproxy.io/docs/envoy/v1.31.3/configuration/upstream/cluster_manager/cluster_stats).
A Flagger canary's ``-primary`` and ``-canary`` Services are two clusters, so each revision is
measured apart; so is every model's ``<isvc>-predictor`` Service. The local gateway records the
same three series for every request it sent to (or failed to get from) a backend:

- ``envoy_cluster_upstream_rq{envoy_cluster_name, envoy_response_code}``, and the per-class
  ``envoy_cluster_upstream_rq_xx{envoy_cluster_name, envoy_response_code_class}``;
- ``envoy_cluster_upstream_rq_time`` (histogram, milliseconds) per ``envoy_cluster_name``.

As Envoy's router charges them, a 503 for lack of a healthy backend and a 504 upstream timeout
count as upstream responses of the cluster; answers the gateway gives before choosing a cluster
(400, 403, 408, 413) do not. Counters keep Envoy's own names (no ``_total`` suffix).
Serve ``metrics_handler(metrics.registry)`` at ``GET /metrics`` on the gateway's own host.
"""
from __future__ import annotations

from bisect import bisect_left
from collections import Counter
from dataclasses import dataclass, field
from typing import Awaitable, Callable, Iterator

from aiohttp import web
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest
from prometheus_client.core import HistogramMetricFamily, Metric

from .proxy import Exchange
from .routes import RouteTarget

# Envoy's default histogram bounds in milliseconds.
ENVOY_BUCKETS_MS = (0.5, 1, 5, 10, 25, 50, 100, 250, 500, 1000, 2500, 5000, 10000, 30000, 60000, 300000,
                    600000, 1800000, 3600000)
# Envoy's bounds put this lab's latencies (a few ms to ~100 ms on a small machine) into four buckets, and
# histogram_quantile interpolates linearly inside a bucket: a p95 and a p99 that fall in the same 5-10 ms bucket
# read as points on a straight line up to 10 ms whatever the real tail is. Finer bounds from 1 to 250 ms (each at
# most 1.5x the one below) place a quantile within that factor; every Envoy bound is kept, so a query on an ``le``
# of Envoy's means the same on both targets. The price: each bound is one more series per cluster. On a cluster
# the same choice is Envoy's ``stats_config.histogram_bucket_settings``.
FINER_BUCKETS_MS = (1.5, 2, 2.5, 3, 4, 6, 8, 12, 15, 20, 30, 40, 60, 80, 120, 150, 200)
DURATION_BUCKETS_MS = tuple(sorted({*ENVOY_BUCKETS_MS, *FINER_BUCKETS_MS}))
# The CiliumEnvoyConfig Cilium makes for the lab's Gateway `lab-gateway` in namespace `lab`.
GATEWAY_CONFIG = "lab/cilium-gateway-lab-gateway"
UPSTREAM_ANSWERS = (503, 504)  # answered by the gateway for the cluster: no healthy backend, upstream timeout


def cluster_name(target: RouteTarget, gateway_config: str = GATEWAY_CONFIG) -> str:
    """``<gateway config>/<namespace>_<service>_<port>``: Envoy's ``envoy_cluster_name`` for a backend Service."""
    return f"{gateway_config}/{target.namespace}_{target.service}_{target.port}"


@dataclass
class _Timings:
    buckets: list[int] = field(default_factory=lambda: [0] * (len(DURATION_BUCKETS_MS) + 1))
    total_ms: float = 0.0
    count: int = 0


class RequestMetrics:
    """Counts and times every upstream request the gateway makes, per cluster, in a registry of its own."""

    def __init__(self, registry: CollectorRegistry | None = None, gateway_config: str = GATEWAY_CONFIG):
        self.registry = registry if registry is not None else CollectorRegistry()
        self.gateway_config = gateway_config
        self._codes: Counter[tuple[str, int]] = Counter()
        self._timings: dict[str, _Timings] = {}
        self._names: dict[tuple[str, str, int], str] = {}
        self.registry.register(_EnvoyClusterStats(self))

    def observe(self, exchange: Exchange) -> None:
        """The gateway observer: one upstream response of the target's cluster (when there was one)."""
        if exchange.backend is None and exchange.status not in UPSTREAM_ANSWERS:
            return
        target = exchange.target
        key = (target.namespace, target.service, target.port)
        cluster = self._names.get(key)
        if cluster is None:
            cluster = self._names[key] = cluster_name(target, self.gateway_config)
        self._codes[(cluster, exchange.status)] += 1
        timings = self._timings.get(cluster)
        if timings is None:
            timings = self._timings[cluster] = _Timings()
        milliseconds = exchange.duration_s * 1000.0
        timings.buckets[bisect_left(DURATION_BUCKETS_MS, milliseconds)] += 1
        timings.total_ms += milliseconds
        timings.count += 1


class _EnvoyClusterStats:
    """Renders the counts at scrape time, under Envoy's names and labels."""

    def __init__(self, metrics: RequestMetrics):
        self.metrics = metrics

    def collect(self) -> Iterator[Metric]:
        # "unknown" (untyped): prometheus_client would print a counter's TYPE line as `<name>_total`, a name
        # these samples do not have; Envoy keeps counters without the suffix. rate() reads both alike.
        by_code = Metric("envoy_cluster_upstream_rq", "Upstream responses by code (a counter)", "unknown")
        by_class = Metric("envoy_cluster_upstream_rq_xx", "Upstream responses by code class (a counter)", "unknown")
        classes: Counter[tuple[str, str]] = Counter()
        for (cluster, code), count in sorted(self.metrics._codes.items()):
            by_code.add_sample("envoy_cluster_upstream_rq",
                               {"envoy_cluster_name": cluster, "envoy_response_code": str(code)}, count)
            classes[(cluster, str(code)[0])] += count
        for (cluster, code_class), count in sorted(classes.items()):
            by_class.add_sample("envoy_cluster_upstream_rq_xx",
                                {"envoy_cluster_name": cluster, "envoy_response_code_class": code_class}, count)
        times = HistogramMetricFamily("envoy_cluster_upstream_rq_time", "Upstream request time in milliseconds",
                                      labels=["envoy_cluster_name"])
        for cluster, timings in sorted(self.metrics._timings.items()):
            cumulative, buckets = 0, []
            for bound, count in zip((*DURATION_BUCKETS_MS, float("inf")), timings.buckets):
                cumulative += count
                buckets.append(("+Inf" if bound == float("inf") else repr(float(bound)), cumulative))
            times.add_metric([cluster], buckets, timings.total_ms)
        yield from (by_code, by_class, times)


def metrics_handler(registry: CollectorRegistry) -> Callable[[web.BaseRequest], Awaitable[web.Response]]:
    """An aiohttp handler rendering `registry` in the Prometheus text format."""

    async def handle(request: web.BaseRequest) -> web.Response:
        return web.Response(body=generate_latest(registry), headers={"Content-Type": CONTENT_TYPE_LATEST})

    return handle
