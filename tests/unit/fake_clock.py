"""A clock a test moves by hand, for controllers that take ``clock: Callable[[], float]``."""
from __future__ import annotations


class Clock:
    def __init__(self, now: float):
        self.now = now

    def __call__(self) -> float:
        return self.now
