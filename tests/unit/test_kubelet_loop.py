"""The kubelet loop: a deleted pod terminates in the background, so the loops after it are not held up."""
from __future__ import annotations

import asyncio

from lab_helpers.local.kubelet import Kubelet
from lab_helpers.local.store import Store


class SlowToStop:
    """A pod worker whose containers take their whole grace period to exit."""

    def __init__(self):
        self.exited = asyncio.Event()
        self.stopped = False

    async def stop(self) -> None:
        await self.exited.wait()
        self.stopped = True


def test_a_deleted_pod_is_terminated_without_blocking_the_loop_and_down_waits_for_it(tmp_path):
    async def main() -> None:
        kubelet = Kubelet(Store(tmp_path / "store.sqlite"), tmp_path)
        worker = kubelet.workers["uid-of-a-deleted-pod"] = SlowToStop()
        await kubelet.sync()  # returns while the worker is still stopping
        assert kubelet.workers == {} and not worker.stopped and len(kubelet.terminating) == 1
        shutdown = asyncio.create_task(kubelet.shutdown())
        await asyncio.sleep(0)
        assert not shutdown.done()  # `down` waits for pods still terminating
        worker.exited.set()
        await shutdown
        assert worker.stopped and not kubelet.terminating

    asyncio.run(asyncio.wait_for(main(), 10))
