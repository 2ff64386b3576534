"""The gateway's route table: which revisions serve a Host, with what weight, on which backends.

Plain data pushed by the control plane (the KServe and Flagger controllers compute it), plus the
two choices made per request: a revision by weight (weighted random, as Envoy splits traffic
between clusters) and a ready backend of that revision (round robin, like kube-proxy over the
ready endpoints of a Service). Replacing the table is one reference swap, so a request in flight
never sees half an update, and it wakes every request waiting for a revision's first ready backend
(`wait_for_backend`): a request held during a scale-from-zero goes on the moment the pod is Ready.
"""
from __future__ import annotations

import asyncio
import bisect
import itertools
import random
from dataclasses import dataclass, field
from typing import Iterable

from yarl import URL


class UnknownHost(LookupError):
    """No route serves this Host (the proxy answers 404, like an ingress without a matching rule)."""

    def __init__(self, host: str):
        self.host = host
        super().__init__(f"no route for host {host}")


class NoReadyBackend(LookupError):
    """The chosen revision has no ready backend right now (the proxy answers 503 + Retry-After)."""

    def __init__(self, host: str, target: RouteTarget):
        self.host, self.target = host, target
        super().__init__(
            f"no ready backend for {target.namespace}/{target.service} revision {target.revision} (host {host})"
        )


@dataclass(frozen=True, slots=True)
class Backend:
    """One serving process ("pod"): its base URL, e.g. ``http://127.0.0.1:41234``, and readiness."""

    url: str
    ready: bool = True

    def __post_init__(self) -> None:
        url = URL(self.url)
        bare = url.path in ("", "/") and not url.query_string and not url.fragment
        if url.scheme != "http" or not url.host or url.explicit_port is None or not bare:
            raise ValueError(f"Backend.url: expected http://HOST:PORT with no path or query, got {self.url!r}")
        object.__setattr__(self, "url", f"http://{url.host}:{url.port}")


@dataclass(frozen=True, slots=True)
class RouteTarget:
    """One revision behind a Host (e.g. the primary or the canary) and its share of the traffic."""

    service: str
    namespace: str
    revision: str
    backends: list[Backend] = field(default_factory=list)
    weight: int = 100
    port: int = 80  # the Service port the route names (part of the cluster name in the request metrics)

    def __post_init__(self) -> None:
        where = f"RouteTarget {self.namespace}/{self.service} revision {self.revision}"
        if not (self.service and self.namespace and self.revision):
            raise ValueError(f"{where}: service, namespace and revision must all be non-empty")
        if isinstance(self.weight, bool) or not isinstance(self.weight, int) or self.weight < 0:
            raise ValueError(f"{where}: weight must be an integer >= 0, got {self.weight!r}")
        for index, backend in enumerate(self.backends):
            if not isinstance(backend, Backend):
                raise ValueError(f"{where}: backends[{index}] must be a Backend, got {type(backend).__name__}")

    @property
    def key(self) -> tuple[str, str, str]:
        """Identity of the revision across table updates."""
        return self.namespace, self.service, self.revision


@dataclass(frozen=True, slots=True)
class Route:
    """Everything served under one Host, e.g. ``iris-lab.example.com``."""

    host: str
    targets: list[RouteTarget]

    def __post_init__(self) -> None:
        if not self.host or self.host != normalize_host(self.host):
            raise ValueError(f"Route.host: expected a lower-case host name without port, got {self.host!r}")
        if not self.targets:
            raise ValueError(f"Route {self.host}: needs at least one target")
        if sum(target.weight for target in self.targets) <= 0:
            raise ValueError(f"Route {self.host}: target weights sum to 0, so no revision can be chosen")
        keys = [target.key for target in self.targets]
        duplicates = sorted({"/".join(key) for key in keys if keys.count(key) > 1})
        if duplicates:
            raise ValueError(f"Route {self.host}: revision listed twice: {', '.join(duplicates)}")


def normalize_host(value: str) -> str:
    """The Host header as routes are keyed: port stripped, lower case (``A.example.com:80`` -> ``a.example.com``)."""
    host, sep, port = value.rpartition(":")
    if sep and port.isdigit() and not host.endswith(":"):
        value = host
    return value.lower()


class _ReadyTarget:
    """A target with its ready backends frozen at table-replace time and its round-robin position."""

    __slots__ = ("target", "ready", "_turn")

    def __init__(self, target: RouteTarget):
        self.target = target
        self.ready = tuple(backend for backend in target.backends if backend.ready)
        self._turn = itertools.count()  # next() on a count is atomic under the GIL

    def next_backend(self) -> Backend | None:
        ready = self.ready
        if not ready:
            return None
        return ready[next(self._turn) % len(ready)]


class _CompiledRoute:
    __slots__ = ("route", "targets", "by_key", "cumulative", "total")

    def __init__(self, route: Route):
        self.route = route
        self.targets = [_ReadyTarget(target) for target in route.targets]
        self.by_key = {ready.target.key: ready for ready in self.targets}
        self.cumulative = list(itertools.accumulate(target.weight for target in route.targets))
        self.total = self.cumulative[-1]


class RouteTable:
    """Routes by Host; read by the proxy on every request, replaced whole by the control plane.

    `seed` makes the weighted choice reproducible (tests); leave it None in the gateway.
    """

    def __init__(self, routes: Iterable[Route] = (), *, seed: int | None = None):
        self._random = random.Random(seed).random
        self._routes: dict[str, _CompiledRoute] = {}
        self._waiters: list[asyncio.Future[None]] = []
        self.replace(routes)

    def replace(self, routes: Iterable[Route]) -> None:
        """Install a complete new set of routes at once; hosts missing from it stop being served."""
        compiled: dict[str, _CompiledRoute] = {}
        for route in routes:
            if not isinstance(route, Route):
                raise ValueError(f"RouteTable.replace: expected Route objects, got {type(route).__name__}")
            if route.host in compiled:
                raise ValueError(f"RouteTable.replace: host {route.host} appears in two routes")
            compiled[route.host] = _CompiledRoute(route)
        self._routes = compiled
        waiters, self._waiters = self._waiters, []
        for waiter in waiters:
            if not waiter.done():
                waiter.set_result(None)

    async def wait_for_backend(self, host: str, target: RouteTarget, timeout: float) -> Backend:
        """The next ready backend of `target`, waiting up to `timeout` s for a table that has one.

        Woken by `replace`, not by polling. Raises NoReadyBackend (or UnknownHost) when time is up.
        """
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while True:
            try:
                return self.pick_backend(host, target)
            except NoReadyBackend:
                remaining = deadline - loop.time()
                if remaining <= 0:
                    raise
            waiter = loop.create_future()
            self._waiters.append(waiter)
            try:
                await asyncio.wait_for(waiter, remaining)
            except TimeoutError:
                pass

    def routes(self) -> list[Route]:
        """The routes currently installed, sorted by host."""
        return [self._routes[host].route for host in sorted(self._routes)]

    def pick_target(self, host: str) -> RouteTarget:
        """Choose the revision for one request to `host` (normalised), by weight. Raises UnknownHost."""
        compiled = self._routes.get(host)
        if compiled is None:
            raise UnknownHost(host)
        targets = compiled.targets
        if len(targets) == 1:
            return targets[0].target
        index = bisect.bisect_right(compiled.cumulative, self._random() * compiled.total)
        return targets[index].target

    def pick_backend(self, host: str, target: RouteTarget) -> Backend:
        """Next ready backend of `target` in the *current* table (it may have changed since the target
        was picked, e.g. while a request was held for a scale-up). Raises UnknownHost or NoReadyBackend."""
        compiled = self._routes.get(host)
        if compiled is None:
            raise UnknownHost(host)
        ready = compiled.by_key.get(target.key)
        backend = ready.next_backend() if ready is not None else None
        if backend is None:
            raise NoReadyBackend(host, target)
        return backend

    def resolve(self, host: str) -> tuple[RouteTarget, Backend]:
        """Revision and backend for one request, in one step (no hold in between)."""
        target = self.pick_target(host)
        return target, self.pick_backend(host, target)
