"""The learning loop with the real router and the real classifier service: shadow-evaluated
traffic -> `switchyard outcomes export` -> train -> evaluate -> guarded promotion, which swaps the
serving model while requests keep flowing.

The team's outcomes are scripted by the judge (a stand-in speaking the wire format): on one MMLU
subject (virology) the frontier answer is better, on another (world history) the two tie, a
split the shipped model never learnt. Backends are the router's gRPC doubles; the classifier is
the real service, serving a model directory the promotion writes into.
"""

from __future__ import annotations

import asyncio
import contextlib
import io
import json
import shutil
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path

import grpc
import pytest
import yaml
from router_doubles import FakeBackend, PinnedClock, ledger_records, serve, start_doubles
from support.frontier_standin import JudgeRule
from support.outcome_files import mmlu_rows
from test_router_outcomes import ACME, ADMIN, GLOBEX, config_data, key

from switchyard.api.inference.v1 import inference_pb2, inference_pb2_grpc
from switchyard.api.router.v1 import router_pb2, router_pb2_grpc
from switchyard.classifier.model import MANIFEST_NAME, MODEL_FILE, SHIPPED_MODEL_DIR
from switchyard.classifier.service import build_service
from switchyard.classifier.settings import ClassifierSettings
from switchyard.router.service import build_definition
from switchyard.router.settings import RouterSettings
from switchyard.runtime.server import start_server
from switchyard.training import outcome_evaluation, promotion
from switchyard.training.build import BuildConfig, build_model
from switchyard.training.cli import DEFAULT_OUTCOMES_FILE, default_data_dir
from switchyard.training.promotion import PREVIOUS_DIR

DATA = default_data_dir() or Path("/nonexistent")
pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(not (DATA / "prompts").is_dir(), reason=f"no datasets at {DATA}"),
]
PER_SUBJECT = 90


@dataclass
class Loop:
    serving: Path
    router: router_pb2_grpc.RouterServiceStub
    running: object
    clock: PinnedClock
    rule: JudgeRule


@pytest.fixture
async def loop(tmp_path: Path) -> AsyncIterator[Loop]:
    serving = tmp_path / "serving"
    shutil.copytree(SHIPPED_MODEL_DIR, serving)
    classifier_settings = ClassifierSettings(
        host="127.0.0.1", port=0, model_dir=serving, model_reload_poll_s=0.05
    )
    doubles = await start_doubles()
    rule = JudgeRule(prefer="tie", marker="frontier answered")
    judge = FakeBackend("judge", cost_usd=0.001, answer=lambda r: rule.reply(
        r.messages[-1].content))  # fmt: skip
    judge_server, judge_address = await serve(
        inference_pb2_grpc.add_InferenceServiceServicer_to_server, judge
    )
    try:
        async with start_server(build_service(classifier_settings), port=0) as classifier:
            data = config_data(
                classifier.address, *doubles.addresses[1:], judge_address, tmp_path / "l.db"
            )
            data["classifier"]["timeout_ms"] = 5000
            data["evaluation"]["max_concurrency"] = 4
            data["evaluation"]["queue_size"] = 1000
            path = tmp_path / "router.yaml"
            path.write_text(yaml.safe_dump(data))
            settings = RouterSettings(
                config=path, ledger_journal_dir=tmp_path / "journal", http_enabled=False
            )
            clock = PinnedClock()
            async with start_server(build_definition(settings, clock=clock), port=0) as running:
                async with grpc.aio.insecure_channel(running.address) as channel:
                    yield Loop(
                        serving, router_pb2_grpc.RouterServiceStub(channel), running, clock, rule
                    )
    finally:
        await judge_server.stop(0)
        await doubles.stop()


def ask(prompt: str) -> router_pb2.CompleteRequest:
    return router_pb2.CompleteRequest(
        messages=[inference_pb2.ChatMessage(role=inference_pb2.ROLE_USER, content=prompt)],
        parameters=inference_pb2.GenerationParameters(max_tokens=16),
    )


class Traffic:
    """Another tenant's requests, back to back: each decision's classifier model version."""

    def __init__(self, stub: router_pb2_grpc.RouterServiceStub) -> None:
        self.stub = stub
        self.versions: list[str] = []
        self.errors: list[grpc.aio.AioRpcError] = []
        self.stopped = asyncio.Event()
        self.answered = asyncio.Event()

    async def _loop(self, worker: int) -> None:
        n = 0
        while not self.stopped.is_set():
            n += 1
            try:
                reply = await self.stub.Complete(
                    ask(f"Caller {worker}, request {n}: name a prime above {n}."),
                    metadata=key(GLOBEX),
                    timeout=20,
                )
                self.versions.append(reply.decision.classification.model_version)
                self.answered.set()
            except grpc.aio.AioRpcError as error:
                self.errors.append(error)

    async def until(self, version: str, more: int, timeout_s: float = 60) -> None:
        """Until answers by `version` have come, then `more` answers after that."""
        async with asyncio.timeout(timeout_s):
            while version not in self.versions:
                self.answered.clear()
                await self.answered.wait()
            target = len(self.versions) + more
            while len(self.versions) < target:
                self.answered.clear()
                await self.answered.wait()

    @contextlib.asynccontextmanager
    async def run(self) -> AsyncIterator[Traffic]:
        tasks = [asyncio.create_task(self._loop(w)) for w in range(2)]
        try:
            yield self
        finally:
            self.stopped.set()
            await asyncio.gather(*tasks)


def cli(main: object, argv: list[str]) -> tuple[int, str]:
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        code = main(argv)  # type: ignore[operator]
    return code, out.getvalue()


async def test_export_train_evaluate_promote_swaps_the_serving_model(
    loop: Loop, tmp_path: Path
) -> None:
    from switchyard_client.cli import main as switchyard_cli

    # 1. the team's traffic, shadow-evaluated; the judge scripts where the frontier is better
    rows = [
        (str(r["prompt"]), "frontier")
        for r in mmlu_rows(DATA / DEFAULT_OUTCOMES_FILE, {"virology"})[:PER_SUBJECT]
    ] + [
        (str(r["prompt"]), "tie")
        for r in mmlu_rows(DATA / DEFAULT_OUTCOMES_FILE, {"high_school_world_history"})[
            :PER_SUBJECT
        ]
    ]
    loop.rule.by_request = dict(rows)
    for prompt, _ in rows:
        await loop.router.Complete(ask(prompt), metadata=key(ACME), timeout=30)
    resources = loop.running.resources  # type: ignore[attr-defined]
    await resources.evaluator.drain()
    await resources.writer.flush()

    # 2. export (the CLI a team runs)
    exported = tmp_path / "outcomes.jsonl"
    end = (loop.clock.now + timedelta(minutes=1)).isoformat()
    address = ["--address", loop.running.address, "--api-key", ADMIN, "--end", end]  # type: ignore[attr-defined]
    code = await asyncio.to_thread(
        switchyard_cli, ["outcomes", "export", *address, "--output", str(exported)]
    )
    lines = [json.loads(line) for line in exported.read_text().splitlines()]
    assert code == 0 and len(lines) == len(rows)
    assert all(line["prompt"] for line in lines)  # the operator opted in (store_prompts)

    # 3. train on the shipped outcome data (a small slice) plus the team's
    candidate = tmp_path / "candidate"
    await asyncio.to_thread(
        build_model,
        BuildConfig(
            out=candidate,
            prompts_dir=DATA / "prompts",
            outcomes_file=DATA / DEFAULT_OUTCOMES_FILE,
            team_outcomes_file=exported,
            train_cap=4,
            eval_cap=4,
            outcome_limit=150,
            threads=1,
            log=lambda _: None,
        ),
    )

    # 4. evaluate on the team's outcomes held out from its training
    code, out = cli(
        outcome_evaluation.main, [str(candidate), "--outcomes", str(exported), "--json"]
    )
    report = json.loads(out)
    assert code == 0 and report["held_out_only"] and 20 <= report["rows"] < len(rows) // 2
    assert report["model_score"]["apgr"] > report["prompt_length"]["apgr"] + 0.1

    # 5. a broken candidate is refused and nothing is written
    broken = tmp_path / "broken"
    shutil.copytree(candidate, broken)
    (broken / MODEL_FILE).write_bytes(b"not an onnx graph")
    before = (loop.serving / MANIFEST_NAME).read_bytes()
    guard = ["--serving", str(loop.serving), "--outcomes", str(exported), "--min-rows", "20"]
    assert cli(promotion.main, [str(broken), *guard])[0] == 2
    assert (loop.serving / MANIFEST_NAME).read_bytes() == before

    # 6. promotion while another tenant's requests flow: the decisions' model version changes
    shipped_version = json.loads(before)["name"] + "@" + json.loads(before)["version"]
    manifest = json.loads((candidate / MANIFEST_NAME).read_text())
    new_version = f"{manifest['name']}@{manifest['version']}"
    async with Traffic(loop.router).run() as traffic:
        await traffic.until(shipped_version, 10)
        code, out = await asyncio.to_thread(cli, promotion.main, [str(candidate), *guard])
        assert code == 0, out
        await traffic.until(new_version, 10)
    assert traffic.errors == []
    switch = traffic.versions.index(new_version)
    assert set(traffic.versions[:switch]) == {shipped_version}
    assert set(traffic.versions[switch:]) == {new_version}
    # the ledger says which model decided each request
    records = [r for r in await ledger_records(loop.running) if r.tenant == "globex"]
    assert {r.classifier_model_version for r in records} == {shipped_version, new_version}

    # 7. the shipped model does not beat the candidate now serving: refused, nothing changes
    shipped = tmp_path / "shipped"
    shutil.copytree(SHIPPED_MODEL_DIR, shipped)
    serving_now = (loop.serving / MANIFEST_NAME).read_bytes()
    code, out = cli(promotion.main, [str(shipped), *guard, "--json"])
    decision = json.loads(out)
    assert code == 1 and not decision["promote"] and not decision["installed"]
    assert decision["candidate_score"]["apgr"] < decision["serving_score"]["apgr"]
    assert (loop.serving / MANIFEST_NAME).read_bytes() == serving_now

    # 8. the operator rolls back to the model the promotion replaced, while requests flow
    async with Traffic(loop.router).run() as traffic:
        await traffic.until(new_version, 10)
        code, out = await asyncio.to_thread(
            cli, promotion.rollback_main, ["--serving", str(loop.serving)]
        )
        assert code == 0 and f"{shipped_version} serving again" in out, out
        await traffic.until(shipped_version, 10)
    assert traffic.errors == []
    restored = json.loads((loop.serving / MANIFEST_NAME).read_text())
    assert restored["version"] == json.loads(before)["version"]
    assert restored["rollback"] == {"replaced": new_version, "restored": shipped_version}
    # the promoted model is kept in its place: a second rollback rolls forward
    kept = json.loads((loop.serving / PREVIOUS_DIR / MANIFEST_NAME).read_text())
    assert kept["version"] == manifest["version"]
