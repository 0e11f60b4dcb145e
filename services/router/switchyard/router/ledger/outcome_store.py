"""Outcomes in the ledger database, written once for both engines: the SQL, the rows, and
`OutcomeQueries`, which each engine mixes in by giving it two primitives (`_fetch`, `_execute`)
on its own connections.

- `record_evaluation`: one row per shadow evaluation (a retried write changes nothing);
- `record_feedback`: one row per request, the last verdict wins (an upsert);
- `find_request`: the request's tenant, tier and status (who may rate it, what is rated);
- `evaluation_spend_since`: the evaluation budget's spend;
- `outcomes`: requests with a verdict or feedback, with both, oldest first, paged by key;
- `evaluation_summaries`: the cost report's evaluation cost and quality inputs;
- `decision_scores`: the escalation scores of a window's decisions (calibration).

Every name in the SQL is fixed here, never caller input; values are parameters.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any, Protocol, runtime_checkable

from switchyard.router.ledger.outcome_records import (
    EvaluationRecord,
    EvaluationSummary,
    FeedbackRecord,
    FeedbackVerdict,
    OutcomeRow,
    RequestFacts,
    Verdict,
)
from switchyard.router.ledger.records import from_nanodollars, require_utc, to_nanodollars
from switchyard.router.ledger.schema import EVALUATION_COLUMNS, FEEDBACK_COLUMNS, TIME, Dialect

__all__ = ["OutcomeQueries", "OutcomeStore", "PageKey"]

#: Where the next page of `outcomes` starts: after this (request time, request id).
PageKey = tuple[datetime, str]

_REQUEST_FACTS = (
    "request_id", TIME, "tenant", "task_type", "complexity", "escalation_score",
    "classifier_model_version", "prompt_chars", "input_tokens", "target_kind", "target", "model",
    "status", "operation",
)  # fmt: skip
_JUDGED = ", ".join(f"'{verdict.value}'" for verdict in Verdict if verdict.judged)


@runtime_checkable
class OutcomeStore(Protocol):
    """The ledger's outcome tables (both engines implement it, through `OutcomeQueries`)."""

    async def record_evaluation(self, record: EvaluationRecord) -> None: ...

    async def record_feedback(self, record: FeedbackRecord) -> None: ...

    async def find_request(self, request_id: str) -> RequestFacts | None: ...

    async def evaluation_spend_since(self, since: datetime) -> float: ...

    async def outcomes(
        self,
        start: datetime,
        end: datetime,
        *,
        tenant: str | None = None,
        task_types: Sequence[str] = (),
        after: PageKey | None = None,
        limit: int = 1000,
    ) -> list[OutcomeRow]: ...

    async def evaluation_summaries(
        self, start: datetime, end: datetime, tenant: str | None = None
    ) -> list[EvaluationSummary]: ...

    async def decision_scores(
        self,
        start: datetime,
        end: datetime,
        tenant: str | None = None,
        task_type: str | None = None,
    ) -> list[float]: ...


def _columns(dialect: Dialect, names: Sequence[str], alias: str = "") -> str:
    prefix = f"{alias}." if alias else ""
    return ", ".join(prefix + dialect.column(name) for name in names)


def _insert(dialect: Dialect, table: str, names: Sequence[str], conflict: str) -> str:
    return (
        f"INSERT INTO {table} ({_columns(dialect, names)}) VALUES "
        f"({dialect.markers(len(names))}) ON CONFLICT (request_id) {conflict}"
    )


def _evaluation_row(dialect: Dialect, r: EvaluationRecord) -> tuple[Any, ...]:
    shadow, judge = to_nanodollars(r.shadow_cost_usd), to_nanodollars(r.judge_cost_usd)
    return (
        r.request_id, dialect.time_to_db(r.time), r.tenant, r.sample_share, r.served_kind,
        r.served_target, r.served_model, r.shadow_target, r.shadow_model, r.shadow_status,
        r.shadow_latency_ms, shadow, r.shadow_input_tokens, r.shadow_output_tokens,
        r.judge_target, r.judge_model, r.judge_status, r.first_order.value, r.second_order.value,
        r.verdict.value, judge, shadow + judge, r.prompt, r.judge_reply,
    )  # fmt: skip


def _evaluation_from_row(dialect: Dialect, row: Sequence[Any]) -> EvaluationRecord:
    return EvaluationRecord(
        request_id=row[0], time=dialect.time_from_db(row[1]), tenant=row[2],
        sample_share=row[3], served_kind=row[4], served_target=row[5], served_model=row[6],
        shadow_target=row[7], shadow_model=row[8], shadow_status=row[9],
        shadow_latency_ms=row[10], shadow_cost_usd=from_nanodollars(row[11]),
        shadow_input_tokens=row[12], shadow_output_tokens=row[13], judge_target=row[14],
        judge_model=row[15], judge_status=row[16], first_order=row[17], second_order=row[18],
        verdict=row[19], judge_cost_usd=from_nanodollars(row[20]), prompt=row[22],
        judge_reply=row[23],
    )  # fmt: skip


def _feedback_row(dialect: Dialect, r: FeedbackRecord) -> tuple[Any, ...]:
    return (
        r.request_id, dialect.time_to_db(r.time), r.tenant, r.served_kind, r.served_target,
        r.served_model, r.verdict.value, r.reason,
    )  # fmt: skip


def _feedback_from_row(dialect: Dialect, row: Sequence[Any]) -> FeedbackRecord:
    return FeedbackRecord(
        request_id=row[0], time=dialect.time_from_db(row[1]), tenant=row[2],
        served_kind=row[3], served_target=row[4], served_model=row[5], verdict=row[6],
        reason=row[7],
    )  # fmt: skip


def _facts_from_row(dialect: Dialect, row: Sequence[Any]) -> RequestFacts:
    return RequestFacts(
        request_id=row[0], time=dialect.time_from_db(row[1]), tenant=row[2], task_type=row[3],
        complexity=row[4], escalation_score=row[5], classifier_model_version=row[6],
        prompt_chars=int(row[7]), input_tokens=int(row[8]), target_kind=row[9], target=row[10],
        model=row[11], status=row[12], operation=row[13],
    )  # fmt: skip


def _window(
    dialect: Dialect, alias: str, start: datetime, end: datetime, tenant: str | None
) -> tuple[str, list[Any]]:
    time = f"{alias}.{dialect.time_column}"
    where = f"{time} >= {dialect.marker} AND {time} < {dialect.marker}"
    params: list[Any] = [
        dialect.time_to_db(require_utc(start, "start")),
        dialect.time_to_db(require_utc(end, "end")),
    ]
    if tenant is not None:
        where += f" AND {alias}.tenant = {dialect.marker}"
        params.append(tenant)
    return where, params


class OutcomeQueries:
    """The outcome tables' operations over an engine's two primitives (see the module doc)."""

    _outcome_dialect: Dialect

    async def _fetch(self, sql: str, params: Sequence[Any]) -> list[tuple[Any, ...]]:
        """Run a read-only statement; its rows. LedgerUnavailable when the database is down."""
        raise NotImplementedError

    async def _execute(self, sql: str, params: Sequence[Any]) -> None:
        """Run one writing statement in its own transaction, committed when this returns.
        ValueError when the database refuses the row; LedgerUnavailable when it is down."""
        raise NotImplementedError

    async def record_evaluation(self, record: EvaluationRecord) -> None:
        """Store one evaluation; a second one for the same request id changes nothing."""
        if not isinstance(record, EvaluationRecord):
            raise TypeError(f"record must be an EvaluationRecord, got {type(record).__name__}")
        d = self._outcome_dialect
        names = [c.name for c in EVALUATION_COLUMNS]
        await self._execute(
            _insert(d, "evaluations", names, "DO NOTHING"), _evaluation_row(d, record)
        )

    async def record_feedback(self, record: FeedbackRecord) -> None:
        """Store a request's feedback, replacing an earlier verdict (the last one wins)."""
        if not isinstance(record, FeedbackRecord):
            raise TypeError(f"record must be a FeedbackRecord, got {type(record).__name__}")
        d = self._outcome_dialect
        names = [c.name for c in FEEDBACK_COLUMNS]
        time = d.time_column
        update = (
            f"DO UPDATE SET {time} = excluded.{time}, verdict = excluded.verdict, "
            "reason = excluded.reason"
        )
        await self._execute(_insert(d, "feedback", names, update), _feedback_row(d, record))

    async def find_request(self, request_id: str) -> RequestFacts | None:
        d = self._outcome_dialect
        rows = await self._fetch(
            f"SELECT {_columns(d, _REQUEST_FACTS)} FROM requests WHERE request_id = {d.marker}",
            (request_id,),
        )
        return _facts_from_row(d, rows[0]) if rows else None

    async def evaluation_spend_since(self, since: datetime) -> float:
        d = self._outcome_dialect
        rows = await self._fetch(
            f"SELECT COALESCE(SUM(cost_nusd), 0) FROM evaluations WHERE {d.time_column} >= "
            f"{d.marker}",
            (d.time_to_db(require_utc(since, "since")),),
        )
        return from_nanodollars(int(rows[0][0]))

    async def outcomes(
        self,
        start: datetime,
        end: datetime,
        *,
        tenant: str | None = None,
        task_types: Sequence[str] = (),
        after: PageKey | None = None,
        limit: int = 1000,
    ) -> list[OutcomeRow]:
        """Requests made in [start, end) that have a judge verdict or feedback, oldest first
        (ties by request id), at most `limit`, after the page key `after`."""
        if limit < 1:
            raise ValueError("limit must be at least 1")
        d = self._outcome_dialect
        where, params = _window(d, "r", start, end, tenant)
        if task_types:
            where += f" AND r.task_type IN ({d.markers(len(task_types))})"
            params += list(task_types)
        if after is not None:
            time = f"r.{d.time_column}"
            where += (
                f" AND ({time} > {d.marker} OR ({time} = {d.marker} AND r.request_id > {d.marker}))"
            )
            at = d.time_to_db(require_utc(after[0], "after"))
            params += [at, at, after[1]]
        evaluation = [c.name for c in EVALUATION_COLUMNS]
        feedback = [c.name for c in FEEDBACK_COLUMNS]
        sql = (
            f"SELECT {_columns(d, _REQUEST_FACTS, 'r')}, {_columns(d, evaluation, 'e')}, "
            f"{_columns(d, feedback, 'f')} FROM requests r "
            "LEFT JOIN evaluations e ON e.request_id = r.request_id "
            "LEFT JOIN feedback f ON f.request_id = r.request_id "
            f"WHERE {where} AND r.request_id IN (SELECT request_id FROM evaluations WHERE "
            f"verdict IN ({_JUDGED}) UNION SELECT request_id FROM feedback) "
            f"ORDER BY r.{d.time_column}, r.request_id LIMIT {d.marker}"
        )
        rows = await self._fetch(sql, [*params, limit])
        split, tail = len(_REQUEST_FACTS), len(_REQUEST_FACTS) + len(evaluation)
        return [
            OutcomeRow(
                request=_facts_from_row(d, row[:split]),
                evaluation=_evaluation_from_row(d, row[split:tail]) if row[split] else None,
                feedback=_feedback_from_row(d, row[tail:]) if row[tail] else None,
            )
            for row in rows
        ]

    async def evaluation_summaries(
        self, start: datetime, end: datetime, tenant: str | None = None
    ) -> list[EvaluationSummary]:
        """Every evaluation finished in [start, end), with its request's report keys."""
        d = self._outcome_dialect
        where, params = _window(d, "e", start, end, tenant)
        rows = await self._fetch(
            "SELECT COALESCE(r.model, ''), COALESCE(r.task_type, ''), e.tenant, "
            "COALESCE(r.target, ''), e.verdict, e.served_kind, e.sample_share, "
            "e.shadow_cost_nusd, e.judge_cost_nusd, f.verdict FROM evaluations e "
            "LEFT JOIN requests r ON r.request_id = e.request_id "
            f"LEFT JOIN feedback f ON f.request_id = e.request_id WHERE {where}",
            params,
        )
        return [
            EvaluationSummary(
                model=row[0],
                task_type=row[1],
                tenant=row[2],
                target=row[3],
                verdict=Verdict(row[4]),
                served_kind=row[5],
                sample_share=float(row[6]),
                shadow_cost_nusd=int(row[7]),
                judge_cost_nusd=int(row[8]),
                feedback=FeedbackVerdict(row[9]) if row[9] else None,
            )  # fmt: skip
            for row in rows
        ]

    async def decision_scores(
        self,
        start: datetime,
        end: datetime,
        tenant: str | None = None,
        task_type: str | None = None,
    ) -> list[float]:
        """The escalation scores of the requests made in [start, end) (route-only included)."""
        d = self._outcome_dialect
        where, params = _window(d, "r", start, end, tenant)
        if task_type is not None:
            where += f" AND r.task_type = {d.marker}"
            params.append(task_type)
        rows = await self._fetch(
            f"SELECT r.escalation_score FROM requests r WHERE {where} "
            "AND r.escalation_score IS NOT NULL",
            params,
        )
        return [float(row[0]) for row in rows]
