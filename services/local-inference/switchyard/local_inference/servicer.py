"""`switchyard.inference.v1.InferenceService` on the local engine: a thin layer over
`LocalInference` that only turns its pieces into messages. Errors are `switchyard.runtime.errors`
classes, mapped to status codes by the server's interceptor."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import aclosing

import grpc

from switchyard.api.inference.v1 import inference_pb2 as pb
from switchyard.api.inference.v1 import inference_pb2_grpc as pb_grpc
from switchyard.local_inference.inference import PROVIDER, Completion, LocalInference

__all__ = ["InferenceServicer"]


class InferenceServicer(pb_grpc.InferenceServiceServicer):
    def __init__(self, inference: LocalInference) -> None:
        self._inference = inference

    async def Generate(  # noqa: N802 (gRPC method name)
        self, request: pb.GenerateRequest, context: grpc.aio.ServicerContext
    ) -> pb.GenerateResponse:
        async with aclosing(
            self._inference.run(
                request.model,
                request.messages,
                request.parameters,
                timeout_s=context.time_remaining(),
            )
        ) as pieces:
            async for piece in pieces:
                if isinstance(piece, Completion):
                    return pb.GenerateResponse(
                        model=piece.model,
                        text=piece.text,
                        reasoning_text=piece.reasoning_text,
                        finish_reason=piece.finish_reason,  # type: ignore[arg-type]
                        usage=piece.usage,
                        timing=piece.timing,
                        provider=PROVIDER,
                    )
        raise RuntimeError("generation ended without a completion")

    async def GenerateStream(  # noqa: N802
        self, request: pb.GenerateStreamRequest, context: grpc.aio.ServicerContext
    ) -> AsyncIterator[pb.GenerateStreamResponse]:
        async with aclosing(
            self._inference.run(
                request.model,
                request.messages,
                request.parameters,
                timeout_s=context.time_remaining(),
            )
        ) as pieces:
            async for piece in pieces:
                if isinstance(piece, Completion):
                    yield pb.GenerateStreamResponse(
                        complete=pb.GenerationComplete(
                            model=piece.model,
                            finish_reason=piece.finish_reason,  # type: ignore[arg-type]
                            usage=piece.usage,
                            timing=piece.timing,
                            provider=PROVIDER,
                        )
                    )
                else:
                    yield pb.GenerateStreamResponse(
                        delta=pb.TextDelta(text=piece.text, reasoning_text=piece.reasoning_text)
                    )

    async def ListModels(  # noqa: N802
        self, request: pb.ListModelsRequest, context: grpc.aio.ServicerContext
    ) -> pb.ListModelsResponse:
        engine = self._inference.engine
        return pb.ListModelsResponse(
            models=[
                pb.ModelInfo(
                    name=engine.model_name,
                    provider=PROVIDER,
                    context_window=engine.context_window,
                    pricing=self._inference.pricing(),
                )
            ]
        )
