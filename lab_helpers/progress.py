"""Progress for long waits that reads well both in a terminal and in a saved notebook: one line of dots."""
from __future__ import annotations

import sys
import time


class Dots:
    """`starting X....... ready in 4.2 s`: a dot a second, no carriage returns for notebook outputs to keep."""

    def __init__(self, label: str, every: float = 1.0):
        self.label, self.every = label, every
        self.started = self.last = time.monotonic()
        print(label, end="", flush=True, file=sys.stdout)

    def tick(self) -> None:
        if time.monotonic() - self.last >= self.every:
            self.last = time.monotonic()
            print(".", end="", flush=True, file=sys.stdout)

    def done(self, outcome: str = "ready") -> None:
        print(f" {outcome} in {time.monotonic() - self.started:.1f} s", flush=True, file=sys.stdout)
