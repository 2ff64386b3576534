"""Each part of the exit test timed from its first cell to its check, against the curriculum's budget."""
from __future__ import annotations

import time
from dataclasses import dataclass, field

import pandas as pd

from ..errors import LabError

BUDGET_MINUTES = {"build": 90, "diagnose": 45, "articulate": 15}  # 2.5 hours in all


@dataclass
class ExitTestClock:
    """``start(part)`` when a part begins, ``finish(part, passed)`` at its check; `summary()` lists them all."""

    started: dict[str, float] = field(default_factory=dict)
    results: dict[str, tuple[bool, float]] = field(default_factory=dict)

    def start(self, part: str) -> None:
        if part not in BUDGET_MINUTES:
            raise LabError(f"unknown exit-test part {part!r}: the parts are {', '.join(BUDGET_MINUTES)}")
        self.started[part] = time.monotonic()

    def finish(self, part: str, passed: bool) -> None:
        if part not in self.started:
            raise LabError(f"exit-test part {part!r} finished before it started: run its first cell first")
        self.results[part] = (bool(passed), time.monotonic() - self.started[part])

    def summary(self) -> pd.DataFrame:
        """One row per part: checked (True/False, or None if not reached), minutes taken, budget, within it."""
        rows = []
        for part, budget in BUDGET_MINUTES.items():
            passed, seconds = self.results.get(part, (None, None))
            minutes = None if seconds is None else round(seconds / 60, 2)
            rows.append({"part": part, "checked": passed, "minutes": minutes, "budget_minutes": budget,
                         "within_budget": None if minutes is None else minutes <= budget})
        return pd.DataFrame(rows)
