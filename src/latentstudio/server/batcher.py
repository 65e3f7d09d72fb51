"""Micro-batching: concurrent requests that arrive within a few milliseconds share one forward pass.

Requests go into an asyncio queue; one consumer takes the first, drains whatever else is already waiting, waits
at most `max_wait_ms` for more while the batch is small, and hands the batch to `work` on the executor, so the
event loop never runs model code. At most `concurrency` batches run at once (one per worker thread of the
executor); the next batch is collected only when a worker is free, so while every worker is busy new requests
pile up and form the next batch: the batch size grows with the load by itself. A lone request
(nothing else waiting, and the previous batch was a single request too) is not held back at all, so one
client pays no batching latency.

`work` returns one result per item; an exception instance in an item's place fails that request alone (a
latent that does not fit the model after a switch), so one client's bad item never fails the others'.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
from collections.abc import Callable, Sequence
from typing import Any


class MicroBatcher:
    def __init__(self, work: Callable[[Sequence[Any]], list], executor: concurrent.futures.Executor,
                 max_batch: int = 16, max_wait_ms: float = 4.0, enabled: bool = True, concurrency: int = 1):
        self.work = work
        self.executor = executor
        self.concurrency = max(1, int(concurrency))
        self.running: set[asyncio.Task] = set()  # batches on the executor now
        self.max_batch = max(1, int(max_batch)) if enabled else 1
        self.max_wait = max(0.0, max_wait_ms) / 1000.0 if enabled else 0.0
        self.queue: asyncio.Queue | None = None
        self.task: asyncio.Task | None = None
        self.batches = 0  # statistics for /api/stats and the benchmark
        self.items = 0
        self.last_size = 0

    def start(self) -> None:
        self.queue = asyncio.Queue()
        self.task = asyncio.get_running_loop().create_task(self._run(), name="micro-batcher")

    async def stop(self) -> None:
        for task in [self.task, *self.running]:
            if task is None:
                continue
            task.cancel()
            try:
                await task
            except asyncio.CancelledError:
                pass
        self.task = None

    async def submit(self, item) -> Any:
        """Queue one item and wait for its result (exceptions of the batch are raised here)."""
        if self.queue is None:
            raise RuntimeError("MicroBatcher.start() was not called")
        future = asyncio.get_running_loop().create_future()
        await self.queue.put((item, future))
        return await future

    async def _collect(self) -> list:
        batch = [await self.queue.get()]
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self.max_wait
        while len(batch) < self.max_batch:
            if not self.queue.empty():
                batch.append(self.queue.get_nowait())
                continue
            if len(batch) == 1 and self.last_size <= 1:
                break  # no sign of concurrent clients: do not make a lone request wait
            remaining = deadline - loop.time()
            if remaining <= 0:
                break
            try:
                batch.append(await asyncio.wait_for(self.queue.get(), remaining))
            except TimeoutError:
                break
        return batch

    async def _run(self) -> None:
        slots = asyncio.Semaphore(self.concurrency)
        while True:
            await slots.acquire()  # wait for a free worker first: the batch grows meanwhile
            try:
                batch = await self._collect()
            except BaseException:
                slots.release()
                raise
            self.last_size = len(batch)
            live = [(item, fut) for item, fut in batch if not fut.done()]  # skip requests already cancelled
            if not live:
                slots.release()
                continue
            task = asyncio.get_running_loop().create_task(self._finish(live, slots))
            self.running.add(task)
            task.add_done_callback(self.running.discard)

    async def _finish(self, live: list, slots: asyncio.Semaphore) -> None:
        try:
            results = await asyncio.get_running_loop().run_in_executor(self.executor, self.work,
                                                                       [item for item, _ in live])
        except Exception as exc:  # one bad batch fails its requests, never the batcher
            for _, fut in live:
                if not fut.done():
                    fut.set_exception(exc)
            return
        finally:
            slots.release()
        self.batches += 1
        self.items += len(live)
        for (_, fut), result in zip(live, results, strict=True):
            if fut.done():
                continue
            if isinstance(result, Exception):
                fut.set_exception(result)
            else:
                fut.set_result(result)
