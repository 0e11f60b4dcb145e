"""One decision path for Route, Complete and CompleteStream: classify -> policy -> target(s).

`Router` holds the injected dependencies (configuration source, channels, spend tracker,
ledger writer, tracer and meter) and runs a request end to end: authentication is the
servicer's job, everything after it is here. Every request, failed ones included, leaves one
ledger record once it has been admitted.
"""

from __future__ import annotations

import asyncio
import json
import math
import os
import time
import uuid
from collections.abc import AsyncIterator, Callable
from dataclasses import asdict, dataclass, field, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import grpc
from opentelemetry import trace
from opentelemetry.trace import Span, SpanKind
from opentelemetry.trace import StatusCode as SpanStatus

from switchyard.api.classifier.v1 import classifier_pb2
from switchyard.api.inference.v1 import inference_pb2
from switchyard.api.router.v1 import router_pb2
from switchyard.router.budget import SpendTracker
from switchyard.router.config import RouterConfig
from switchyard.router.connections import Connections
from switchyard.router.conversion import (
    HopResult,
    classified,
    decision_message,
    hop_message,
    overrides,
    prompt_of,
)
from switchyard.router.ledger import (
    AttemptRecord,
    LedgerError,
    LedgerUnavailable,
    RequestRecord,
)
from switchyard.router.policy import (
    BoundTarget,
    Decision,
    DecisionReason,
    PolicyInputs,
    admissible,
    bind,
    decide,
    estimate_tokens,
    price,
)
from switchyard.runtime import attributes as attr
from switchyard.runtime.errors import (
    DeadlineExceeded,
    FailedPrecondition,
    InvalidArgument,
    ResourceExhausted,
    SwitchyardError,
    Unavailable,
)
from switchyard.runtime.logging import get_logger
from switchyard.runtime.telemetry import get_meter, get_tracer, request_baggage

__all__ = ["FALLBACK_CODES", "LedgerWriter", "Router", "record_from_json", "record_to_json"]

log = get_logger(__name__)

#: Backend failures before the first token that move on to the next target of the chain.
FALLBACK_CODES = frozenset(
    {
        grpc.StatusCode.UNAVAILABLE,
        grpc.StatusCode.RESOURCE_EXHAUSTED,
        grpc.StatusCode.DEADLINE_EXCEEDED,
    }
)

_ERROR_BY_CODE: dict[grpc.StatusCode, type[SwitchyardError]] = {
    cls.code: cls
    for cls in (
        InvalidArgument,
        ResourceExhausted,
        FailedPrecondition,
        Unavailable,
        DeadlineExceeded,
    )
}
_CLASSIFIER_SERVICE = "classifier"


def _error_for(code: grpc.StatusCode, message: str) -> SwitchyardError:
    cls = _ERROR_BY_CODE.get(code, SwitchyardError)
    return cls(message)


class LedgerWriter:
    """Writes ledger records off the request path, in order; `close()` drains what is queued.

    Nothing a request cost is dropped: a write that fails because the ledger is unreachable is
    retried with backoff (`retry_delays_s`); a record still not written after that, or one the
    ledger refuses, is appended to the spill journal (`spill_path`, one JSON record per line,
    fsynced) and logged. `replay_spill()` (run at start-up) writes spilled records into the
    ledger and keeps only those that still fail. The tenant's spend counts a record from the
    moment it is submitted (`SpendTracker.add_pending`), written or not.
    """

    def __init__(
        self,
        ledger: Any,
        on_written: Callable[[RequestRecord], None] | None = None,
        *,
        on_committing: Callable[[RequestRecord], None] | None = None,
        spill_path: Path | None = None,
        retry_delays_s: tuple[float, ...] = (0.1, 0.5, 2.0),
    ):
        self._ledger = ledger
        self._queue: asyncio.Queue[RequestRecord | None] = asyncio.Queue()
        self._on_written = on_written
        self._on_committing = on_committing
        self._spill_path = spill_path
        self._retry_delays = retry_delays_s
        self._task: asyncio.Task[None] | None = None
        self._idle = asyncio.Event()
        self._idle.set()
        self._pending = 0

    def start(self) -> None:
        if self._task is None:
            self._task = asyncio.get_running_loop().create_task(self._run())

    def submit(self, record: RequestRecord) -> None:
        self._pending += 1
        self._idle.clear()
        self._queue.put_nowait(record)

    async def _write(self, record: RequestRecord) -> None:
        for delay in (*self._retry_delays, None):
            try:
                if self._on_committing is not None:
                    self._on_committing(record)
                await self._ledger.record(record)
                return
            except LedgerUnavailable as exc:
                if delay is None:
                    raise
                log.warning(
                    "ledger unavailable; retrying",
                    request_id=record.request_id, retry_in_s=delay, error=str(exc),
                )  # fmt: skip
                await asyncio.sleep(delay)

    async def _run(self) -> None:
        while True:
            record = await self._queue.get()
            if record is None:
                return
            try:
                await self._write(record)
                if self._on_written is not None:
                    self._on_written(record)
            except Exception as exc:  # the request is answered; keep the router serving
                try:
                    spilled = await asyncio.to_thread(self._spill, [record])
                    outcome = (
                        "record kept in the spill journal"
                        if spilled
                        else ("record lost (no spill journal configured)")
                    )
                except OSError as spill_error:
                    outcome = f"record lost (spill journal not writable: {spill_error})"
                log.error(
                    f"ledger write failed; {outcome}",
                    request_id=record.request_id,
                    spill_path=str(self._spill_path or ""),
                    exc_info=exc,
                )
            finally:
                self._pending -= 1
                if self._pending == 0:
                    self._idle.set()

    def _spill(self, records: list[RequestRecord]) -> bool:
        if self._spill_path is None:
            return False
        self._spill_path.parent.mkdir(parents=True, exist_ok=True)
        with self._spill_path.open("a", encoding="utf-8") as journal:
            for record in records:
                journal.write(json.dumps(record_to_json(record), sort_keys=True) + "\n")
            journal.flush()
            os.fsync(journal.fileno())
        return True

    async def replay_spill(self) -> int:
        """Write the spill journal's records into the ledger; return how many were written.

        Records the ledger already holds (same request id) count as written. Those that still
        fail stay in the journal.
        """
        path = self._spill_path
        if path is None or not path.exists():
            return 0
        lines = (await asyncio.to_thread(path.read_text, "utf-8")).splitlines()
        kept: list[str] = []
        written = 0
        for line in lines:
            if not line.strip():
                continue
            try:
                record = record_from_json(json.loads(line))
            except (ValueError, KeyError, TypeError) as exc:
                log.error("unreadable spill journal line kept", error=str(exc))
                kept.append(line)
                continue
            try:
                await self._ledger.record(record)
                written += 1
            except ValueError:
                written += 1  # already in the ledger (duplicate request id)
            except LedgerError as exc:
                log.error("spilled record still not written", request_id=record.request_id,
                          error=str(exc))  # fmt: skip
                kept.append(line)
        tmp = path.with_suffix(path.suffix + ".tmp")
        await asyncio.to_thread(tmp.write_text, "".join(f"{k}\n" for k in kept), "utf-8")
        await asyncio.to_thread(os.replace, tmp, path)
        if not kept:
            await asyncio.to_thread(path.unlink)
        log.info("spill journal replayed", written=written, kept=len(kept))
        return written

    async def flush(self) -> None:
        """Wait until everything submitted so far is written (tests, shutdown)."""
        await self._idle.wait()

    async def close(self) -> None:
        if self._task is None:
            return
        self._queue.put_nowait(None)
        await self._task
        self._task = None


def record_to_json(record: RequestRecord) -> dict[str, Any]:
    """A ledger record as JSON-ready data (the spill journal's line format)."""
    data = asdict(record)
    data["time"] = record.time.isoformat()
    return data


def record_from_json(data: dict[str, Any]) -> RequestRecord:
    attempts = tuple(AttemptRecord(**attempt) for attempt in data.pop("attempts"))
    time_ = datetime.fromisoformat(data.pop("time"))
    return RequestRecord(**data, time=time_, attempts=attempts)


@dataclass
class _Request:
    """The state of one request while it is routed."""

    request_id: str
    tenant: str
    config: RouterConfig
    operation: str
    time: datetime
    started: float
    deadline: float | None
    span: Span
    classification: classifier_pb2.Classification | None = None
    classifier_cost: float = 0.0
    hops: list[HopResult] = field(default_factory=list)
    decision: Decision | None = None
    inputs: PolicyInputs | None = None
    served: BoundTarget | None = None
    served_model: str = ""
    usage: inference_pb2.Usage | None = None
    status: str = "UNKNOWN"
    finish_reason: inference_pb2.FinishReason = inference_pb2.FINISH_REASON_UNSPECIFIED

    @property
    def cost_so_far(self) -> float:
        attempts = math.fsum(h.cost_usd for h in self.hops if h.kind == "GENERATE")
        return self.classifier_cost + attempts

    def remaining(self) -> float | None:
        return None if self.deadline is None else self.deadline - time.monotonic()

    def time_left(self) -> bool:
        """True while the caller's deadline (if any) has not passed."""
        remaining = self.remaining()
        return remaining is None or remaining > 0

    def timeout(self, cap_s: float) -> float:
        remaining = self.remaining()
        if remaining is None:
            return cap_s
        if remaining <= 0:
            raise DeadlineExceeded("the caller's deadline passed while routing")
        return min(cap_s, remaining)


class Router:
    def __init__(
        self,
        config: Callable[[], RouterConfig],
        connections: Connections,
        spend: SpendTracker,
        ledger: LedgerWriter,
        *,
        log_prompts: bool = False,
    ) -> None:
        self._config = config
        self._connections = connections
        self._spend = spend
        self._ledger = ledger
        self._log_prompts = log_prompts
        self._tracer = get_tracer(__name__)
        meter = get_meter(__name__)
        self._requests = meter.create_counter(
            attr.METRIC_ROUTER_REQUESTS, unit="{request}", description="Requests routed"
        )
        self._cost = meter.create_counter(
            attr.METRIC_ROUTER_COST, unit="USD", description="What routed requests cost"
        )
        self._tokens = meter.create_histogram(
            attr.METRIC_GEN_AI_CLIENT_TOKEN_USAGE, unit="{token}", description="Tokens per call"
        )
        self._duration = meter.create_histogram(
            attr.METRIC_GEN_AI_CLIENT_OPERATION_DURATION,
            unit="s",
            description="Duration of backend calls",
        )

    # ---- public operations -------------------------------------------------------------------

    async def route(
        self, request: router_pb2.RouteRequest, tenant: str, remaining_s: float | None
    ) -> router_pb2.RouteResponse:
        req = self._begin(tenant, "route", remaining_s)
        try:
            with request_baggage(tenant=tenant):
                await self._decide(req, request)
                decision = self._decision_message(req)
            req.status = "OK"
            return router_pb2.RouteResponse(decision=decision, cost=self._breakdown(req))
        except BaseException as exc:
            req.status = _status_of(exc)
            raise
        finally:
            self._finish(req)

    async def complete(
        self, request: router_pb2.CompleteRequest, tenant: str, remaining_s: float | None
    ) -> router_pb2.CompleteResponse:
        req = self._begin(tenant, "complete", remaining_s)
        try:
            with request_baggage(tenant=tenant):
                await self._decide(req, request)
                with request_baggage(task_type=self._task_type(req)):
                    response = await self._generate(req, request)
            req.status = "OK"
            return router_pb2.CompleteResponse(
                request_id=req.request_id,
                text=response.text,
                reasoning_text=response.reasoning_text,
                finish_reason=response.finish_reason,
                usage=req.usage,
                decision=self._decision_message(req),
                cost=self._breakdown(req),
            )
        except BaseException as exc:
            req.status = _status_of(exc)
            raise
        finally:
            self._finish(req)

    async def stream(
        self, request: router_pb2.CompleteStreamRequest, tenant: str, remaining_s: float | None
    ) -> AsyncIterator[router_pb2.CompleteStreamResponse]:
        req = self._begin(tenant, "complete_stream", remaining_s)
        try:
            with request_baggage(tenant=tenant):
                await self._decide(req, request)
                yield router_pb2.CompleteStreamResponse(decision=self._decision_message(req))
                with request_baggage(task_type=self._task_type(req)):
                    async for event in self._generate_stream(req, request):
                        yield event
            req.status = "OK"
            yield router_pb2.CompleteStreamResponse(
                summary=router_pb2.CompleteStreamSummary(
                    request_id=req.request_id,
                    finish_reason=req.finish_reason,
                    usage=req.usage,
                    decision=self._decision_message(req),
                    cost=self._breakdown(req),
                )
            )
        except BaseException as exc:
            req.status = _status_of(exc)
            raise
        finally:
            self._finish(req)

    # ---- decision ---------------------------------------------------------------------------

    def _begin(self, tenant: str, operation: str, remaining_s: float | None) -> _Request:
        span = trace.get_current_span()
        req = _Request(
            request_id=uuid.uuid4().hex,
            tenant=tenant,
            config=self._config(),
            operation=operation,
            time=datetime.now(UTC),
            started=time.perf_counter(),
            deadline=None if remaining_s is None else time.monotonic() + remaining_s,
            span=span,
        )
        span.set_attribute(attr.REQUEST_ID, req.request_id)
        span.set_attribute(attr.TENANT, tenant)
        span.set_attribute(attr.ROUTER_OPERATION, operation)
        return req

    @staticmethod
    def _task_type(req: _Request) -> str:
        if req.classification is None:
            return ""
        return classified(req.classification).task_type

    async def _check_budget(self, req: _Request) -> bool:
        """Raise over a hard limit; return whether the soft limit is reached."""
        budget = req.config.tenants.get(req.tenant)
        if budget is None or not budget.budget.is_limited:
            return False
        state = await self._spend.state(req.tenant, budget.budget, pending_usd=req.cost_so_far)
        if state.hard_exceeded:
            raise ResourceExhausted(f"tenant {req.tenant!r} is over its budget: {state.detail}")
        return state.soft_exceeded

    async def _decide(self, req: _Request, request: Any) -> None:
        prompt = prompt_of(list(request.messages))
        options = overrides(request.routing)
        config = req.config
        if options.force_target:
            bind(config, options.force_target)  # unknown target: refuse before spending anything
        soft = await self._check_budget(req)
        await self._classify(req, prompt)
        output_tokens = (
            request.parameters.max_tokens
            if request.parameters.HasField("max_tokens")
            else config.routing.estimated_output_tokens
        )
        req.inputs = PolicyInputs(
            classification=classified(req.classification) if req.classification else None,
            overrides=options,
            soft_budget_exceeded=soft,
            input_tokens=sum(estimate_tokens(m.content) for m in request.messages),
            output_tokens=output_tokens,
        )
        req.decision = decide(config, req.inputs)
        d = req.decision
        span = req.span
        span.set_attribute(
            attr.TASK_TYPE, req.inputs.classification.task_type if req.inputs.classification else ""
        )
        if req.inputs.classification is not None:
            span.set_attribute(attr.COMPLEXITY, req.inputs.classification.complexity)
        span.set_attribute(attr.ROUTER_TARGET, d.target.name)
        span.set_attribute(attr.ROUTER_TARGET_KIND, d.target.kind.value)
        span.set_attribute(attr.ROUTER_REASON, d.reason.value)
        span.set_attribute(attr.ROUTER_REASON_DETAIL, d.detail)
        span.set_attribute(attr.ROUTER_ESCALATION_SCORE, d.escalation_score)
        span.set_attribute(attr.ROUTER_ESCALATION_THRESHOLD, d.escalation_threshold)
        span.set_attribute(
            attr.ROUTER_DEFAULT_ROUTE, d.reason is DecisionReason.CLASSIFIER_UNAVAILABLE
        )
        if d.reason is DecisionReason.CLASSIFIER_UNAVAILABLE:
            log.warning(
                "classifier unavailable: default route",
                target=d.target.name,
                request_id=req.request_id,
            )

    async def _classify(self, req: _Request, prompt: str) -> None:
        config = req.config.classifier
        with self._tracer.start_as_current_span(
            attr.SPAN_ROUTER_CLASSIFY, kind=SpanKind.INTERNAL
        ) as span:
            span.set_attribute(attr.TENANT, req.tenant)
            started = time.perf_counter()
            status = "OK"
            cost = 0.0
            try:
                timeout = req.timeout(config.timeout_ms / 1000)
                response = await self._connections.classifier(config.address).Classify(
                    classifier_pb2.ClassifyRequest(prompt=prompt), timeout=timeout
                )
                req.classification = response.classification
                cost = max(0.0, response.cost_usd)
            except grpc.aio.AioRpcError as error:
                status = error.code().name
                span.set_status(SpanStatus.ERROR, f"classifier {status}: default route")
                log.warning("classifier call failed", status=status, request_id=req.request_id)
            latency = (time.perf_counter() - started) * 1000
            req.classifier_cost = cost
            span.set_attribute(attr.COST_USD, cost)
            span.set_attribute(attr.ROUTER_STATUS, status)
            span.set_attribute(attr.ROUTER_DEFAULT_ROUTE, req.classification is None)
            if req.classification is not None:
                c = classified(req.classification)
                span.set_attribute(attr.TASK_TYPE, c.task_type)
                span.set_attribute(attr.COMPLEXITY, c.complexity)
                span.set_attribute(attr.ROUTER_ESCALATION_SCORE, c.escalation_probability)
            req.hops.append(
                HopResult(
                    kind="CLASSIFY",
                    service=_CLASSIFIER_SERVICE,
                    target="",
                    model=req.classification.model_version if req.classification else "",
                    status=status,
                    latency_ms=latency,
                    cost_usd=cost,
                    input_tokens=req.classification.input_tokens if req.classification else 0,
                )
            )

    # ---- generation --------------------------------------------------------------------------

    async def _admit(self, req: _Request, target: BoundTarget) -> str | None:
        """Budget check before an attempt: raise over hard; why `target` is skipped, or None."""
        soft = await self._check_budget(req)
        assert req.inputs is not None
        return admissible(target, replace(req.inputs, soft_budget_exceeded=soft))

    def _generate_request(self, target: BoundTarget, request: Any, cls: Any) -> Any:
        return cls(model=target.model, messages=request.messages, parameters=request.parameters)

    def _attempt_span(self, req: _Request, target: BoundTarget, index: int) -> Any:
        span = self._tracer.start_as_current_span(attr.SPAN_ROUTER_GENERATE, kind=SpanKind.INTERNAL)
        return span

    def _start_attempt(self, span: Span, req: _Request, target: BoundTarget, index: int) -> None:
        span.set_attribute(attr.GEN_AI_OPERATION_NAME, attr.GEN_AI_OPERATION_CHAT)
        span.set_attribute(attr.GEN_AI_REQUEST_MODEL, target.model)
        span.set_attribute(attr.ROUTER_TARGET, target.name)
        span.set_attribute(attr.ROUTER_TARGET_KIND, target.kind.value)
        span.set_attribute(attr.ROUTER_BACKEND, target.backend)
        span.set_attribute(attr.ROUTER_ATTEMPT, index)
        span.set_attribute(attr.TENANT, req.tenant)
        span.set_attribute(attr.TASK_TYPE, self._task_type(req))

    def _priced(
        self, target: BoundTarget, usage: inference_pb2.Usage | None, in_tok: int, out_tok: int
    ) -> tuple[float, bool]:
        """The attempt's cost: the backend's, or priced from the registry when it gave none."""
        if usage is not None and usage.cost_usd > 0:
            return usage.cost_usd, False
        return price(target.pricing, in_tok, out_tok), True

    def _end_attempt(
        self,
        span: Span,
        req: _Request,
        target: BoundTarget,
        status: str,
        started: float,
        *,
        usage: inference_pb2.Usage | None = None,
        model: str = "",
        provider: str = "",
        partial_output_tokens: int = 0,
    ) -> HopResult:
        latency_ms = (time.perf_counter() - started) * 1000
        if usage is not None:
            in_tok, out_tok = usage.input_tokens, usage.output_tokens
        elif partial_output_tokens:  # broke after the first token: estimate what was used
            assert req.inputs is not None
            in_tok, out_tok = req.inputs.input_tokens, partial_output_tokens
        else:
            in_tok = out_tok = 0
        cost, estimated = self._priced(target, usage, in_tok, out_tok)
        if in_tok == 0 and out_tok == 0:
            cost, estimated = (usage.cost_usd if usage else 0.0), False
        hop = HopResult(
            kind="GENERATE",
            service=target.backend,
            target=target.name,
            model=model or target.model,
            status=status,
            latency_ms=latency_ms,
            cost_usd=cost,
            input_tokens=in_tok,
            output_tokens=out_tok,
            cost_estimated=estimated,
        )
        req.hops.append(hop)
        span.set_attribute(attr.ROUTER_STATUS, status)
        span.set_attribute(attr.COST_USD, cost)
        span.set_attribute(attr.GEN_AI_USAGE_COST, cost)
        span.set_attribute(attr.GEN_AI_USAGE_INPUT_TOKENS, in_tok)
        span.set_attribute(attr.GEN_AI_USAGE_OUTPUT_TOKENS, out_tok)
        if model:
            span.set_attribute(attr.GEN_AI_RESPONSE_MODEL, model)
        if status != "OK":
            span.set_status(SpanStatus.ERROR, status)
        metric_attrs = {
            attr.GEN_AI_OPERATION_NAME: attr.GEN_AI_OPERATION_CHAT,
            attr.GEN_AI_REQUEST_MODEL: target.model or hop.model,
            attr.GEN_AI_PROVIDER_NAME: provider or target.backend,
            attr.TENANT: req.tenant,
            attr.TASK_TYPE: self._task_type(req),
            attr.ROUTER_TARGET: target.name,
        }
        duration_attrs = dict(metric_attrs)
        if status != "OK":
            duration_attrs["error.type"] = status
        self._duration.record(latency_ms / 1000, duration_attrs)
        if in_tok or out_tok:
            self._tokens.record(in_tok, {**metric_attrs, attr.GEN_AI_TOKEN_TYPE: "input"})
            self._tokens.record(out_tok, {**metric_attrs, attr.GEN_AI_TOKEN_TYPE: "output"})
        return hop

    @staticmethod
    def _exhausted(
        skipped: list[tuple[str, str]], failures: list[tuple[str, grpc.StatusCode, str]]
    ) -> SwitchyardError:
        parts = [f"{name}: {why}" for name, why in skipped]
        parts += [f"{name}: {code.name}" for name, code, _ in failures]
        summary = "; ".join(parts)
        if failures:
            name, code, details = failures[-1]
            return _error_for(code, f"every target failed ({summary}); last error: {details}")
        return ResourceExhausted(f"no target may serve this request now ({summary})")

    async def _generate(self, req: _Request, request: Any) -> inference_pb2.GenerateResponse:
        assert req.decision is not None
        skipped: list[tuple[str, str]] = []
        failures: list[tuple[str, grpc.StatusCode, str]] = []
        for index, target in enumerate(req.decision.chain):
            refusal = await self._admit(req, target)
            if refusal is not None:
                skipped.append((target.name, refusal))
                continue
            backend = req.config.backends[target.backend]
            with self._attempt_span(req, target, index) as span:
                self._start_attempt(span, req, target, index)
                started = time.perf_counter()
                try:
                    response = await self._connections.backend(backend.address).Generate(
                        self._generate_request(target, request, inference_pb2.GenerateRequest),
                        timeout=req.timeout(backend.timeout_s),
                    )
                except grpc.aio.AioRpcError as error:
                    code = error.code()
                    self._end_attempt(span, req, target, code.name, started)
                    failures.append((target.name, code, error.details() or code.name))
                    if self._falls_back(req, target, code):
                        continue
                    raise _error_for(
                        code,
                        f"{target.name} ({target.backend}) failed: {error.details() or code.name}",
                    ) from None
                self._served(span, req, target, started, response)
                return response
        raise self._exhausted(skipped, failures)

    def _falls_back(self, req: _Request, target: BoundTarget, code: grpc.StatusCode) -> bool:
        """Whether a failure before the first token moves on to the next target of the chain."""
        if code not in FALLBACK_CODES or not req.time_left():
            return False
        log.warning(
            "backend failed before the first token: falling back",
            target=target.name,
            status=code.name,
            request_id=req.request_id,
        )
        return True

    def _served(
        self,
        span: Span,
        req: _Request,
        target: BoundTarget,
        started: float,
        result: inference_pb2.GenerateResponse | inference_pb2.GenerationComplete,
    ) -> None:
        """Close a successful attempt: its hop, and what the request was served by."""
        self._end_attempt(
            span,
            req,
            target,
            "OK",
            started,
            usage=result.usage,
            model=result.model,
            provider=result.provider,
        )
        req.served = target
        req.served_model = result.model or target.model
        req.usage = self._usage_of(req, result.usage)

    def _usage_of(self, req: _Request, usage: inference_pb2.Usage) -> inference_pb2.Usage:
        """The usage reported to the caller, with the cost the router billed for the attempt."""
        out = inference_pb2.Usage()
        out.CopyFrom(usage)
        out.cost_usd = req.hops[-1].cost_usd
        return out

    async def _generate_stream(
        self, req: _Request, request: Any
    ) -> AsyncIterator[router_pb2.CompleteStreamResponse]:
        assert req.decision is not None
        skipped: list[tuple[str, str]] = []
        failures: list[tuple[str, grpc.StatusCode, str]] = []
        for index, target in enumerate(req.decision.chain):
            refusal = await self._admit(req, target)
            if refusal is not None:
                skipped.append((target.name, refusal))
                continue
            backend = req.config.backends[target.backend]
            with self._attempt_span(req, target, index) as span:
                self._start_attempt(span, req, target, index)
                started = time.perf_counter()
                call = self._connections.backend(backend.address).GenerateStream(
                    self._generate_request(target, request, inference_pb2.GenerateStreamRequest),
                    timeout=req.timeout(backend.timeout_s),
                )
                first = True
                streamed_chars = 0
                try:
                    async for event in call:
                        first = False
                        if event.HasField("delta"):
                            delta = event.delta
                            streamed_chars += len(delta.text) + len(delta.reasoning_text)
                            yield router_pb2.CompleteStreamResponse(delta=event.delta)
                        elif event.HasField("complete"):
                            self._served(span, req, target, started, event.complete)
                            req.finish_reason = event.complete.finish_reason
                            return
                except grpc.aio.AioRpcError as error:
                    code = error.code()
                    self._end_attempt(
                        span,
                        req,
                        target,
                        code.name,
                        started,
                        partial_output_tokens=_streamed_tokens(streamed_chars),
                    )
                    failures.append((target.name, code, error.details() or code.name))
                    if first and self._falls_back(req, target, code):
                        continue
                    if not first:
                        req.served = target
                    raise _error_for(
                        code,
                        f"{target.name} ({target.backend}) failed"
                        f"{' mid-stream' if not first else ''}: "
                        f"{error.details() or code.name}",
                    ) from None
                except BaseException:
                    call.cancel()
                    self._end_attempt(
                        span,
                        req,
                        target,
                        "CANCELLED",
                        started,
                        partial_output_tokens=_streamed_tokens(streamed_chars),
                    )
                    raise
                # the backend ended the stream without `complete`: an error by contract
                self._end_attempt(
                    span,
                    req,
                    target,
                    "INTERNAL",
                    started,
                    partial_output_tokens=_streamed_tokens(streamed_chars),
                )
                raise SwitchyardError(f"{target.name} ended its stream without a summary")
        raise self._exhausted(skipped, failures)

    # ---- results -----------------------------------------------------------------------------

    def _decision_message(self, req: _Request) -> router_pb2.RoutingDecision:
        assert req.decision is not None
        served = req.served
        override = None
        if served is not None and served is not req.decision.target:
            override = (served.name, served.kind, served.backend, served.model)
        return decision_message(req.decision, req.classification, target_override=override)

    def _breakdown(self, req: _Request) -> router_pb2.CostBreakdown:
        return router_pb2.CostBreakdown(
            hops=[hop_message(h) for h in req.hops],
            total_cost_usd=math.fsum(h.cost_usd for h in req.hops),
            total_latency_ms=(time.perf_counter() - req.started) * 1000,
        )

    def _finish(self, req: _Request) -> None:
        """Account for the request: span, metrics, spend tracker and one ledger record."""
        latency_ms = (time.perf_counter() - req.started) * 1000
        total = math.fsum(h.cost_usd for h in req.hops)
        span = req.span
        span.set_attribute(attr.COST_USD, total)
        span.set_attribute(attr.ROUTER_STATUS, req.status)
        if req.served is not None:
            span.set_attribute(attr.ROUTER_TARGET, req.served.name)
        task_type = self._task_type(req)
        config = req.config
        decision = req.decision
        target = req.served or (decision.target if decision else None)
        if target is None:
            # refused before a decision (bad input, hard budget, policy): count it where the
            # classifier-down default would have gone
            try:
                target = bind(config, config.routing.default_target)
            except SwitchyardError:  # pragma: no cover - validated config
                return
        self._requests.add(
            1,
            {
                attr.TENANT: req.tenant,
                attr.TASK_TYPE: task_type,
                attr.GEN_AI_REQUEST_MODEL: target.model,
                attr.ROUTER_TARGET: target.name,
                attr.ROUTER_STATUS: req.status,
                attr.ROUTER_OPERATION: req.operation,
            },
        )
        self._cost.add(
            total,
            {
                attr.TENANT: req.tenant,
                attr.TASK_TYPE: task_type,
                attr.GEN_AI_REQUEST_MODEL: target.model,
                attr.ROUTER_TARGET: target.name,
            },
        )
        in_tok = req.usage.input_tokens if req.usage else 0
        out_tok = req.usage.output_tokens if req.usage else 0
        baseline = 0.0
        if req.usage is not None:
            baseline_target = config.targets.get(config.baseline_target)
            if baseline_target is not None:
                baseline = price(baseline_target.pricing, in_tok, out_tok)
        attempts = tuple(
            AttemptRecord(
                target=h.target,
                backend=h.service,
                model=h.model or "default",
                status=h.status if h.status in _STATUS_NAMES else "UNKNOWN",
                latency_ms=h.latency_ms,
                cost_usd=h.cost_usd,
                input_tokens=h.input_tokens,
                output_tokens=h.output_tokens,
            )
            for h in req.hops
            if h.kind == "GENERATE"
        )
        c = classified(req.classification) if req.classification is not None else None
        try:
            record = RequestRecord(
                request_id=req.request_id,
                time=req.time,
                tenant=req.tenant,
                task_type=task_type,
                complexity=c.complexity if c else None,
                target=target.name,
                target_kind=target.kind.value,
                model=req.served_model or target.model or "default",
                reason=decision.reason.value if decision else "UNSPECIFIED",
                escalation_score=c.escalation_probability if c else None,
                status=req.status if req.status in _STATUS_NAMES else "UNKNOWN",
                classifier_cost_usd=req.classifier_cost,
                total_cost_usd=req.classifier_cost + math.fsum(a.cost_usd for a in attempts),
                latency_ms=latency_ms,
                input_tokens=in_tok,
                output_tokens=out_tok,
                baseline_cost_usd=baseline,
                attempts=attempts,
            )
        except ValueError as exc:  # a bug, not the caller's fault: log, keep serving
            log.error("ledger record rejected", request_id=req.request_id, error=str(exc))
            return
        self._spend.add_pending(
            req.tenant, record.total_cost_usd, record.request_id, at=record.time
        )
        self._ledger.submit(record)


_STATUS_NAMES = frozenset(code.name for code in grpc.StatusCode)


def _streamed_tokens(chars: int) -> int:
    """Output tokens to bill for a stream cut after `chars` characters (about four a token)."""
    return (chars + 3) // 4


def _status_of(exc: BaseException) -> str:
    if isinstance(exc, SwitchyardError):
        return exc.code.name
    if isinstance(exc, asyncio.CancelledError | GeneratorExit):
        return "CANCELLED"
    if isinstance(exc, grpc.aio.AbortError):
        return "UNKNOWN"
    return "INTERNAL"
