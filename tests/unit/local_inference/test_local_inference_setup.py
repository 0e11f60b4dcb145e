"""Settings validation and the prepared-model checks (no conversion, no engine)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from switchyard.local_inference import model_preparation as mp
from switchyard.local_inference.settings import LocalInferenceSettings
from switchyard.runtime.settings import SettingsError, load_settings


def test_defaults_are_the_small_cpu_engine(monkeypatch: pytest.MonkeyPatch) -> None:
    s = load_settings(LocalInferenceSettings)
    assert s.bind_port == 50053
    assert s.model == "" and s.reasoning_parser is None
    assert s.max_model_len == 2048 and s.cpu_kv_cache_gib == 1.0


def test_environment_is_read_and_every_problem_listed(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SWITCHYARD_LOCAL_INFERENCE_MAX_MODEL_LEN", "4")
    monkeypatch.setenv("SWITCHYARD_LOCAL_INFERENCE_GPU_MEMORY_UTILIZATION", "1.5")
    monkeypatch.setenv("SWITCHYARD_LOCAL_INFERENCE_DTYPE", "int3")
    monkeypatch.setenv("SWITCHYARD_LOCAL_INFERENCE_USD_PER_HUOR", "2")
    with pytest.raises(SettingsError) as caught:
        load_settings(LocalInferenceSettings)
    message = caught.value.message
    for name in ("MAX_MODEL_LEN", "GPU_MEMORY_UTILIZATION", "DTYPE", "USD_PER_HUOR"):
        assert f"SWITCHYARD_LOCAL_INFERENCE_{name}" in message


def test_gpu_recipe_settings_parse(monkeypatch: pytest.MonkeyPatch) -> None:
    s = load_settings(
        LocalInferenceSettings,
        model="deepseek-ai/DeepSeek-R1-Distill-Qwen-32B",
        tensor_parallel_size=1,
        max_model_len=16384,
        gpu_memory_utilization=0.92,
        reasoning_parser="deepseek_r1",
        quantization="fp8",
        usd_per_hour=3.5,
    )
    assert s.reasoning_parser == "deepseek_r1" and s.quantization == "fp8"


def test_missing_model_names_the_command(tmp_path: Path) -> None:
    with pytest.raises(mp.ModelNotPrepared, match="switchyard-local-inference prepare-model"):
        mp.locate_prepared_model(tmp_path / "nothing")


def test_default_dir_follows_xdg_cache_home(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    assert mp.default_model_dir() == tmp_path / "switchyard/models/SmolLM2-135M-Instruct"


def _fake_prepared(folder: Path) -> None:
    folder.mkdir()
    (folder / "config.json").write_text("{}")
    manifest = {
        "format_version": 1,
        "source_sha256": mp.SOURCE_GGUF_SHA256,
        "files": {"config.json": mp._sha256(folder / "config.json")},
    }
    (folder / mp.MANIFEST_NAME).write_text(json.dumps(manifest))


def test_verification_catches_a_changed_file(tmp_path: Path) -> None:
    folder = tmp_path / "m"
    _fake_prepared(folder)
    assert mp.locate_prepared_model(folder) == folder
    assert mp._verified(folder) is not None
    (folder / "config.json").write_text('{"changed": true}')
    assert mp._verified(folder) is None  # prepare_model would convert again
    (folder / "config.json").unlink()
    with pytest.raises(mp.ModelNotPrepared):
        mp.locate_prepared_model(folder)


def test_prepare_is_a_no_op_when_verified(tmp_path: Path) -> None:
    folder = tmp_path / "m"
    _fake_prepared(folder)
    prepared = mp.prepare_model(folder)
    assert not prepared.converted and prepared.path == folder


def test_source_gguf_hash_is_pinned() -> None:
    gguf = mp._source_gguf()
    assert gguf.name == mp.SOURCE_GGUF_NAME
    assert mp._sha256(gguf) == mp.SOURCE_GGUF_SHA256
