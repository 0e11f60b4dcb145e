"""Micro-batching: concurrent requests share one model run, off the event loop.

Callers ``await batcher.classify(prompt)``. A request that finds the batcher idle (no model run
in flight, nothing queued) goes straight to the worker thread: a lone request never waits for
the batch window nor for the collector task's hop. Otherwise it queues; one collector task takes
the first queued prompt, adds every prompt already queued and, only when other requests were
queued with it (i.e. under load) and ``max_wait_s`` > 0, those arriving within that time, up to
``max_batch_size``, and runs the model on ONE worker thread. Under load, requests arriving while
a batch runs form the next batch, so throughput grows with load. The batch's CPU time is shared
among its prompts by token count.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

from switchyard.classifier.model import Prediction

__all__ = ["BatchOutcome", "MicroBatcher"]


@dataclass(frozen=True, slots=True)
class BatchOutcome:
    prediction: Prediction
    cpu_seconds: float  # this prompt's share of its batch's CPU time
    batch_size: int


class MicroBatcher:
    def __init__(
        self,
        predict: Callable[[Sequence[str]], list[Prediction]],
        *,
        max_batch_size: int,
        max_wait_s: float,
        threads_per_run: int = 1,
    ) -> None:
        self._predict = predict
        self._max_batch = max_batch_size
        self._max_wait_s = max_wait_s
        self._threads = threads_per_run
        self._queue: asyncio.Queue[tuple[str, asyncio.Future[BatchOutcome]]] = asyncio.Queue()
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="classifier")
        self._task: asyncio.Task[None] | None = None
        self._busy = 0  # model runs submitted and not finished (direct or batched)

    async def start(self) -> None:
        self._task = asyncio.create_task(self._collect(), name="classifier-batcher")

    async def close(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        while not self._queue.empty():
            _, future = self._queue.get_nowait()
            if not future.done():
                future.cancel()
        self._executor.shutdown(wait=True)

    async def classify(self, prompt: str) -> BatchOutcome:
        if self._busy == 0 and self._queue.empty():
            # Idle: run at once on the worker thread, no queue, no window, no collector hop.
            self._busy += 1
            try:
                predictions, cpu = await asyncio.get_running_loop().run_in_executor(
                    self._executor, self._run, [prompt]
                )
            finally:
                self._busy -= 1
            return BatchOutcome(predictions[0], cpu, 1)
        return await self._enqueue(prompt)

    async def classify_many(self, prompts: Sequence[str]) -> list[BatchOutcome]:
        # All through the queue, so one request's prompts share model runs.
        return list(await asyncio.gather(*(self._enqueue(p) for p in prompts)))

    async def _enqueue(self, prompt: str) -> BatchOutcome:
        future: asyncio.Future[BatchOutcome] = asyncio.get_running_loop().create_future()
        await self._queue.put((prompt, future))
        return await future

    def _run(self, prompts: list[str]) -> tuple[list[Prediction], float]:
        # With one onnxruntime thread the model runs on this thread: its CPU time is the cost.
        # With more, the pool's CPU time is not visible per thread: charge wall time x threads.
        cpu0, wall0 = time.thread_time(), time.perf_counter()
        predictions = self._predict(prompts)
        if self._threads == 1:
            return predictions, time.thread_time() - cpu0
        return predictions, (time.perf_counter() - wall0) * self._threads

    async def _collect(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            batch = [await self._queue.get()]
            self._busy += 1
            try:
                await self._run_batch(loop, batch)
            finally:
                self._busy -= 1

    async def _run_batch(
        self,
        loop: asyncio.AbstractEventLoop,
        batch: list[tuple[str, asyncio.Future[BatchOutcome]]],
    ) -> None:
        # Wait to fill the batch only under load (others queued with it); never for a lone one.
        wait_s = self._max_wait_s if not self._queue.empty() else 0.0
        deadline = loop.time() + wait_s
        while len(batch) < self._max_batch:
            if not self._queue.empty():
                batch.append(self._queue.get_nowait())
                continue
            remaining = deadline - loop.time()
            if remaining <= 0:
                break
            try:
                batch.append(await asyncio.wait_for(self._queue.get(), remaining))
            except TimeoutError:
                break
        live = [(p, f) for p, f in batch if not f.cancelled()]
        if not live:
            return
        try:
            predictions, cpu = await loop.run_in_executor(
                self._executor, self._run, [p for p, _ in live]
            )
        except Exception as exc:  # noqa: BLE001 - handed to every waiting caller
            for _, future in live:
                if not future.done():
                    future.set_exception(exc)
            return
        tokens = sum(p.input_tokens for p in predictions) or 1
        for (_, future), prediction in zip(live, predictions, strict=True):
            if not future.done():
                future.set_result(
                    BatchOutcome(prediction, cpu * prediction.input_tokens / tokens, len(live))
                )
