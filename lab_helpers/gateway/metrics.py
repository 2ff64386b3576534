"""Request metrics of the gateway, named like Istio's so the same PromQL runs on both targets.

On a mesh cluster every request is counted by Envoy: ``istio_requests_total`` and the histogram
``istio_request_duration_milliseconds``, labelled by the destination
workload, its namespace, the Service, the response code and the protocol. Flagger's builtin
``request-success-rate`` / ``request-duration`` checks and the lab's alert rules query exactly
those (https://github.com/fluxcd/flagger/blob/v1.44.0/pkg/metrics/observers/istio.go).
The local gateway records the same series for every exchange:

- ``reporter="destination"``: the request reached a backend (the pod's sidecar would count it);
- ``reporter="source"``: every request the gateway answered, including the ones it answered
  itself (503 no ready backend, 413, 403 from a policy filter), as an ingress gateway counts them.

Attach with ``gateway.observers.append(metrics.observe)`` and serve ``metrics_handler(metrics.registry)``
at ``GET /metrics`` on the gateway's own host; Prometheus scrapes it as the stand-in for mesh telemetry.
"""
from __future__ import annotations

from typing import Awaitable, Callable

from aiohttp import web
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, Counter, Histogram, generate_latest

from .proxy import Exchange
from .routes import RouteTarget

# Envoy's default histogram bounds in milliseconds, which Istio's duration metric uses.
ENVOY_BUCKETS_MS = (0.5, 1, 5, 10, 25, 50, 100, 250, 500, 1000, 2500, 5000, 10000, 30000, 60000, 300000,
                    600000, 1800000, 3600000)
# Envoy's bounds put this lab's latencies (a few ms to ~100 ms on a small machine) into four buckets, and
# histogram_quantile interpolates linearly inside a bucket: a p95 and a p99 that fall in the same 5-10 ms bucket
# read as points on a straight line up to 10 ms (9.5 and 9.99, say) whatever the real tail is. Finer bounds from 1 to 250 ms (each at most 1.5x the one
# below) place a quantile within that factor; every Envoy bound is kept, so queries on an ``le`` of Envoy's run on
# both targets. The price: each bound is one more series per label set (36 bounds instead of 19). On a mesh the
# same choice is the pod annotation ``sidecar.istio.io/statsHistogramBuckets`` with an ``istiocustom`` list
# (https://istio.io/latest/docs/reference/config/annotations/#SidecarStatsHistogramBuckets).
FINER_BUCKETS_MS = (1.5, 2, 2.5, 3, 4, 6, 8, 12, 15, 20, 30, 40, 60, 80, 120, 150, 200)
DURATION_BUCKETS_MS = tuple(sorted({*ENVOY_BUCKETS_MS, *FINER_BUCKETS_MS}))
# destination_canonical_revision: Istio's revision label; here the pod-template hash of the serving pods,
# so a rollout shows old and new revision side by side.
LABELS = ("reporter", "destination_workload", "destination_workload_namespace", "destination_service_name",
          "destination_canonical_revision", "response_code", "request_protocol")
FLAGGER_CANARY_SUFFIX = "-canary"


def destination_workload(target: RouteTarget) -> str:
    """The Deployment behind a route target's Service, by the naming KServe and Flagger use.

    KServe's ``<isvc>-predictor`` Service selects the ``<isvc>-predictor`` Deployment, and Flagger's
    ``<target>-primary`` Service the ``<target>-primary`` one: the Service name is the workload. Only
    Flagger's ``<target>-canary`` Service selects a differently named Deployment, the ``<target>`` itself.
    """
    service = target.service
    if service.endswith(FLAGGER_CANARY_SUFFIX):
        return service[: -len(FLAGGER_CANARY_SUFFIX)]
    return service


class RequestMetrics:
    """Counts and times every exchange the gateway answers, in a registry of its own."""

    def __init__(self, registry: CollectorRegistry | None = None,
                 workload_of: Callable[[RouteTarget], str] = destination_workload):
        self.registry = registry if registry is not None else CollectorRegistry()
        self.workload_of = workload_of
        self.requests = Counter("istio_requests", "Requests answered, by destination and response code.",
                                LABELS, registry=self.registry)
        self.duration = Histogram("istio_request_duration_milliseconds",
                                  "Time from the request arriving at the gateway to the response sent, in ms.",
                                  LABELS, buckets=DURATION_BUCKETS_MS, registry=self.registry)
        # Label lookups cost more than the increments; a (service, namespace, revision, status) set is small.
        self._children: dict[tuple[str, str, str, int, bool], list[tuple[Counter, Histogram]]] = {}

    def observe(self, exchange: Exchange) -> None:
        """The gateway observer: one sample per reporter that saw the request."""
        reached = exchange.backend is not None
        target = exchange.target
        key = (target.service, target.namespace, target.revision, exchange.status, reached)
        children = self._children.get(key)
        if children is None:
            children = self._children[key] = self._bind(target, exchange.status, reached)
        milliseconds = exchange.duration_s * 1000.0
        for counter, histogram in children:
            counter.inc()
            histogram.observe(milliseconds)

    def _bind(self, target: RouteTarget, status: int, reached: bool) -> list[tuple[Counter, Histogram]]:
        common = (self.workload_of(target), target.namespace, target.service, target.revision, str(status), "http")
        reporters = ("source", "destination") if reached else ("source",)
        return [(self.requests.labels(reporter, *common), self.duration.labels(reporter, *common))
                for reporter in reporters]


def metrics_handler(registry: CollectorRegistry) -> Callable[[web.BaseRequest], Awaitable[web.Response]]:
    """An aiohttp handler rendering `registry` in the Prometheus text format."""

    async def handle(request: web.BaseRequest) -> web.Response:
        return web.Response(body=generate_latest(registry), headers={"Content-Type": CONTENT_TYPE_LATEST})

    return handle
