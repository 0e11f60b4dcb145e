"""Serving the door: uvicorn (httptools parser) on the router process's own event loop.

`FrontDoorServer` is a `switchyard.runtime.server.Companion`: the runtime starts it after the
gRPC server and stops it together with it. It binds its socket itself (a bind error stops
start-up with one clear message, never uvicorn's `sys.exit`), leaves signals to the process
(the runtime's handlers stop both servers), and on stop closes the listener at once (new
connections are refused), closes idle keep-alive connections, and lets in-flight requests and
streams finish within the grace period before cancelling them.

Why uvicorn with httptools: it runs inside an existing asyncio/uvloop loop next to grpc.aio
(granian serves from its own Rust runtime and threads, so it cannot share the loop the Router's
channels live on), and its httptools protocol is the cheapest pure-ASGI HTTP/1.1 server measured
for this workload (docs/services/router.md, "Serving").
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
from collections.abc import Iterator
from typing import Any

import uvicorn

from switchyard.runtime.errors import FailedPrecondition
from switchyard.runtime.logging import get_logger

__all__ = ["FrontDoorServer"]

log = get_logger(__name__)


class _EmbeddedServer(uvicorn.Server):
    """uvicorn's server without its signal handlers: the router process owns SIGTERM/SIGINT."""

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        yield


class FrontDoorServer:
    """The HTTP door's server (see the module docstring)."""

    def __init__(
        self,
        app: Any,
        *,
        host: str,
        port: int,
        max_concurrency: int | None = None,
        keep_alive_s: float = 30.0,
    ) -> None:
        self._app = app
        self._host = host
        self._requested_port = port
        self._max_concurrency = max_concurrency
        self._keep_alive_s = keep_alive_s
        self._server: _EmbeddedServer | None = None
        self._task: asyncio.Task[None] | None = None
        self.port = 0

    @property
    def address(self) -> str:
        host = "127.0.0.1" if self._host in ("0.0.0.0", "::", "") else self._host
        return f"{host}:{self.port}"

    async def start(self) -> None:
        family = socket.AF_INET6 if ":" in self._host else socket.AF_INET
        try:
            sock = socket.create_server(
                (self._host, self._requested_port), family=family, backlog=2048
            )
        except OSError as error:
            raise FailedPrecondition(
                f"cannot bind the HTTP door on {self._host}:{self._requested_port}: "
                f"{error.strerror} (set SWITCHYARD_ROUTER_HTTP_PORT, or "
                "SWITCHYARD_ROUTER_HTTP_ENABLED=false)"
            ) from None
        self.port = int(sock.getsockname()[1])
        config = uvicorn.Config(
            self._app,
            http="httptools",
            lifespan="off",
            access_log=False,
            log_config=None,
            server_header=False,
            limit_concurrency=self._max_concurrency,
            timeout_keep_alive=int(self._keep_alive_s),
        )
        self._server = _EmbeddedServer(config)
        self._task = asyncio.create_task(self._server.serve(sockets=[sock]))
        while not self._server.started:
            if self._task.done():
                self._task.result()  # raises what stopped it
                raise OSError(f"the HTTP door on {self._host}:{self.port} stopped at start")
            await asyncio.sleep(0.01)
        log.info("serving the OpenAI-compatible HTTP door", address=self.address)

    async def stop(self, grace: float) -> None:
        server, task = self._server, self._task
        if server is None or task is None or task.done():
            return
        server.config.timeout_graceful_shutdown = grace  # type: ignore[assignment]
        server.should_exit = True
        await task
