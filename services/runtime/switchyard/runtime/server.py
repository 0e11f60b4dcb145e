"""The gRPC server bootstrap every service runs on.

`run_service` is a console script's whole `main()`: read settings once (one message listing every
problem), set up logging and telemetry BEFORE the server exists, open the service's heavy
resources, bind, warm up, report SERVING, and on SIGTERM / SIGINT report NOT_SERVING, drain
in-flight calls and streams within the grace period, close resources and flush telemetry.

Every server gets: standard health (`grpc.health.v1`) and reflection (v1 and v1alpha), one
Switchyard interceptor (`switchyard.runtime.interceptors`: each call's SERVER span continuing
the caller's W3C trace context and baggage, health and reflection kept out of traces;
undecodable requests are INVALID_ARGUMENT, new calls while draining are UNAVAILABLE, errors map
to status codes, the deadline is checked on entry, the trace id goes back as `traceresponse`),
and bounded message sizes. Stopping drains first: health NOT_SERVING, new calls refused with
UNAVAILABLE while the calls in flight finish, then the gRPC server stops with what is left of
the grace period.

A service may add companion servers on the same event loop (the router's OpenAI-compatible
HTTP door): started after warm-up, before SERVING, and stopped together with the gRPC server
(refuse new work, drain in-flight within the same grace period).

A console script's `--help` prints the service's settings (`switchyard.runtime.settings.
settings_help`) and exits without starting anything; any other argument is refused.
"""

from __future__ import annotations

import asyncio
import signal
import sys
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping, Sequence
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from dataclasses import dataclass, field
from typing import Any, Generic, Protocol, TypeVar

import grpc
from grpc_health.v1 import health, health_pb2, health_pb2_grpc

from switchyard.runtime.errors import SwitchyardError
from switchyard.runtime.interceptors import CallGate, ServerCallInterceptor
from switchyard.runtime.logging import get_logger, setup_logging
from switchyard.runtime.reflection import enable_reflection
from switchyard.runtime.settings import (
    ServiceSettings,
    SettingsError,
    load_settings,
    service_help,
)
from switchyard.runtime.telemetry import setup_telemetry

__all__ = [
    "CallGate",
    "Companion",
    "HealthReporter",
    "RunningServer",
    "ServiceDefinition",
    "ServerCallInterceptor",
    "ServiceRuntime",
    "event_loop_factory",
    "run",
    "run_service",
    "start_server",
]

R = TypeVar("R")
S = TypeVar("S", bound=ServiceSettings)

log = get_logger(__name__)


class HealthReporter:
    """Sets the health of the whole server ("") and of each of its services at once."""

    def __init__(self, servicer: health.aio.HealthServicer) -> None:
        self._servicer = servicer
        self._names: list[str] = [""]
        self.serving = False

    def watch(self, names: Sequence[str]) -> None:
        self._names = ["", *names]

    async def set_serving(self, serving: bool) -> None:
        self.serving = serving
        status = (
            health_pb2.HealthCheckResponse.SERVING
            if serving
            else health_pb2.HealthCheckResponse.NOT_SERVING
        )
        for name in self._names:
            await self._servicer.set(name, status)


class Companion(Protocol):
    """A second server a service runs on the same loop (say, an HTTP door onto its servicers)."""

    async def start(self) -> None:
        """Bind and begin serving."""

    async def stop(self, grace: float) -> None:
        """Refuse new work at once; let in-flight work finish within `grace` seconds."""


@dataclass
class ServiceRuntime:
    """What the runtime hands a service's resource factory."""

    settings: ServiceSettings
    health: HealthReporter


@dataclass
class ServiceDefinition(Generic[R]):
    """How to build one service on the shared runtime.

    - `resources(runtime)` opens the heavy parts (engine, ONNX session, channels, ledger) and
      yields them; they are closed when the server has stopped, whatever happened.
    - `register(server, resources)` adds the servicers and returns their full service names.
    - `warmup(resources)` runs after the port is bound and before health says SERVING.
    - `companions(resources, runtime)` lists companion servers, started after warm-up and
      stopped with the gRPC server, before the resources close.
    """

    name: str
    settings: ServiceSettings
    resources: Callable[[ServiceRuntime], AbstractAsyncContextManager[R]]
    register: Callable[[grpc.aio.Server, R], Sequence[str]]
    warmup: Callable[[R], Awaitable[None]] | None = None
    companions: Callable[[R, ServiceRuntime], Sequence[Companion]] | None = None


@dataclass
class RunningServer(Generic[R]):
    """A started server: its address, health and resources (tests use all three)."""

    server: grpc.aio.Server
    port: int
    host: str
    health: HealthReporter
    resources: R
    grace_period_s: float
    gate: CallGate = field(default_factory=CallGate)
    companions: Sequence[Companion] = ()
    _stopped: bool = field(default=False, repr=False)

    @property
    def address(self) -> str:
        host = "127.0.0.1" if self.host in ("0.0.0.0", "::", "[::]") else self.host
        return f"{host}:{self.port}"

    async def stop(self, grace: float | None = None) -> None:
        """NOT_SERVING; refuse new calls (UNAVAILABLE) while in-flight ones finish within
        `grace`; then stop the gRPC server, cancelling whatever still runs when it is over."""
        if self._stopped:
            return
        self._stopped = True
        grace_s = self.grace_period_s if grace is None else grace
        started = time.monotonic()
        await self.health.set_serving(False)

        async def grpc_stop() -> None:
            await self.gate.drain(grace_s)
            await self.server.stop(max(0.0, grace_s - (time.monotonic() - started)))

        await asyncio.gather(grpc_stop(), *(c.stop(grace_s) for c in self.companions))


@asynccontextmanager
async def start_server(
    definition: ServiceDefinition[R],
    *,
    port: int | None = None,
    clock: Callable[[], float] = time.monotonic,
) -> AsyncIterator[RunningServer[R]]:
    """Start `definition` and yield it SERVING; stop it gracefully and close resources on exit.

    `clock` (monotonic seconds) paces the warning about undecodable requests; tests inject one.
    """
    settings = definition.settings
    health_servicer = health.aio.HealthServicer()
    reporter = HealthReporter(health_servicer)
    runtime = ServiceRuntime(settings=settings, health=reporter)
    gate = CallGate()
    async with definition.resources(runtime) as resources:
        # The gRPC server exists only once the resources are open, and it is stopped on every
        # way out, bind failures included: grpcio logs the deallocation of a server that was
        # never stopped with a reference to the freed object, and a log handler keeping that
        # record (pytest's capture, a memory handler) later crashes the process.
        server = grpc.aio.server(
            interceptors=[ServerCallInterceptor(gate, clock=clock)],
            options=[
                ("grpc.max_receive_message_length", settings.max_message_bytes),
                ("grpc.max_send_message_length", settings.max_message_bytes),
                ("grpc.so_reuseport", 0),
            ],
            maximum_concurrent_rpcs=settings.max_concurrent_rpcs,
        )
        try:
            health_pb2_grpc.add_HealthServicer_to_server(health_servicer, server)
            names = list(definition.register(server, resources))
            reporter.watch(names)
            await reporter.set_serving(False)
            enable_reflection(server, names)
            bind_port = settings.bind_port if port is None else port
            bound = server.add_insecure_port(f"{settings.host}:{bind_port}")
            if bound == 0:
                raise OSError(f"{definition.name}: could not bind {settings.host}:{bind_port}")
        except BaseException:
            await _discard(server)
            raise
        await server.start()
        running = RunningServer(
            server=server,
            port=bound,
            host=settings.host,
            health=reporter,
            resources=resources,
            grace_period_s=settings.grace_period_s,
            gate=gate,
        )
        try:
            if definition.warmup is not None:
                await definition.warmup(resources)
            if definition.companions is not None:
                running.companions = list(definition.companions(resources, runtime))
                for companion in running.companions:
                    await companion.start()
            await reporter.set_serving(True)
            yield running
        finally:
            await running.stop()


async def _discard(server: grpc.aio.Server) -> None:
    """Stop a server that never started (grpcio can only stop a started one)."""
    await server.start()
    await server.stop(None)


async def _serve_until_signal(definition: ServiceDefinition[Any]) -> None:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    log.info("starting", address=definition.settings.address)
    async with start_server(definition) as running:
        log.info(
            "serving",
            address=running.address,
            port=running.port,
            event_loop=type(loop).__module__.split(".")[0],
        )
        await stop.wait()
        log.info("stopping", grace_period_s=definition.settings.grace_period_s)
    log.info("stopped")


def event_loop_factory(choice: str) -> Callable[[], asyncio.AbstractEventLoop] | None:
    """The loop factory for the `event_loop` setting (None: asyncio's default loop).

    uvloop cut the frontier proxy's CPU per relayed stream by ~5 % (docs/services/frontier-proxy.md)
    and is what vLLM's own server runs on; for the classifier's unary calls it made no measurable
    difference. It is a dependency everywhere but Windows, where asyncio is used.
    """
    if choice != "uvloop":
        return None
    try:
        import uvloop
    except ImportError:
        log.warning("uvloop is not installed: serving on asyncio's event loop")
        return None
    return uvloop.new_event_loop


def run(definition: ServiceDefinition[Any]) -> int:
    """Serve `definition` until SIGTERM / SIGINT. Logging and telemetry must already be set up."""
    try:
        factory = event_loop_factory(definition.settings.event_loop)
        with asyncio.Runner(loop_factory=factory) as runner:
            runner.run(_serve_until_signal(definition))
    except SwitchyardError as error:
        log.error("start-up failed", error=error.message)
        return 1
    return 0


def run_service(
    name: str,
    settings_cls: type[S],
    build: Callable[[S], ServiceDefinition[Any]],
    *,
    argv: Sequence[str] | None = None,
    summary: str = "",
    commands: Mapping[str, str] | None = None,
) -> int:
    """A console script's `main()`: settings, logging, telemetry, then serve until signalled.

    `argv` (default `sys.argv[1:]`): `--help` / `-h` prints `summary`, the `commands` the script
    also has (usage -> what it does) and every setting, then returns 0 without starting
    anything; any other argument is an error (2): settings come from the environment only.
    """
    args = list(sys.argv[1:] if argv is None else argv)
    if args:
        usage = service_help(name, settings_cls, summary=summary, commands=commands)
        if args[0] in ("-h", "--help"):
            print(usage)
            return 0
        print(
            f"{name}: unexpected argument(s) {' '.join(args)!r}: settings are environment "
            f"variables; `{name} --help` lists them",
            file=sys.stderr,
        )
        return 2
    try:
        settings = load_settings(settings_cls)
    except SettingsError as error:
        print(error.message, file=sys.stderr)
        return 2
    setup_logging(name, settings.log_level)
    telemetry = setup_telemetry(name)  # before the server: its interceptor traces every call
    try:
        return run(build(settings))
    except SwitchyardError as error:
        log.error("start-up failed", error=error.message)
        return 1
    finally:
        telemetry.shutdown()
