"""`switchyard`: run the suite here (`up`) and talk to the router (`ask`, `route`, `costs`).

    switchyard up                       start the four services with CPU defaults; Ctrl-C stops them
    switchyard ask "question"           answer, decision, per-hop cost and latency
    switchyard route "question"         decision only
    switchyard route --input in.jsonl   one JSON line per {"id", "prompt"} line
    switchyard costs [--group-by model] the cost report, with the saving against all-frontier
    switchyard feedback ID good|bad     rate the answer of one of your requests
    switchyard outcomes export          the outcome file (JSON lines) for `train --outcomes`
    switchyard calibrate --quality 0.95 the escalation threshold for a target, as config lines
    switchyard hash-key KEY             the SHA-256 form of an API key, for the router's config

The router address comes from --address or SWITCHYARD_ADDRESS (default 127.0.0.1:50051), the API
key from --api-key or SWITCHYARD_API_KEY (sent as `authorization: Bearer`; never printed).
`ask` prints the request's trace id: with the services exporting traces (`switchyard up
--otlp-endpoint http://localhost:4317` next to Jaeger) open http://localhost:16686/trace/<id>.
"""

from __future__ import annotations

import argparse
import concurrent.futures
import hashlib
import json
import os
import sys
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, TextIO

from switchyard_client.cli.formatting import (
    decision_line,
    decision_record,
    hops_table,
    report_table,
)
from switchyard_client.cli.outcomes import add_commands

__all__ = ["main"]

DEFAULT_ADDRESS = "127.0.0.1:50051"
_GROUPINGS = ("model", "target", "task_type", "tenant")  # switchyard_client.CostGrouping


class CliError(Exception):
    pass


def _client(args: argparse.Namespace) -> Any:
    """The Python client (`clients/python`, installed by scripts/setup) for the router."""
    try:
        from switchyard_client import SwitchyardClient
    except ImportError:  # pragma: no cover - a services-only install
        raise CliError(
            "this command needs the Python client: pip install -e clients/python"
        ) from None
    address = args.address or os.environ.get("SWITCHYARD_ADDRESS", DEFAULT_ADDRESS)
    api_key = args.api_key or os.environ.get("SWITCHYARD_API_KEY") or None
    return SwitchyardClient(address, api_key=api_key, timeout=args.timeout)


def _client_error(error: Exception) -> CliError:
    from switchyard_client import MessageTooLarge

    code = getattr(error, "code", None)
    details = getattr(error, "details", str(error))
    if isinstance(error, MessageTooLarge):
        return CliError(
            f"the request is larger than a gRPC message may be (RESOURCE_EXHAUSTED: {details}); "
            "send a shorter prompt"
        )
    return CliError(f"{code.name if code is not None else 'ERROR'}: {details}")


def _routing(args: argparse.Namespace) -> Any:
    from switchyard_client import RoutingOptions

    return RoutingOptions(
        escalation_threshold=getattr(args, "threshold", None),
        force_target=getattr(args, "force_target", "") or "",
        disallow_frontier=bool(getattr(args, "disallow_frontier", False)),
        max_cost_usd=getattr(args, "max_cost", None),
    )


# ---- ask -----------------------------------------------------------------------------------------


def cmd_ask(args: argparse.Namespace, out: TextIO) -> int:
    from switchyard_client import SwitchyardClientError, capture_trace_ids

    with _client(args) as client, capture_trace_ids() as trace_ids:
        try:
            if args.stream:
                summary = None
                for event in client.stream(
                    args.prompt, max_tokens=args.max_tokens, routing=_routing(args)
                ):
                    kind = event.WhichOneof("event")
                    if kind == "decision":
                        print(f"-> {decision_line(event.decision)}\n", file=out)
                    elif kind == "delta":
                        out.write(event.delta.text)
                        out.flush()
                    elif kind == "summary":
                        summary = event.summary
                print("\n", file=out)
                if summary is not None:
                    print(f"served by: {decision_line(summary.decision)}", file=out)
                    print(f"request:   {summary.request_id}", file=out)
                    if trace_ids:
                        print(f"trace:     {trace_ids[-1]}", file=out)
                    print(hops_table(summary.cost), file=out)
                return 0
            reply = client.complete(args.prompt, max_tokens=args.max_tokens, routing=_routing(args))
        except SwitchyardClientError as error:
            raise _client_error(error) from None
    trace_id = trace_ids[-1] if trace_ids else None
    if args.json:
        print(
            json.dumps(
                {
                    "request_id": reply.request_id,
                    "trace_id": trace_id,
                    "text": reply.text,
                    **decision_record(reply.decision),
                    "cost_usd": reply.cost.total_cost_usd,
                    "latency_ms": reply.cost.total_latency_ms,
                }
            ),
            file=out,
        )
        return 0
    print(reply.text.strip(), file=out)
    print(f"\ndecision: {decision_line(reply.decision)}", file=out)
    print(f"request:  {reply.request_id}", file=out)
    if trace_id:
        print(f"trace:    {trace_id}", file=out)
    print(file=out)
    print(hops_table(reply.cost), file=out)
    return 0


# ---- route ---------------------------------------------------------------------------------------


def _read_jsonl(path: Path) -> Iterator[tuple[int, str, str]]:
    with path.open(encoding="utf-8") as handle:
        for number, line in enumerate(handle, 1):
            if not line.strip():
                continue
            try:
                item = json.loads(line)
            except json.JSONDecodeError as exc:
                raise CliError(f"{path}:{number}: not JSON: {exc.msg}") from None
            if not isinstance(item, dict) or "prompt" not in item or "id" not in item:
                raise CliError(f'{path}:{number}: each line must be {{"id": ..., "prompt": ...}}')
            if not isinstance(item["prompt"], str) or not item["prompt"].strip():
                raise CliError(f"{path}:{number}: prompt must be a non-empty string")
            yield number, item["id"], item["prompt"]


def cmd_route(args: argparse.Namespace, out: TextIO) -> int:
    from switchyard_client import SwitchyardClientError

    if bool(args.prompt) == bool(args.input):
        raise CliError("give either a prompt or --input FILE.jsonl")
    routing = _routing(args)
    with _client(args) as client:
        if args.prompt:
            try:
                reply = client.route(args.prompt, routing=routing)
            except SwitchyardClientError as error:
                raise _client_error(error) from None
            if args.json:
                print(json.dumps(decision_record(reply.decision)), file=out)
            else:
                print(decision_line(reply.decision), file=out)
                print(hops_table(reply.cost), file=out)
            return 0
        items = list(_read_jsonl(Path(args.input)))
        failures = 0
        with concurrent.futures.ThreadPoolExecutor(args.concurrency) as pool:
            futures = [pool.submit(client.route, prompt, routing=routing) for _, _, prompt in items]
            for (_, item_id, _), future in zip(items, futures, strict=True):
                try:
                    reply = future.result()
                    line = {"id": item_id, **decision_record(reply.decision)}
                except SwitchyardClientError as error:
                    failures += 1
                    line = {"id": item_id, "error": str(_client_error(error))}
                print(json.dumps(line), file=out)
        if failures:
            print(f"{failures} of {len(items)} prompts failed", file=sys.stderr)
            return 1
        return 0


# ---- costs ---------------------------------------------------------------------------------------


def _utc_time(text: str) -> datetime:
    try:
        value = datetime.fromisoformat(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not an ISO 8601 time: {text!r}") from None
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def cmd_costs(args: argparse.Namespace, out: TextIO) -> int:
    from switchyard_client import CostGrouping, SwitchyardClientError

    end = args.end or datetime.now(UTC) + timedelta(seconds=1)
    with _client(args) as client:
        try:
            report = client.cost_report(
                CostGrouping(args.group_by), start=end - timedelta(hours=args.hours), end=end
            )
        except SwitchyardClientError as error:
            raise _client_error(error) from None
    until = f" until {end.isoformat()}" if args.end else ""
    print(f"Costs over the last {args.hours:g} h{until}, by {args.group_by}:\n", file=out)
    print(report_table(report), file=out)
    return 0


# ---- up ------------------------------------------------------------------------------------------


def cmd_up(args: argparse.Namespace, out: TextIO) -> int:
    return run_up(args.suite_args, out)


def run_up(suite_args: list[str], out: TextIO) -> int:
    """`switchyard up ...` is `switchyard-suite ...`: the services, when they are installed."""
    try:
        from switchyard.suite.command import main as suite_main
    except ImportError:
        raise CliError(
            "`up` starts the four services, which are not installed here (this is the client "
            "alone). From a checkout run ./scripts/up, or install the suite: "
            "pip install -e services/suite (with the service distributions)"
        ) from None
    return suite_main(suite_args, out)


def hash_api_key(key: str) -> str:
    """The form the router's configuration stores an API key in: its SHA-256 hex digest
    (`switchyard.router.config.hash_api_key`; a test keeps the two equal)."""
    return hashlib.sha256(key.encode("utf-8")).hexdigest()


def cmd_hash_key(args: argparse.Namespace, out: TextIO) -> int:
    print(hash_api_key(args.key), file=out)
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="switchyard",
        description=__doc__.split("\n")[0],
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog="\n".join(__doc__.split("\n")[1:]).strip("\n"),
    )
    sub = parser.add_subparsers(dest="command", required=True)

    def client(p: argparse.ArgumentParser) -> None:
        p.add_argument(
            "--address", help=f"router address (default $SWITCHYARD_ADDRESS or {DEFAULT_ADDRESS})"
        )
        p.add_argument("--api-key", help="API key (default $SWITCHYARD_API_KEY)")
        p.add_argument("--timeout", type=float, default=300.0, help="deadline in seconds")

    def routing(p: argparse.ArgumentParser) -> None:
        p.add_argument("--force-target", help="send to this logical target")
        p.add_argument("--disallow-frontier", action="store_true")
        p.add_argument("--threshold", type=float, help="escalation threshold for this request")
        p.add_argument("--max-cost", type=float, help="refuse targets estimated above this USD")

    up = sub.add_parser(
        "up",
        help="start the four services here (switchyard-suite); Ctrl-C stops them",
        add_help=False,
    )
    up.add_argument("suite_args", nargs=argparse.REMAINDER, help="see switchyard up --help")
    up.set_defaults(func=cmd_up)

    ask = sub.add_parser("ask", help="ask a question through the router")
    ask.add_argument("prompt")
    ask.add_argument("--stream", action="store_true")
    ask.add_argument("--max-tokens", type=int)
    ask.add_argument("--json", action="store_true")
    client(ask)
    routing(ask)
    ask.set_defaults(func=cmd_ask)

    route = sub.add_parser("route", help="the routing decision only")
    route.add_argument("prompt", nargs="?")
    route.add_argument("--input", help='JSON lines file: {"id": ..., "prompt": ...} per line')
    route.add_argument("--concurrency", type=int, default=8)
    route.add_argument("--json", action="store_true")
    client(route)
    routing(route)
    route.set_defaults(func=cmd_route)

    costs = sub.add_parser("costs", help="the cost report")
    costs.add_argument("--group-by", choices=_GROUPINGS, default="model")
    costs.add_argument("--hours", type=float, default=24.0)
    costs.add_argument(
        "--end",
        type=_utc_time,
        help="end of the window, ISO 8601 (default: now; a time without zone is UTC)",
    )
    client(costs)
    costs.set_defaults(func=cmd_costs)

    add_commands(sub, client, _client, _client_error, _utc_time)

    hash_key = sub.add_parser("hash-key", help="print the SHA-256 form of an API key")
    hash_key.add_argument("key")
    hash_key.set_defaults(func=cmd_hash_key)
    return parser


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if argv[:1] == ["up"]:  # everything after `up` is the suite's own (`switchyard up --help`)
        try:
            return run_up(argv[1:], sys.stdout)
        except CliError as error:
            print(f"switchyard up: {error}", file=sys.stderr)
            return 1
    args = build_parser().parse_args(argv)
    try:
        return int(args.func(args, sys.stdout))
    except CliError as error:
        print(f"switchyard {args.command}: {error}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
