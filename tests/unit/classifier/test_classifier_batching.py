"""The micro-batcher: a lone request runs at once; concurrent requests share model runs."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Sequence

from switchyard.classifier.batching import MicroBatcher
from switchyard.classifier.model import Prediction


class RecordingModel:
    """Stands in for the model: records each run's prompts; can hold a run until released."""

    def __init__(self) -> None:
        self.runs: list[list[str]] = []
        self.release = threading.Event()
        self.release.set()

    def predict(self, prompts: Sequence[str]) -> list[Prediction]:
        self.release.wait(10)
        self.runs.append(list(prompts))
        return [Prediction((1.0,), 0.5, 0.5, len(p), False) for p in prompts]


async def test_lone_request_runs_at_once_without_the_collector() -> None:
    model = RecordingModel()
    # A batch window of an hour and no collector task started: only the direct path can answer.
    batcher = MicroBatcher(model.predict, max_batch_size=32, max_wait_s=3600.0)
    try:
        outcome = await asyncio.wait_for(batcher.classify("hello"), 10)
    finally:
        await batcher.close()
    assert outcome.batch_size == 1 and outcome.prediction.input_tokens == 5
    assert model.runs == [["hello"]]


async def test_requests_arriving_during_a_run_share_the_next_run() -> None:
    model = RecordingModel()
    batcher = MicroBatcher(model.predict, max_batch_size=32, max_wait_s=0.0)
    await batcher.start()
    try:
        model.release.clear()
        first = asyncio.create_task(batcher.classify("first"))
        await asyncio.sleep(0.05)  # the first run is now held on the worker thread
        rest = [asyncio.create_task(batcher.classify(f"p{i}")) for i in range(5)]
        await asyncio.sleep(0.05)
        model.release.set()
        outcomes = await asyncio.wait_for(asyncio.gather(first, *rest), 10)
    finally:
        await batcher.close()
    assert model.runs == [["first"], [f"p{i}" for i in range(5)]]
    assert [o.batch_size for o in outcomes] == [1, 5, 5, 5, 5, 5]


async def test_batch_request_shares_one_run() -> None:
    model = RecordingModel()
    batcher = MicroBatcher(model.predict, max_batch_size=32, max_wait_s=0.0)
    await batcher.start()
    try:
        outcomes = await asyncio.wait_for(batcher.classify_many(["a", "bb", "ccc"]), 10)
    finally:
        await batcher.close()
    assert model.runs == [["a", "bb", "ccc"]]
    assert [o.prediction.input_tokens for o in outcomes] == [1, 2, 3]
