"""The micro-batcher and the engine's synthesis workers: concurrency, batch growth under load, failures."""

from __future__ import annotations

import asyncio
import concurrent.futures
import threading

import numpy as np
import pytest
import torch

from latentstudio.server.batcher import MicroBatcher
from latentstudio.server.engine import Engine, GenItem, synthesis_workers

from .conftest import tiny_loaded


def _run_batcher(work, concurrency: int, n: int, workers: int, max_batch: int = 4):
    async def run():
        pool = concurrent.futures.ThreadPoolExecutor(workers)
        batcher = MicroBatcher(work, pool, max_batch=max_batch, max_wait_ms=50, concurrency=concurrency)
        batcher.start()
        try:
            return await asyncio.gather(*(batcher.submit(i) for i in range(n)), return_exceptions=True), batcher
        finally:
            await batcher.stop()
            pool.shutdown()
    return asyncio.run(run())


def test_two_batches_run_at_once_when_concurrency_allows():
    # both batches must be inside `work` together to pass the barrier; one at a time would time out
    barrier = threading.Barrier(2, timeout=10)

    def work(items):
        barrier.wait()
        return [i * 10 for i in items]

    results, batcher = _run_batcher(work, concurrency=2, n=8, workers=2)
    assert results == [i * 10 for i in range(8)] and batcher.batches == 2 and batcher.items == 8


def test_concurrency_one_never_overlaps_batches_even_with_spare_threads():
    inside, peak, lock = [0], [0], threading.Lock()

    def work(items):
        with lock:
            inside[0] += 1
            peak[0] = max(peak[0], inside[0])
        threading.Event().wait(0.02)
        with lock:
            inside[0] -= 1
        return list(items)

    results, _ = _run_batcher(work, concurrency=1, n=12, workers=4)
    assert results == list(range(12)) and peak[0] == 1


def test_a_failing_batch_fails_its_requests_and_frees_its_worker():
    def work(items):
        if 0 in items:
            raise RuntimeError("bad batch")
        return [ValueError("this one") if i == 5 else i for i in items]

    results, _ = _run_batcher(work, concurrency=2, n=8, workers=2, max_batch=4)
    assert isinstance(results[0], RuntimeError)
    assert isinstance(results[5], ValueError)
    later = [r for i, r in enumerate(results) if not isinstance(r, Exception)]
    assert later and all(isinstance(r, int) for r in later)  # the batcher went on after the failure


def test_synthesis_workers_fill_the_cores_on_cpu_and_stay_one_on_gpu(monkeypatch):
    monkeypatch.setattr("latentstudio.server.engine.cpu_cores", lambda: 2)
    assert synthesis_workers(0, torch.device("cpu"), threads=1) == 2
    assert synthesis_workers(0, torch.device("cuda"), threads=1) == 1
    assert synthesis_workers(3, torch.device("cpu"), threads=1) == 3
    monkeypatch.setattr("latentstudio.server.engine.cpu_cores", lambda: 16)
    assert synthesis_workers(0, torch.device("cpu"), threads=15) == 1


@pytest.mark.parametrize("workers", [1, 2])
def test_engine_batches_on_workers_equal_single_renders(workers):
    model = tiny_loaded()

    async def run(batching, workers):
        engine = Engine(model, torch.device("cpu"), max_batch=4, max_wait_ms=20, batching=batching,
                        workers=workers, threads=1)
        engine.start()
        z = torch.from_numpy(np.random.RandomState(1).randn(10, 32)).float()
        try:
            items = [GenItem(z=z[i], psi=0.7, fmt="raw") if i % 2 else GenItem(seed=i, psi=0.7, fmt="raw")
                     for i in range(10)]
            return np.stack(await asyncio.gather(*(engine.render(it) for it in items))), engine
        finally:
            await engine.stop()

    batched, engine = asyncio.run(run(True, workers))
    single, _ = asyncio.run(run(False, 1))
    assert engine.workers == workers and (engine.synth_executor is engine.model_executor) == (workers == 1)
    assert np.abs(batched.astype(int) - single.astype(int)).max() <= 1


def test_seed_latents_are_cached_per_generator_so_a_switch_never_mixes_models():
    a, b = tiny_loaded(), tiny_loaded(seed=5)
    engine = Engine(a, torch.device("cpu"), workers=1)
    try:
        ws_a = engine.seed_ws(3, 0.7)
        engine.swap_model(b)
        ws_b = engine.seed_ws(3, 0.7)
        assert not torch.allclose(ws_a, ws_b)
        assert torch.equal(engine.seed_ws(3, 0.7, a.G), ws_a)  # a batch still running on the old generator
    finally:
        engine.model_executor.shutdown()
