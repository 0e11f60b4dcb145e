"""The call phase: try the decision's chain of targets, one attempt at a time.

`AttemptRunner.run` is the one chain loop for unary and streamed generation. For each target of
the chain it checks the budget (`admit`), opens the attempt's span and runs the caller's `call`
(an async iterator: one response for a unary call, deltas then the summary for a stream),
relaying what it yields. A call that fails raises `AttemptFailed` (see `AttemptRunner.failed`);
the loop then falls back to the next target when the failure came before any output and its
code is one of `FALLBACK_CODES`, and otherwise raises the mapped error. Each attempt leaves one
`HopResult` on the request, its span attributes and the gen_ai client metrics.
"""

from __future__ import annotations

import time
from collections.abc import AsyncGenerator, Awaitable, Callable
from contextlib import aclosing
from dataclasses import dataclass
from typing import Any, TypeVar

import grpc
from opentelemetry.trace import Span, SpanKind
from opentelemetry.trace import StatusCode as SpanStatus

from switchyard.api.inference.v1 import inference_pb2
from switchyard.router.config import BackendConfig
from switchyard.router.conversion import HopResult
from switchyard.router.policy import BoundTarget, price
from switchyard.router.request import RoutedRequest
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
from switchyard.runtime.telemetry import get_meter, get_tracer

__all__ = [
    "FALLBACK_CODES",
    "Attempt",
    "AttemptFailed",
    "AttemptRunner",
    "billed_cost",
    "error_for",
    "streamed_tokens",
]

log = get_logger(__name__)

T = TypeVar("T")

#: Backend failures before the first token that move on to the next target of the chain.
FALLBACK_CODES = frozenset(
    {
        grpc.StatusCode.UNAVAILABLE,
        grpc.StatusCode.RESOURCE_EXHAUSTED,
        grpc.StatusCode.DEADLINE_EXCEEDED,
    }
)

_INFERENCE_SERVICE = inference_pb2.DESCRIPTOR.services_by_name["InferenceService"].full_name
#: gRPC status name -> its number (rpc.grpc.status_code on the attempt's span).
_STATUS_CODES = {code.name: code.value[0] for code in grpc.StatusCode}
_UNKNOWN = grpc.StatusCode.UNKNOWN.value[0]

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


def error_for(code: grpc.StatusCode, message: str) -> SwitchyardError:
    """The router's error for a backend's status code (INTERNAL for codes it does not pass on)."""
    cls = _ERROR_BY_CODE.get(code, SwitchyardError)
    return cls(message)


def streamed_tokens(chars: int) -> int:
    """Output tokens to bill for a stream cut after `chars` characters (about four a token)."""
    return (chars + 3) // 4


@dataclass
class Attempt:
    """One backend attempt in flight."""

    req: RoutedRequest
    target: BoundTarget
    index: int
    span: Span
    started: float
    #: Characters of output relayed so far (a stream cut part-way is billed for them).
    streamed_chars: int = 0
    #: True once any output reached the caller: no fallback after that.
    output_started: bool = False

    @property
    def backend(self) -> BackendConfig:
        return self.req.config.backends[self.target.backend]

    def relayed(self, chars: int) -> None:
        self.output_started = True
        self.streamed_chars += chars


class AttemptFailed(Exception):
    """A backend call failed; raised by a `call` for the chain loop to handle."""

    def __init__(self, code: grpc.StatusCode, details: str, *, output_started: bool) -> None:
        super().__init__(details)
        self.code = code
        self.details = details
        self.output_started = output_started


Admit = Callable[[RoutedRequest, BoundTarget], Awaitable[str | None]]
Call = Callable[[Attempt], AsyncGenerator[T, None]]


class AttemptRunner:
    """Runs a request's chain of targets (see the module docstring)."""

    def __init__(self, admit: Admit) -> None:
        self._admit = admit
        self._tracer = get_tracer(__name__)
        meter = get_meter(__name__)
        self._tokens = meter.create_histogram(
            attr.METRIC_GEN_AI_CLIENT_TOKEN_USAGE, unit="{token}", description="Tokens per call"
        )
        self._duration = meter.create_histogram(
            attr.METRIC_GEN_AI_CLIENT_OPERATION_DURATION,
            unit="s",
            description="Duration of backend calls",
        )

    async def run(self, req: RoutedRequest, call: Call[T]) -> AsyncGenerator[T, None]:
        """Try each target of the decision's chain with `call`, relaying what it yields."""
        assert req.decision is not None
        skipped: list[tuple[str, str]] = []
        failures: list[tuple[str, grpc.StatusCode, str]] = []
        for index, target in enumerate(req.decision.chain):
            refusal = await self._admit(req, target)
            if refusal is not None:
                skipped.append((target.name, refusal))
                continue
            with self._tracer.start_as_current_span(
                attr.SPAN_ROUTER_GENERATE,
                kind=SpanKind.CLIENT,
                attributes=self._span_attributes(req, target, index),
            ) as span:
                attempt = Attempt(req, target, index, span, started=time.perf_counter())
                try:
                    async with aclosing(call(attempt)) as items:
                        async for item in items:
                            yield item
                    return
                except AttemptFailed as failure:
                    failures.append((target.name, failure.code, failure.details))
                    if not failure.output_started and self._falls_back(req, target, failure.code):
                        continue
                    if failure.output_started:
                        req.served = target
                    where = " mid-stream" if failure.output_started else ""
                    raise error_for(
                        failure.code,
                        f"{target.name} ({target.backend}) failed{where}: {failure.details}",
                    ) from None
        raise self._exhausted(skipped, failures)

    def failed(self, attempt: Attempt, error: grpc.aio.AioRpcError) -> AttemptFailed:
        """Close an attempt whose backend call failed; the error for the call to raise."""
        code = error.code()
        self.end(attempt, code.name)
        return AttemptFailed(
            code, error.details() or code.name, output_started=attempt.output_started
        )

    def served(
        self,
        attempt: Attempt,
        result: inference_pb2.GenerateResponse | inference_pb2.GenerationComplete,
    ) -> None:
        """Close a successful attempt: its hop, and what the request was served by."""
        self.end(attempt, "OK", usage=result.usage, model=result.model, provider=result.provider)
        req = attempt.req
        req.served = attempt.target
        req.served_model = result.model or attempt.target.model
        usage = inference_pb2.Usage()
        usage.CopyFrom(result.usage)
        usage.cost_usd = req.hops[-1].cost_usd  # what the router billed for the attempt
        req.usage = usage

    def end(
        self,
        attempt: Attempt,
        status: str,
        *,
        usage: inference_pb2.Usage | None = None,
        model: str = "",
        provider: str = "",
    ) -> HopResult:
        """Record the attempt's hop, span attributes and metrics."""
        req, target, span = attempt.req, attempt.target, attempt.span
        latency_ms = (time.perf_counter() - attempt.started) * 1000
        partial_output_tokens = streamed_tokens(attempt.streamed_chars)
        if usage is not None:
            in_tok, out_tok = usage.input_tokens, usage.output_tokens
        elif partial_output_tokens:  # broke after the first token: estimate what was used
            assert req.inputs is not None
            in_tok, out_tok = req.inputs.input_tokens, partial_output_tokens
        else:
            in_tok = out_tok = 0
        cost, estimated = billed_cost(target, usage, in_tok, out_tok)
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
        task_type = req.task_type
        attributes: dict[str, str | int | float] = {
            attr.ROUTER_STATUS: status,
            attr.RPC_GRPC_STATUS_CODE: _STATUS_CODES.get(status, _UNKNOWN),
            attr.COST_USD: cost,
            attr.GEN_AI_USAGE_COST: cost,
            attr.GEN_AI_USAGE_INPUT_TOKENS: in_tok,
            attr.GEN_AI_USAGE_OUTPUT_TOKENS: out_tok,
            attr.TASK_TYPE: task_type,  # a forced target's classification may come in late
        }
        if model:
            attributes[attr.GEN_AI_RESPONSE_MODEL] = model
        span.set_attributes(attributes)
        if status != "OK":
            span.set_status(SpanStatus.ERROR, status)
        metric_attrs = {
            attr.GEN_AI_OPERATION_NAME: attr.GEN_AI_OPERATION_CHAT,
            attr.GEN_AI_REQUEST_MODEL: target.model or hop.model,
            attr.GEN_AI_PROVIDER_NAME: provider or target.backend,
            attr.TENANT: req.tenant,
            attr.TASK_TYPE: task_type,
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
    def _span_attributes(req: RoutedRequest, target: BoundTarget, index: int) -> dict[str, Any]:
        """The attempt span's attributes at its start (it is the CLIENT span of the call)."""
        return {
            attr.RPC_SYSTEM: "grpc",
            attr.RPC_SERVICE: _INFERENCE_SERVICE,
            attr.RPC_METHOD: "GenerateStream" if req.operation == "complete_stream" else "Generate",
            attr.GEN_AI_OPERATION_NAME: attr.GEN_AI_OPERATION_CHAT,
            attr.GEN_AI_REQUEST_MODEL: target.model,
            attr.ROUTER_TARGET: target.name,
            attr.ROUTER_TARGET_KIND: target.kind.value,
            attr.ROUTER_BACKEND: target.backend,
            attr.ROUTER_ATTEMPT: index,
            attr.TENANT: req.tenant,
            attr.TASK_TYPE: req.task_type,
        }

    @staticmethod
    def _falls_back(req: RoutedRequest, target: BoundTarget, code: grpc.StatusCode) -> bool:
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

    @staticmethod
    def _exhausted(
        skipped: list[tuple[str, str]], failures: list[tuple[str, grpc.StatusCode, str]]
    ) -> SwitchyardError:
        parts = [f"{name}: {why}" for name, why in skipped]
        parts += [f"{name}: {code.name}" for name, code, _ in failures]
        summary = "; ".join(parts)
        if failures:
            name, code, details = failures[-1]
            return error_for(code, f"every target failed ({summary}); last error: {details}")
        return ResourceExhausted(f"no target may serve this request now ({summary})")


def billed_cost(
    target: BoundTarget, usage: inference_pb2.Usage | None, in_tok: int, out_tok: int
) -> tuple[float, bool]:
    """The attempt's cost: the backend's, or priced from the registry when it gave none."""
    if usage is not None and usage.cost_usd > 0:
        return usage.cost_usd, False
    return price(target.pricing, in_tok, out_tok), True
