"""`ShadowEvaluator`: shadow evaluation off the request path (docs/services/outcomes.md).

The router offers every sampled request once it is answered and its record is durable
(`offer`, never blocking: a full queue drops and counts). Up to `evaluation.max_concurrency`
evaluations run at once, each in its own trace linked to the request's span; with
`evaluation.defer_while_in_flight: N` a queued one starts only while the router serves fewer
than N requests (`InFlight`, rechecked every `DEFER_RECHECK_S`), so its calls take no CPU from
served traffic under load:

1. the budget: today's evaluation spend (the ledger's, cached, plus what this replica wrote
   since it last read it) must be under `evaluation.daily_budget_usd`, else the evaluation is
   dropped and sampling pauses until the next UTC day;
2. the shadow call: the request's messages and parameters to the other tier's target;
3. the judge, twice at once (the local answer as A, then the frontier answer as A), read and
   combined by `judge`;
4. one `EvaluationRecord` into the ledger (retried briefly when it is unreachable, then dropped
   and counted: evaluations are not journaled).

Every call is priced like a request's attempt (`billed_cost`).
"""

from __future__ import annotations

import asyncio
import time
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime

import grpc
from opentelemetry import context as otel_context
from opentelemetry.trace import Link, Span, SpanContext, SpanKind
from opentelemetry.trace import StatusCode as SpanStatus

from switchyard.api.inference.v1 import inference_pb2
from switchyard.router.attempts import billed_cost
from switchyard.router.config import RouterConfig, TargetKind
from switchyard.router.connections import Connections
from switchyard.router.evaluation.judge import combine, judge_messages, read_reply
from switchyard.router.ledger.interface import LedgerError, LedgerUnavailable
from switchyard.router.ledger.outcome_records import EvaluationRecord, JudgeOrder, Verdict
from switchyard.router.ledger.outcome_store import OutcomeStore
from switchyard.router.policy import BoundTarget
from switchyard.router.request import InFlight
from switchyard.runtime import attributes as attr
from switchyard.runtime.logging import get_logger
from switchyard.runtime.telemetry import get_meter, get_tracer, request_baggage

__all__ = ["EvaluationBudget", "EvaluationJob", "ShadowEvaluator"]

log = get_logger(__name__)

#: How long an unparseable judge reply is kept (only where prompts are stored).
_REPLY_EXCERPT_CHARS = 500
_WRITE_RETRIES_S = (0.1, 0.5, 2.0)
# How often deferred evaluations look again for a quiet moment (`defer_while_in_flight`).
DEFER_RECHECK_S = 0.005


@dataclass(frozen=True, slots=True)
class EvaluationJob:
    """One answered request to evaluate, with everything the evaluation needs."""

    request_id: str
    tenant: str
    task_type: str
    config: RouterConfig
    sample_share: float
    served: BoundTarget
    served_model: str
    answer: str
    messages: Sequence[inference_pb2.ChatMessage]
    parameters: inference_pb2.GenerationParameters
    shadow: BoundTarget
    judge: BoundTarget
    #: The text the classifier read, when this tenant's prompts are stored.
    prompt: str | None
    #: The request's span, which the evaluation's trace links to.
    link: SpanContext | None


@dataclass(slots=True)
class _Call:
    """One shadow or judge call's result."""

    status: str
    text: str = ""
    model: str = ""
    cost_usd: float = 0.0
    input_tokens: int = 0
    output_tokens: int = 0
    latency_ms: float = 0.0


class EvaluationBudget:
    """Today's (UTC) evaluation spend against the configured daily budget."""

    def __init__(
        self, store: OutcomeStore, clock: Callable[[], datetime], *, ttl_s: float = 2.0
    ) -> None:
        self._store = store
        self._clock = clock
        self._ttl_s = ttl_s
        self._day: datetime | None = None
        self._read: float | None = None  # the ledger's sum for the day
        self._read_at = 0.0  # monotonic, when that read started
        self._since: list[tuple[float, float]] = []  # (monotonic written, USD) after the read

    def _today(self) -> datetime:
        now = self._clock().astimezone(UTC)
        return datetime(now.year, now.month, now.day, tzinfo=UTC)

    def spent(self) -> float | None:
        """What is known to be spent today (None: nothing read yet today)."""
        if self._day != self._today() or self._read is None:
            return None
        return self._read + sum(usd for _, usd in self._since)

    def exhausted(self, budget_usd: float) -> bool:
        """From what is known, without I/O: True once today's spend reaches the budget."""
        spent = self.spent()
        return spent is not None and spent >= budget_usd

    async def refresh(self) -> float:
        """Today's spend, reading the ledger when the cached read is older than the TTL.
        Raises LedgerError when it cannot be read and nothing is known for today."""
        day = self._today()
        if day != self._day:
            self._day, self._read, self._since = day, None, []
        if self._read is None or time.monotonic() - self._read_at >= self._ttl_s:
            started = time.monotonic()
            try:
                read = await self._store.evaluation_spend_since(day)
            except LedgerError:
                if self._read is None:
                    raise
            else:
                self._read, self._read_at = read, started
                # what was written before the read began is in it
                self._since = [(at, usd) for at, usd in self._since if at >= started]
        spent = self.spent()
        assert spent is not None
        return spent

    def written(self, usd: float) -> None:
        """An evaluation costing `usd` was just written to the ledger."""
        self._since.append((time.monotonic(), usd))


class ShadowEvaluator:
    """The queue and workers of shadow evaluation (see the module docstring)."""

    def __init__(
        self,
        config: Callable[[], RouterConfig],
        connections: Connections,
        store: OutcomeStore,
        *,
        in_flight: InFlight | None = None,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
        budget_cache_s: float = 2.0,
        write_retries_s: Sequence[float] = _WRITE_RETRIES_S,
    ) -> None:
        self._config = config
        self._connections = connections
        self._store = store
        self._clock = clock
        self._budget = EvaluationBudget(store, clock, ttl_s=budget_cache_s)
        self._write_retries_s = tuple(write_retries_s)
        self._queue: deque[EvaluationJob] = deque()
        self._running: set[asyncio.Task[None]] = set()
        self._in_flight = in_flight or InFlight()
        self._recheck: asyncio.TimerHandle | None = None
        self._closing = False
        self._idle = asyncio.Event()
        self._idle.set()
        self._tracer = get_tracer(__name__)
        meter = get_meter(__name__)
        self._sampled = meter.create_counter(
            attr.METRIC_EVALUATION_SAMPLED, unit="{request}", description="Requests sampled"
        )
        self._dropped = meter.create_counter(
            attr.METRIC_EVALUATION_DROPPED, unit="{request}", description="Evaluations dropped"
        )
        self._judged = meter.create_counter(
            attr.METRIC_EVALUATION_JUDGED, unit="{request}", description="Evaluations by verdict"
        )
        self._cost = meter.create_counter(
            attr.METRIC_EVALUATION_COST, unit="USD", description="Shadow and judge calls' cost"
        )

    # ---- intake (on the request path: never waits) ---------------------------------------------

    def paused(self, config: RouterConfig) -> bool:
        """True while today's evaluation budget is known to be spent: sample nothing."""
        budget = config.evaluation.daily_budget_usd
        return budget is not None and self._budget.exhausted(budget)

    def skip(self, request_id: str, tenant: str, task_type: str, reason: str) -> None:
        """A sampled request that will not be evaluated (counted as sampled and dropped)."""
        self._sampled.add(1, {attr.TENANT: tenant, attr.TASK_TYPE: task_type})
        self._count_drop(request_id, tenant, task_type, reason)

    def offer(self, job: EvaluationJob) -> bool:
        """Queue `job`; False (dropped and counted) when the queue is full, the budget is spent
        or the evaluator is stopping."""
        self._sampled.add(1, {attr.TENANT: job.tenant, attr.TASK_TYPE: job.task_type})
        evaluation = job.config.evaluation
        if self._closing:
            return self._drop(job, "shutdown")
        if self.paused(job.config):
            return self._drop(job, "budget")
        if len(self._queue) >= evaluation.queue_size:
            return self._drop(job, "queue_full")
        self._queue.append(job)
        self._idle.clear()
        self._pump()
        return True

    def _drop(self, job: EvaluationJob, reason: str) -> bool:
        self._count_drop(job.request_id, job.tenant, job.task_type, reason)
        return False

    def _count_drop(self, request_id: str, tenant: str, task_type: str, reason: str) -> None:
        self._dropped.add(
            1, {attr.TENANT: tenant, attr.TASK_TYPE: task_type,
                attr.EVALUATION_DROP_REASON: reason},
        )  # fmt: skip
        log.info("evaluation dropped", request_id=request_id, reason=reason)

    def _pump(self) -> None:
        evaluation = self._config().evaluation
        limit, quiet = evaluation.max_concurrency, evaluation.defer_while_in_flight
        while self._queue and len(self._running) < limit and not self._closing:
            if quiet is not None and self._in_flight.count >= quiet:
                self._pump_later()
                return
            job = self._queue.popleft()
            task = asyncio.get_running_loop().create_task(
                self._run(job), name=f"evaluation-{job.request_id}"
            )
            self._running.add(task)
            task.add_done_callback(self._finished)

    def _pump_later(self) -> None:
        if self._recheck is None:
            self._recheck = asyncio.get_running_loop().call_later(DEFER_RECHECK_S, self._repump)

    def _repump(self) -> None:
        self._recheck = None
        self._pump()

    def _finished(self, task: asyncio.Task[None]) -> None:
        self._running.discard(task)
        if not task.cancelled() and task.exception() is not None:
            log.error("evaluation failed", error=repr(task.exception()))
        self._pump()
        if not self._queue and not self._running:
            self._idle.set()

    async def drain(self) -> None:
        """Wait until every offered evaluation has finished (tests, benchmarks)."""
        await self._idle.wait()

    async def close(self) -> None:
        """Stop: queued evaluations are dropped, running ones cancelled (both counted)."""
        self._closing = True
        if self._recheck is not None:
            self._recheck.cancel()
            self._recheck = None
        while self._queue:
            self._drop(self._queue.popleft(), "shutdown")
        running = list(self._running)
        for task in running:
            task.cancel()
        await asyncio.gather(*running, return_exceptions=True)
        self._idle.set()

    # ---- one evaluation -----------------------------------------------------------------------

    async def _run(self, job: EvaluationJob) -> None:
        budget = job.config.evaluation.daily_budget_usd
        try:
            spent = await self._budget.refresh()
        except LedgerError as error:
            log.warning("evaluation budget unreadable: dropped", error=str(error))
            self._drop(job, "ledger_unavailable")
            return
        if budget is not None and spent >= budget:
            self._drop(job, "budget")
            return
        links = [Link(job.link)] if job.link is not None and job.link.is_valid else []
        with (
            request_baggage(tenant=job.tenant, task_type=job.task_type),
            self._tracer.start_as_current_span(
                attr.SPAN_EVALUATION,
                context=otel_context.Context(),  # its own trace, linked to the request's
                kind=SpanKind.INTERNAL,
                links=links,
            ) as span,
        ):
            span.set_attribute(attr.REQUEST_ID, job.request_id)
            span.set_attribute(attr.TENANT, job.tenant)
            span.set_attribute(attr.TASK_TYPE, job.task_type)
            span.set_attribute(attr.EVALUATION_SERVED_KIND, job.served.kind.value)
            span.set_attribute(attr.EVALUATION_SAMPLE_SHARE, job.sample_share)
            record = await self._evaluate(job)
            span.set_attribute(attr.EVALUATION_VERDICT, record.verdict.value)
            span.set_attribute(attr.COST_USD, record.cost_usd)
            if not record.verdict.judged:
                span.set_status(SpanStatus.ERROR, record.verdict.value)
        labels = {attr.TENANT: job.tenant, attr.TASK_TYPE: job.task_type}
        self._judged.add(1, {**labels, attr.EVALUATION_VERDICT: record.verdict.value})
        self._cost.add(record.cost_usd, labels)
        await self._write(record)

    async def _evaluate(self, job: EvaluationJob) -> EvaluationRecord:
        evaluation = job.config.evaluation
        shadow = await self._call(
            job, attr.SPAN_EVALUATION_SHADOW, job.shadow, job.messages, job.parameters
        )
        served_local = job.served.kind is TargetKind.LOCAL
        orders = [JudgeOrder.NOT_ASKED, JudgeOrder.NOT_ASKED]
        judges: list[_Call] = []
        verdict = Verdict.SHADOW_FAILED
        reply: str | None = None
        if shadow.status == "OK":
            local, frontier = (job.answer, shadow.text)
            if not served_local:
                local, frontier = frontier, local
            parameters = inference_pb2.GenerationParameters(
                max_tokens=evaluation.judge_max_tokens, temperature=0.0
            )
            pairs = ((local, frontier, True), (frontier, local, False))
            judges = list(
                await asyncio.gather(
                    *(
                        self._call(
                            job,
                            attr.SPAN_EVALUATION_JUDGE,
                            job.judge,
                            judge_messages(
                                job.messages,
                                a,
                                b,
                                max_request_chars=evaluation.max_request_chars,
                                max_answer_chars=evaluation.max_answer_chars,
                            ),
                            parameters,
                            order=index + 1,
                            local_first=local_first,
                        )
                        for index, (a, b, local_first) in enumerate(pairs)
                    )
                )
            )
            for index, (call, (_, _, local_first)) in enumerate(zip(judges, pairs, strict=True)):
                if call.status == "OK":
                    orders[index] = read_reply(call.text, local_first=local_first)
                    if orders[index] is JudgeOrder.UNPARSEABLE and reply is None:
                        reply = call.text[:_REPLY_EXCERPT_CHARS]
            failed = any(call.status != "OK" for call in judges)
            verdict = Verdict.JUDGE_FAILED if failed else combine(*orders)
        judge_status = next((c.status for c in judges if c.status != "OK"), "OK" if judges else "")
        if verdict is Verdict.UNPARSEABLE:
            log.warning("a judge reply could not be read as a verdict", request_id=job.request_id)
        return EvaluationRecord(
            request_id=job.request_id,
            time=self._clock(),
            tenant=job.tenant,
            sample_share=job.sample_share,
            served_kind=job.served.kind.value,
            served_target=job.served.name,
            served_model=job.served_model or job.served.model or "default",
            shadow_target=job.shadow.name,
            shadow_model=shadow.model or job.shadow.model or "default",
            shadow_status=shadow.status,
            shadow_latency_ms=shadow.latency_ms,
            shadow_cost_usd=shadow.cost_usd,
            shadow_input_tokens=shadow.input_tokens,
            shadow_output_tokens=shadow.output_tokens,
            judge_target=job.judge.name,
            judge_model=next((c.model for c in judges if c.model), job.judge.model),
            judge_status=judge_status,
            first_order=orders[0],
            second_order=orders[1],
            verdict=verdict,
            judge_cost_usd=sum(c.cost_usd for c in judges),
            prompt=job.prompt,
            judge_reply=reply if job.prompt is not None else None,
        )

    async def _call(
        self,
        job: EvaluationJob,
        span_name: str,
        target: BoundTarget,
        messages: Sequence[inference_pb2.ChatMessage],
        parameters: inference_pb2.GenerationParameters,
        *,
        order: int = 0,
        local_first: bool = True,
    ) -> _Call:
        backend = job.config.backends[target.backend]
        timeout = min(job.config.evaluation.timeout_s, backend.timeout_s)
        with self._tracer.start_as_current_span(span_name, kind=SpanKind.INTERNAL) as span:
            span.set_attribute(attr.GEN_AI_OPERATION_NAME, attr.GEN_AI_OPERATION_CHAT)
            span.set_attribute(attr.GEN_AI_REQUEST_MODEL, target.model or target.name)
            span.set_attribute(attr.ROUTER_TARGET, target.name)
            span.set_attribute(attr.ROUTER_BACKEND, target.backend)
            span.set_attribute(attr.TENANT, job.tenant)
            if order:
                span.set_attribute(attr.EVALUATION_JUDGE_ORDER, order)
            started = time.perf_counter()
            stub = self._connections.backend(target.backend, backend.address)
            try:
                response = await stub.Generate(
                    inference_pb2.GenerateRequest(
                        model=target.model, messages=messages, parameters=parameters
                    ),
                    timeout=timeout,
                )
            except grpc.aio.AioRpcError as error:
                status = error.code().name
                span.set_attribute(attr.ROUTER_STATUS, status)
                span.set_status(SpanStatus.ERROR, status)
                log.warning(
                    "evaluation call failed", target=target.name, status=status,
                    request_id=job.request_id,
                )  # fmt: skip
                return _Call(status, latency_ms=(time.perf_counter() - started) * 1000)
            usage = response.usage
            cost, _ = billed_cost(target, usage, usage.input_tokens, usage.output_tokens)
            call = _Call(
                "OK",
                text=response.text,
                model=response.model,
                cost_usd=cost,
                input_tokens=usage.input_tokens,
                output_tokens=usage.output_tokens,
                latency_ms=(time.perf_counter() - started) * 1000,
            )
            _describe(span, call)
            if order:
                span.set_attribute(
                    attr.EVALUATION_JUDGE_ANSWER,
                    read_reply(call.text, local_first=local_first).value,
                )
            return call

    async def _write(self, record: EvaluationRecord) -> None:
        for delay in (*self._write_retries_s, None):
            try:
                await self._store.record_evaluation(record)
            except LedgerUnavailable as error:
                if delay is None:
                    log.error(
                        "evaluation not recorded: the ledger is unavailable",
                        request_id=record.request_id, error=str(error),
                    )  # fmt: skip
                    self._count_drop(record.request_id, record.tenant, "", "ledger_unavailable")
                    return
                await asyncio.sleep(delay)
                continue
            except (LedgerError, ValueError) as error:
                log.error("the ledger refused an evaluation", request_id=record.request_id,
                          error=str(error))  # fmt: skip
                return
            self._budget.written(record.cost_usd)
            return


def _describe(span: Span, call: _Call) -> None:
    span.set_attribute(attr.ROUTER_STATUS, call.status)
    span.set_attribute(attr.COST_USD, call.cost_usd)
    span.set_attribute(attr.GEN_AI_USAGE_COST, call.cost_usd)
    span.set_attribute(attr.GEN_AI_USAGE_INPUT_TOKENS, call.input_tokens)
    span.set_attribute(attr.GEN_AI_USAGE_OUTPUT_TOKENS, call.output_tokens)
    if call.model:
        span.set_attribute(attr.GEN_AI_RESPONSE_MODEL, call.model)
