"""Progress for long waits: one line that updates in place (tqdm), then a summary line that stays.

In a terminal and in a notebook kernel alike the line is rewritten with carriage returns, so a saved
notebook (streams coalesced, as the runner and nbval do) keeps only the summary, e.g.
``⏳ starting the MLflow server: ready in 4.2 s``. The line goes to stdout and starts with ``⏳`` so the
notebook tests can drop it from checkpoint output whether or not a wait happened (tests/notebooks/sanitize.cfg).
"""
from __future__ import annotations

import sys
import time

from tqdm import tqdm

MARK = "⏳"


class Dots:
    """The progress line of one wait: ``tick()`` while waiting, ``done(outcome)`` once at the end.

    (The name is from when this printed a dot a second; it now rewrites one line, with the seconds waited.)
    """

    def __init__(self, label: str, every: float = 1.0):
        self.every = every
        self.last = time.monotonic()
        self._out = sys.stdout  # as it is now: a notebook kernel or a test may have replaced it
        self._bar = tqdm(desc=f"{MARK} {label}", bar_format="{desc} … {elapsed_s:.0f} s", file=self._out)

    def tick(self) -> None:
        """Refresh the seconds shown, at most once per `every` seconds (callers tick more often)."""
        if time.monotonic() - self.last >= self.every:
            self.last = time.monotonic()
            self._bar.refresh()

    def done(self, outcome: str = "ready") -> None:
        """Replace the line by its summary, ``label: outcome in 4.2 s``, and end it."""
        escaped = outcome.replace("{", "{{").replace("}", "}}")
        self._bar.bar_format = "{desc}: " + escaped + " in {elapsed_s:.1f} s"
        self._bar.close()
        self._out.flush()
