"""Sync and asyncio clients for `switchyard.router.v1.RouterService`, `OutcomeService`
(feedback, outcome export, calibration) and `switchyard.cost.v1.CostService`."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator, Mapping, Sequence
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from typing import Any

import grpc
from google.protobuf.timestamp_pb2 import Timestamp
from opentelemetry import propagate

from switchyard.api.classifier.v1 import classifier_pb2
from switchyard.api.cost.v1 import cost_pb2, cost_pb2_grpc
from switchyard.api.inference.v1 import inference_pb2
from switchyard.api.options import channel_options, trace_id_from_metadata
from switchyard.api.router.v1 import outcomes_pb2, outcomes_pb2_grpc, router_pb2, router_pb2_grpc
from switchyard_client.errors import from_rpc_error

__all__ = [
    "AsyncSwitchyardClient",
    "CostGrouping",
    "Message",
    "Prompt",
    "RoutingOptions",
    "SwitchyardClient",
    "capture_trace_ids",
]

_TRACE_SINK: ContextVar[list[str] | None] = ContextVar("switchyard_trace_ids", default=None)


@contextmanager
def capture_trace_ids() -> Iterator[list[str]]:
    """Collect the trace id of every call made inside the block (in this thread or task).

    Switchyard returns each call's trace id in `traceresponse` trailing metadata; the list
    yielded gets one id per call that carried one, in call order (failed calls included):

        with capture_trace_ids() as trace_ids:
            reply = client.complete("...")
        print(trace_ids[-1])   # look it up in Jaeger
    """
    sink: list[str] = []
    token = _TRACE_SINK.set(sink)
    try:
        yield sink
    finally:
        _TRACE_SINK.reset(token)


def _collect(sink: list[str] | None, metadata: Any) -> None:
    if sink is not None:
        trace_id = trace_id_from_metadata(metadata)
        if trace_id:
            sink.append(trace_id)


def _trailers(call: Any) -> Any:
    try:
        return call.trailing_metadata()
    except Exception:  # noqa: BLE001 - a call cancelled before its trailers has none
        return None


_ROLES = {
    "system": inference_pb2.ROLE_SYSTEM,
    "user": inference_pb2.ROLE_USER,
    "assistant": inference_pb2.ROLE_ASSISTANT,
}


@dataclass(frozen=True)
class Message:
    """One chat turn; `role` is `system`, `user` or `assistant`."""

    role: str
    content: str


Prompt = str | Sequence[Message | Mapping[str, str]]


@dataclass(frozen=True)
class RoutingOptions:
    """Per-request overrides of the router's policy (all optional)."""

    escalation_threshold: float | None = None
    force_target: str = ""
    disallow_frontier: bool = False
    max_cost_usd: float | None = None

    def to_proto(self) -> router_pb2.RoutingOptions:
        options = router_pb2.RoutingOptions(
            force_target=self.force_target, disallow_frontier=self.disallow_frontier
        )
        if self.escalation_threshold is not None:
            options.escalation_threshold = self.escalation_threshold
        if self.max_cost_usd is not None:
            options.max_cost_usd = self.max_cost_usd
        return options


class CostGrouping(StrEnum):
    MODEL = "model"
    TASK_TYPE = "task_type"
    TENANT = "tenant"
    TARGET = "target"

    def to_proto(self) -> cost_pb2.CostGrouping:
        return cost_pb2.CostGrouping.Value(f"COST_GROUPING_{self.name}")


def _messages(prompt: Prompt) -> list[inference_pb2.ChatMessage]:
    if isinstance(prompt, str):
        return [inference_pb2.ChatMessage(role=inference_pb2.ROLE_USER, content=prompt)]
    out = []
    for item in prompt:
        role, content = (
            (item.role, item.content)
            if isinstance(item, Message)
            else (item["role"], item["content"])
        )
        if role not in _ROLES:
            raise ValueError(f"unknown role {role!r}; expected one of {sorted(_ROLES)}")
        out.append(inference_pb2.ChatMessage(role=_ROLES[role], content=content))
    return out


def _parameters(
    max_tokens: int | None,
    temperature: float | None,
    top_p: float | None,
    stop: Sequence[str],
    seed: int | None,
) -> inference_pb2.GenerationParameters:
    params = inference_pb2.GenerationParameters(stop=list(stop))
    if max_tokens is not None:
        params.max_tokens = max_tokens
    if temperature is not None:
        params.temperature = temperature
    if top_p is not None:
        params.top_p = top_p
    if seed is not None:
        params.seed = seed
    return params


def _timestamp(value: datetime | None) -> Timestamp | None:
    if value is None:
        return None
    stamp = Timestamp()
    stamp.FromDatetime(value)
    return stamp


def _task_type(name: str) -> classifier_pb2.TaskType:
    """`MATH` (or `TASK_TYPE_MATH`) as the enum value; "" is unspecified."""
    if not name:
        return classifier_pb2.TASK_TYPE_UNSPECIFIED
    try:
        return classifier_pb2.TaskType.Value(f"TASK_TYPE_{name.upper().removeprefix('TASK_TYPE_')}")
    except ValueError:
        known = [n.removeprefix("TASK_TYPE_") for n in classifier_pb2.TaskType.keys()][1:]
        raise ValueError(f"unknown task type {name!r}; known: {known}") from None


def _feedback_request(request_id: str, good: bool, reason: str) -> Any:
    verdict = outcomes_pb2.FEEDBACK_VERDICT_GOOD if good else outcomes_pb2.FEEDBACK_VERDICT_NOT_GOOD
    return outcomes_pb2.SubmitFeedbackRequest(request_id=request_id, verdict=verdict, reason=reason)


def _export_request(
    start: datetime | None, end: datetime | None, tenant: str, task_types: Sequence[str]
) -> Any:
    return outcomes_pb2.ExportOutcomesRequest(
        start_time=_timestamp(start),
        end_time=_timestamp(end),
        tenant=tenant,
        task_types=[_task_type(t) for t in task_types],
    )


def _calibrate_request(
    frontier_share: float | None,
    quality: float | None,
    start: datetime | None,
    end: datetime | None,
    tenant: str,
    task_type: str,
) -> Any:
    if (frontier_share is None) == (quality is None):
        raise ValueError("give either frontier_share or quality")
    request = outcomes_pb2.CalibrateRequest(
        start_time=_timestamp(start),
        end_time=_timestamp(end),
        tenant=tenant,
        task_type=_task_type(task_type),
    )
    if frontier_share is not None:
        request.frontier_share = frontier_share
    else:
        request.quality_share = quality  # type: ignore[assignment]
    return request


class _Base:
    def __init__(self, api_key: str | None, timeout: float) -> None:
        self._api_key = api_key
        self._timeout = timeout

    def _metadata(self) -> list[tuple[str, str]]:
        carrier: dict[str, str] = {}
        propagate.inject(carrier)  # the caller's trace context: traceparent, tracestate, baggage
        metadata = list(carrier.items())
        if self._api_key:
            metadata.append(("authorization", f"Bearer {self._api_key}"))
        return metadata

    def _request(
        self, cls: Any, prompt: Prompt, routing: RoutingOptions | None, **params: Any
    ) -> Any:
        return cls(
            messages=_messages(prompt),
            parameters=_parameters(**params),
            routing=(routing or RoutingOptions()).to_proto(),
        )


class SwitchyardClient(_Base):
    """Blocking client. Use as a context manager or call `close()`.

    `target` is `host:port`; `api_key` is sent as `authorization: Bearer`; `timeout` is the
    default deadline in seconds of every call (each method takes its own `timeout` too).
    """

    def __init__(
        self,
        target: str = "localhost:50051",
        *,
        api_key: str | None = None,
        timeout: float = 120.0,
        credentials: grpc.ChannelCredentials | None = None,
    ) -> None:
        super().__init__(api_key, timeout)
        options = channel_options()
        self._channel = (
            grpc.secure_channel(target, credentials, options=options)
            if credentials
            else grpc.insecure_channel(target, options=options)
        )
        self._router = router_pb2_grpc.RouterServiceStub(self._channel)
        self._outcomes = outcomes_pb2_grpc.OutcomeServiceStub(self._channel)
        self._costs = cost_pb2_grpc.CostServiceStub(self._channel)

    def __enter__(self) -> SwitchyardClient:
        return self

    def __exit__(self, *_: object) -> None:
        self.close()

    def close(self) -> None:
        self._channel.close()

    def _call(self, method: Any, request: Any, timeout: float | None) -> Any:
        sink = _TRACE_SINK.get()
        try:
            if sink is None:
                return method(request, timeout=timeout or self._timeout, metadata=self._metadata())
            response, call = method.with_call(
                request, timeout=timeout or self._timeout, metadata=self._metadata()
            )
            _collect(sink, call.trailing_metadata())
            return response
        except grpc.RpcError as error:
            _collect(sink, _trailers(error))
            raise from_rpc_error(error) from None

    def complete(
        self,
        prompt: Prompt,
        *,
        max_tokens: int | None = None,
        temperature: float | None = None,
        top_p: float | None = None,
        stop: Sequence[str] = (),
        seed: int | None = None,
        routing: RoutingOptions | None = None,
        timeout: float | None = None,
    ) -> router_pb2.CompleteResponse:
        """Route and answer `prompt`: `.text`, `.decision`, `.usage` and `.cost` (per hop)."""
        request = self._request(
            router_pb2.CompleteRequest, prompt, routing, max_tokens=max_tokens,
            temperature=temperature, top_p=top_p, stop=stop, seed=seed,
        )  # fmt: skip
        return self._call(self._router.Complete, request, timeout)

    def stream(
        self,
        prompt: Prompt,
        *,
        max_tokens: int | None = None,
        temperature: float | None = None,
        top_p: float | None = None,
        stop: Sequence[str] = (),
        seed: int | None = None,
        routing: RoutingOptions | None = None,
        timeout: float | None = None,
    ) -> Iterator[router_pb2.CompleteStreamResponse]:
        """Stream the answer: a `decision` event, `delta` events, then one `summary`."""
        request = self._request(
            router_pb2.CompleteStreamRequest, prompt, routing, max_tokens=max_tokens,
            temperature=temperature, top_p=top_p, stop=stop, seed=seed,
        )  # fmt: skip
        call = self._router.CompleteStream(
            request, timeout=timeout or self._timeout, metadata=self._metadata()
        )
        try:
            yield from call
        except grpc.RpcError as error:
            raise from_rpc_error(error) from None
        finally:
            call.cancel()
            _collect(_TRACE_SINK.get(), _trailers(call))

    def route(
        self,
        prompt: Prompt,
        *,
        routing: RoutingOptions | None = None,
        max_tokens: int | None = None,
        timeout: float | None = None,
    ) -> router_pb2.RouteResponse:
        """The routing decision only (classification, target, model, reason, estimated cost)."""
        request = self._request(
            router_pb2.RouteRequest, prompt, routing, max_tokens=max_tokens,
            temperature=None, top_p=None, stop=(), seed=None,
        )  # fmt: skip
        return self._call(self._router.Route, request, timeout)

    def cost_report(
        self,
        group_by: CostGrouping = CostGrouping.MODEL,
        *,
        start: datetime | None = None,
        end: datetime | None = None,
        timeout: float | None = None,
    ) -> cost_pb2.GetCostReportResponse:
        """Cost over a window (default: the last 24 hours), grouped by `group_by`."""
        request = cost_pb2.GetCostReportRequest(
            start_time=_timestamp(start), end_time=_timestamp(end), group_by=group_by.to_proto()
        )
        return self._call(self._costs.GetCostReport, request, timeout)

    def feedback(
        self, request_id: str, *, good: bool, reason: str = "", timeout: float | None = None
    ) -> outcomes_pb2.SubmitFeedbackResponse:
        """Rate the answer of one of your requests (`CompleteResponse.request_id`); the last
        verdict for a request wins. `reason`: at most 500 characters."""
        request = _feedback_request(request_id, good, reason)
        return self._call(self._outcomes.SubmitFeedback, request, timeout)

    def export_outcomes(
        self,
        *,
        start: datetime | None = None,
        end: datetime | None = None,
        tenant: str = "",
        task_types: Sequence[str] = (),
        timeout: float | None = None,
    ) -> Iterator[outcomes_pb2.Outcome]:
        """The outcomes of requests made in [start, end) (default: the last 30 days), oldest
        first; `switchyard_client.outcomes.outcome_record` turns one into its file line."""
        call = self._outcomes.ExportOutcomes(
            _export_request(start, end, tenant, task_types),
            timeout=timeout or self._timeout,
            metadata=self._metadata(),
        )
        try:
            for page in call:
                yield from page.outcomes
        except grpc.RpcError as error:
            raise from_rpc_error(error) from None
        finally:
            call.cancel()

    def calibrate(
        self,
        *,
        frontier_share: float | None = None,
        quality: float | None = None,
        start: datetime | None = None,
        end: datetime | None = None,
        tenant: str = "",
        task_type: str = "",
        timeout: float | None = None,
    ) -> outcomes_pb2.CalibrateResponse:
        """The escalation threshold for a frontier share, or the cheapest that keeps `quality`
        (a share of all-frontier quality), from the window's decisions and outcomes (default:
        the last 7 days)."""
        request = _calibrate_request(frontier_share, quality, start, end, tenant, task_type)
        return self._call(self._outcomes.Calibrate, request, timeout)


class AsyncSwitchyardClient(_Base):
    """The asyncio client: the same methods as `SwitchyardClient`, awaited."""

    def __init__(
        self,
        target: str = "localhost:50051",
        *,
        api_key: str | None = None,
        timeout: float = 120.0,
        credentials: grpc.ChannelCredentials | None = None,
    ) -> None:
        super().__init__(api_key, timeout)
        options = channel_options()
        self._channel = (
            grpc.aio.secure_channel(target, credentials, options=options)
            if credentials
            else grpc.aio.insecure_channel(target, options=options)
        )
        self._router = router_pb2_grpc.RouterServiceStub(self._channel)
        self._outcomes = outcomes_pb2_grpc.OutcomeServiceStub(self._channel)
        self._costs = cost_pb2_grpc.CostServiceStub(self._channel)

    async def __aenter__(self) -> AsyncSwitchyardClient:
        return self

    async def __aexit__(self, *_: object) -> None:
        await self.close()

    async def close(self) -> None:
        await self._channel.close()

    async def _call(self, method: Any, request: Any, timeout: float | None) -> Any:
        sink = _TRACE_SINK.get()
        call = method(request, timeout=timeout or self._timeout, metadata=self._metadata())
        try:
            response = await call
        except grpc.RpcError as error:
            _collect(sink, _trailers(error))
            raise from_rpc_error(error) from None
        if sink is not None:
            _collect(sink, await call.trailing_metadata())
        return response

    async def complete(
        self,
        prompt: Prompt,
        *,
        max_tokens: int | None = None,
        temperature: float | None = None,
        top_p: float | None = None,
        stop: Sequence[str] = (),
        seed: int | None = None,
        routing: RoutingOptions | None = None,
        timeout: float | None = None,
    ) -> router_pb2.CompleteResponse:
        request = self._request(
            router_pb2.CompleteRequest, prompt, routing, max_tokens=max_tokens,
            temperature=temperature, top_p=top_p, stop=stop, seed=seed,
        )  # fmt: skip
        return await self._call(self._router.Complete, request, timeout)

    async def stream(
        self,
        prompt: Prompt,
        *,
        max_tokens: int | None = None,
        temperature: float | None = None,
        top_p: float | None = None,
        stop: Sequence[str] = (),
        seed: int | None = None,
        routing: RoutingOptions | None = None,
        timeout: float | None = None,
    ) -> AsyncIterator[router_pb2.CompleteStreamResponse]:
        request = self._request(
            router_pb2.CompleteStreamRequest, prompt, routing, max_tokens=max_tokens,
            temperature=temperature, top_p=top_p, stop=stop, seed=seed,
        )  # fmt: skip
        call = self._router.CompleteStream(
            request, timeout=timeout or self._timeout, metadata=self._metadata()
        )
        try:
            async for event in call:
                yield event
        except grpc.RpcError as error:
            raise from_rpc_error(error) from None
        finally:
            sink = _TRACE_SINK.get()
            if sink is not None and call.done():
                _collect(sink, await call.trailing_metadata())
            call.cancel()

    async def route(
        self,
        prompt: Prompt,
        *,
        routing: RoutingOptions | None = None,
        max_tokens: int | None = None,
        timeout: float | None = None,
    ) -> router_pb2.RouteResponse:
        request = self._request(
            router_pb2.RouteRequest, prompt, routing, max_tokens=max_tokens,
            temperature=None, top_p=None, stop=(), seed=None,
        )  # fmt: skip
        return await self._call(self._router.Route, request, timeout)

    async def cost_report(
        self,
        group_by: CostGrouping = CostGrouping.MODEL,
        *,
        start: datetime | None = None,
        end: datetime | None = None,
        timeout: float | None = None,
    ) -> cost_pb2.GetCostReportResponse:
        request = cost_pb2.GetCostReportRequest(
            start_time=_timestamp(start), end_time=_timestamp(end), group_by=group_by.to_proto()
        )
        return await self._call(self._costs.GetCostReport, request, timeout)

    async def feedback(
        self, request_id: str, *, good: bool, reason: str = "", timeout: float | None = None
    ) -> outcomes_pb2.SubmitFeedbackResponse:
        request = _feedback_request(request_id, good, reason)
        return await self._call(self._outcomes.SubmitFeedback, request, timeout)

    async def export_outcomes(
        self,
        *,
        start: datetime | None = None,
        end: datetime | None = None,
        tenant: str = "",
        task_types: Sequence[str] = (),
        timeout: float | None = None,
    ) -> AsyncIterator[outcomes_pb2.Outcome]:
        call = self._outcomes.ExportOutcomes(
            _export_request(start, end, tenant, task_types),
            timeout=timeout or self._timeout,
            metadata=self._metadata(),
        )
        try:
            async for page in call:
                for outcome in page.outcomes:
                    yield outcome
        except grpc.RpcError as error:
            raise from_rpc_error(error) from None
        finally:
            call.cancel()

    async def calibrate(
        self,
        *,
        frontier_share: float | None = None,
        quality: float | None = None,
        start: datetime | None = None,
        end: datetime | None = None,
        tenant: str = "",
        task_type: str = "",
        timeout: float | None = None,
    ) -> outcomes_pb2.CalibrateResponse:
        request = _calibrate_request(frontier_share, quality, start, end, tenant, task_type)
        return await self._call(self._outcomes.Calibrate, request, timeout)
