"""Load in phases (one offered rate each), with the wall-clock window of every phase kept for the queries after.

Prometheus answers in wall-clock time; a figure "over the run" mixes the phases, so a notebook reads its
range queries phase by phase through these windows (`lab_helpers.prom.phases`).
"""
from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Callable

import pandas as pd

from .loadgen import Payload, run_load


@dataclass(frozen=True)
class Phase:
    """One load phase: the offered rate (req/s) and when it ran, in unix seconds."""

    rate: float
    start: float
    end: float


def run_phases(url: str, host: str, path: str, payload_factory: Callable[[int], Payload], rates: list[float],
               seconds: float, invalid_share: float = 0.0) -> tuple[pd.DataFrame, list[Phase]]:
    """`run_load` open-loop at each rate for `seconds`, one after the other; (all rows with a ``rate`` column, phases).

    Each phase may send up to twice its due requests' worth (``rate * seconds * 2``) so the time bound ends it.
    """
    frames, phases = [], []
    for rate in rates:
        start = time.time()
        sent = run_load(url, host, path, payload_factory, rate=rate, seconds=seconds,
                        requests=max(1, int(rate * seconds * 2)), invalid_share=invalid_share)
        phases.append(Phase(rate, start, time.time()))
        frames.append(sent.assign(rate=rate))
    return pd.concat(frames, ignore_index=True), phases
