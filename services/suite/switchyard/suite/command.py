"""`switchyard-suite` (also `switchyard up`): the four services on this machine, CPU defaults.

    switchyard up [--demo] [--state-dir DIR] [--base-port N] [--otlp-endpoint URL] [--only ...]

Starts the stand-in frontier (when no frontier key is set), the classifier, local inference, the
frontier proxy and the router as child processes, waits until each is healthy, optionally sends
a short demo, and stops them all on Ctrl-C, SIGTERM or a closed terminal (SIGHUP); children also
die with it when it is killed (see `switchyard.suite.supervisor`).

Before starting anything it takes its state folder's lock (one `up` per folder) and checks every
port it needs is free, so a second `up` refuses with a clear message instead of reporting the
first suite's services as its own.
"""

from __future__ import annotations

import argparse
import contextlib
import fcntl
import os
import shlex
import shutil
import signal
import socket
import sys
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any, TextIO

__all__ = ["build_parser", "client_command", "main", "ports_in_use"]

DEFAULT_ROUTER_ADDRESS = "127.0.0.1:50051"
DEFAULT_JAEGER_URL = "http://localhost:16686"

_STANDIN_BANNER = """
======================================================================================
  NO FRONTIER API KEYS (OPENAI_API_KEY / ANTHROPIC_API_KEY) IN THE ENVIRONMENT.
  The frontier proxy points at a STAND-IN: vLLM's OpenAI-compatible server running the
  small local model on this machine, priced at gpt-4o-mini's list prices. Its answers
  are NOT a frontier model's. Set a key and run `switchyard up` again for the real thing.
======================================================================================
"""


class _Out:
    """Prints that never raise: after SIGHUP the terminal may be gone, and the suite must still
    stop its children."""

    def __init__(self, stream: TextIO) -> None:
        self.stream = stream

    def __call__(self, text: str = "") -> None:
        with contextlib.suppress(OSError, ValueError):
            print(text, file=self.stream, flush=True)


def client_command(*, path: str | None = None) -> str:
    """The `switchyard` command that works from the user's shell: the bare name when PATH (or
    `path`) finds this installation's script, its full path otherwise."""
    script = Path(sys.executable).parent / "switchyard"
    found = shutil.which("switchyard", path=path)
    if found and script.exists() and Path(found).resolve() == script.resolve():
        command = "switchyard"
    elif script.exists():
        command = shlex.quote(str(script))
    else:
        command = f"{shlex.quote(sys.executable)} -m switchyard_client.cli"
    return command


def ask_hint(address: str, *, path: str | None = None) -> str:
    """The example `ask` command `up` prints once the suite is up."""
    flags = "" if address == DEFAULT_ROUTER_ADDRESS else f" --address {address}"
    return f'{client_command(path=path)} ask{flags} "What is the capital of France?"'


def ports_in_use(host: str, ports: dict[str, int]) -> dict[str, int]:
    """The parts whose port something already listens on (a bind test, as the services bind)."""
    busy = {}
    for name, port in ports.items():
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
            probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            try:
                probe.bind((host, port))
            except OSError:
                busy[name] = port
    return busy


class StateDirBusy(RuntimeError):
    pass


@contextlib.contextmanager
def state_lock(state_dir: Path) -> Iterator[None]:
    """Hold `state_dir`'s lock for one `up`; StateDirBusy names the `up` holding it."""
    state_dir.mkdir(parents=True, exist_ok=True)
    path = state_dir / "up.lock"
    with path.open("a+") as handle:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            handle.seek(0)
            holder = handle.read().strip() or "?"
            raise StateDirBusy(
                f"another `switchyard up` (pid {holder}) is running with the state folder "
                f"{state_dir}; stop it first, or give this one its own: --state-dir DIR"
            ) from None
        handle.seek(0)
        handle.truncate()
        handle.write(str(os.getpid()))
        handle.flush()
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def cmd_up(args: argparse.Namespace, stream: TextIO) -> int:
    from switchyard.suite.plan import plan_suite

    say = _Out(stream)
    state_dir = Path(args.state_dir).expanduser()
    try:
        with state_lock(state_dir):
            try:
                plan = plan_suite(
                    state_dir,
                    base_port=args.base_port,
                    startup_timeout_s=args.startup_timeout,
                    otlp_endpoint=args.otlp_endpoint or None,
                    only=args.only.split(",") if args.only else None,
                )
            except ValueError as error:
                say(f"switchyard up: {error}")
                return 2
            busy = ports_in_use(plan.host, plan.ports)
            if busy:
                listed = ", ".join(f"{port} ({name})" for name, port in busy.items())
                say(
                    f"switchyard up: port(s) {listed} already in use on {plan.host}: another "
                    "Switchyard suite (or another program) is listening there. Nothing was "
                    "started. Stop it, or start this suite on other ports: "
                    f"--base-port {args.base_port + 1000}"
                )
                return 1
            return _run(plan, args, say)
    except StateDirBusy as error:
        say(f"switchyard up: {error}")
        return 1


def _run(plan: Any, args: argparse.Namespace, say: _Out) -> int:
    from switchyard.suite.supervisor import StartupError, Supervisor

    if plan.frontier == "standin":
        say(_STANDIN_BANNER)
    else:
        say(f"frontier: {plan.frontier} (key from the environment)")
    if plan.otlp_endpoint:
        say(f"traces: every service exports to {plan.otlp_endpoint} (Jaeger UI {args.jaeger_url})")
    supervisor = Supervisor(plan.state_dir / "logs")
    stop = threading.Event()

    def on_signal(signum: int, _: Any) -> None:
        stop.set()

    # SIGHUP: the terminal was closed. All three stop the suite the same way.
    stopping = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)
    previous = {s: signal.signal(s, on_signal) for s in stopping}
    try:
        for spec in plan.specs:
            say(f"starting {spec.name} ...")
            supervisor.start(spec)
        for spec in plan.specs:
            if stop.is_set():
                break
            supervisor.wait_healthy(spec.name)
            say(f"  {spec.name:17s} healthy at {plan.addresses[spec.name]}")
        if not stop.is_set():
            say(
                f"\nSwitchyard is up. Router: {plan.router_address}   "
                f"(config {plan.router_config_path}, logs {plan.state_dir / 'logs'})"
            )
            say(f"Try: {ask_hint(plan.router_address)}   - Ctrl-C stops everything.")
            if args.demo and "router" in plan.ports:
                from switchyard.suite.demo import run_demo

                trace_url = args.jaeger_url if plan.otlp_endpoint else None
                run_demo(plan.router_address, say.stream, trace_url=trace_url)
            if args.exit_after_demo:
                stop.set()
        while not stop.is_set():
            exited = supervisor.exited()
            if exited:
                name, code = exited[0]
                say(f"{name} exited with status {code}; stopping the suite")
                say(supervisor.tail(name))
                return 1
            stop.wait(1.0)
        return 0
    except StartupError as error:
        say(f"start-up failed: {error}")
        return 1
    finally:
        say("stopping ...")
        codes = supervisor.stop_all()
        say("stopped: " + ", ".join(f"{n} ({c})" for n, c in codes.items()))
        for sig, handler in previous.items():
            signal.signal(sig, handler)


def build_parser() -> argparse.ArgumentParser:
    from switchyard.suite.plan import SUITE_PARTS, default_state_dir

    parser = argparse.ArgumentParser(
        prog="switchyard up",
        description=__doc__.split("\n")[0],
        epilog=(
            "Environment: SWITCHYARD_STATE_DIR (the state folder), OTEL_EXPORTER_OTLP_ENDPOINT "
            "(the OTLP endpoint), OPENAI_API_KEY / ANTHROPIC_API_KEY (a real frontier; without "
            "one a local stand-in is used). Each service's own settings: "
            "switchyard-router --help (and -classifier, -local-inference, -frontier-proxy). "
            "Jaeger next to the suite: docker compose up -d jaeger, then --otlp-endpoint "
            "http://localhost:4317."
        ),
    )
    parser.add_argument(
        "--state-dir",
        default=str(default_state_dir()),
        help="configuration, logs and ledger of this suite: one folder per checkout "
        "(default: $SWITCHYARD_STATE_DIR or %(default)s)",
    )
    parser.add_argument(
        "--base-port",
        type=int,
        default=50051,
        help="router port; the classifier, local inference, frontier proxy and stand-in take "
        "the next four (default: %(default)s)",
    )
    parser.add_argument(
        "--startup-timeout",
        type=float,
        default=900.0,
        help="seconds each service may take to be healthy (default: %(default)s)",
    )
    parser.add_argument(
        "--otlp-endpoint",
        default=os.environ.get("OTEL_EXPORTER_OTLP_ENDPOINT", ""),
        help="OTLP/gRPC endpoint every service exports traces to, e.g. Jaeger's "
        "http://localhost:4317 (default: $OTEL_EXPORTER_OTLP_ENDPOINT; unset: no traces)",
    )
    parser.add_argument(
        "--jaeger-url",
        default=DEFAULT_JAEGER_URL,
        help="Jaeger UI the demo's trace links point at (default: %(default)s)",
    )
    parser.add_argument(
        "--only",
        default="",
        help=f"comma-separated parts to start, of {','.join(SUITE_PARTS)} (default: all)",
    )
    parser.add_argument("--demo", action="store_true", help="send a few mixed requests once up")
    parser.add_argument("--exit-after-demo", action="store_true", help=argparse.SUPPRESS)
    return parser


def main(argv: list[str] | None = None, out: TextIO | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return cmd_up(args, out or sys.stdout)
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
