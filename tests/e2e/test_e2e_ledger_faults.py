"""The router as a real process under load, killed or stopped while its ledger is down: no
request whose answer reached its caller is missing from the ledger after a restart.

Each test runs `switchyard-router` against an instant classifier/backend process with 20
concurrent callers, collects the request id of every answer, then faults the router:
- kill -9 in the middle of the load;
- the ledger made unwritable during the load (SQLite: another process holds its write lock;
  PostgreSQL: the server stopped), then SIGTERM (the router must exit on its own within the
  grace period), or SIGTERM and SIGKILL after a short grace period (killed while draining).
Then the ledger comes back, the router starts again (it replays its journal before serving)
and every answered request id must be in the ledger, once.
"""

from __future__ import annotations

import asyncio
import json
import sqlite3
import time
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import closing
from pathlib import Path

import grpc
import pytest
from support.postgres import PostgresServer
from support.router_processes import Fakes, RouterProcess, router_config

from switchyard.api.inference.v1 import inference_pb2
from switchyard.api.router.v1 import router_pb2, router_pb2_grpc
from switchyard.router.ledger import open_ledger
from switchyard.router.ledger.journal import RecordJournal

pytestmark = pytest.mark.slow

CALLERS = 20
MESSAGE = [inference_pb2.ChatMessage(role=inference_pb2.ROLE_USER, content="hello")]


@pytest.fixture(scope="module")
def fakes(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Fakes]:
    started = Fakes.start(tmp_path_factory.mktemp("fakes"))
    yield started
    started.stop()


@pytest.fixture(scope="module")
def pg() -> Iterator[PostgresServer]:
    """A server of its own: these tests stop and restart it."""
    server = PostgresServer.start()
    yield server
    server.stop()


class Load:
    """`CALLERS` closed-loop callers; `answered` holds the request id of every answer."""

    def __init__(self, address: str) -> None:
        self.address = address
        self.answered: set[str] = set()
        self.errors: Counter[str] = Counter()
        self._stop = asyncio.Event()
        self._task: asyncio.Future[list[None]] | None = None

    async def _caller(self, channel: grpc.aio.Channel) -> None:
        stub = router_pb2_grpc.RouterServiceStub(channel)
        while not self._stop.is_set():
            try:
                reply = await stub.Complete(router_pb2.CompleteRequest(messages=MESSAGE), timeout=5)
            except grpc.aio.AioRpcError as error:
                self.errors[error.code().name] += 1
                await asyncio.sleep(0.02)
                continue
            self.answered.add(reply.request_id)

    async def __aenter__(self) -> Load:
        self._channels = [grpc.aio.insecure_channel(self.address) for _ in range(4)]
        self._task = asyncio.gather(*(self._caller(self._channels[i % 4]) for i in range(CALLERS)))
        return self

    async def until(self, count: int, timeout_s: float = 60) -> None:
        deadline = time.monotonic() + timeout_s
        while len(self.answered) < count:
            assert time.monotonic() < deadline, f"only {len(self.answered)} answers: {self.errors}"
            await asyncio.sleep(0.01)

    async def __aexit__(self, *exc: object) -> None:
        self._stop.set()
        assert self._task is not None
        await self._task
        for channel in self._channels:
            await channel.close()


def journal_ids(directory: Path) -> set[str]:
    """The request ids in the journal's segments (read as replay reads them: without the
    preallocated fill)."""
    return {
        json.loads(line)["request_id"]
        for path in directory.glob("journal-*.jsonl")
        for line in RecordJournal.read(path)
    }


async def in_ledger(url: str, ids: set[str]) -> set[str]:
    ledger = await open_ledger(url)
    try:
        return await ledger.existing_ids(ids)
    finally:
        await ledger.close()


def router(tmp_path: Path, fakes: Fakes, url: str, **env: str) -> RouterProcess:
    settings = {"SWITCHYARD_ROUTER_LEDGER_JOURNAL_DIR": str(tmp_path / "journal")}
    settings.update({f"SWITCHYARD_ROUTER_{name.upper()}": value for name, value in env.items()})
    return RouterProcess(tmp_path, router_config(fakes.address, url), settings)


async def assert_all_recorded_after_restart(process: RouterProcess, url: str, answered: set[str]):  # noqa: ANN201
    await asyncio.to_thread(process.start)  # replays the journal before it serves
    await asyncio.to_thread(process.stop)
    missing = answered - await in_ledger(url, answered)
    assert not missing, f"{len(missing)} of {len(answered)} answered requests have no row"


async def test_kill_9_mid_load_loses_no_answered_request(tmp_path: Path, fakes: Fakes) -> None:
    url = f"sqlite:///{tmp_path / 'ledger.db'}"
    process = router(tmp_path, fakes, url)
    await asyncio.to_thread(process.start)
    try:
        async with Load(process.address) as load:
            await load.until(300)
            await asyncio.to_thread(process.kill)
            answered = set(load.answered)  # nothing is answered after the kill
    finally:
        process.stop()
    # at the moment of the kill, every answered request was in the ledger or in the journal
    held = await in_ledger(url, answered) | journal_ids(tmp_path / "journal")
    assert answered <= held, f"{len(answered - held)} answered requests were nowhere"
    await assert_all_recorded_after_restart(process, url, answered)


@pytest.mark.parametrize("ending", ["sigterm", "sigkill-0.3s-after-sigterm"])
@pytest.mark.parametrize(
    "backend", ["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)]
)
async def test_ledger_outage_then_shutdown_loses_nothing(
    tmp_path: Path, fakes: Fakes, backend: str, ending: str, request: pytest.FixtureRequest
) -> None:
    outage: Callable[[], None]
    recovery: Callable[[], None]
    if backend == "sqlite":
        db = tmp_path / "ledger.db"
        url = f"sqlite:///{db}?busy_timeout_s=0.3"
        holder = sqlite3.connect(db, isolation_level=None, check_same_thread=False)

        def outage() -> None:  # another process holds the write lock: writes time out
            holder.execute("BEGIN IMMEDIATE")

        def recovery() -> None:
            holder.execute("ROLLBACK")
    else:
        server: PostgresServer = request.getfixturevalue("pg")
        url = server.create_database()
        outage, recovery = server.pause, server.resume
    # SIGTERM: in-flight calls get 2 s, the ledger 1 s more, and the process must be gone
    # before a 5 s grace period ends. SIGKILL: 0.3 s after SIGTERM, callers still calling (the
    # ledger would get 30 s: a process still at work is killed mid-shutdown).
    drain = "1" if ending == "sigterm" else "30"
    process = router(tmp_path, fakes, url, grace_period_s="2", ledger_drain_s=drain)
    await asyncio.to_thread(process.start)
    try:
        async with Load(process.address) as load:
            await load.until(100)
            await asyncio.to_thread(outage)
            await load.until(len(load.answered) + 200)  # answered while the ledger is down
            started = time.monotonic()
            process.terminate()  # while the callers keep calling
            if ending == "sigterm":
                code = await asyncio.to_thread(process.process.wait, 30)  # type: ignore[union-attr]
                took = time.monotonic() - started
                assert code == 0 and took < 5, (code, took, process.log_text()[-3000:])
            else:
                await asyncio.sleep(0.3)
                await asyncio.to_thread(process.kill)
        answered = set(load.answered)
    finally:
        process.stop()
        await asyncio.to_thread(recovery)
        if backend == "sqlite":
            with closing(holder):
                pass
    assert journal_ids(tmp_path / "journal"), "the outage left records to the journal"
    await assert_all_recorded_after_restart(process, url, answered)
