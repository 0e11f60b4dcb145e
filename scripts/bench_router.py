#!/usr/bin/env python3
"""Benchmark: the router's added latency at 50 and 200 concurrent callers against a fast backend.

Three processes, as deployed: this load generator, `switchyard-router`, and one process serving
an instant classifier and an instant inference backend (real gRPC servers speaking the real
contract, answering at once: tests/support/router_processes.py). Per request we record:

- client latency through the router (Complete), and the same callers calling the fast backend
  directly (Generate), side by side in one run;
- the router's added latency = the router's own wall time for the request (CostBreakdown
  total_latency_ms, taken after the request's ledger record is durable) minus the time spent
  in its classifier and backend hops (each hop's latency as the router measured it, gRPC round
  trip included). That is everything except the classifier's and the backend's own time.

Several router set-ups can run side by side in one run (`--variants`), in alternating rounds
(`--rounds`; each round visits every set-up, in an order that rotates), each on its own
process and ledger:
- `fsync`: this tree, the default (answered once the record is fsynced in the journal);
- `page-cache`: this tree, the opt-in weaker mode (answered once the record is written);
- `before`: an older tree of the repository (`--before DIR`, its `services/` put first on
  PYTHONPATH), e.g. a worktree of the commit before durable records;
- `fsync-base`: another older tree (`--base DIR`) that has the journal, in its default
  `fsync` mode, e.g. the commit a change to the journal started from;
- `shadow-off` / `shadow-sampled`: this tree (durability `--durability`) without shadow
  evaluation, and with `--shadow-share` of requests shadow-evaluated (the shadow call and both
  judge calls go to the instant backend, which answers the judge with a tie);
  `shadow-deferred`: the same share with `evaluation.defer_while_in_flight: 1` (an evaluation
  starts only while the router serves nothing). The run prints how many evaluations each
  sampled router recorded, of how many requests.

Usage:
    .venv/bin/python scripts/bench_router.py [--seconds 10] [--concurrency 50 200]
    .venv/bin/python scripts/bench_router.py --variants before fsync-base fsync page-cache \\
        --before /tmp/main-worktree --base /tmp/start-worktree --rounds 3 --seconds 5
    .venv/bin/python scripts/bench_router.py --variants shadow-off shadow-sampled \\
        shadow-deferred --shadow-share 0.1 --rounds 3 --seconds 5
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sqlite3
import statistics
import sys
import tempfile
import time
from pathlib import Path

import grpc

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "tests"))  # the router/fakes processes: tests/support/

from support.disk import fsync_probe  # noqa: E402
from support.router_processes import Fakes, RouterProcess, router_config  # noqa: E402

from switchyard.api.inference.v1 import inference_pb2, inference_pb2_grpc  # noqa: E402
from switchyard.api.router.v1 import router_pb2, router_pb2_grpc  # noqa: E402

VARIANTS = (
    "before",
    "fsync-base",
    "fsync",
    "page-cache",
    "shadow-off",
    "shadow-sampled",
    "shadow-deferred",
)
SHADOW_VARIANTS = ("shadow-off", "shadow-sampled", "shadow-deferred")
SAMPLED_VARIANTS = ("shadow-sampled", "shadow-deferred")


def pct(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    k = (len(ordered) - 1) * q
    lo, hi = int(k), min(int(k) + 1, len(ordered) - 1)
    return ordered[lo] + (ordered[hi] - ordered[lo]) * (k - lo)


async def load(address: str, concurrency: int, seconds: float, direct: bool) -> dict[str, object]:
    channels = [grpc.aio.insecure_channel(address) for _ in range(min(concurrency, 8))]
    client_ms: list[float] = []
    added_ms: list[float] = []
    errors: dict[str, int] = {}
    messages = [inference_pb2.ChatMessage(role=inference_pb2.ROLE_USER, content="hello there")]
    stop_at = time.perf_counter() + seconds

    async def worker(i: int) -> None:
        channel = channels[i % len(channels)]
        router = router_pb2_grpc.RouterServiceStub(channel)
        backend = inference_pb2_grpc.InferenceServiceStub(channel)
        while time.perf_counter() < stop_at:
            started = time.perf_counter()
            try:
                if direct:
                    await backend.Generate(
                        inference_pb2.GenerateRequest(model="fast", messages=messages), timeout=30
                    )
                else:
                    reply = await router.Complete(
                        router_pb2.CompleteRequest(messages=messages), timeout=30
                    )
                    hops = sum(h.latency_ms for h in reply.cost.hops)
                    added_ms.append(reply.cost.total_latency_ms - hops)
            except grpc.aio.AioRpcError as error:
                errors[error.code().name] = errors.get(error.code().name, 0) + 1
                continue
            client_ms.append((time.perf_counter() - started) * 1000)

    await asyncio.gather(*(worker(i) for i in range(concurrency)))
    for channel in channels:
        await channel.close()
    return {
        "requests": len(client_ms),
        "rps": len(client_ms) / seconds,
        "errors": errors,
        "client_ms": client_ms,
        "added_ms": added_ms,
    }


def start_router(
    variant: str, directory: Path, fakes: Fakes, args: argparse.Namespace
) -> RouterProcess:
    trees: dict[str, Path | None] = {"before": args.before, "fsync-base": args.base}
    directory.mkdir(parents=True, exist_ok=True)
    # gRPC only here (RouterProcess turns the HTTP door off; scripts/bench_front_door.py
    # measures it); a tree from before the door does not know that setting
    env: dict[str, str | None] = {"SWITCHYARD_ROUTER_LOG_LEVEL": "ERROR"}
    if variant == "before":
        env["SWITCHYARD_ROUTER_HTTP_ENABLED"] = None
    os.environ.pop("PYTHONPATH", None)
    if variant in trees:
        tree = trees[variant]
        if tree is None:
            option = "--before" if variant == "before" else "--base"
            raise SystemExit(f"--variants {variant} needs {option} DIR (an older tree of the repo)")
        parts = ("router", "runtime", "api")
        old = ":".join(str(tree / "services" / part) for part in parts)
        os.environ["PYTHONPATH"] = old  # RouterProcess passes the environment on
    if variant == "before":
        env["SWITCHYARD_ROUTER_LEDGER_SPILL_PATH"] = str(directory / "spill.jsonl")
    else:
        env["SWITCHYARD_ROUTER_LEDGER_JOURNAL_DIR"] = str(directory / "journal")
        if variant in SHADOW_VARIANTS:
            durability = args.durability
        else:
            durability = "page-cache" if variant == "page-cache" else "fsync"
        env["SWITCHYARD_ROUTER_LEDGER_DURABILITY"] = durability
    config = router_config(fakes.address, f"sqlite:{directory / 'ledger.db'}")
    if variant in SAMPLED_VARIANTS:
        config["evaluation"] = {
            "judge_target": "frontier",
            "share": args.shadow_share,
            "daily_budget_usd": 1_000_000.0,
        }
        if variant == "shadow-deferred":
            config["evaluation"]["defer_while_in_flight"] = 1
    try:
        return RouterProcess(directory, config, env).start()
    finally:
        os.environ.pop("PYTHONPATH", None)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--seconds", type=float, default=10.0, help="per measurement")
    parser.add_argument("--concurrency", type=int, nargs="+", default=[50, 200])
    parser.add_argument("--variants", nargs="+", choices=VARIANTS, default=["fsync"])
    parser.add_argument("--before", type=Path, help="an older tree for the 'before' variant")
    parser.add_argument("--base", type=Path, help="an older tree for the 'fsync-base' variant")
    parser.add_argument("--rounds", type=int, default=1)
    parser.add_argument(
        "--shadow-share", type=float, default=0.1, help="shadow-sampled: share evaluated"
    )
    parser.add_argument(
        "--durability", choices=("fsync", "page-cache"), default="fsync", help="shadow-* set-ups"
    )
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()

    tmp = Path(tempfile.mkdtemp(prefix="bench-router-"))
    fakes = Fakes.start(tmp)
    routers: dict[str, RouterProcess] = {}
    try:
        for variant in args.variants:
            routers[variant] = start_router(variant, tmp / variant, fakes, args)
        # results[variant][concurrency] = list of per-round results
        results: dict[str, dict[int, list[dict[str, object]]]] = {
            v: {c: [] for c in args.concurrency} for v in [*args.variants, "direct"]
        }
        for router in routers.values():  # warm-up
            for concurrency in args.concurrency:
                asyncio.run(load(router.address, concurrency, 2.0, direct=False))
        for round_ in range(args.rounds):
            order = args.variants[round_ % len(args.variants) :]
            order += args.variants[: round_ % len(args.variants)]
            for concurrency in args.concurrency:
                for variant in order:
                    measured = asyncio.run(
                        load(routers[variant].address, concurrency, args.seconds, direct=False)
                    )
                    results[variant][concurrency].append(measured)
                direct = asyncio.run(load(fakes.address, concurrency, args.seconds, direct=True))
                results["direct"][concurrency].append(direct)
        report(args, results)
        print(f"\n{fsync_probe(tmp)}: a durable answer waits at least this long")
        for variant in SAMPLED_VARIANTS:
            if variant in routers:
                routers[variant].stop()  # its evaluations are in its ledger once it stops
                verdicts, requests = evaluations(tmp / variant)
                print(f"{variant} recorded evaluations: {verdicts} of {requests} requests")
        return 0
    finally:
        for router in routers.values():
            router.stop()
        fakes.stop()


def evaluations(directory: Path) -> tuple[dict[str, int], int]:
    """(verdict -> evaluations, requests) in a router's SQLite ledger."""
    with sqlite3.connect(directory / "ledger.db") as conn:
        rows = conn.execute("SELECT verdict, COUNT(*) FROM evaluations GROUP BY verdict")
        verdicts = dict(rows.fetchall())
        (requests,) = conn.execute("SELECT COUNT(*) FROM requests").fetchone()
        return verdicts, int(requests)


Results = dict[str, dict[int, list[dict[str, object]]]]


def report(args: argparse.Namespace, results: Results) -> None:
    rows = []
    for variant in [*args.variants, "direct"]:
        for concurrency in args.concurrency:
            rounds = results[variant][concurrency]
            added = [x for r in rounds for x in r["added_ms"]]  # type: ignore[attr-defined]
            client = [x for r in rounds for x in r["client_ms"]]  # type: ignore[attr-defined]
            rows.append(
                {
                    "variant": variant,
                    "callers": concurrency,
                    "requests": sum(r["requests"] for r in rounds),  # type: ignore[misc]
                    "errors": sum(sum(r["errors"].values()) for r in rounds),  # type: ignore[attr-defined]
                    "rps": statistics.fmean(r["rps"] for r in rounds),  # type: ignore[misc]
                    "added_p50_ms": pct(added, 0.5),
                    "added_p99_ms": pct(added, 0.99),
                    "added_p50_per_round": [
                        round(pct(r["added_ms"], 0.5), 3)  # type: ignore[arg-type]
                        for r in rounds
                    ],
                    "client_p50_ms": pct(client, 0.5),
                    "client_p99_ms": pct(client, 0.99),
                }
            )
    if args.json:
        print(json.dumps(rows, indent=2))
    print(
        f"\nrouter added latency (router wall time, ledger record durable, minus its classifier "
        f"and backend hops); {args.rounds} round(s) x {args.seconds:g} s per set-up and level, "
        f"alternating; load average at the end {os.getloadavg()[0]:.1f}\n"
    )
    print(
        f"{'set-up':>14} {'callers':>7} {'added p50':>10} {'added p99':>10} {'errors':>7} "
        f"{'rps':>6} {'client p50':>11} {'client p99':>11}   added p50 per round"
    )
    for row in rows:
        added = "" if row["variant"] == "direct" else f"{row['added_p50_ms']:>8.2f}ms"
        tail = "" if row["variant"] == "direct" else f"{row['added_p99_ms']:>8.2f}ms"
        per_round = "" if row["variant"] == "direct" else str(row["added_p50_per_round"])
        print(
            f"{row['variant']:>14} {row['callers']:>7} {added:>10} {tail:>10} "
            f"{row['errors']:>7} {row['rps']:>6.0f} {row['client_p50_ms']:>9.1f}ms "
            f"{row['client_p99_ms']:>9.1f}ms   {per_round}"
        )
    by = {(r["variant"], r["callers"]): r for r in rows}
    for reference in ("before", "fsync-base", "shadow-off"):
        if reference not in args.variants:
            continue
        print(f"\nagainst '{reference}' (same run):")
        for variant in args.variants:
            if variant == reference:
                continue
            for c in args.concurrency:
                new, old = by[(variant, c)], by[(reference, c)]
                print(
                    f"  {variant:>10} at {c:>3} callers: added p50 "
                    f"{new['added_p50_ms'] - old['added_p50_ms']:+.2f} ms "
                    f"({new['added_p50_ms'] / old['added_p50_ms']:.2f}x), p99 "
                    f"{new['added_p99_ms'] - old['added_p99_ms']:+.2f} ms "
                    f"({new['added_p99_ms'] / old['added_p99_ms']:.2f}x), throughput "
                    f"{new['rps'] / old['rps']:.2f}x"
                )


if __name__ == "__main__":
    sys.exit(main())
