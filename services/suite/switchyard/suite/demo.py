"""A short demo: a few mixed requests through the router, where each went and what it cost.

It prints its own requests only: the table from the replies, then the cost report of the demo's
time window (with the saving against all-frontier), not the ledger's whole last day. When the
services export traces, each request's trace id and its Jaeger link are printed too (the router
returns the id as `traceresponse` metadata).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any, TextIO

from switchyard_client.cli.formatting import decision_record, report_table, table, usd

__all__ = ["DEMO_PROMPTS", "jaeger_trace_url", "run_demo"]

DEMO_PROMPTS = [
    "Classify the sentiment of this review as positive or negative: 'The battery died in a day.'",
    "Summarize in one sentence: The meeting moved to Thursday because the venue flooded.",
    "Write a haiku about a train yard at dawn.",
    "Prove that there are infinitely many primes, then generalize to primes of the form 4k+3.",
    "Write a Python function that merges overlapping intervals, with tests.",
    "What is the capital of France?",
]


def jaeger_trace_url(base_url: str, trace_id: str) -> str:
    return f"{base_url.rstrip('/')}/trace/{trace_id}"


def _window_report(
    client: Any, start: datetime, end: datetime, sent: int, *, wait_s: float = 10.0
) -> Any:
    """The report of [start, end), waiting (briefly) until the ledger holds every sent record."""
    from switchyard_client import CostGrouping

    deadline = time.monotonic() + wait_s
    while True:
        report = client.cost_report(CostGrouping.TARGET, start=start, end=end, timeout=60)
        if report.total.requests >= sent or time.monotonic() >= deadline:
            return report
        time.sleep(0.2)


def run_demo(
    address: str,
    out: TextIO,
    *,
    api_key: str | None = None,
    max_tokens: int = 64,
    trace_url: str | None = None,
    clock: Callable[[], datetime] = lambda: datetime.now(UTC),
) -> None:
    """Send `DEMO_PROMPTS` to the router at `address` and print what happened.

    `trace_url`: the Jaeger UI to link each request's trace to (None: print no trace links).
    `clock` gives the window the report covers (tests pass one).
    """
    from switchyard_client import SwitchyardClient, SwitchyardClientError, capture_trace_ids

    rows = []
    traces: list[tuple[str, str]] = []
    answered = 0
    total_cost = 0.0
    start = clock() - timedelta(seconds=1)
    with SwitchyardClient(address, api_key=api_key, timeout=600) as client:
        for prompt in DEMO_PROMPTS:
            with capture_trace_ids() as trace_ids:
                try:
                    reply = client.complete(prompt, max_tokens=max_tokens)
                except SwitchyardClientError as error:
                    reply = None
                    rows.append([prompt[:48], "-", "-", "-", error.code.name, "-", "-"])
            if trace_ids:
                traces.append((prompt[:48], trace_ids[-1]))
            if reply is None:
                continue
            answered += 1
            total_cost += reply.cost.total_cost_usd
            r = decision_record(reply.decision)
            rows.append(
                [
                    prompt[:48],
                    r["task_type"] or "?",
                    f"{r['escalation_score']:.2f}",
                    f"{r['target']} ({r['model']})",
                    r["reason"],
                    f"{reply.cost.total_latency_ms:.0f} ms",
                    usd(reply.cost.total_cost_usd),
                ]
            )
        end = clock() + timedelta(seconds=1)
        print("\nDemo: where each request went and what it cost\n", file=out)
        print(
            table(
                ["prompt", "task type", "score", "target (model)", "reason", "latency", "cost"],
                rows,
            ),
            file=out,
        )
        print(
            f"\n{answered} of {len(DEMO_PROMPTS)} demo requests answered, costing "
            f"{usd(total_cost)} in all.",
            file=out,
        )
        if trace_url and traces:
            print("\nTraces of the demo's requests (Jaeger):", file=out)
            for prompt, trace_id in traces:
                print(f"  {trace_id}  {jaeger_trace_url(trace_url, trace_id)}  {prompt}", file=out)
        report = _window_report(client, start, end, len(DEMO_PROMPTS))
        others = report.total.requests - len(DEMO_PROMPTS)
        note = f"; {others} other request(s) fell in the same window" if others > 0 else ""
        print(
            f"\nCost report of the demo's requests ({start:%H:%M:%S}-{end:%H:%M:%S} UTC{note}):\n",
            file=out,
        )
        print(report_table(report), file=out, flush=True)
