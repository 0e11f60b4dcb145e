"""A small InferenceService used to test the shared runtime (never shipped).

The last message's content is a command: `echo TEXT` answers TEXT; `sleep S` waits S seconds;
`invalid` raises InvalidArgument; `refuse TEXT` raises InvalidArgument quoting TEXT whole (as a
careless service might); `crash` raises an unexpected error; `forward TEXT` calls the
downstream service (a second hop) and returns its answer. GenerateStream streams the words of
`words N DELAY` as N deltas DELAY seconds apart.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import grpc

from switchyard.api.inference.v1 import inference_pb2 as pb
from switchyard.api.inference.v1 import inference_pb2_grpc as pb_grpc
from switchyard.runtime.channels import open_channel
from switchyard.runtime.errors import InvalidArgument
from switchyard.runtime.logging import get_logger
from switchyard.runtime.server import ServiceDefinition, ServiceRuntime
from switchyard.runtime.settings import ServiceSettings, SettingsConfigDict

log = get_logger("echo")


class EchoSettings(ServiceSettings):
    model_config = SettingsConfigDict(env_prefix="SWITCHYARD_ECHO_")
    service_name = "echo"
    host: str = "127.0.0.1"
    downstream: str = ""


class EchoServicer(pb_grpc.InferenceServiceServicer):
    def __init__(self, downstream: pb_grpc.InferenceServiceStub | None) -> None:
        self._downstream = downstream

    async def Generate(self, request: pb.GenerateRequest, context: Any) -> pb.GenerateResponse:
        command, _, arg = request.messages[-1].content.partition(" ")
        log.info("generate", command=command)
        if command == "sleep":
            await asyncio.sleep(float(arg))
        elif command == "invalid":
            raise InvalidArgument("the echo service refuses this prompt")
        elif command == "refuse":
            raise InvalidArgument(f"refused {arg}")
        elif command == "crash":
            raise RuntimeError("secret internal detail")
        elif command == "forward" and self._downstream is not None:
            downstream_request = pb.GenerateRequest(
                messages=[pb.ChatMessage(role=pb.ROLE_USER, content=f"echo {arg}")]
            )
            reply = await self._downstream.Generate(downstream_request, timeout=5)
            arg = reply.text
        return pb.GenerateResponse(model="echo", text=arg, finish_reason=pb.FINISH_REASON_STOP)

    async def GenerateStream(
        self, request: pb.GenerateStreamRequest, context: Any
    ) -> AsyncIterator[pb.GenerateStreamResponse]:
        _, count, delay = request.messages[-1].content.split(" ")
        for i in range(int(count)):
            await asyncio.sleep(float(delay))
            yield pb.GenerateStreamResponse(delta=pb.TextDelta(text=f"w{i} "))
        yield pb.GenerateStreamResponse(
            complete=pb.GenerationComplete(model="echo", finish_reason=pb.FINISH_REASON_STOP)
        )

    async def ListModels(self, request: Any, context: Any) -> pb.ListModelsResponse:
        return pb.ListModelsResponse(models=[pb.ModelInfo(name="echo", provider="test")])


def echo_definition(
    settings: EchoSettings, *, warmup_gate: asyncio.Event | None = None
) -> ServiceDefinition[EchoServicer]:
    @asynccontextmanager
    async def resources(runtime: ServiceRuntime) -> AsyncIterator[EchoServicer]:
        channel = open_channel(settings.downstream) if settings.downstream else None
        stub = pb_grpc.InferenceServiceStub(channel) if channel else None
        try:
            yield EchoServicer(stub)
        finally:
            if channel is not None:
                await channel.close()

    def register(server: grpc.aio.Server, servicer: EchoServicer) -> list[str]:
        pb_grpc.add_InferenceServiceServicer_to_server(servicer, server)
        return [pb.DESCRIPTOR.services_by_name["InferenceService"].full_name]

    async def warmup(_: EchoServicer) -> None:
        if warmup_gate is not None:
            await warmup_gate.wait()

    return ServiceDefinition("echo", settings, resources, register, warmup)
