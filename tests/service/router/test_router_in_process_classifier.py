"""The router with the classifier's real model in its own process (opt-in, co-located)."""

from __future__ import annotations

import asyncio
import json
import shutil
from pathlib import Path

import grpc
import pytest
import yaml
from router_doubles import ledger_records, start_doubles
from test_router_service import ask, config_data

from switchyard.api.router.v1 import router_pb2, router_pb2_grpc
from switchyard.classifier.model import MANIFEST_NAME, SHIPPED_MODEL_DIR, ModelManifest
from switchyard.router.service import build_definition
from switchyard.router.settings import RouterSettings
from switchyard.runtime.errors import FailedPrecondition
from switchyard.runtime.server import start_server


def settings(tmp_path: Path, classifier: str, local: str, frontier: str) -> RouterSettings:
    path = tmp_path / "router.yaml"
    path.write_text(yaml.safe_dump(config_data(classifier, local, frontier, tmp_path / "l.db")))
    return RouterSettings(
        config=path,
        ledger_journal_dir=tmp_path / "journal",
        http_enabled=False,
        classifier_in_process=True,
    )


async def test_in_process_classifier_decides_without_the_service(tmp_path: Path) -> None:
    doubles = await start_doubles()
    try:
        definition = build_definition(settings(tmp_path, *doubles.addresses))
        async with start_server(definition, port=0) as router:
            async with grpc.aio.insecure_channel(router.address) as channel:
                stub = router_pb2_grpc.RouterServiceStub(channel)
                reply = await stub.Complete(
                    ask("Write a Python function that reverses a linked list."), timeout=30
                )
            records = await ledger_records(router)
    finally:
        await doubles.stop()
    assert doubles.classifier.calls == 0  # the service at classifier.address was not asked
    classification = reply.decision.classification
    shipped = ModelManifest.read(SHIPPED_MODEL_DIR)
    assert classification.model_version == f"{shipped.name}@{shipped.version}"
    assert classification.task_type != 0 and classification.input_tokens > 0
    classify = reply.cost.hops[0]
    assert classify.kind == router_pb2.HOP_KIND_CLASSIFY and classify.status == "OK"
    assert classify.cost_usd > 0  # the model's CPU time at the classifier's core-hour price
    assert classify.model == classification.model_version
    (record,) = records
    assert record.task_type
    assert record.classifier_cost_usd == pytest.approx(classify.cost_usd, abs=1e-9)


async def test_in_process_classifier_settings_are_checked_at_start(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SWITCHYARD_CLASSIFIER_INTRA_OP_THREADS", "0")
    definition = build_definition(settings(tmp_path, "127.0.0.1:9", "127.0.0.1:9", "127.0.0.1:9"))
    with pytest.raises(FailedPrecondition, match="INTRA_OP_THREADS"):
        async with start_server(definition, port=0):
            pass


async def test_in_process_classifier_reloads_a_promoted_model_without_a_restart(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from switchyard.training.promotion import install, rollback

    serving = tmp_path / "serving"
    shutil.copytree(SHIPPED_MODEL_DIR, serving)
    candidate = tmp_path / "candidate"
    shutil.copytree(SHIPPED_MODEL_DIR, candidate)
    manifest = json.loads((candidate / MANIFEST_NAME).read_text())
    manifest["version"] = "promoted-1"  # the same weights under another version
    (candidate / MANIFEST_NAME).write_text(json.dumps(manifest))
    shipped = ModelManifest.read(SHIPPED_MODEL_DIR)
    old, new = f"{shipped.name}@{shipped.version}", f"{shipped.name}@promoted-1"
    monkeypatch.setenv("SWITCHYARD_CLASSIFIER_MODEL_DIR", str(serving))
    monkeypatch.setenv("SWITCHYARD_CLASSIFIER_MODEL_RELOAD_POLL_S", "0.1")
    doubles = await start_doubles()
    versions: list[str] = []
    try:
        definition = build_definition(settings(tmp_path, *doubles.addresses))
        async with start_server(definition, port=0) as router:
            async with grpc.aio.insecure_channel(router.address) as channel:
                stub = router_pb2_grpc.RouterServiceStub(channel)

                async def until(version: str) -> None:
                    async with asyncio.timeout(60):
                        while not versions or versions[-1] != version:
                            reply = await stub.Complete(ask("Name a prime."), timeout=30)
                            versions.append(reply.decision.classification.model_version)

                await until(old)
                await asyncio.to_thread(install, candidate, serving, {"test": True})
                await until(new)
                await asyncio.to_thread(rollback, serving)
                await until(old)
    finally:
        await doubles.stop()
    assert doubles.classifier.calls == 0
    # one swap each way, no request failed, each decision named a model in force
    changes = [b for a, b in zip(versions, versions[1:], strict=False) if a != b]
    assert changes == [new, old]
