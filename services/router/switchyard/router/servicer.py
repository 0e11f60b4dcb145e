"""`switchyard.router.v1.RouterService`: authenticate, then hand the request to the Router."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Iterable
from typing import Any

import grpc

from switchyard.api.router.v1 import router_pb2, router_pb2_grpc
from switchyard.router.routing import Router

__all__ = ["RouterServicer"]

Authenticate = Callable[[Iterable[tuple[str, Any]] | None], str]


class RouterServicer(router_pb2_grpc.RouterServiceServicer):
    def __init__(self, router: Router, authenticate: Authenticate) -> None:
        self._router = router
        self._authenticate = authenticate

    def _tenant(self, context: grpc.aio.ServicerContext) -> str:
        return self._authenticate(context.invocation_metadata())

    async def Route(  # noqa: N802
        self, request: router_pb2.RouteRequest, context: grpc.aio.ServicerContext
    ) -> router_pb2.RouteResponse:
        tenant = self._tenant(context)
        return await self._router.route(request, tenant, context.time_remaining())

    async def Complete(  # noqa: N802
        self, request: router_pb2.CompleteRequest, context: grpc.aio.ServicerContext
    ) -> router_pb2.CompleteResponse:
        tenant = self._tenant(context)
        return await self._router.complete(request, tenant, context.time_remaining())

    async def CompleteStream(  # noqa: N802
        self, request: router_pb2.CompleteStreamRequest, context: grpc.aio.ServicerContext
    ) -> AsyncIterator[router_pb2.CompleteStreamResponse]:
        tenant = self._tenant(context)
        async for event in self._router.stream(request, tenant, context.time_remaining()):
            yield event
