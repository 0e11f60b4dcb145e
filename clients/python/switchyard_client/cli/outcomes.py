"""`switchyard feedback`, `switchyard outcomes export` and `switchyard calibrate`.

    switchyard feedback REQUEST_ID good|bad [--reason TEXT]
    switchyard outcomes export [--days 30] [--tenant T] [--task-type MATH ...] [--output F]
    switchyard calibrate (--frontier-share 0.2 | --quality 0.95) [--days 7] [--task-type MATH]

docs/services/outcomes.md describes the outcome file and how calibration chooses.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable
from contextlib import nullcontext
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, TextIO

__all__ = ["add_commands", "calibration_text", "config_lines"]

Client = Callable[[argparse.Namespace], Any]


def _window(args: argparse.Namespace) -> tuple[datetime, datetime]:
    end = args.end or datetime.now(UTC) + timedelta(seconds=1)
    return end - timedelta(days=args.days), end


def cmd_feedback(args: argparse.Namespace, out: TextIO, client: Client, error: Any) -> int:
    from switchyard_client import SwitchyardClientError

    with client(args) as c:
        try:
            reply = c.feedback(args.request_id, good=args.verdict == "good", reason=args.reason)
        except SwitchyardClientError as exc:
            raise error(exc) from None
    tier = {1: "local", 2: "frontier"}.get(reply.rated_tier, "unknown")
    print(f"recorded: {args.verdict} for {reply.request_id} ({tier} answer, model "
          f"{reply.rated_model})", file=out)  # fmt: skip
    return 0


def cmd_export(args: argparse.Namespace, out: TextIO, client: Client, error: Any) -> int:
    from switchyard_client import SwitchyardClientError, outcome_record

    start, end = _window(args)
    count = partial = 0
    target = Path(args.output).open("w", encoding="utf-8") if args.output else nullcontext(out)
    with client(args) as c, target as sink:
        try:
            for outcome in c.export_outcomes(
                start=start, end=end, tenant=args.tenant or "", task_types=args.task_type or ()
            ):
                record = outcome_record(outcome)
                sink.write(json.dumps(record, ensure_ascii=False) + "\n")
                count += 1
                partial += record["partial"]
        except SwitchyardClientError as exc:
            raise error(exc) from None
    where = f" to {args.output}" if args.output else ""
    print(f"{count} outcomes ({partial} partial) of requests since {start.isoformat()}{where}",
          file=sys.stderr)  # fmt: skip
    return 0


def config_lines(threshold: float, task_type: str) -> str:
    """The router.yaml lines that put `threshold` in force."""
    if task_type:
        return (
            "routing:\n  task_rules:\n"
            f"    {task_type.upper()}: {{escalation_threshold: {threshold:g}}}"
            "   # keep the rule's other keys; drop its threshold_delta"
        )
    return f"routing:\n  escalation_threshold: {threshold:g}"


def _share(value: float | None) -> str:
    return "n/a" if value is None else f"{100 * value:.1f}%"


def calibration_text(reply: Any, args: argparse.Namespace) -> str:
    def quality(p: Any) -> float | None:
        return p.quality_share if p.HasField("quality_share") else None

    chosen, current = reply.chosen, reply.current
    goal = (
        f"{100 * args.frontier_share:g}% of requests to the frontier"
        if args.frontier_share is not None
        else f"{100 * args.quality:g}% of all-frontier quality, as cheaply as possible"
    )
    lines = [
        f"Target: {goal} (over {reply.decisions} decisions and {reply.outcomes} rated outcomes "
        f"of the last {args.days:g} days)",
        f"  threshold {chosen.escalation_threshold:g}: {_share(chosen.frontier_share)} to the "
        f"frontier, quality {_share(quality(chosen))}",
        f"  now       {current.escalation_threshold:g}: {_share(current.frontier_share)} to the "
        f"frontier, quality {_share(quality(current))}",
    ]
    if not reply.target_met:
        lines.append("  no threshold meets the quality target on these outcomes: escalate all")
    apply = config_lines(chosen.escalation_threshold, args.task_type)
    lines += ["", "Apply in router.yaml:", apply]
    return "\n".join(lines)


def cmd_calibrate(args: argparse.Namespace, out: TextIO, client: Client, error: Any) -> int:
    from switchyard_client import SwitchyardClientError

    if (args.frontier_share is None) == (args.quality is None):
        raise error(ValueError("give --frontier-share or --quality"))
    start, end = _window(args)
    with client(args) as c:
        try:
            reply = c.calibrate(
                frontier_share=args.frontier_share, quality=args.quality, start=start, end=end,
                tenant=args.tenant or "", task_type=args.task_type or "",
            )  # fmt: skip
        except SwitchyardClientError as exc:
            raise error(exc) from None
    print(calibration_text(reply, args), file=out)
    return 0


def add_commands(
    sub: Any,
    client_options: Callable[[argparse.ArgumentParser], None],
    client: Client,
    error: Any,
    utc_time: Callable[[str], datetime],
) -> None:
    """Register the three commands; `client(args)` opens the client, `error(exc)` makes the
    CLI's error of a client error."""

    def run(command: Any) -> Callable[[argparse.Namespace, TextIO], int]:
        return lambda args, out: command(args, out, client, error)

    def window(p: argparse.ArgumentParser, days: float) -> None:
        p.add_argument("--days", type=float, default=days, help=f"window length (default {days:g})")
        p.add_argument("--end", type=utc_time, help="end of the window, ISO 8601 (default: now)")
        p.add_argument("--tenant", help="one tenant's requests (an admin key; yours otherwise)")

    feedback = sub.add_parser("feedback", help="rate the answer of one of your requests")
    feedback.add_argument("request_id")
    feedback.add_argument("verdict", choices=("good", "bad"))
    feedback.add_argument("--reason", default="", help="why, in a few words (<= 500 characters)")
    client_options(feedback)
    feedback.set_defaults(func=run(cmd_feedback))

    outcomes = sub.add_parser("outcomes", help="outcomes the router collected")
    actions = outcomes.add_subparsers(dest="action", required=True)
    export = actions.add_parser("export", help="write the outcome file (JSON lines)")
    window(export, 30.0)
    export.add_argument("--task-type", action="append", help="only this task type (repeatable)")
    export.add_argument("--output", "-o", help="file to write (default: standard output)")
    client_options(export)
    export.set_defaults(func=run(cmd_export))

    calibrate = sub.add_parser("calibrate", help="the escalation threshold for a target")
    goal = calibrate.add_mutually_exclusive_group(required=True)
    goal.add_argument("--frontier-share", type=float, help="share of requests to escalate (0-1)")
    goal.add_argument("--quality", type=float, help="share of frontier quality to keep (0-1]")
    window(calibrate, 7.0)
    calibrate.add_argument("--task-type", default="", help="calibrate this task type's threshold")
    client_options(calibrate)
    calibrate.set_defaults(func=run(cmd_calibrate))
