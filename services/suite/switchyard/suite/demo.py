"""A short demo: a few mixed requests through the router, where each went and what it cost."""

from __future__ import annotations

from typing import TextIO

from switchyard_client.cli.formatting import decision_record, report_table, table, usd

__all__ = ["DEMO_PROMPTS", "run_demo"]

DEMO_PROMPTS = [
    "Classify the sentiment of this review as positive or negative: 'The battery died in a day.'",
    "Summarize in one sentence: The meeting moved to Thursday because the venue flooded.",
    "Write a haiku about a train yard at dawn.",
    "Prove that there are infinitely many primes, then generalize to primes of the form 4k+3.",
    "Write a Python function that merges overlapping intervals, with tests.",
    "What is the capital of France?",
]


def run_demo(
    address: str, out: TextIO, *, api_key: str | None = None, max_tokens: int = 64
) -> None:
    from switchyard_client import CostGrouping, SwitchyardClient, SwitchyardClientError

    rows = []
    with SwitchyardClient(address, api_key=api_key, timeout=600) as client:
        for prompt in DEMO_PROMPTS:
            try:
                reply = client.complete(prompt, max_tokens=max_tokens)
            except SwitchyardClientError as error:
                rows.append([prompt[:48], "-", "-", "-", error.code.name, "-", "-"])
                continue
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
        print("\nDemo: where each request went and what it cost\n", file=out)
        print(
            table(
                ["prompt", "task type", "score", "target (model)", "reason", "latency", "cost"],
                rows,
            ),
            file=out,
        )
        report = client.cost_report(CostGrouping.TARGET, timeout=60)
        print("\n" + report_table(report), file=out, flush=True)
