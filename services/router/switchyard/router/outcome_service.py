"""`switchyard.router.v1.OutcomeService`: feedback, the outcome export and calibration.

Thin: who the caller is comes from the injected `authenticate` (feedback: a tenant) and `scope`
(export and calibration: a tenant, or every tenant for an admin key); the data from the
injected `OutcomeStore` (the ledger) and the router's unwritten records; the arithmetic from
`evaluation.calibration` and `evaluation.outcomes`; the messages from `evaluation.conversion`.

Rules (docs/services/outcomes.md):
- feedback: a tenant rates only its own requests (another tenant's id is NOT_FOUND, worded as
  an unknown id); a failed or route-only request has no answer (FAILED_PRECONDITION); the reason
  is at most 500 characters; the last verdict wins;
- export and calibration: a tenant key names no other tenant (PERMISSION_DENIED); windows as
  the cost report's (at most 400 days), by default the last 30 days (export) or 7 (calibration);
- UNAVAILABLE whenever the ledger cannot be reached.
"""

from __future__ import annotations

import inspect
from collections.abc import AsyncIterator, Callable, Iterable
from datetime import UTC, datetime, timedelta
from typing import Any

import grpc
from opentelemetry import trace

from switchyard.api.router.v1 import outcomes_pb2, outcomes_pb2_grpc
from switchyard.router.config import RouterConfig
from switchyard.router.conversion import task_type_name
from switchyard.router.cost_service import TenantResolver, TenantScope, resolve_window
from switchyard.router.evaluation.calibration import for_frontier_share, for_quality, point
from switchyard.router.evaluation.conversion import (
    feedback_verdict,
    outcome_message,
    point_message,
    rated_outcome,
)
from switchyard.router.evaluation.outcomes import RatedOutcome
from switchyard.router.ledger.interface import LedgerUnavailable
from switchyard.router.ledger.outcome_records import (
    MAX_REASON_CHARS,
    FeedbackRecord,
    OutcomeRow,
    RequestFacts,
)
from switchyard.router.ledger.outcome_store import OutcomeStore
from switchyard.router.ledger.records import ROUTE_ONLY, RequestRecord
from switchyard.runtime import attributes as attr
from switchyard.runtime.errors import (
    FailedPrecondition,
    InvalidArgument,
    NotFound,
    PermissionDenied,
    Unavailable,
)

__all__ = ["EXPORT_PAGE", "OutcomeServiceServicer"]

EXPORT_WINDOW = timedelta(days=30)
CALIBRATION_WINDOW = timedelta(days=7)
#: Outcomes per ExportOutcomes message (and per ledger read).
EXPORT_PAGE = 500

Authenticate = Callable[[Iterable[tuple[str, Any]] | None], str]


def _facts(record: RequestRecord) -> RequestFacts:
    return RequestFacts(
        request_id=record.request_id,
        time=record.time,
        tenant=record.tenant,
        task_type=record.task_type,
        complexity=record.complexity,
        escalation_score=record.escalation_score,
        classifier_model_version=record.classifier_model_version,
        prompt_chars=record.prompt_chars,
        input_tokens=record.input_tokens,
        target_kind=record.target_kind,
        target=record.target,
        model=record.model,
        status=record.status,
        operation=record.operation,
    )


class OutcomeServiceServicer(outcomes_pb2_grpc.OutcomeServiceServicer):
    def __init__(
        self,
        store: OutcomeStore,
        config: Callable[[], RouterConfig],
        authenticate: Authenticate,
        scope: TenantResolver,
        *,
        unwritten: Callable[[str], RequestRecord | None] = lambda _: None,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        self._store = store
        self._config = config
        self._authenticate = authenticate
        self._scope = scope
        self._unwritten = unwritten
        self._clock = clock

    async def _tenant_filter(self, context: grpc.aio.ServicerContext, named: str) -> str | None:
        scope = self._scope(context)
        if inspect.isawaitable(scope):
            scope = await scope
        assert isinstance(scope, TenantScope)
        if scope.is_admin:
            return named or None
        if named and named != scope.tenant:
            raise PermissionDenied("a tenant's key reads its own outcomes only")
        return scope.tenant

    # ---- feedback ----------------------------------------------------------------------------

    async def _request(self, request_id: str) -> RequestFacts | None:
        record = self._unwritten(request_id)  # first: it may be written any moment now
        if record is not None:
            return _facts(record)
        try:
            return await self._store.find_request(request_id)
        except LedgerUnavailable as error:
            raise Unavailable(str(error)) from None

    async def SubmitFeedback(  # noqa: N802
        self, request: outcomes_pb2.SubmitFeedbackRequest, context: grpc.aio.ServicerContext
    ) -> outcomes_pb2.SubmitFeedbackResponse:
        tenant = self._authenticate(context.invocation_metadata())
        request_id = request.request_id
        if not request_id or len(request_id) > 200 or "\x00" in request_id:
            raise InvalidArgument("request_id must be a request id (1 to 200 characters)")
        verdict = feedback_verdict(request.verdict)
        if verdict is None:
            raise InvalidArgument(
                "verdict must be FEEDBACK_VERDICT_GOOD or FEEDBACK_VERDICT_NOT_GOOD"
            )
        if len(request.reason) > MAX_REASON_CHARS or "\x00" in request.reason:
            raise InvalidArgument(
                f"reason must be at most {MAX_REASON_CHARS} characters without NUL "
                f"(got {len(request.reason)})"
            )
        facts = await self._request(request_id)
        if facts is None or facts.tenant != tenant:
            raise NotFound(f"no request {request_id!r} of this caller")
        if facts.operation == ROUTE_ONLY:
            raise FailedPrecondition(f"request {request_id!r} was a route-only call: no answer")
        if facts.status != "OK":
            raise FailedPrecondition(
                f"request {request_id!r} ended with {facts.status}: there is no answer to rate"
            )
        span = trace.get_current_span()
        span.set_attribute(attr.REQUEST_ID, request_id)
        span.set_attribute(attr.TENANT, tenant)
        span.set_attribute(attr.FEEDBACK_VERDICT, verdict.value)
        record = FeedbackRecord(
            request_id=request_id,
            time=self._clock(),
            tenant=tenant,
            served_kind=facts.target_kind,
            served_target=facts.target,
            served_model=facts.model,
            verdict=verdict,
            reason=request.reason,
        )
        try:
            await self._store.record_feedback(record)
        except LedgerUnavailable as error:
            raise Unavailable(str(error)) from None
        return outcomes_pb2.SubmitFeedbackResponse(
            request_id=request_id,
            rated_tier=outcome_message(OutcomeRow(facts, None, record)).served,
            rated_model=facts.model,
        )

    # ---- export ------------------------------------------------------------------------------

    async def _pages(
        self,
        start: datetime,
        end: datetime,
        tenant: str | None,
        task_types: list[str],
    ) -> AsyncIterator[list[OutcomeRow]]:
        after = None
        while True:
            try:
                rows = await self._store.outcomes(
                    start, end, tenant=tenant, task_types=task_types, after=after,
                    limit=EXPORT_PAGE,
                )  # fmt: skip
            except LedgerUnavailable as error:
                raise Unavailable(str(error)) from None
            if rows:
                yield rows
            if len(rows) < EXPORT_PAGE:
                return
            last = rows[-1].request
            after = (last.time, last.request_id)

    async def ExportOutcomes(  # noqa: N802
        self, request: outcomes_pb2.ExportOutcomesRequest, context: grpc.aio.ServicerContext
    ) -> AsyncIterator[outcomes_pb2.ExportOutcomesResponse]:
        tenant = await self._tenant_filter(context, request.tenant)
        start, end = resolve_window(request, self._clock(), default_window=EXPORT_WINDOW)
        task_types = sorted({task_type_name(t) for t in request.task_types})
        exported = 0
        async for rows in self._pages(start, end, tenant, task_types):
            exported += len(rows)
            yield outcomes_pb2.ExportOutcomesResponse(
                outcomes=[outcome_message(row) for row in rows]
            )
        trace.get_current_span().set_attribute(attr.OUTCOMES_EXPORTED, exported)

    # ---- calibration -------------------------------------------------------------------------

    async def Calibrate(  # noqa: N802
        self, request: outcomes_pb2.CalibrateRequest, context: grpc.aio.ServicerContext
    ) -> outcomes_pb2.CalibrateResponse:
        tenant = await self._tenant_filter(context, request.tenant)
        start, end = resolve_window(request, self._clock(), default_window=CALIBRATION_WINDOW)
        target = request.WhichOneof("target")
        if target is None:
            raise InvalidArgument("set frontier_share or quality_share")
        task_type = task_type_name(request.task_type) or None
        try:
            scores = await self._store.decision_scores(start, end, tenant, task_type)
        except LedgerUnavailable as error:
            raise Unavailable(str(error)) from None
        rated: list[RatedOutcome] = []
        task_types = [task_type] if task_type else []
        async for rows in self._pages(start, end, tenant, task_types):
            rated += [r for r in map(rated_outcome, rows) if r is not None]
        met = True
        try:
            if target == "frontier_share":
                chosen = for_frontier_share(scores, request.frontier_share, rated)
            else:
                chosen, met = for_quality(rated, request.quality_share, scores)
        except ValueError as error:
            text = str(error)
            if text.startswith("no "):
                raise FailedPrecondition(f"cannot calibrate: {text}") from None
            raise InvalidArgument(text) from None
        current = self._current_threshold(task_type)
        return outcomes_pb2.CalibrateResponse(
            chosen=point_message(chosen),
            decisions=len(scores),
            outcomes=len(rated),
            target_met=met,
            current_threshold=current,
            current=point_message(point(current, scores, rated)),
        )

    def _current_threshold(self, task_type: str | None) -> float:
        routing = self._config().routing
        rule = routing.task_rules.get(task_type or "")
        threshold = rule.threshold(routing.escalation_threshold) if rule else None
        return routing.escalation_threshold if threshold is None else threshold
