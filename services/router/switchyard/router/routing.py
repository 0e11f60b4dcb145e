"""One decision path for Route, Complete and CompleteStream: begin -> decide -> call -> account.

`Router` holds the injected dependencies (configuration source, channels, spend tracker, ledger
writer) and runs a request end to end; authentication is the servicer's job, everything after
it is here or in the phase modules:

- decide (this module): budget check, the classifier call, the pure policy (`policy.decide`);
- call (`attempts.AttemptRunner`): the chain of targets with fallbacks, one loop for unary and
  streamed generation;
- account (`accounting.RequestAccounting`): every request, failed ones included, leaves one
  ledger record once it has been admitted, and is answered only once that record is durable
  (`LedgerWriter.submit`'s future): a caller that received an answer has its record on disk;
- evaluate (`evaluation.ShadowEvaluator`, when shadow evaluation samples anything): a sampled
  answered request is offered for shadow evaluation once its record is durable, without
  waiting; whether it is sampled is decided with the decision (`evaluation.sampling`).
"""

from __future__ import annotations

import asyncio
import math
import time
import uuid
from collections.abc import AsyncGenerator, Callable
from contextlib import aclosing
from dataclasses import replace
from datetime import UTC, datetime

import grpc
from opentelemetry import trace
from opentelemetry.trace import SpanKind
from opentelemetry.trace import StatusCode as SpanStatus

from switchyard.api.classifier.v1 import classifier_pb2
from switchyard.api.inference.v1 import inference_pb2
from switchyard.api.router.v1 import router_pb2
from switchyard.router.accounting import RequestAccounting
from switchyard.router.attempts import Attempt, AttemptRunner
from switchyard.router.budget import SpendTracker
from switchyard.router.config import RouterConfig
from switchyard.router.connections import Connections
from switchyard.router.conversion import (
    HopResult,
    classified,
    classifier_excerpt,
    decision_message,
    hop_message,
    overrides,
    prompt_of,
)
from switchyard.router.evaluation.evaluator import ShadowEvaluator
from switchyard.router.evaluation.intake import evaluation_job, sampled_share
from switchyard.router.ledger.interface import LedgerError
from switchyard.router.ledger.writer import LedgerWriter
from switchyard.router.policy import (
    BoundTarget,
    DecisionReason,
    PolicyInputs,
    admissible,
    bind,
    decide,
    estimate_tokens,
    estimate_window_tokens,
)
from switchyard.router.request import RoutedRequest, status_of
from switchyard.router.windows import ContextWindows
from switchyard.runtime import attributes as attr
from switchyard.runtime.errors import (
    BudgetExceeded,
    SwitchyardError,
    Unavailable,
)
from switchyard.runtime.logging import get_logger
from switchyard.runtime.telemetry import get_tracer, request_baggage

__all__ = ["Router"]

log = get_logger(__name__)

_CLASSIFIER_SERVICE = "classifier"

#: A request message the router serves (all three carry messages, parameters, routing).
RouterRequest = (
    router_pb2.RouteRequest | router_pb2.CompleteRequest | router_pb2.CompleteStreamRequest
)


class Router:
    def __init__(
        self,
        config: Callable[[], RouterConfig],
        connections: Connections,
        spend: SpendTracker,
        ledger: LedgerWriter,
        *,
        windows: ContextWindows | None = None,
        evaluator: ShadowEvaluator | None = None,
        log_prompts: bool = False,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        self._config = config
        self._evaluator = evaluator
        self._clock = clock
        self._connections = connections
        self._windows = windows
        self._spend = spend
        self._log_prompts = log_prompts
        self._tracer = get_tracer(__name__)
        self._attempts = AttemptRunner(self._admit)
        self._accounting = RequestAccounting(spend, ledger)

    # ---- public operations -------------------------------------------------------------------

    async def route(
        self,
        request: router_pb2.RouteRequest,
        tenant: str,
        remaining_s: float | None,
        *,
        request_id: str | None = None,
    ) -> router_pb2.RouteResponse:
        req = self._begin(tenant, "route", remaining_s, request_id)
        try:
            with request_baggage(tenant=tenant):
                await self._decide(req, request)
                decision = self._decision_message(req)
            req.status = "OK"
        except BaseException as exc:
            await self._account_failure(req, exc)
            raise
        await self._account(req)
        return router_pb2.RouteResponse(decision=decision, cost=self._breakdown(req))

    async def complete(
        self,
        request: router_pb2.CompleteRequest,
        tenant: str,
        remaining_s: float | None,
        *,
        request_id: str | None = None,
    ) -> router_pb2.CompleteResponse:
        req = self._begin(tenant, "complete", remaining_s, request_id)
        try:
            with request_baggage(tenant=tenant):
                await self._decide(req, request)
                with request_baggage(task_type=req.task_type):
                    responses = [
                        r async for r in self._attempts.run(req, self._unary_call(request))
                    ]
            (response,) = responses
            req.status = "OK"
        except BaseException as exc:
            await self._account_failure(req, exc)
            raise
        await self._account(req)
        if req.sample_share:
            self._offer(req, request, response.text)
        return router_pb2.CompleteResponse(
            request_id=req.request_id,
            text=response.text,
            reasoning_text=response.reasoning_text,
            finish_reason=response.finish_reason,
            usage=req.usage,
            decision=self._decision_message(req),
            cost=self._breakdown(req),
        )

    async def stream(
        self,
        request: router_pb2.CompleteStreamRequest,
        tenant: str,
        remaining_s: float | None,
        *,
        request_id: str | None = None,
    ) -> AsyncGenerator[router_pb2.CompleteStreamResponse, None]:
        req = self._begin(tenant, "complete_stream", remaining_s, request_id)
        try:
            with request_baggage(tenant=tenant):
                await self._decide(req, request)
                yield router_pb2.CompleteStreamResponse(decision=self._decision_message(req))
                with request_baggage(task_type=req.task_type):
                    events = self._attempts.run(req, self._stream_call(request))
                    async with aclosing(events):
                        async for event in events:
                            yield event
            req.status = "OK"
        except BaseException as exc:
            await self._account_failure(req, exc)
            raise
        await self._account(req)
        if req.sample_share:
            self._offer(req, request, "".join(req.streamed_text))
        yield router_pb2.CompleteStreamResponse(
            summary=router_pb2.CompleteStreamSummary(
                request_id=req.request_id,
                finish_reason=req.finish_reason,
                usage=req.usage,
                decision=self._decision_message(req),
                cost=self._breakdown(req),
            )
        )

    # ---- account -----------------------------------------------------------------------------

    async def _account(self, req: RoutedRequest) -> None:
        """Record the request and wait until the record is durable: only then is it answered."""
        durable = self._accounting.finish(req)
        if durable is None:
            return
        try:
            await durable
        except LedgerError as error:
            raise Unavailable(
                f"request {req.request_id}: its cost record could not be made durable ({error})"
            ) from None

    async def _account_failure(self, req: RoutedRequest, exc: BaseException) -> None:
        """Record a request that ended with `exc`; durable before the error is sent, unless the
        caller is gone (cancelled) and nothing is sent."""
        req.status = status_of(exc)
        durable = self._accounting.finish(req)
        if durable is None or isinstance(exc, asyncio.CancelledError | GeneratorExit):
            return
        try:
            await durable
        except LedgerError as error:
            log.error("a failed request's record is not durable", request_id=req.request_id,
                      error=str(error))  # fmt: skip

    # ---- evaluate ----------------------------------------------------------------------------

    def _sample(self, req: RoutedRequest) -> None:
        """Decide, with the decision, whether this request will be shadow-evaluated."""
        if self._evaluator is None:
            return
        share = sampled_share(req)
        if share and self._evaluator.paused(req.config):
            self._evaluator.skip(req.request_id, req.tenant, req.task_type, "budget")
            share = 0.0
        req.sample_share = share

    def _offer(self, req: RoutedRequest, request: RouterRequest, answer: str) -> None:
        """Hand an answered, sampled request to the evaluator (never waits)."""
        assert self._evaluator is not None
        job = evaluation_job(req, list(request.messages), request.parameters, answer)
        if job is not None:
            self._evaluator.offer(job)

    # ---- decide ------------------------------------------------------------------------------

    def _begin(
        self, tenant: str, operation: str, remaining_s: float | None, request_id: str | None
    ) -> RoutedRequest:
        """Admit a request; `request_id` lets a door that must name it early (HTTP headers) pick
        it (a fresh uuid4 hex when None)."""
        span = trace.get_current_span()
        req = RoutedRequest(
            request_id=request_id or uuid.uuid4().hex,
            tenant=tenant,
            config=self._config(),
            operation=operation,
            time=self._clock(),
            started=time.perf_counter(),
            deadline=None if remaining_s is None else time.monotonic() + remaining_s,
            span=span,
        )
        span.set_attribute(attr.REQUEST_ID, req.request_id)
        span.set_attribute(attr.TENANT, tenant)
        span.set_attribute(attr.ROUTER_OPERATION, operation)
        return req

    async def _check_budget(self, req: RoutedRequest) -> bool:
        """Raise over a hard limit; return whether the soft limit is reached."""
        budget = req.config.tenants.get(req.tenant)
        if budget is None or not budget.budget.is_limited:
            return False
        state = await self._spend.state(req.tenant, budget.budget, pending_usd=req.cost_so_far)
        if state.hard_exceeded:
            raise BudgetExceeded(f"tenant {req.tenant!r} is over its budget: {state.detail}")
        return state.soft_exceeded

    async def _decide(self, req: RoutedRequest, request: RouterRequest) -> None:
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
        texts = [m.content for m in request.messages]
        req.inputs = PolicyInputs(
            classification=classified(req.classification) if req.classification else None,
            overrides=options,
            soft_budget_exceeded=soft,
            input_tokens=sum(estimate_tokens(t) for t in texts),
            output_tokens=output_tokens,
            window_tokens=estimate_window_tokens(texts, config.routing.window_estimate_factor),
            context_windows=self._windows.for_targets(config) if self._windows else {},
            classifier_status=req.classifier_status,
        )
        req.decision = decide(config, req.inputs)
        self._sample(req)
        d = req.decision
        span = req.span
        span.set_attribute(
            attr.TASK_TYPE, req.inputs.classification.task_type if req.inputs.classification else ""
        )
        if req.inputs.classification is not None:
            span.set_attribute(attr.COMPLEXITY, req.inputs.classification.complexity)
        if req.classification is not None and req.classification.model_version:
            span.set_attribute(attr.CLASSIFIER_MODEL_VERSION, req.classification.model_version)
        span.set_attribute(attr.GEN_AI_OPERATION_NAME, attr.GEN_AI_OPERATION_CHAT)
        span.set_attribute(attr.GEN_AI_REQUEST_MODEL, d.target.model or d.target.name)
        span.set_attribute(attr.ROUTER_TARGET, d.target.name)
        span.set_attribute(attr.ROUTER_TARGET_KIND, d.target.kind.value)
        span.set_attribute(attr.ROUTER_REASON, d.reason.value)
        span.set_attribute(attr.ROUTER_REASON_DETAIL, d.detail)
        span.set_attribute(attr.ROUTER_ESCALATION_SCORE, d.escalation_score)
        span.set_attribute(attr.ROUTER_ESCALATION_THRESHOLD, d.escalation_threshold)
        span.set_attribute(attr.ROUTER_DEFAULT_ROUTE, req.classification is None)
        span.set_attribute(attr.ROUTER_CLASSIFIER_EXCERPT, req.classifier_excerpt)
        span.set_attribute(attr.ROUTER_PROMPT_TOKENS_ESTIMATE, req.inputs.window_tokens)
        if d.target.context_window is not None:
            span.set_attribute(attr.ROUTER_CONTEXT_WINDOW, d.target.context_window)
        if req.classification is None:
            log.warning(
                "no classification: default route",
                classifier_status=req.classifier_status,
                target=d.target.name,
                request_id=req.request_id,
            )
        if d.reason is DecisionReason.CONTEXT_WINDOW:
            log.info(
                "context window: moved along the chain", detail=d.detail, request_id=req.request_id
            )

    async def _classify(self, req: RoutedRequest, prompt: str) -> None:
        config = req.config.classifier
        with self._tracer.start_as_current_span(
            attr.SPAN_ROUTER_CLASSIFY, kind=SpanKind.INTERNAL
        ) as span:
            span.set_attribute(attr.TENANT, req.tenant)
            started = time.perf_counter()
            status = "OK"
            cost = 0.0
            text, req.classifier_excerpt = classifier_excerpt(prompt, config.max_prompt_bytes)
            req.classifier_text = text
            span.set_attribute(attr.ROUTER_CLASSIFIER_EXCERPT, req.classifier_excerpt)
            try:
                timeout = req.timeout(config.timeout_ms / 1000)
                response = await self._connections.classifier(config.address).Classify(
                    classifier_pb2.ClassifyRequest(prompt=text), timeout=timeout
                )
                req.classification = response.classification
                cost = max(0.0, response.cost_usd)
            except grpc.aio.AioRpcError as error:
                status = error.code().name
                span.set_status(SpanStatus.ERROR, f"classifier {status}: default route")
                log.warning("classifier call failed", status=status, request_id=req.request_id)
            req.classifier_status = status
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

    # ---- call --------------------------------------------------------------------------------

    async def _admit(self, req: RoutedRequest, target: BoundTarget) -> str | None:
        """Budget check before an attempt: raise over hard; why `target` is skipped, or None."""
        soft = await self._check_budget(req)
        assert req.inputs is not None
        return admissible(target, replace(req.inputs, soft_budget_exceeded=soft))

    def _unary_call(
        self, request: router_pb2.CompleteRequest
    ) -> Callable[[Attempt], AsyncGenerator[inference_pb2.GenerateResponse, None]]:
        async def call(attempt: Attempt) -> AsyncGenerator[inference_pb2.GenerateResponse, None]:
            backend = attempt.backend
            try:
                response = await self._connections.backend(backend.address).Generate(
                    inference_pb2.GenerateRequest(
                        model=attempt.target.model,
                        messages=request.messages,
                        parameters=request.parameters,
                    ),
                    timeout=attempt.req.timeout(backend.timeout_s),
                )
            except grpc.aio.AioRpcError as error:
                raise self._attempts.failed(attempt, error) from None
            self._attempts.served(attempt, response)
            yield response

        return call

    def _stream_call(
        self, request: router_pb2.CompleteStreamRequest
    ) -> Callable[[Attempt], AsyncGenerator[router_pb2.CompleteStreamResponse, None]]:
        async def call(attempt: Attempt) -> AsyncGenerator[router_pb2.CompleteStreamResponse, None]:
            backend = attempt.backend
            rpc = self._connections.backend(backend.address).GenerateStream(
                inference_pb2.GenerateStreamRequest(
                    model=attempt.target.model,
                    messages=request.messages,
                    parameters=request.parameters,
                ),
                timeout=attempt.req.timeout(backend.timeout_s),
            )
            try:
                async for event in rpc:
                    if event.HasField("delta"):
                        delta = event.delta
                        attempt.relayed(len(delta.text) + len(delta.reasoning_text))
                        if attempt.req.sample_share:
                            attempt.req.streamed_text.append(delta.text)
                        yield router_pb2.CompleteStreamResponse(delta=delta)
                    elif event.HasField("complete"):
                        self._attempts.served(attempt, event.complete)
                        attempt.req.finish_reason = event.complete.finish_reason
                        return
            except grpc.aio.AioRpcError as error:
                raise self._attempts.failed(attempt, error) from None
            except BaseException:
                rpc.cancel()
                self._attempts.end(attempt, "CANCELLED")
                raise
            # the backend ended the stream without `complete`: an error by contract
            self._attempts.end(attempt, "INTERNAL")
            raise SwitchyardError(f"{attempt.target.name} ended its stream without a summary")

        return call

    # ---- results -----------------------------------------------------------------------------

    def _decision_message(self, req: RoutedRequest) -> router_pb2.RoutingDecision:
        assert req.decision is not None
        served = req.served
        override = None
        if served is not None and served is not req.decision.target:
            override = (served.name, served.kind, served.backend, served.model)
        return decision_message(
            req.decision,
            req.classification,
            target_override=override,
            prompt_truncated=req.classifier_excerpt,
        )

    def _breakdown(self, req: RoutedRequest) -> router_pb2.CostBreakdown:
        return router_pb2.CostBreakdown(
            hops=[hop_message(h) for h in req.hops],
            total_cost_usd=math.fsum(h.cost_usd for h in req.hops),
            total_latency_ms=(time.perf_counter() - req.started) * 1000,
        )
