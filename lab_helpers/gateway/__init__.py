"""The local target's gateway: Host routing, weighted revisions, hooks for policy and telemetry."""
from .proxy import Exchange, Filter, Gateway, Observer
from .routes import Backend, NoReadyBackend, Route, RouteTable, RouteTarget, UnknownHost, normalize_host

__all__ = [
    "Backend", "Exchange", "Filter", "Gateway", "NoReadyBackend", "Observer", "Route", "RouteTable",
    "RouteTarget", "UnknownHost", "normalize_host",
]
