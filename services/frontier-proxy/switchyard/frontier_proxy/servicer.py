"""The gRPC servicer: converts, sets the deadline, delegates to `FrontierProxy`. Thin."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator

import grpc

from switchyard.api.inference.v1 import inference_pb2 as pb
from switchyard.api.inference.v1 import inference_pb2_grpc
from switchyard.frontier_proxy import conversion
from switchyard.frontier_proxy.completion import StreamDelta
from switchyard.frontier_proxy.proxy import FrontierProxy

__all__ = ["FrontierInferenceServicer"]


class FrontierInferenceServicer(inference_pb2_grpc.InferenceServiceServicer):
    def __init__(self, proxy: FrontierProxy, default_deadline_s: float) -> None:
        self._proxy = proxy
        self._default_deadline_s = default_deadline_s

    def _deadline(self, context: grpc.aio.ServicerContext) -> float:
        """The caller's deadline on this process's monotonic clock (bounded by the default)."""
        remaining = context.time_remaining()
        budget = (
            self._default_deadline_s
            if remaining is None
            else min(remaining, self._default_deadline_s)
        )
        return time.monotonic() + budget

    async def Generate(  # noqa: N802 - gRPC method name
        self, request: pb.GenerateRequest, context: grpc.aio.ServicerContext
    ) -> pb.GenerateResponse:
        call = conversion.chat_call(request.messages, request.parameters)
        result = await self._proxy.generate(request.model, call, self._deadline(context))
        return conversion.generate_response(result)

    async def GenerateStream(  # noqa: N802 - gRPC method name
        self, request: pb.GenerateStreamRequest, context: grpc.aio.ServicerContext
    ) -> AsyncIterator[pb.GenerateStreamResponse]:
        call = conversion.chat_call(request.messages, request.parameters)
        async for item in self._proxy.stream(request.model, call, self._deadline(context)):
            if isinstance(item, StreamDelta):
                yield pb.GenerateStreamResponse(
                    delta=pb.TextDelta(text=item.text, reasoning_text=item.reasoning_text)
                )
            else:
                yield conversion.complete_message(item)

    async def ListModels(  # noqa: N802 - gRPC method name
        self, request: pb.ListModelsRequest, context: grpc.aio.ServicerContext
    ) -> pb.ListModelsResponse:
        catalog = self._proxy.catalog
        return pb.ListModelsResponse(
            models=[conversion.model_info(m) for m in catalog.models.values()]
        )
