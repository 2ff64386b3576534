"""The local gateway's policy check: who is calling, which policies select the pod, drop or 403 or pass.

The local gateway plays two parts, so it checks a request as the hop it stands for (see
`source_of`): a request for an ingress Host reaches the predictor from the ingress gateway, a
request for an InterceptorRoute host from the KEDA interceptor, and a request for a Service's
cluster DNS name (``<service>.<namespace>.svc.cluster.local``) straight from the caller, whose
identity is looked up by the connection's source address only (the ipcache) and never from a header.

The agent (`local.controllers.cilium`) installs the state whole on every change, so a request
sees either the old or the new policy set, never half of it.
"""
from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Callable, Mapping

from aiohttp import web

from ..gateway.edge import DROP, Dropped
from ..gateway.routes import RouteTarget, normalize_host
from .flows import DROPPED, FORWARDED, FlowLog
from .identity import (HOST, INGRESS_GATEWAY, KEDA_INTERCEPTOR, NODE_ADDRESS, WORLD, Identity,
                       is_service_host)
from .rules import Destination, Policy, Verdict, decide

ACCESS_DENIED = "Access denied\r\n"  # the body Cilium's Envoy answers an L7 denial with


@dataclass(frozen=True)
class PolicyState:
    """Everything a verdict needs, replaced whole: destinations with the policies selecting them, the ipcache."""

    destinations: Mapping[tuple[str, str], tuple[Destination, tuple[Policy, ...]]] = field(default_factory=dict)
    endpoints: Mapping[str, Identity] = field(default_factory=dict)  # source address -> identity


def access_denied() -> web.Response:
    return web.Response(status=403, text=ACCESS_DENIED)


class PolicyEnforcer:
    """Called by the gateway for every routed request, before its body is read."""

    def __init__(self, flows: FlowLog, is_intercepted: Callable[[str], bool]):
        self.flows = flows
        self.is_intercepted = is_intercepted
        self.state = PolicyState()

    def install(self, state: PolicyState) -> None:
        self.state = state

    def source_of(self, host: str, address: str | None) -> Identity:
        """The identity the predictor sees for a request to `host` from `address` (see the module docstring)."""
        if not is_service_host(host):
            return KEDA_INTERCEPTOR if self.is_intercepted(host) else INGRESS_GATEWAY
        if address == NODE_ADDRESS:
            return HOST
        return self.state.endpoints.get(address or "", WORLD)

    def check(self, request: web.BaseRequest, target: RouteTarget) -> Verdict | None:
        """The verdict for this request, recorded as a flow; None for a destination the agent does not know."""
        known = self.state.destinations.get((target.namespace, target.service))
        if known is None:
            return None
        destination, policies = known
        host = normalize_host(request.host)
        source = self.source_of(host, request.remote)
        verdict = decide(policies, source, destination, request.method, request.raw_path, host,
                         request.headers)
        self.flows.record(time.time(), FORWARDED if verdict.allowed else DROPPED, verdict.layer, str(source),
                          request.remote or "", destination.ref, destination.port, request.method, request.raw_path,
                          verdict.reason)
        return verdict

    def admit(self, request: web.BaseRequest, target: RouteTarget) -> web.StreamResponse | Dropped | None:
        """The gateway's admission hook: None to go on, 403 for an L7 denial, DROP for an L3/L4 denial."""
        verdict = self.check(request, target)
        if verdict is None or verdict.allowed:
            return None
        return access_denied() if verdict.layer == "L7" else DROP
