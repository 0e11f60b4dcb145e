"""Deterministic ledger records and an independent reference report to check backends against.

The reference uses numpy's percentile (linear interpolation) and integer nano-dollar sums; it
shares no code with the ledger's aggregation.
"""

from __future__ import annotations

import random
from collections import defaultdict
from dataclasses import replace
from datetime import UTC, datetime, timedelta

import numpy as np

from switchyard.router.ledger import AttemptRecord, Grouping, RequestRecord

T0 = datetime(2026, 3, 1, tzinfo=UTC)
WINDOW_START = T0 + timedelta(hours=6)
WINDOW_END = T0 + timedelta(hours=30)

TENANTS = ("acme", "globex", "initech")
TASK_TYPES = ("MATH", "CODE", "CHAT", "SUMMARIZE", "")
# (logical target, kind, backend, model, USD per token)
TARGETS = (
    ("local-small", "LOCAL", "local-inference", "smollm2-135m", 2e-8),
    ("local-code", "LOCAL", "local-inference", "qwen2.5-coder-0.5b", 3e-8),
    ("frontier", "FRONTIER", "frontier-proxy", "gpt-4.1", 8e-6),
    ("frontier-mini", "FRONTIER", "frontier-proxy", "gpt-4.1-mini", 1.6e-6),
)
BASELINE_USD_PER_TOKEN = 8e-6


def make_record(
    request_id: str,
    *,
    time: datetime = WINDOW_START + timedelta(hours=1),
    tenant: str = "acme",
    task_type: str = "MATH",
    target: int = 0,
    latency_ms: float = 120.0,
    status: str = "OK",
    input_tokens: int = 100,
    output_tokens: int = 50,
    fallback_from: int | None = None,
) -> RequestRecord:
    """One request, optionally with a failed first attempt on another target."""
    name, kind, backend, model, price = TARGETS[target]
    attempts = []
    if fallback_from is not None:
        f_name, _, f_backend, f_model, _ = TARGETS[fallback_from]
        attempts.append(AttemptRecord(f_name, f_backend, f_model, "UNAVAILABLE", 3.5, 0.0, 0, 0))
    cost = (input_tokens + output_tokens) * price
    attempts.append(
        AttemptRecord(
            name, backend, model, status, latency_ms * 0.9, cost, input_tokens, output_tokens
        )
    )
    classifier = 0.000012
    return RequestRecord(
        request_id=request_id,
        time=time,
        tenant=tenant,
        task_type=task_type,
        complexity=0.42,
        target=name,
        target_kind=kind,
        model=model,
        reason="ESCALATED" if kind == "FRONTIER" else "BELOW_THRESHOLD",
        escalation_score=0.7 if kind == "FRONTIER" else 0.2,
        status=status,
        classifier_cost_usd=classifier,
        total_cost_usd=classifier + sum(a.cost_usd for a in attempts),
        latency_ms=latency_ms,
        input_tokens=input_tokens,
        output_tokens=output_tokens,
        baseline_cost_usd=(input_tokens + output_tokens) * BASELINE_USD_PER_TOKEN,
        attempts=tuple(attempts),
    )


def route_only(record: RequestRecord, latency_ms: float) -> RequestRecord:
    """`record` as a decision-only Route call: no attempts, no tokens, the classifier's cost."""
    return replace(
        record,
        operation="route",
        attempts=(),
        total_cost_usd=record.classifier_cost_usd,
        input_tokens=0,
        output_tokens=0,
        baseline_cost_usd=0.0,
        latency_ms=latency_ms,
    )


def dataset(n: int = 240, seed: int = 7) -> list[RequestRecord]:
    """`n` mixed requests over two days around the window (about one in six a route-only
    call), plus records on its edges."""
    rng = random.Random(seed)
    records = []
    for i in range(n):
        routed = rng.random() < 0.17
        time = T0 + timedelta(
            seconds=rng.randrange(0, 36 * 3600), microseconds=rng.randrange(10**6)
        )
        target = rng.randrange(len(TARGETS))
        latency = rng.choice([rng.uniform(1, 3000), round(rng.uniform(1, 50)), 250.0])  # ties too
        record = make_record(
            f"req-{i:04d}",
            time=time,
            tenant=rng.choice(TENANTS),
            task_type=rng.choice(TASK_TYPES),
            target=target,
            latency_ms=latency,
            status=rng.choices(["OK", "UNAVAILABLE", "DEADLINE_EXCEEDED"], [8, 1, 1])[0],
            input_tokens=rng.randrange(0, 4000),
            output_tokens=rng.randrange(0, 1500),
            fallback_from=(target + 1) % len(TARGETS) if rng.random() < 0.15 else None,
        )
        records.append(route_only(record, rng.uniform(1, 20)) if routed else record)
    edge = make_record("edge-start", time=WINDOW_START, tenant="globex", latency_ms=7.0)
    records += [
        edge,  # inclusive start: inside
        replace(edge, request_id="edge-end", time=WINDOW_END),  # exclusive end: outside
        replace(edge, request_id="edge-before", time=WINDOW_START - timedelta(microseconds=1)),
    ]
    return records


def _expected_row(group: list[RequestRecord]) -> dict[str, float]:
    members = [r for r in group if r.operation != "route"]
    routed = [r for r in group if r.operation == "route"]
    cost_n = sum(round(r.total_cost_usd * 1e9) for r in members)
    base_n = sum(round(r.baseline_cost_usd * 1e9) for r in members)

    def percentile(values: list[RequestRecord], q: int) -> float:
        return float(np.percentile([r.latency_ms for r in values], q)) if values else 0.0

    return {
        "requests": len(members),
        "failed_requests": sum(r.status != "OK" for r in members),
        "input_tokens": sum(r.input_tokens for r in members),
        "output_tokens": sum(r.output_tokens for r in members),
        "cost_usd": cost_n / 1e9,
        "baseline_cost_usd": base_n / 1e9,
        "saving_usd": (base_n - cost_n) / 1e9,
        "latency_p50_ms": percentile(members, 50),
        "latency_p95_ms": percentile(members, 95),
        "route_requests": len(routed),
        "route_failed_requests": sum(r.status != "OK" for r in routed),
        "route_cost_usd": sum(round(r.total_cost_usd * 1e9) for r in routed) / 1e9,
        "route_latency_p50_ms": percentile(routed, 50),
        "route_latency_p95_ms": percentile(routed, 95),
    }


def reference_report(
    records: list[RequestRecord],
    grouping: Grouping,
    start: datetime = WINDOW_START,
    end: datetime = WINDOW_END,
    tenant: str | None = None,
) -> tuple[dict[str, dict[str, float]], dict[str, float] | None]:
    """Expected rows keyed by group, and the total (None for an empty window), computed
    without the ledger's code."""
    inside = [
        r for r in records if start <= r.time < end and (tenant is None or r.tenant == tenant)
    ]
    groups: dict[str, list[RequestRecord]] = defaultdict(list)
    for r in inside:
        groups[str(getattr(r, grouping.value))].append(r)
    rows = {key: _expected_row(members) for key, members in groups.items()}
    return rows, (_expected_row(inside) if inside else None)
