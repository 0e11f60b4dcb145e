"""The classifier reloads its model directory without a restart: requests keep flowing, every
answer names the model that made it, and a directory that does not load keeps the old model."""

from __future__ import annotations

import asyncio
import contextlib
import json
import shutil
from collections.abc import AsyncIterator, Callable
from pathlib import Path

import grpc
import pytest

from switchyard.api.classifier.v1 import classifier_pb2 as pb
from switchyard.api.classifier.v1 import classifier_pb2_grpc as pb_grpc
from switchyard.classifier.model import MANIFEST_NAME, MODEL_FILE, SHIPPED_MODEL_DIR
from switchyard.classifier.service import build_service
from switchyard.classifier.settings import ClassifierSettings
from switchyard.runtime.server import start_server


def renamed_copy(directory: Path, name: str) -> Path:
    """The shipped model under another name: another model version, same graph (cheap)."""
    shutil.copytree(SHIPPED_MODEL_DIR, directory)
    manifest = json.loads((directory / MANIFEST_NAME).read_text())
    manifest["name"] = name
    (directory / MANIFEST_NAME).write_text(json.dumps(manifest))
    return directory


class Traffic:
    """Classify calls back to back until stopped; every answer's model version, in order."""

    def __init__(self, stub: pb_grpc.ClassifierServiceStub) -> None:
        self._stub = stub
        self.versions: list[str] = []
        self.errors: list[grpc.aio.AioRpcError] = []
        self._stop = asyncio.Event()
        self._answered = asyncio.Event()

    async def _loop(self, worker: int) -> None:
        n = 0
        while not self._stop.is_set():
            n += 1
            try:
                reply = await self._stub.Classify(
                    pb.ClassifyRequest(prompt=f"Worker {worker}, question {n}: what is 2+{n}?"),
                    timeout=10,
                )
                self.versions.append(reply.classification.model_version)
                self._answered.set()
            except grpc.aio.AioRpcError as error:
                self.errors.append(error)

    async def until(self, predicate: Callable[[], bool], timeout_s: float = 30) -> None:
        async with asyncio.timeout(timeout_s):
            while not predicate():
                self._answered.clear()
                await self._answered.wait()

    @contextlib.asynccontextmanager
    async def run(self) -> AsyncIterator[Traffic]:
        tasks = [asyncio.create_task(self._loop(w)) for w in range(3)]
        try:
            yield self
        finally:
            self._stop.set()
            await asyncio.gather(*tasks)


@pytest.fixture
async def serving(tmp_path: Path) -> AsyncIterator[tuple[Path, pb_grpc.ClassifierServiceStub]]:
    directory = renamed_copy(tmp_path / "serving", "first")
    settings = ClassifierSettings(
        host="127.0.0.1", port=0, model_dir=directory, model_reload_poll_s=0.05
    )
    async with start_server(build_service(settings), port=0) as server:
        async with grpc.aio.insecure_channel(server.address) as channel:
            yield directory, pb_grpc.ClassifierServiceStub(channel)


async def test_a_new_model_is_swapped_in_while_requests_flow(
    serving: tuple[Path, pb_grpc.ClassifierServiceStub], tmp_path: Path
) -> None:
    from switchyard.training.promotion import install

    directory, stub = serving
    candidate = renamed_copy(tmp_path / "candidate", "second")
    async with Traffic(stub).run() as traffic:
        await traffic.until(lambda: len(traffic.versions) >= 20)
        install(candidate, directory, {"test": True})
        await traffic.until(lambda: traffic.versions[-1].startswith("second@"))
        count = len(traffic.versions)
        await traffic.until(lambda: len(traffic.versions) >= count + 20)
    assert traffic.errors == []
    names = [v.split("@")[0] for v in traffic.versions]
    switch = names.index("second")
    assert set(names[:switch]) == {"first"} and set(names[switch:]) == {"second"}, names
    assert json.loads((directory / MANIFEST_NAME).read_text())["promotion"] == {"test": True}


async def test_a_broken_model_directory_keeps_the_old_model_serving(
    serving: tuple[Path, pb_grpc.ClassifierServiceStub],
) -> None:
    directory, stub = serving
    async with Traffic(stub).run() as traffic:
        await traffic.until(lambda: len(traffic.versions) >= 10)
        with (directory / MODEL_FILE).open("r+b") as handle:  # corrupt the graph ...
            handle.seek(1000)
            handle.write(b"\x00\x01\x02\x03")
        manifest = json.loads((directory / MANIFEST_NAME).read_text())
        manifest["name"] = "broken"  # ... and announce a new model
        (directory / MANIFEST_NAME).write_text(json.dumps(manifest))
        await asyncio.sleep(0.5)  # ten polls
        count = len(traffic.versions)
        await traffic.until(lambda: len(traffic.versions) >= count + 20)
    assert traffic.errors == []
    assert {v.split("@")[0] for v in traffic.versions} == {"first"}


async def test_an_unchanged_directory_is_not_reloaded(tmp_path: Path) -> None:
    from switchyard.classifier.model import ClassifierModel
    from switchyard.classifier.reloading import ModelSource

    directory = renamed_copy(tmp_path / "m", "first")
    loads: list[Path] = []

    def load(d: Path) -> ClassifierModel:
        loads.append(d)
        return ClassifierModel(d)

    source = ModelSource(ClassifierModel(directory), load, poll_s=0.02)
    source.start(handle_sighup=False)
    await asyncio.sleep(0.2)
    assert loads == []
    source.request_reload()  # what SIGHUP does
    await asyncio.sleep(0.5)
    await source.stop()
    assert loads == [directory] and source.reloads == 1
