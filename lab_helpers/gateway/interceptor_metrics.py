"""The HTTP add-on interceptor's metrics under the add-on's own names, so the same PromQL runs on a cluster.

Since add-on v0.14 the interceptor exports (port 2223 on a cluster)
``interceptor_request_count_total{code, method, route_name, route_namespace}`` and
``interceptor_request_concurrency{route_name, route_namespace}``
(https://github.com/kedacore/http-add-on/blob/main/CHANGELOG.md). The local gateway serves them on its
``/metrics`` beside the Istio-named request metrics, for the hosts an InterceptorRoute covers.
"""
from __future__ import annotations

from typing import Iterator

from prometheus_client import CollectorRegistry, Counter
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector

from .interceptor import Interceptor
from .proxy import Exchange

ROUTE_LABELS = ("route_name", "route_namespace")


class _Concurrency(Collector):
    """Read at scrape time from the interceptor: requests in flight per route."""

    def __init__(self, interceptor: Interceptor):
        self.interceptor = interceptor

    def collect(self) -> Iterator[GaugeMetricFamily]:
        family = GaugeMetricFamily("interceptor_request_concurrency",
                                   "Requests in flight through the interceptor, per route", labels=ROUTE_LABELS)
        for route in self.interceptor.routes():
            family.add_metric([route.name, route.namespace], self.interceptor.concurrency(route.key))
        yield family


class InterceptorMetrics:
    """Counts the exchanges of intercepted hosts; attach `observe` to the gateway's observers."""

    def __init__(self, registry: CollectorRegistry, interceptor: Interceptor):
        self.interceptor = interceptor
        self.requests = Counter("interceptor_request_count", "Requests answered through the interceptor",
                                ("code", "method", *ROUTE_LABELS), registry=registry)
        registry.register(_Concurrency(interceptor))

    def observe(self, exchange: Exchange) -> None:
        route = self.interceptor.route_for(exchange.host)
        if route is not None:
            self.requests.labels(str(exchange.status), exchange.method, route.name, route.namespace).inc()
