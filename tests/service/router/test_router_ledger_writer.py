"""The router's ledger writer loses nothing: retries an unreachable ledger, spills what it
cannot write to a journal, and replays the journal into a real SQLite ledger at start-up."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

from switchyard.router.ledger import (
    AttemptRecord,
    LedgerUnavailable,
    RequestRecord,
    open_ledger,
)
from switchyard.router.ledger.journal import record_from_json, record_to_json
from switchyard.router.ledger.writer import LedgerWriter

NOW = datetime.now(UTC).replace(microsecond=0)
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
    """Unreachable for the first `failures` writes."""

    def __init__(self, failures: int) -> None:
        self.failures = failures
        self.written: list[RequestRecord] = []

    async def record(self, rec: RequestRecord) -> None:
        if self.failures > 0:
            self.failures -= 1
            raise LedgerUnavailable("ledger at sqlite:x.db is unreachable")
        self.written.append(rec)


def test_spill_line_round_trips() -> None:
    original = record("r-json")
    assert record_from_json(json.loads(json.dumps(record_to_json(original)))) == original


async def test_transient_outage_is_retried_not_spilled(tmp_path: Path) -> None:
    ledger = FlakyLedger(failures=2)
    written: list[str] = []
    spill = tmp_path / "spill.jsonl"
    writer = LedgerWriter(
        ledger, lambda r: written.append(r.request_id), spill_path=spill, retry_delays_s=(0, 0, 0)
    )
    writer.start()
    writer.submit(record("r-1"))
    await writer.flush()
    await writer.close()
    assert [r.request_id for r in ledger.written] == ["r-1"] and written == ["r-1"]
    assert not spill.exists()


async def test_lasting_outage_spills_then_replays_into_a_real_ledger(tmp_path: Path) -> None:
    spill = tmp_path / "state" / "spill.jsonl"
    down = LedgerWriter(FlakyLedger(failures=100), spill_path=spill, retry_delays_s=(0,))
    down.start()
    for i in range(3):
        down.submit(record(f"r-{i}"))
    await down.flush()
    await down.close()
    lines = spill.read_text().splitlines()
    assert [json.loads(line)["request_id"] for line in lines] == ["r-0", "r-1", "r-2"]

    ledger = await open_ledger(f"sqlite:///{tmp_path / 'ledger.db'}")
    try:
        await ledger.record(record("r-1"))  # already there: replay must not fail on it
        back_up = LedgerWriter(ledger, spill_path=spill)
        assert await back_up.replay_spill() == 3
        assert not spill.exists()
        rows = await ledger.records(NOW - timedelta(hours=1), NOW + timedelta(hours=1))
        assert sorted(r.request_id for r in rows) == ["r-0", "r-1", "r-2"]
        assert await back_up.replay_spill() == 0
    finally:
        await ledger.close()


async def test_an_unwritable_journal_does_not_stop_the_writer(tmp_path: Path) -> None:
    blocker = tmp_path / "not-a-dir"
    blocker.write_text("")
    ledger = FlakyLedger(failures=1)
    writer = LedgerWriter(ledger, spill_path=blocker / "spill.jsonl", retry_delays_s=())
    writer.start()
    writer.submit(record("r-lost"))  # fails, cannot be spilled: logged as lost
    writer.submit(record("r-next"))  # the writer keeps going
    await writer.flush()
    await writer.close()
    assert [r.request_id for r in ledger.written] == ["r-next"]
