"""Kubernetes timestamps as epoch seconds, whatever their resolution.

``metav1.Time`` (creationTimestamp, container ``startedAt``, condition ``lastTransitionTime``) is
whole seconds on a cluster; ``MicroTime`` (an Event's ``eventTime``) has microseconds. The local
target writes microseconds into both, so the same reader takes either apart.
"""
from __future__ import annotations

from datetime import datetime
from typing import Any


def epoch(stamp: str) -> float:
    """``2026-12-02T19:25:44Z`` or ``2026-12-02T19:25:44.123456Z`` in seconds since the epoch."""
    try:
        return datetime.fromisoformat(str(stamp).replace("Z", "+00:00")).timestamp()
    except ValueError as exc:
        raise ValueError(f"{stamp!r} is not an RFC 3339 timestamp") from exc


def event_epoch(event: dict[str, Any]) -> float:
    """When an Event happened: its ``eventTime`` where the recorder set one, else ``firstTimestamp``."""
    stamp = event.get("eventTime") or event.get("firstTimestamp") or event.get("lastTimestamp")
    if not stamp:
        raise ValueError(f"event {event.get('reason')!r} of {event.get('involvedObject')} has no timestamp")
    return epoch(stamp)
