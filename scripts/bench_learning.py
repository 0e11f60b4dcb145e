#!/usr/bin/env python3
"""Benchmark: the learning curve of routing that learns from its own traffic (issue 15).

A task family the starting model never saw: MMLU's humanities subjects (law, moral scenarios,
philosophy, history, ...) of the shared outcome file. The run:

1. builds the **baseline**: the shipped recipe trained on the shipped outcome data *without* the
   family (the shipped model itself trained on 80% of every subject's rows, so it has seen the
   family; it is printed too, marked);
2. replays the family as traffic through the live router and classifier service (in this
   process, real gRPC channels; the classifier serves the baseline; backends are gRPC doubles
   whose answers say which tier they are), every request shadow-evaluated, with a judge
   stand-in that answers from the file's known outcomes (local right and frontier wrong:
   local better; the reverse: frontier better; otherwise a tie);
3. exports the outcomes (OutcomeService.ExportOutcomes, the rows `switchyard outcomes export`
   writes) and splits them: a fixed ~30% of the family's questions is **held back** (never
   trained on, whatever the size), the rest is the training pool in a fixed arrival order:
   ``--arrival mixed`` (default: shuffled by a salted hash of the id, the way a team's traffic
   arrives, every subject interleaved) or ``--arrival by-subject`` (sorted by id, so the
   family arrives one subject at a time: the first 600 outcomes cover 4 of its 11 subjects, a
   worst case for a small N);
4. for each size N, trains a candidate on the baseline's outcome data plus the first N exported
   outcomes of the pool (``--team-outcomes``, default weight; all N of them:
   ``--team-holdout-percent 0``, since the held-back traffic is the evaluation here; pass
   ``--team-holdout-percent 20`` for the recipe's default, which trains on ~80% of N), and
   scores it, the baseline, the
   shipped model, prompt length and random ordering on the held-back traffic (APGR, CPT(50%),
   saving at 95% quality), and says whether guarded promotion would replace the baseline.

Task-type rows are capped (``--train-cap``, default 100 per type and source: the escalation head
is what this measures). Embeddings are cached (``--cache-dir``). Prints a table, and JSON with
``--json``.

    flock /tmp/switchyard-bench.lock .venv/bin/python scripts/bench_learning.py \\
        --sizes 100 300 600 1000 3000
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import json
import shutil
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "tests"))  # support/frontier_standin.py (the judge rule)
sys.path.insert(0, str(REPO / "tests" / "service" / "router"))  # router_doubles.py

import grpc  # noqa: E402
import numpy as np  # noqa: E402
import yaml  # noqa: E402
from router_doubles import FakeBackend, serve  # noqa: E402
from support.frontier_standin import JudgeRule  # noqa: E402

from switchyard.api.inference.v1 import inference_pb2, inference_pb2_grpc  # noqa: E402
from switchyard.api.router.v1 import (  # noqa: E402
    outcomes_pb2,
    outcomes_pb2_grpc,
    router_pb2,
    router_pb2_grpc,
)
from switchyard.classifier.model import SHIPPED_MODEL_DIR, ClassifierModel  # noqa: E402
from switchyard.classifier.service import build_service  # noqa: E402
from switchyard.classifier.settings import ClassifierSettings  # noqa: E402
from switchyard.router.config import hash_api_key  # noqa: E402
from switchyard.router.service import build_definition  # noqa: E402
from switchyard.router.settings import RouterSettings  # noqa: E402
from switchyard.runtime.server import start_server  # noqa: E402
from switchyard.training.build import BuildConfig, build_model  # noqa: E402
from switchyard.training.cli import DEFAULT_OUTCOMES_FILE, resolve_data_dir  # noqa: E402
from switchyard.training.data import held_out  # noqa: E402
from switchyard.training.mapping import MMLU_CATEGORIES  # noqa: E402
from switchyard.training.outcome_evaluation import (  # noqa: E402
    escalation_scores,
    score_report,
)
from switchyard.training.promotion import decide  # noqa: E402
from switchyard_client.outcomes import outcome_record  # noqa: E402

FAMILY = "humanities"
HELD_BACK_PERCENT = 30
HELD_BACK_SALT = "bench-learning-v1"
ARRIVAL_SALT = "bench-learning-arrival-v1"
TEAM_KEY, ADMIN_KEY = "team-key-0123", "admin-key-0123"
CONCURRENCY = 8


def log(line: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {line}", file=sys.stderr, flush=True)


def family_rows(outcome_file: Path) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """(the family's rows, one per distinct prompt; every other row), in file order."""
    family, rest, seen = [], [], set()
    with outcome_file.open(encoding="utf-8") as handle:
        for line in handle:
            row = json.loads(line)
            if MMLU_CATEGORIES.get(row["subject"]) != FAMILY:
                rest.append(row)
            elif row["prompt"] not in seen:
                seen.add(row["prompt"])
                family.append(row)
    return family, rest


def arrival_key(row_id: str, arrival: str) -> str:
    """The pool's fixed order: ``mixed`` interleaves the subjects (a salted hash of the id),
    ``by-subject`` is the id order (one subject after another)."""
    if arrival == "by-subject":
        return row_id
    return hashlib.sha256(f"{ARRIVAL_SALT}:{row_id}".encode()).hexdigest()


def judge_preference(row: dict[str, Any]) -> str:
    if row["local_ok"] and not row["frontier_ok"]:
        return "local"
    if row["frontier_ok"] and not row["local_ok"]:
        return "frontier"
    return "tie"


def router_config(classifier: str, local: str, frontier: str, judge: str, ledger: Path) -> dict:
    return {
        "classifier": {"address": classifier, "timeout_ms": 30000},
        "backends": {
            "local-inference": {"address": local, "kind": "LOCAL", "timeout_s": 30},
            "frontier-proxy": {"address": frontier, "kind": "FRONTIER", "timeout_s": 30},
            "judge-proxy": {"address": judge, "kind": "FRONTIER", "timeout_s": 30},
        },
        "targets": {
            "local": {"backend": "local-inference", "model": "small"},
            "frontier": {"backend": "frontier-proxy", "model": "big"},
            "judge": {"backend": "judge-proxy", "model": "judge-1"},
        },
        "routing": {
            "escalation_threshold": 0.5,
            "local_target": "local",
            "frontier_target": "frontier",
            "default_target": "local",
        },
        "tenants": {"team": {"api_key_sha256": [hash_api_key(TEAM_KEY)]}},
        "admin_api_key_sha256": [hash_api_key(ADMIN_KEY)],
        "evaluation": {
            "judge_target": "judge",
            "share": 1.0,
            "store_prompts": True,
            "daily_budget_usd": 1e6,
            "max_concurrency": 4,
            "queue_size": 100_000,
        },
        "ledger": {"url": f"sqlite:{ledger}"},
    }


async def replay(
    rows: list[dict[str, Any]], model_dir: Path, workdir: Path
) -> list[dict[str, Any]]:
    """Send every row's prompt through the live suite; the exported outcome rows."""
    rule = JudgeRule(
        prefer="tie",
        marker="frontier answered",
        by_request={r["prompt"]: judge_preference(r) for r in rows},
    )
    local = FakeBackend("local", cost_usd=1e-5)
    frontier = FakeBackend("frontier", cost_usd=1e-3)
    judge = FakeBackend("judge", cost_usd=1e-4, answer=lambda r: rule.reply(r.messages[-1].content))
    servers = [
        await serve(inference_pb2_grpc.add_InferenceServiceServicer_to_server, b)
        for b in (local, frontier, judge)
    ]
    classifier_settings = ClassifierSettings(
        host="127.0.0.1", port=0, model_dir=model_dir, max_batch_size=32
    )
    exported: list[dict[str, Any]] = []
    try:
        async with start_server(build_service(classifier_settings), port=0) as classifier:
            path = workdir / "router.yaml"
            path.write_text(
                yaml.safe_dump(
                    router_config(
                        classifier.address, *(a for _, a in servers), workdir / "ledger.db"
                    )
                )
            )
            settings = RouterSettings(
                config=path, ledger_journal_dir=workdir / "journal", http_enabled=False
            )
            async with start_server(build_definition(settings), port=0) as router:
                async with grpc.aio.insecure_channel(router.address) as channel:
                    stub = router_pb2_grpc.RouterServiceStub(channel)
                    queue: asyncio.Queue[str] = asyncio.Queue()
                    for r in rows:
                        queue.put_nowait(r["prompt"])
                    done = 0

                    async def caller() -> None:
                        nonlocal done
                        while not queue.empty():
                            prompt = queue.get_nowait()
                            await stub.Complete(
                                router_pb2.CompleteRequest(
                                    messages=[
                                        inference_pb2.ChatMessage(
                                            role=inference_pb2.ROLE_USER, content=prompt
                                        )
                                    ],
                                    parameters=inference_pb2.GenerationParameters(max_tokens=8),
                                ),
                                metadata=[("authorization", f"Bearer {TEAM_KEY}")],
                                timeout=120,
                            )
                            done += 1
                            if done % 500 == 0:
                                log(f"  replayed {done}/{len(rows)}")

                    await asyncio.gather(*(caller() for _ in range(CONCURRENCY)))
                    await router.resources.evaluator.drain()
                    await router.resources.writer.flush()
                    outcomes = outcomes_pb2_grpc.OutcomeServiceStub(channel)
                    request = outcomes_pb2.ExportOutcomesRequest(tenant="team")
                    async for page in outcomes.ExportOutcomes(
                        request, metadata=[("authorization", f"Bearer {ADMIN_KEY}")], timeout=120
                    ):
                        exported += [outcome_record(o) for o in page.outcomes]
    finally:
        for server, _ in servers:
            await server.stop(0)
    return exported


def write_jsonl(path: Path, rows: list[dict[str, Any]]) -> Path:
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    return path


def build(out: Path, prompts: Path, outcomes: Path, team: Path | None, args: Any) -> Path:
    started = time.monotonic()
    build_model(
        BuildConfig(
            out=out,
            prompts_dir=prompts,
            outcomes_file=outcomes,
            team_outcomes_file=team,
            team_held_out_percent=args.team_holdout_percent,
            train_cap=args.train_cap,
            eval_cap=50,
            threads=args.threads,
            cache_dir=args.cache_dir,
            log=lambda _: None,
        )
    )
    log(f"  built {out.name} in {time.monotonic() - started:.0f} s")
    return out


def scores_on(model_dir: Path, held: list[dict[str, Any]]) -> tuple[np.ndarray, np.ndarray]:
    return escalation_scores(ClassifierModel(model_dir), [r["prompt"] for r in held])


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[100, 300, 600, 1000, 3000])
    parser.add_argument("--train-cap", type=int, default=100)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--data-dir", type=Path, default=None)
    parser.add_argument("--cache-dir", type=Path, default=Path("/tmp/switchyard-bench-cache"))
    parser.add_argument("--team-holdout-percent", type=int, default=0)
    parser.add_argument("--arrival", choices=("mixed", "by-subject"), default="mixed")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    data = resolve_data_dir(args.data_dir)
    family, rest = family_rows(data / DEFAULT_OUTCOMES_FILE)
    held_ids = {r["id"] for r in family if held_out(r["id"], HELD_BACK_PERCENT, HELD_BACK_SALT)}
    log(f"family {FAMILY}: {len(family)} questions ({len(held_ids)} held back); other: {len(rest)}")
    with tempfile.TemporaryDirectory(prefix="bench-learning-") as tmp_name:
        tmp = Path(tmp_name)
        baseline_outcomes = write_jsonl(tmp / "outcomes_without_family.jsonl", rest)
        log("building the baseline (shipped recipe, outcome data without the family) ...")
        baseline = build(tmp / "baseline", data / "prompts", baseline_outcomes, None, args)
        log(f"replaying {len(family)} requests through the router and classifier ...")
        started = time.monotonic()
        exported = asyncio.run(replay(family, baseline, tmp))
        log(f"  {len(exported)} outcomes exported in {time.monotonic() - started:.0f} s")
        by_prompt = {r["prompt"]: r for r in family}
        held = [e for e in exported if by_prompt[e["prompt"]]["id"] in held_ids]
        pool = [e for e in exported if by_prompt[e["prompt"]]["id"] not in held_ids]
        pool.sort(key=lambda e: arrival_key(by_prompt[e["prompt"]]["id"], args.arrival))
        held_file = write_jsonl(tmp / "held_back.jsonl", held)
        local_ok = np.array([bool(e["local_ok"]) for e in held])
        frontier_ok = np.array([bool(e["frontier_ok"]) for e in held])
        base_scores, tokens = scores_on(baseline, held)
        shipped_scores, _ = scores_on(SHIPPED_MODEL_DIR, held)
        rows: list[dict[str, Any]] = []
        reference = score_report(
            {
                "baseline": base_scores,
                "shipped_model_saw_family": shipped_scores,
                "prompt_length": tokens,
            },
            local_ok,
            frontier_ok,
        )
        for size in [s for s in args.sizes if s <= len(pool)]:
            team = write_jsonl(tmp / f"team_{size}.jsonl", pool[:size])
            candidate = build(tmp / f"candidate_{size}", data / "prompts", baseline_outcomes,
                              team, args)  # fmt: skip
            decision = decide(candidate, baseline, held_file)  # scores both on `held`
            assert decision.candidate_score is not None, decision.reason
            score = decision.candidate_score.__dict__
            rows.append({"size": size, "candidate": score, "promote": decision.promote})
            log(f"  N={size}: APGR {score['apgr']:.3f} ({decision.reason})")
            shutil.rmtree(candidate)
    result = {
        "family": FAMILY,
        "arrival": args.arrival,
        "team_holdout_percent": args.team_holdout_percent,
        "held_back_rows": len(held),
        "reference": reference,
        "curve": rows,
    }
    if args.json:
        print(json.dumps(result, indent=2, sort_keys=True))
        return 0
    ref = reference
    print(
        f"Held-back {FAMILY} traffic: {len(held)} requests, pool arriving {args.arrival}, "
        f"{100 - args.team_holdout_percent}% of each N trained on "
        f"(local right "
        f"{ref['local_accuracy']:.1%}, frontier right {ref['frontier_accuracy']:.1%})"
    )
    print(f"{'ordering':34}{'APGR':>7}{'CPT(50%)':>10}{'saving@95%':>12}{'promote':>9}")
    for name in ("random", "prompt_length", "shipped_model_saw_family", "baseline"):
        m = ref[name]
        print(f"{name:34}{m['apgr']:7.3f}{m['cpt50']:10.1%}{m['saving_at_95']:12.1%}")
    for row in rows:
        m = row["candidate"]
        label = f"trained on {row['size']} judged outcomes"
        print(
            f"{label:34}{m['apgr']:7.3f}{m['cpt50']:10.1%}{m['saving_at_95']:12.1%}"
            f"{'yes' if row['promote'] else 'no':>9}"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
