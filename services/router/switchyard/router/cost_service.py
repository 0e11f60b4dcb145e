"""`switchyard.cost.v1.CostService`: the ledger's cost report over gRPC.

Thin: who the caller is comes from an injected `tenant_resolver(context) -> TenantScope` (the
router's authentication), the numbers from the injected `CostLedger`, the message from
`switchyard.router.ledger.conversion`. A tenant's key sees only that tenant's requests; an
admin scope sees every tenant.

Request rules (INVALID_ARGUMENT otherwise):
- `end_time` unset: now; `start_time` unset: 24 hours before the end.
- the window must be non-empty (end after start) and at most `max_window` (400 days) long.
- `group_by` must be set: COST_GROUPING_UNSPECIFIED is refused rather than guessed.
A ledger whose database is down answers UNAVAILABLE.

Each row also carries the group's shadow evaluations finished in the window (their cost, apart
from the requests' own) and the quality estimate its rated outcomes support
(`evaluation.outcomes`; docs/services/outcomes.md).
"""

from __future__ import annotations

import inspect
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import grpc
from google.protobuf.timestamp_pb2 import Timestamp
from opentelemetry import trace

from switchyard.api.cost.v1 import cost_pb2, cost_pb2_grpc
from switchyard.api.router.v1 import outcomes_pb2
from switchyard.router.evaluation.conversion import add_evaluations
from switchyard.router.evaluation.outcomes import evaluation_rows
from switchyard.router.ledger import CostLedger, LedgerUnavailable, OutcomeStore
from switchyard.router.ledger.conversion import grouping_from_proto, report_to_proto
from switchyard.runtime import attributes
from switchyard.runtime.errors import InvalidArgument, Unavailable

__all__ = [
    "DEFAULT_WINDOW",
    "MAX_WINDOW",
    "CostServiceServicer",
    "TenantResolver",
    "TenantScope",
    "resolve_window",
]

DEFAULT_WINDOW = timedelta(hours=24)
MAX_WINDOW = timedelta(days=400)

# google.protobuf.Timestamp's valid range: 0001-01-01T00:00:00Z to 9999-12-31T23:59:59Z.
_MIN_SECONDS = -62_135_596_800
_MAX_SECONDS = 253_402_300_799


@dataclass(frozen=True, slots=True)
class TenantScope:
    """Whose requests a caller may see: one tenant's, or (`tenant` None) everyone's."""

    tenant: str | None

    @classmethod
    def admin(cls) -> TenantScope:
        return cls(None)

    @classmethod
    def of(cls, tenant: str) -> TenantScope:
        if not tenant:
            raise ValueError("a tenant scope needs a tenant name")
        return cls(tenant)

    @property
    def is_admin(self) -> bool:
        return self.tenant is None


#: Who is calling; raises `Unauthenticated` / `PermissionDenied` itself. May be async.
TenantResolver = Callable[[grpc.aio.ServicerContext], TenantScope | Awaitable[TenantScope]]


def _timestamp(value: Timestamp, field: str) -> datetime:
    if not (_MIN_SECONDS <= value.seconds <= _MAX_SECONDS) or not (0 <= value.nanos <= 999_999_999):
        raise InvalidArgument(f"{field} is not a valid timestamp")
    return value.ToDatetime(tzinfo=UTC)


#: The requests that name a [start_time, end_time) window.
WindowRequest = (
    cost_pb2.GetCostReportRequest
    | outcomes_pb2.ExportOutcomesRequest
    | outcomes_pb2.CalibrateRequest
)


def resolve_window(
    request: WindowRequest,
    now: datetime,
    *,
    default_window: timedelta = DEFAULT_WINDOW,
    max_window: timedelta = MAX_WINDOW,
) -> tuple[datetime, datetime]:
    """The report's [start, end) window with defaults applied; InvalidArgument when it is bad."""
    end = _timestamp(request.end_time, "end_time") if request.HasField("end_time") else now
    if request.HasField("start_time"):
        start = _timestamp(request.start_time, "start_time")
    else:
        start = end - default_window
    if end <= start:
        raise InvalidArgument(
            f"end_time ({end.isoformat()}) must be after start_time ({start.isoformat()})"
        )
    if end - start > max_window:
        raise InvalidArgument(
            f"the report window is {(end - start).days} days; at most {max_window.days} are allowed"
        )
    return start, end


class CostServiceServicer(cost_pb2_grpc.CostServiceServicer):
    """Serves `GetCostReport` from the ledger, scoped to the caller's tenant."""

    def __init__(
        self,
        ledger: CostLedger,
        baseline_model: str,
        tenant_resolver: TenantResolver,
        *,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
        max_window: timedelta = MAX_WINDOW,
    ) -> None:
        if not baseline_model:
            raise ValueError("the cost service needs the baseline frontier model's name")
        self._ledger = ledger
        self._baseline_model = baseline_model
        self._tenant_resolver = tenant_resolver
        self._clock = clock
        self._max_window = max_window

    async def _scope(self, context: grpc.aio.ServicerContext) -> TenantScope:
        scope = self._tenant_resolver(context)
        if inspect.isawaitable(scope):
            scope = await scope
        if not isinstance(scope, TenantScope):
            raise TypeError(f"tenant_resolver returned {type(scope).__name__}, not TenantScope")
        return scope

    async def GetCostReport(
        self, request: cost_pb2.GetCostReportRequest, context: Any
    ) -> cost_pb2.GetCostReportResponse:
        scope = await self._scope(context)
        grouping = grouping_from_proto(request.group_by)
        if grouping is None:
            raise InvalidArgument(
                "group_by must be one of COST_GROUPING_MODEL, COST_GROUPING_TASK_TYPE, "
                "COST_GROUPING_TENANT, COST_GROUPING_TARGET"
            )
        start, end = resolve_window(request, self._clock(), max_window=self._max_window)
        span = trace.get_current_span()
        span.set_attribute(attributes.COST_REPORT_GROUP_BY, grouping.name)
        if scope.tenant is not None:
            span.set_attribute(attributes.TENANT, scope.tenant)
        try:
            report = await self._ledger.report(start, end, grouping, scope.tenant)
            summaries = (
                await self._ledger.evaluation_summaries(start, end, scope.tenant)
                if isinstance(self._ledger, OutcomeStore)
                else []
            )
        except LedgerUnavailable as exc:
            raise Unavailable(str(exc)) from None
        response = report_to_proto(report, self._baseline_model)
        add_evaluations(response, *evaluation_rows(summaries, grouping))
        span.set_attribute(attributes.COST_REPORT_ROWS, len(response.rows))
        return response
