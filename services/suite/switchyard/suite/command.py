"""`switchyard-suite` (also `switchyard up`): the four services on this machine, CPU defaults.

    switchyard up [--demo] [--state-dir DIR] [--base-port N]

Starts the stand-in frontier (when no frontier key is set), the classifier, local inference, the
frontier proxy and the router as child processes, waits until each is healthy, optionally sends
a short demo, and stops them all on Ctrl-C.
"""

from __future__ import annotations

import argparse
import os
import signal
import sys
import threading
from pathlib import Path
from typing import Any, TextIO

__all__ = ["build_parser", "main"]

_STANDIN_BANNER = """
======================================================================================
  NO FRONTIER API KEYS (OPENAI_API_KEY / ANTHROPIC_API_KEY) IN THE ENVIRONMENT.
  The frontier proxy points at a STAND-IN: vLLM's OpenAI-compatible server running the
  small local model on this machine, priced at gpt-4o-mini's list prices. Its answers
  are NOT a frontier model's. Set a key and run `switchyard up` again for the real thing.
======================================================================================
"""


def cmd_up(args: argparse.Namespace, out: TextIO) -> int:
    from switchyard.suite.plan import plan_suite
    from switchyard.suite.supervisor import StartupError, Supervisor

    state_dir = Path(args.state_dir).expanduser()
    plan = plan_suite(state_dir, base_port=args.base_port, startup_timeout_s=args.startup_timeout)
    if plan.frontier == "standin":
        print(_STANDIN_BANNER, file=out)
    else:
        print(f"frontier: {plan.frontier} (key from the environment)", file=out)
    supervisor = Supervisor(state_dir / "logs")
    stop = threading.Event()

    def on_signal(signum: int, _: Any) -> None:
        stop.set()

    previous = {s: signal.signal(s, on_signal) for s in (signal.SIGINT, signal.SIGTERM)}
    try:
        for spec in plan.specs:
            print(f"starting {spec.name} ...", file=out, flush=True)
            supervisor.start(spec)
        for spec in plan.specs:
            if stop.is_set():
                break
            supervisor.wait_healthy(spec.name)
            print(f"  {spec.name:17s} healthy at {plan.addresses[spec.name]}", file=out, flush=True)
        if not stop.is_set():
            print(
                f"\nSwitchyard is up. Router: {plan.router_address}   "
                f"(config {plan.router_config_path}, logs {state_dir / 'logs'})",
                file=out,
            )
            print(
                'Try: switchyard ask "What is the capital of France?"   - Ctrl-C stops everything.',
                file=out,
                flush=True,
            )
            if args.demo:
                from switchyard.suite.demo import run_demo

                run_demo(plan.router_address, out)
            if args.exit_after_demo:
                stop.set()
        while not stop.is_set():
            exited = supervisor.exited()
            if exited:
                name, code = exited[0]
                print(
                    f"{name} exited with status {code}; stopping the suite\n"
                    f"{supervisor.tail(name)}",
                    file=out,
                )
                return 1
            stop.wait(1.0)
        return 0
    except StartupError as error:
        print(f"start-up failed: {error}", file=out)
        return 1
    finally:
        print("stopping ...", file=out, flush=True)
        codes = supervisor.stop_all()
        print("stopped: " + ", ".join(f"{n} ({c})" for n, c in codes.items()), file=out)
        for sig, handler in previous.items():
            signal.signal(sig, handler)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="switchyard up", description=__doc__.split("\n")[0])
    parser.add_argument(
        "--state-dir", default=os.environ.get("SWITCHYARD_STATE_DIR", "~/.cache/switchyard/suite")
    )
    parser.add_argument("--base-port", type=int, default=50051)
    parser.add_argument("--startup-timeout", type=float, default=900.0)
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
