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
from switchyard.router.config import RouterConfig, TargetKind
from switchyard.router.connections import Connections
from switchyard.router.conversion import (
    HopResult,
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
from switchyard.router.request import InFlight, RoutedRequest, status_of
from switchyard.router.windows import ContextWindows
from switchyard.runtime import attributes as attr
from switchyard.runtime.channels import outgoing_metadata
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

#: The classifier status of a forced target's request that was not classified
#: (`classifier.forced_targets: skip`).
CLASSIFIER_SKIPPED = "SKIPPED"

#: The classify span is the CLIENT span of its call (no gRPC client interceptor: connections.py).
_CLASSIFY_RPC = {
    attr.RPC_SYSTEM: "grpc",
    attr.RPC_SERVICE: classifier_pb2.DESCRIPTOR.services_by_name["ClassifierService"].full_name,
    attr.RPC_METHOD: "Classify",
}

#: A request message the router serves (all three carry messages, parameters, routing).
RouterRequest = (
    router_pb2.RouteRequest | router_pb2.CompleteRequest | router_pb2.CompleteStreamRequest
)


def _retrieve(task: asyncio.Task[None]) -> None:
    """Collect an abandoned task's outcome (so asyncio does not report it never was)."""
    if not task.cancelled():
        task.exception()


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
        in_flight: InFlight | None = None,
        log_prompts: bool = False,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        self._config = config
        self._evaluator = evaluator
        self._in_flight = in_flight or InFlight()
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
                await self._decide(req, request, overlap=True)
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
                await self._decide(req, request, overlap=True)
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
        self._done(req)
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
        self._done(req)
        req.status = status_of(exc)
        if isinstance(exc, asyncio.CancelledError | GeneratorExit):
            if req.classifying is not None:
                req.classifying.cancel()
                req.classifying.add_done_callback(_retrieve)
        else:
            await self._settle(req)
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
        span.set_attributes(
            {attr.REQUEST_ID: req.request_id, attr.TENANT: tenant, attr.ROUTER_OPERATION: operation}
        )
        self._in_flight.count += 1
        req.in_flight = True
        return req

    def _done(self, req: RoutedRequest) -> None:
        """The request is no longer being served (counted once, whichever way it ended)."""
        if req.in_flight:
            req.in_flight = False
            self._in_flight.count -= 1

    async def _check_budget(self, req: RoutedRequest) -> bool:
        """Raise over a hard limit; return whether the soft limit is reached."""
        budget = req.config.tenants.get(req.tenant)
        if budget is None or not budget.budget.is_limited:
            return False
        state = await self._spend.state(req.tenant, budget.budget, pending_usd=req.cost_so_far)
        if state.hard_exceeded:
            raise BudgetExceeded(f"tenant {req.tenant!r} is over its budget: {state.detail}")
        return state.soft_exceeded

    async def _decide(
        self, req: RoutedRequest, request: RouterRequest, *, overlap: bool = False
    ) -> None:
        """Budget, classifier, policy. With a target the caller forced the decision does not
        depend on the classifier: with `classifier.forced_targets: skip` it is not asked, else,
        with `overlap` (a call follows), it is asked beside the backend call instead of before
        it, and its task type and score (for the ledger, the response, the spans and metrics)
        are in before the attempt ends (`_settle`)."""
        messages = request.messages
        prompt = prompt_of(messages)
        options = overrides(request.routing)
        config = req.config
        forced = bind(config, options.force_target) if options.force_target else None
        soft = await self._check_budget(req)
        # under a soft budget a forced frontier target moves to a local one the task type picks
        independent = forced is not None and not (soft and forced.kind is TargetKind.FRONTIER)
        if independent and config.classifier.forced_targets == "skip":
            req.classifier_text, req.classifier_excerpt = classifier_excerpt(
                prompt, config.classifier.max_prompt_bytes
            )
            req.classifier_status = CLASSIFIER_SKIPPED
        elif independent and overlap:
            req.classifying = asyncio.ensure_future(self._classify(req, prompt))
        else:
            await self._classify(req, prompt)
        output_tokens = (
            request.parameters.max_tokens
            if request.parameters.HasField("max_tokens")
            else config.routing.estimated_output_tokens
        )
        texts = [m.content for m in messages]
        req.inputs = PolicyInputs(
            classification=req.classified,
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
        target = d.target
        attributes: dict[str, str | bool | int | float] = {
            attr.GEN_AI_OPERATION_NAME: attr.GEN_AI_OPERATION_CHAT,
            attr.GEN_AI_REQUEST_MODEL: target.model or target.name,
            attr.ROUTER_TARGET: target.name,
            attr.ROUTER_TARGET_KIND: target.kind.value,
            attr.ROUTER_REASON: d.reason.value,
            attr.ROUTER_REASON_DETAIL: d.detail,
            attr.ROUTER_ESCALATION_THRESHOLD: d.escalation_threshold,
            attr.ROUTER_PROMPT_TOKENS_ESTIMATE: req.inputs.window_tokens,
        }
        if target.context_window is not None:
            attributes[attr.ROUTER_CONTEXT_WINDOW] = target.context_window
        req.span.set_attributes(attributes)
        if req.classifying is None:
            self._classification_attributes(req)
        if d.reason is DecisionReason.CONTEXT_WINDOW:
            log.info(
                "context window: moved along the chain", detail=d.detail, request_id=req.request_id
            )

    def _classification_attributes(self, req: RoutedRequest) -> None:
        """What the classifier told the request span (once the classification is in)."""
        c = req.classified
        assert req.decision is not None
        skipped = req.classifier_status == CLASSIFIER_SKIPPED
        attributes: dict[str, str | bool | float] = {
            attr.TASK_TYPE: c.task_type if c is not None else "",
            attr.ROUTER_ESCALATION_SCORE: req.decision.escalation_score,
            attr.ROUTER_ESCALATION_THRESHOLD: req.decision.escalation_threshold,
            attr.ROUTER_DEFAULT_ROUTE: c is None and not skipped,
            attr.ROUTER_CLASSIFIER_EXCERPT: req.classifier_excerpt,
        }
        if c is not None:
            attributes[attr.COMPLEXITY] = c.complexity
        if req.classification is not None and req.classification.model_version:
            attributes[attr.CLASSIFIER_MODEL_VERSION] = req.classification.model_version
        req.span.set_attributes(attributes)
        if c is None and not skipped:
            log.warning(
                "no classification: default route",
                classifier_status=req.classifier_status,
                target=req.decision.target.name,
                request_id=req.request_id,
            )

    async def _settle(self, req: RoutedRequest) -> None:
        """Wait for a classifier call overlapped with the backend call (a forced target), and
        take its task type and escalation score into the request (once)."""
        task = req.classifying
        if task is None:
            return
        req.classifying = None
        await task
        assert req.inputs is not None and req.decision is not None
        req.inputs = replace(
            req.inputs, classification=req.classified, classifier_status=req.classifier_status
        )
        again = decide(req.config, req.inputs)  # pure: the score and threshold it reports
        req.decision = replace(
            req.decision,
            escalation_score=again.escalation_score,
            escalation_threshold=again.escalation_threshold,
        )
        self._classification_attributes(req)

    async def _classify(self, req: RoutedRequest, prompt: str) -> None:
        config = req.config.classifier
        with self._tracer.start_as_current_span(
            attr.SPAN_ROUTER_CLASSIFY, kind=SpanKind.CLIENT, attributes=_CLASSIFY_RPC
        ) as span:
            started = time.perf_counter()
            status = "OK"
            code = grpc.StatusCode.OK
            cost = 0.0
            text, req.classifier_excerpt = classifier_excerpt(prompt, config.max_prompt_bytes)
            req.classifier_text = text
            try:
                timeout = req.timeout(config.timeout_ms / 1000)
                response = await self._connections.classifier(config.address).Classify(
                    classifier_pb2.ClassifyRequest(prompt=text),
                    timeout=timeout,
                    metadata=outgoing_metadata(),
                )
                req.classify_done(response.classification)
                cost = max(0.0, response.cost_usd)
            except grpc.aio.AioRpcError as error:
                code = error.code()
                status = code.name
                span.set_status(SpanStatus.ERROR, f"classifier {status}: default route")
                log.warning("classifier call failed", status=status, request_id=req.request_id)
            req.classifier_status = status
            latency = (time.perf_counter() - started) * 1000
            req.classifier_cost = cost
            c = req.classified
            attributes: dict[str, str | bool | int | float] = {
                attr.TENANT: req.tenant,
                attr.ROUTER_CLASSIFIER_EXCERPT: req.classifier_excerpt,
                attr.COST_USD: cost,
                attr.ROUTER_STATUS: status,
                attr.RPC_GRPC_STATUS_CODE: code.value[0],
                attr.ROUTER_DEFAULT_ROUTE: c is None,
            }
            if c is not None:
                attributes[attr.TASK_TYPE] = c.task_type
                attributes[attr.COMPLEXITY] = c.complexity
                attributes[attr.ROUTER_ESCALATION_SCORE] = c.escalation_probability
            span.set_attributes(attributes)
            classification = req.classification
            req.hops.insert(
                0,
                HopResult(
                    kind="CLASSIFY",
                    service=_CLASSIFIER_SERVICE,
                    target="",
                    model=classification.model_version if classification else "",
                    status=status,
                    latency_ms=latency,
                    cost_usd=cost,
                    input_tokens=classification.input_tokens if classification else 0,
                ),
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
            stub = self._connections.backend(attempt.target.backend, backend.address)
            try:
                response = await stub.Generate(
                    inference_pb2.GenerateRequest(
                        model=attempt.target.model,
                        messages=request.messages,
                        parameters=request.parameters,
                    ),
                    timeout=attempt.req.timeout(backend.timeout_s),
                    metadata=outgoing_metadata(),
                )
            except grpc.aio.AioRpcError as error:
                await self._settle(attempt.req)
                raise self._attempts.failed(attempt, error) from None
            await self._settle(attempt.req)
            self._attempts.served(attempt, response)
            yield response

        return call

    def _stream_call(
        self, request: router_pb2.CompleteStreamRequest
    ) -> Callable[[Attempt], AsyncGenerator[router_pb2.CompleteStreamResponse, None]]:
        async def call(attempt: Attempt) -> AsyncGenerator[router_pb2.CompleteStreamResponse, None]:
            backend = attempt.backend
            stub = self._connections.backend(attempt.target.backend, backend.address)
            rpc = stub.GenerateStream(
                inference_pb2.GenerateStreamRequest(
                    model=attempt.target.model,
                    messages=request.messages,
                    parameters=request.parameters,
                ),
                timeout=attempt.req.timeout(backend.timeout_s),
                metadata=outgoing_metadata(),
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
                        await self._settle(attempt.req)
                        self._attempts.served(attempt, event.complete)
                        attempt.req.finish_reason = event.complete.finish_reason
                        return
            except grpc.aio.AioRpcError as error:
                await self._settle(attempt.req)
                raise self._attempts.failed(attempt, error) from None
            except BaseException:
                rpc.cancel()
                self._attempts.end(attempt, "CANCELLED")
                raise
            # the backend ended the stream without `complete`: an error by contract
            await self._settle(attempt.req)
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
