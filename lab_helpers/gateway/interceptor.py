"""The KEDA HTTP add-on's interceptor, as a gateway filter: hold requests while the target has no ready pod.

For the hosts an InterceptorRoute covers (pushed by the routing loop as `InterceptedRoute`s), the
requests in the gateway are the route's concurrency, and when the target has
no ready backend it is held until one is Ready, woken by the route-table swap, not by polling
(`RouteTable.wait_for_backend`). The first held request pushes the route to KEDA at once
(`on_pending`), as the add-on's external scaler does for an ``external-push`` trigger, so 0 -> 1
does not wait for a polling interval.

As the add-on answers (https://github.com/kedacore/http-add-on, docs/operate.md and the
configure-timeouts guide): a request still held when the route's readiness timeout ends gets 504;
the held requests of one route are bounded (`max_held_per_route`) and the next one gets 503 with
Retry-After, so a burst at zero replicas costs bounded memory and never touches other routes.
The readiness timeout 0 means "no separate deadline" (add-on v0.14+): the request is held until the
response-header timeout, here the gateway's upstream timeout.

Each hold is also kept as a `Hold` (the last `HOLDS_KEPT`), served as JSON on the gateway's own
``/interceptor/holds``: when a request was held and when it was released, which notebook 05 puts on
its cold-start timeline. That is the lab's own addition: the add-on logs no per-request hold time.

Simplified: one interceptor (the add-on runs several replicas sharing counts through its scaler),
``rules[].paths`` / ``headers`` are not matched (a route covers its hosts on every path), and only
the concurrency metric is kept (``scalingMetric.requestRate`` is not counted).
"""
from __future__ import annotations

import time
from collections import Counter, deque
from dataclasses import asdict, dataclass
from typing import Callable

from aiohttp import web
from pytimeparse2 import parse as parse_time

from .routes import NoReadyBackend, RouteTable, RouteTarget, UnknownHost, normalize_host

RouteKey = tuple[str, str, str]  # (kind, namespace, name): an InterceptorRoute, or a deprecated HTTPScaledObject
HOLDS_KEPT = 256


@dataclass(frozen=True)
class InterceptedRoute:
    """One InterceptorRoute (or HTTPScaledObject) as the interceptor needs it."""

    namespace: str
    name: str
    hosts: tuple[str, ...]
    readiness_timeout_s: float          # 0 = hold until `hold_ceiling_s`
    kind: str = "InterceptorRoute"
    missing_service: str | None = None  # the target Service, when it does not exist

    @property
    def key(self) -> RouteKey:
        return self.kind, self.namespace, self.name


@dataclass(frozen=True)
class Hold:
    """One request held for a ready pod: wall-clock seconds when it was held and when it was let go."""

    kind: str
    namespace: str
    name: str
    host: str
    held_at: float
    released_at: float
    outcome: str  # "forwarded", or "timeout" (answered 504)


def _error(status: int, message: str, retry_after: int | None = None) -> web.Response:
    response = web.json_response({"error": message}, status=status)
    if retry_after is not None:
        response.headers["Retry-After"] = str(retry_after)
    return response


class Interceptor:
    """Counts and holds the requests of intercepted hosts; KEDA's triggers read `concurrency` and `pending`."""

    def __init__(self, table: RouteTable, on_pending: Callable[[RouteKey], None], in_flight: Callable[[str], int],
                 *, max_held_per_route: int = 1024, hold_ceiling_s: float = 300.0):
        self.table = table
        self.on_pending = on_pending
        self.in_flight = in_flight  # the gateway's requests in flight for a host
        self.max_held_per_route = max_held_per_route
        self.hold_ceiling_s = hold_ceiling_s
        self._by_host: dict[str, InterceptedRoute] = {}
        self._held: Counter[RouteKey] = Counter()
        self.holds: deque[Hold] = deque(maxlen=HOLDS_KEPT)

    def set_routes(self, routes: list[InterceptedRoute]) -> None:
        """Replace the intercepted routes (the routing loop calls this on every change)."""
        self._by_host = {host: route for route in routes for host in route.hosts}

    def route_for(self, host: str) -> InterceptedRoute | None:
        return self._by_host.get(host)

    def routes(self) -> list[InterceptedRoute]:
        """Each intercepted route once, sorted by namespace and name."""
        return sorted({route.key: route for route in self._by_host.values()}.values(), key=lambda r: r.key)

    def pending(self, key: RouteKey) -> int:
        """Requests held for a ready pod right now."""
        return self._held[key]

    def concurrency(self, key: RouteKey) -> int:
        """Requests in the gateway for the route's hosts right now, held or being answered (the add-on's
        concurrency metric, what an ``external-push`` trigger reports)."""
        return sum(self.in_flight(host) for host, route in self._by_host.items() if route.key == key)

    async def hold(self, request: web.BaseRequest, target: RouteTarget) -> web.Response | None:
        """The gateway filter: wait for a ready backend of `target`; None when there is one, else the answer."""
        host = normalize_host(request.host)
        route = self._by_host.get(host)
        if route is None:
            return None
        try:
            self.table.pick_backend(host, target)
            return None
        except (NoReadyBackend, UnknownHost):
            pass
        if self._held[route.key] >= self.max_held_per_route:
            return _error(503, f"interceptor: {self.max_held_per_route} requests already held for {route.kind} "
                               f"{route.namespace}/{route.name} while it scales from zero", retry_after=1)
        timeout = route.readiness_timeout_s or self.hold_ceiling_s
        held_at, outcome = time.time(), "timeout"
        self._held[route.key] += 1
        if self._held[route.key] == 1:
            self.on_pending(route.key)
        try:
            await self.table.wait_for_backend(host, target, timeout)
            outcome = "forwarded"
            return None
        except (NoReadyBackend, UnknownHost):
            why = f"Service {route.namespace}/{route.missing_service} does not exist" if route.missing_service else \
                f"{target.namespace}/{target.service} had no ready endpoint"
            return _error(504, f"interceptor: {why} within the readiness timeout ({timeout:g}s) of {route.kind} "
                               f"{route.namespace}/{route.name}; see runbooks/scale-to-zero-failing.md")
        finally:
            self._held[route.key] -= 1
            self.holds.append(Hold(*route.key, host, held_at, time.time(), outcome))

    async def holds_page(self, request: web.BaseRequest) -> web.Response:
        """The recent holds, oldest first, as JSON (the gateway serves it on its own host)."""
        return web.json_response({"holds": [asdict(hold) for hold in self.holds]})



def parse_duration(value: str | None) -> float:
    """A duration as the add-on's CRD takes it (``"30s"``, ``"1m30s"``, ``"500ms"``) in seconds; unset is 0."""
    if value is None or str(value).strip() == "":
        return 0.0
    seconds = parse_time(str(value))
    if seconds is None or seconds < 0:
        raise ValueError(f"{value!r} is not a duration (e.g. 30s, 1m30s, 500ms)")
    return float(seconds)
