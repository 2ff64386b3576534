"""The controller manager of the local target: one work queue that decides when each control loop runs.

Like controller-runtime's manager and workqueue: a change in the store enqueues the objects it
concerns (the object itself, its controller owner, every object of a controller that watches the
kind), a `Result.requeue_after` enqueues at a time, a failure re-enqueues with exponential backoff
per object (controller-runtime's ``ItemExponentialFailureRateLimiter``, here 50 ms doubling to
30 s), and a slow periodic resync re-reconciles everything as a safety net (``SyncPeriod``).
A key queued twice runs once. The queue is only scheduling: losing it on a restart loses nothing,
because every reconcile starts again from what the store holds.
"""
from __future__ import annotations

import asyncio
import logging
import time
from dataclasses import dataclass
from typing import Any, Callable, Sequence

from .controllers.base import Controller, Loop, PermanentError, Result, ref_of
from .store import Store

log = logging.getLogger("lab.manager")

BACKOFF_BASE, BACKOFF_CAP = 0.05, 30.0
RESYNC_SECONDS = 30.0
SETTLE_SECONDS = 5.0  # the longest an API write waits for the loops it woke
ALL = "*"  # kind of the key that stands for "every object of this controller"


@dataclass(frozen=True, order=True)
class Key:
    """What one queue entry reconciles: object (kind, namespace, name) of controller/loop number `loop`."""

    loop: int
    kind: str = ""
    namespace: str = ""
    name: str = ""


def backoff_delay(failures: int) -> float:
    """Seconds before retry number `failures` (1, 2, ...) of a key that keeps failing."""
    return min(BACKOFF_BASE * 2 ** (failures - 1), BACKOFF_CAP)


class Manager:
    """Runs `loops` (Controllers and Loops) when their keys come due; `clock` is injectable for tests."""

    def __init__(self, store: Store, loops: Sequence[Controller | Loop], clock: Callable[[], float] = time.monotonic,
                 resync_seconds: float = RESYNC_SECONDS):
        self.store = store
        self.loops = list(loops)
        self.clock = clock
        self.resync_seconds = resync_seconds
        self.queue: dict[Key, float] = {}
        self.failures: dict[Key, int] = {}
        self._wake = asyncio.Event()
        self._idle = asyncio.Event()  # set when nothing is due now and nothing is running
        self._next_resync = 0.0
        store.listeners.append(self.notify)
        store.settlers.append(self.settled)

    # --- what enqueues ----------------------------------------------------------------------------
    def enqueue(self, key: Key, delay: float = 0.0) -> None:
        due = self.clock() + delay
        if due < self.queue.get(key, float("inf")):
            self.queue[key] = due
        if delay <= 0:
            self._idle.clear()
            self._wake.set()

    def wake(self, loop: Controller | Loop, kind: str, namespace: str, name: str) -> None:
        """Run `loop` for that object now: a push from outside the store (the interceptor's held request)."""
        self.enqueue(Key(self.loops.index(loop), kind, namespace, name))

    def notify(self, kind: str, namespace: str, name: str, obj: dict[str, Any] | None = None,
               deleted: bool = False) -> None:
        """A store change: enqueue every key that depends on it (the store calls this after each write)."""
        owners = [r for r in ((obj or {}).get("metadata") or {}).get("ownerReferences") or [] if r.get("controller")]
        for index, loop in enumerate(self.loops):
            if isinstance(loop, Loop):
                if loop.wants(kind, deleted):
                    self.enqueue(Key(index, "", "", loop.name))
                continue
            if kind in loop.kinds:
                self.enqueue(Key(index, kind, namespace, name))
            if kind in loop.owns:
                for ref in owners:
                    if ref.get("kind") in loop.kinds:
                        self.enqueue(Key(index, ref["kind"], namespace, ref["name"]))
            if kind in loop.watches:
                self.enqueue(Key(index, ALL))

    def resync(self) -> None:
        """Enqueue everything (the start, and the periodic safety net)."""
        for index, loop in enumerate(self.loops):
            self.enqueue(Key(index, "", "", loop.name) if isinstance(loop, Loop) else Key(index, ALL))

    # --- running ----------------------------------------------------------------------------------
    async def run_due(self) -> float | None:
        """Run every key that is due now; return when the next one is due (None: nothing queued)."""
        now = self.clock()
        if now >= self._next_resync:
            self._next_resync = now + self.resync_seconds
            self.resync()
        due = sorted(key for key, at in self.queue.items() if at <= now)
        for key in due:
            del self.queue[key]
            await self._process(key)
            await asyncio.sleep(0)  # the gateway shares this loop: let requests through between reconciles
        return min(self.queue.values(), default=None)

    async def run(self, stopping: asyncio.Event) -> None:
        """Until `stopping` is set; setting it also ends the current wait (a signal must not wait for a requeue)."""

        async def wake_when_stopping() -> None:
            await stopping.wait()
            self._wake.set()

        watcher = asyncio.create_task(wake_when_stopping())
        try:
            while not stopping.is_set():
                self._wake.clear()
                next_due = await self.run_due()
                if next_due is None or next_due > self.clock():
                    self._idle.set()
                wait = self._next_resync - self.clock()
                if next_due is not None:
                    wait = min(wait, next_due - self.clock())
                if wait > 0 and not stopping.is_set():
                    try:
                        await asyncio.wait_for(self._wake.wait(), wait)
                    except TimeoutError:
                        pass
        finally:
            watcher.cancel()

    async def settled(self, limit_s: float = SETTLE_SECONDS) -> None:
        """Return once every key due now has run, so a read sees what the last write led to (at most `limit_s`)."""
        try:
            await asyncio.wait_for(self._idle.wait(), limit_s)
        except TimeoutError:
            log.warning("control loops still busy after %.0f s; answering without waiting longer", limit_s)

    async def _process(self, key: Key) -> None:
        loop = self.loops[key.loop]
        if key.kind == ALL:
            for kind in loop.kinds:
                for obj in self.store.list(kind):
                    self.enqueue(Key(key.loop, *ref_of(obj)))
            return
        obj = None
        try:
            if isinstance(loop, Loop):
                result = await loop.sync()
            else:
                obj = self.store.find(key.kind, key.namespace, key.name)
                if obj is None:
                    self.failures.pop(key, None)
                    return  # deleted: its children go with the garbage collector
                result = await loop.reconcile(obj)
        except PermanentError as exc:
            self.failures.pop(key, None)
            log.warning("%s %s/%s: %s (not retried until it changes)", key.kind, key.namespace, key.name, exc)
            return
        except Exception as exc:  # one broken object must not stop the loop for the others
            failures = self.failures[key] = self.failures.get(key, 0) + 1
            delay = backoff_delay(failures)
            log.exception("reconcile %s failed (%d in a row), retrying in %.2f s", key, failures, delay)
            if obj is not None:
                self.store.record_event(obj, "ReconcileError", f"{type(exc).__name__}: {exc}", "Warning")
            self.enqueue(key, delay)
            return
        self.failures.pop(key, None)
        if isinstance(result, Result) and result.requeue_after is not None:
            self.enqueue(key, result.requeue_after)
