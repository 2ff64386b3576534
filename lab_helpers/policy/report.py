"""What a notebook shows of network policy: caller x request -> outcome, and the flow log as a table."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Protocol

import pandas as pd

from .callers import CallResult
from .flows import Flow

DROPPED_OUTCOME = "dropped"  # what a timeout is, seen from the caller, when a policy drops its packets


@dataclass(frozen=True)
class Caller:
    """A pod as policies see it: labels in a namespace."""

    labels: dict[str, str]
    namespace: str


@dataclass(frozen=True)
class Call:
    method: str
    path: str
    payload: dict[str, Any] | None = None


class CallsAs(Protocol):
    def call_as(self, labels: dict[str, str], namespace: str, isvc: str, path: str, method: str = "POST",
                payload: dict[str, Any] | None = None, timeout: float = 3.0,
                isvc_namespace: str | None = None) -> CallResult: ...


def outcome(result: CallResult) -> str:
    return DROPPED_OUTCOME if result.status is None else str(result.status)


def outcome_table(lab: CallsAs, isvc: str, callers: dict[str, Caller], calls: dict[str, Call],
                  timeout: float) -> pd.DataFrame:
    """One row per caller, one column per call: ``200``, ``403`` or ``dropped`` (no answer within `timeout`)."""
    rows = {name: {label: outcome(lab.call_as(caller.labels, caller.namespace, isvc, call.path, call.method,
                                              call.payload, timeout))
                   for label, call in calls.items()}
            for name, caller in callers.items()}
    return pd.DataFrame.from_dict(rows, orient="index")


def flow_table(flows: list[Flow], columns: tuple[str, ...] = ("verdict", "layer", "source", "method", "path")
               ) -> pd.DataFrame:
    """The flows (oldest first) with the columns that hold on every run (no times, no addresses)."""
    return pd.DataFrame([{column: getattr(flow, column) for column in columns} for flow in flows])
