"""The one loop protocol: what a change enqueues, requeue by time, backoff per failing object, permanent errors."""
import asyncio

import pytest

from lab_helpers.local.controllers.base import DONE, Controller, Context, Loop, PermanentError, Result
from lab_helpers.local.manager import BACKOFF_CAP, Manager, backoff_delay
from lab_helpers.local.store import Store


class Clock:
    def __init__(self):
        self.now = 1000.0

    def __call__(self):
        return self.now


class Recorder(Controller):
    kinds = ("Widget",)
    owns = ("Part",)
    watches = ("Config",)

    def __init__(self, ctx, outcome=lambda obj: DONE):
        super().__init__(ctx)
        self.calls: list[str] = []
        self.outcome = outcome

    async def reconcile(self, obj):
        self.calls.append(obj["metadata"]["name"])
        return self.outcome(obj)


class Counter(Loop):
    name = "counter"
    watches = ("Part",)

    def __init__(self):
        self.runs = 0

    async def sync(self):
        self.runs += 1
        return DONE


def obj(kind, name, **meta):
    return {"apiVersion": "v1", "kind": kind, "metadata": {"name": name, "namespace": "lab", **meta}, "spec": {}}


@pytest.fixture
def store(tmp_path):
    return Store(tmp_path / "store.sqlite")


def setup(store, tmp_path, outcome=lambda obj: DONE):
    clock = Clock()
    controller, loop = Recorder(Context(store, tmp_path), outcome), Counter()
    manager = Manager(store, [controller, loop], clock=clock, resync_seconds=3600)
    asyncio.run(manager.run_due())  # the initial resync
    controller.calls.clear()
    loop.runs = 0
    return manager, controller, loop, clock


def test_changes_enqueue_the_object_its_owner_and_watchers(store, tmp_path):
    manager, controller, loop, _ = setup(store, tmp_path)
    a = store.apply(obj("Widget", "a"))
    store.apply(obj("Widget", "b"))
    asyncio.run(manager.run_due())
    assert sorted(controller.calls) == ["a", "b"] and loop.runs == 0
    controller.calls.clear()
    owner = {"kind": "Widget", "name": "a", "uid": a["metadata"]["uid"], "controller": True}
    store.apply(obj("Part", "p", ownerReferences=[owner]))
    store.apply(obj("Part", "q", ownerReferences=[owner]))  # queued twice, runs once
    asyncio.run(manager.run_due())
    assert controller.calls == ["a"] and loop.runs == 1
    controller.calls.clear()
    store.apply(obj("Config", "c"))  # a watched kind: every Widget (expanded, then run on the next round)
    asyncio.run(manager.run_due())
    asyncio.run(manager.run_due())
    assert sorted(controller.calls) == ["a", "b"]


def test_requeue_after_runs_again_by_time_not_by_a_pass(store, tmp_path):
    manager, controller, _, clock = setup(store, tmp_path, outcome=lambda obj: Result(requeue_after=30.0))
    store.apply(obj("Widget", "poller"))
    assert asyncio.run(manager.run_due()) == pytest.approx(clock.now + 30.0)
    clock.now += 29.0
    asyncio.run(manager.run_due())
    assert controller.calls == ["poller"]
    clock.now += 1.0
    asyncio.run(manager.run_due())
    assert controller.calls == ["poller", "poller"]


def test_a_controller_that_keeps_failing_backs_off(store, tmp_path):
    def fail(obj):
        raise RuntimeError("the dependency is not there")

    manager, controller, _, clock = setup(store, tmp_path, outcome=fail)
    store.apply(obj("Widget", "broken"))
    gaps = []
    for _ in range(12):
        next_due = asyncio.run(manager.run_due())
        gaps.append(round(next_due - clock.now, 3))
        clock.now = next_due
    assert len(controller.calls) == 12
    assert gaps[:4] == [0.05, 0.1, 0.2, 0.4]  # doubling per consecutive failure of this object
    assert gaps[-1] == BACKOFF_CAP and all(b >= a for a, b in zip(gaps, gaps[1:]))
    event = store.events([("Widget", "lab", "broken")])[-1]
    assert (event["reason"], event["count"]) == ("ReconcileError", 12)


def test_success_resets_the_backoff_and_other_objects_are_not_slowed(store, tmp_path):
    broken = {"yes": True}

    def flaky(obj):
        if obj["metadata"]["name"] == "flaky" and broken["yes"]:
            raise RuntimeError("not yet")
        return DONE

    manager, controller, _, clock = setup(store, tmp_path, outcome=flaky)
    store.apply(obj("Widget", "flaky"))
    for _ in range(5):
        clock.now = asyncio.run(manager.run_due())
    store.apply(obj("Widget", "healthy"))
    asyncio.run(manager.run_due())
    assert controller.calls[-1] == "healthy"
    broken["yes"] = False
    clock.now = asyncio.run(manager.run_due())
    asyncio.run(manager.run_due())
    assert manager.failures == {} and manager.queue == {}
    assert backoff_delay(1) == 0.05  # a new failure starts from the bottom again


def test_a_permanent_error_is_not_retried_until_the_object_changes(store, tmp_path):
    def permanent(obj):
        raise PermanentError("InvalidSpec", "cannot work")

    manager, controller, _, _ = setup(store, tmp_path, outcome=permanent)
    store.apply(obj("Widget", "w"))
    assert asyncio.run(manager.run_due()) is None
    assert controller.calls == ["w"] and manager.queue == {}
    store.apply({**obj("Widget", "w"), "spec": {"fixed": True}})
    asyncio.run(manager.run_due())
    assert controller.calls == ["w", "w"]


def test_stopping_ends_the_wait_at_once(store, tmp_path):
    manager = Manager(store, [Counter()], resync_seconds=3600)

    async def scenario():
        stopping = asyncio.Event()
        task = asyncio.create_task(manager.run(stopping))
        await asyncio.sleep(0.05)  # the manager is now waiting for a change or the hour-long resync
        started = asyncio.get_running_loop().time()
        stopping.set()
        await asyncio.wait_for(task, 2)
        return asyncio.get_running_loop().time() - started

    assert asyncio.run(scenario()) < 1.0


def test_settled_returns_once_the_loops_a_write_woke_have_run(store, tmp_path):
    """What the API awaits before answering a write, so a read right after sees what the write led to."""

    async def main() -> list[str]:
        controller, loop = Recorder(Context(store, tmp_path)), Counter()
        manager = Manager(store, [controller, loop], resync_seconds=3600)
        stopping = asyncio.Event()
        running = asyncio.create_task(manager.run(stopping))
        await store.settled()  # the start-up resync
        controller.calls.clear()
        store.apply(obj("Widget", "w2"))
        await store.settled()
        seen = list(controller.calls)
        stopping.set()
        await running
        return seen

    assert asyncio.run(main()) == ["w2"]
