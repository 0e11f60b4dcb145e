"""The router's ledger writer: durable in the journal before a request is answered, written
into a real SQLite ledger behind it in whole batches, left to the journal at once past the
retry budget, and replayed (at start-up and when the ledger is back) without losing or
doubling a record: a journal record is dropped only when the ledger holds its request id."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Collection, Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from switchyard.router.ledger import (
    AttemptRecord,
    CostLedger,
    LedgerUnavailable,
    RequestRecord,
    open_ledger,
)
from switchyard.router.ledger.journal import (
    QUARANTINE_NAME,
    RecordJournal,
    record_from_json,
    record_to_json,
)
from switchyard.router.ledger.writer import Durability, LedgerWriter

NOW = datetime(2026, 7, 1, 0, 0, 30, tzinfo=UTC)  # the 1st of a month, just after midnight
ATTEMPT = AttemptRecord("local", "local-inference", "smollm2", "OK", 80.0, 0.0004, 100, 20)


def record(request_id: str) -> RequestRecord:
    return RequestRecord(
        request_id=request_id, time=NOW, tenant="acme", task_type="MATH", complexity=0.3,
        target="local", target_kind="LOCAL", model="smollm2", reason="BELOW_THRESHOLD",
        escalation_score=0.1, status="OK", classifier_cost_usd=0.00001, total_cost_usd=0.00041,
        latency_ms=95.0, input_tokens=100, output_tokens=20, baseline_cost_usd=0.001,
        attempts=(ATTEMPT,),
    )  # fmt: skip


class FlakyLedger:
    """A real SQLite ledger that is unreachable for its first `failures` batches, and refuses
    the ids in `refuse` the way a database refuses a value out of its range."""

    def __init__(self, real: CostLedger, failures: int = 0, refuse: Collection[str] = ()) -> None:
        self.real = real
        self.failures = failures
        self.refuse = set(refuse)
        self.batches: list[int] = []

    async def record_many(self, records: Sequence[RequestRecord]) -> list[ValueError | None]:
        self.batches.append(len(records))
        if self.failures > 0:
            self.failures -= 1
            raise LedgerUnavailable("ledger at sqlite:x.db is unreachable")
        allowed = [r for r in records if r.request_id not in self.refuse]
        outcomes = iter(await self.real.record_many(allowed))
        return [
            ValueError(f"the ledger refused request {r.request_id!r}: value out of range")
            if r.request_id in self.refuse
            else next(outcomes)
            for r in records
        ]

    async def existing_ids(self, ids: Collection[str]) -> set[str]:
        if self.failures > 0:
            raise LedgerUnavailable("ledger at sqlite:x.db is unreachable")
        return await self.real.existing_ids(ids)


@pytest.fixture
async def sqlite(tmp_path: Path):  # noqa: ANN201
    ledger = await open_ledger(f"sqlite:///{tmp_path / 'ledger.db'}")
    yield ledger
    await ledger.close()


async def stored_ids(ledger: CostLedger) -> list[str]:
    rows = await ledger.records(NOW - timedelta(hours=1), NOW + timedelta(hours=1))
    return sorted(r.request_id for r in rows)


def journal_ids(directory: Path) -> list[str]:
    """The request ids in the journal's segments (read as replay reads them: without the
    preallocated fill)."""
    return sorted(
        json.loads(line)["request_id"]
        for path in directory.glob("journal-*.jsonl")
        for line in RecordJournal.read(path)
    )


def test_a_journal_line_round_trips_and_old_lines_get_their_operation() -> None:
    original = record("r-json")
    assert record_from_json(json.loads(json.dumps(record_to_json(original)))) == original
    old = record_to_json(record("r-old-route"))
    del old["operation"]
    old["attempts"] = []
    old["total_cost_usd"] = old["classifier_cost_usd"]
    assert record_from_json(old).operation == "route"  # OK and no attempts: a Route call


async def test_answered_only_once_journaled_then_written_in_batches(
    tmp_path: Path, sqlite: CostLedger
) -> None:
    ledger = FlakyLedger(sqlite)
    written: list[str] = []
    writer = LedgerWriter(
        ledger,  # type: ignore[arg-type]
        lambda r: written.append(r.request_id),
        journal_dir=tmp_path / "journal",
        segment_records=16,
    )
    writer.start()
    durable = [writer.submit(record(f"r-{i}")) for i in range(40)]
    await asyncio.gather(*durable)
    # every answered record is on disk before the ledger is necessarily done
    assert set(journal_ids(tmp_path / "journal")) | set(written) >= {f"r-{i}" for i in range(40)}
    await writer.flush()
    assert await stored_ids(sqlite) == sorted(f"r-{i}" for i in range(40))
    assert len(ledger.batches) < 40, "records go to the ledger in batches, not one by one"
    # segments whose records are all in the ledger are removed; close removes the last one
    await writer.close()
    assert list((tmp_path / "journal").glob("journal-*.jsonl")) == []


async def test_a_transient_outage_retries_the_whole_batch(
    tmp_path: Path, sqlite: CostLedger
) -> None:
    ledger = FlakyLedger(sqlite, failures=2)
    writer = LedgerWriter(
        ledger,  # type: ignore[arg-type]
        journal_dir=tmp_path / "journal",
        retry_delays_s=(0.01, 0.01, 0.01),
    )
    writer.start()
    await asyncio.gather(*(writer.submit(record(f"r-{i}")) for i in range(30)))
    await writer.flush()
    await writer.close()
    assert ledger.batches == [30, 30, 30]  # the same batch, retried whole
    assert await stored_ids(sqlite) == sorted(f"r-{i}" for i in range(30))


async def test_a_lasting_outage_leaves_records_to_the_journal_at_once_then_catches_up(
    tmp_path: Path, sqlite: CostLedger
) -> None:
    ledger = FlakyLedger(sqlite, failures=10**6)
    writer = LedgerWriter(
        ledger,  # type: ignore[arg-type]
        journal_dir=tmp_path / "journal",
        retry_delays_s=(0.01, 0.01),
        replay_interval_s=0.05,
    )
    writer.start()
    await asyncio.gather(*(writer.submit(record(f"r-{i}")) for i in range(25)))
    await writer.flush()  # past the retry budget: left to the journal, all of them
    assert ledger.batches == [25, 25, 25]
    assert journal_ids(tmp_path / "journal") == sorted(f"r-{i}" for i in range(25))
    assert await stored_ids(sqlite) == []
    ledger.failures = 0  # the ledger is back: the journal is replayed without a restart
    for _ in range(100):
        if len(await stored_ids(sqlite)) == 25:
            break
        await asyncio.sleep(0.05)
    assert await stored_ids(sqlite) == sorted(f"r-{i}" for i in range(25))
    await writer.close()
    assert list((tmp_path / "journal").glob("*.jsonl")) == []


async def test_replay_drops_only_what_the_ledger_holds_and_quarantines_refusals(
    tmp_path: Path, sqlite: CostLedger
) -> None:
    journal = tmp_path / "journal"
    journal.mkdir()
    lines = [json.dumps(record_to_json(record(rid))) for rid in ("r-dup", "r-new", "r-bad")]
    (journal / "journal-00000007.jsonl").write_text("\n".join([*lines, "{not json"]) + "\n")
    await sqlite.record(record("r-dup"))  # already in the ledger before the crash
    writer = LedgerWriter(
        FlakyLedger(sqlite, refuse={"r-bad"}),  # type: ignore[arg-type]
        journal_dir=journal,
    )
    result = await writer.replay()
    await writer.close()
    assert (result.written, result.present, result.quarantined, result.kept) == (1, 1, 2, 0)
    assert await stored_ids(sqlite) == ["r-dup", "r-new"]
    held = [json.loads(line) for line in (journal / QUARANTINE_NAME).read_text().splitlines()]
    reasons = {q.get("record", {}).get("request_id", "unreadable"): q["reason"] for q in held}
    assert "out of range" in reasons["r-bad"] and "unreadable" in reasons["unreadable"]
    assert not (journal / "journal-00000007.jsonl").exists()
    # a second start finds nothing to do, and the quarantine is kept for an operator
    again = LedgerWriter(sqlite, journal_dir=journal)
    assert await again.replay() == type(result)()
    await again.close()
    assert (journal / QUARANTINE_NAME).exists()


async def test_replay_keeps_the_journal_while_the_ledger_is_down(
    tmp_path: Path, sqlite: CostLedger
) -> None:
    journal = tmp_path / "journal"
    journal.mkdir()
    (journal / "legacy-spill.jsonl").write_text(json.dumps(record_to_json(record("r-1"))) + "\n")
    down = LedgerWriter(
        FlakyLedger(sqlite, failures=10**6),  # type: ignore[arg-type]
        journal_dir=journal,
    )
    assert (await down.replay()).kept == 1
    await down.close()
    assert (journal / "legacy-spill.jsonl").exists()
    back = LedgerWriter(sqlite, journal_dir=journal)
    assert (await back.replay()).written == 1
    await back.close()
    assert await stored_ids(sqlite) == ["r-1"]


async def test_close_returns_in_time_while_the_ledger_is_down(
    tmp_path: Path, sqlite: CostLedger
) -> None:
    writer = LedgerWriter(
        FlakyLedger(sqlite, failures=10**6),  # type: ignore[arg-type]
        journal_dir=tmp_path / "journal",
        retry_delays_s=(30.0,),  # a long back-off: close must not wait for it
    )
    writer.start()
    await asyncio.gather(*(writer.submit(record(f"r-{i}")) for i in range(10)))
    started = time.monotonic()
    await writer.close(timeout_s=0.5)
    assert time.monotonic() - started < 5
    assert journal_ids(tmp_path / "journal") == sorted(f"r-{i}" for i in range(10))
    restarted = LedgerWriter(sqlite, journal_dir=tmp_path / "journal")
    assert (await restarted.replay()).written == 10
    await restarted.close()


async def test_page_cache_durability_answers_after_the_write(tmp_path: Path, sqlite) -> None:
    writer = LedgerWriter(sqlite, journal_dir=tmp_path / "j", durability=Durability.PAGE_CACHE)
    writer.start()
    await writer.submit(record("r-1"))
    assert journal_ids(tmp_path / "j") == ["r-1"]
    await writer.flush()
    await writer.close()
    assert await stored_ids(sqlite) == ["r-1"]


async def test_without_a_writable_journal_the_ledger_commit_is_the_durability_point(
    tmp_path: Path, sqlite: CostLedger
) -> None:
    blocker = tmp_path / "not-a-dir"
    blocker.write_text("")
    ledger = FlakyLedger(sqlite)
    writer = LedgerWriter(
        ledger,  # type: ignore[arg-type]
        journal_dir=blocker / "journal",
        retry_delays_s=(0.01,),
    )
    writer.start()
    await writer.submit(record("r-1"))  # resolved by the commit, not the journal
    assert await stored_ids(sqlite) == ["r-1"]
    ledger.failures = 10**6  # and with the ledger down too, the request learns it
    with pytest.raises(LedgerUnavailable):
        await writer.submit(record("r-2"))
    await writer.close()
