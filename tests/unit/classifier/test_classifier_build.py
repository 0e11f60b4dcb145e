"""Building a model on a small slice: determinism, merged graph == two-step pipeline, loading."""

from __future__ import annotations

import dataclasses
import json
import shutil
from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort
import pytest

from switchyard.classifier.model import (
    MANIFEST_NAME,
    MODEL_FILE,
    ClassifierModel,
    ModelLoadError,
    PromptTokenizer,
)
from switchyard.training import cli
from switchyard.training.balance import source_of
from switchyard.training.build import BuildConfig, BuildResult, build_model, select_rows
from switchyard.training.cli import DEFAULT_OUTCOMES_FILE, default_data_dir
from switchyard.training.data import load_dataset_prompts
from switchyard.training.encoder import build_encoder_graph, locate_encoder_files
from switchyard.training.escalation import TransferFeatures
from switchyard.training.fine_tune import FineTuneRecipe
from switchyard.training.heads import softmax
from switchyard.training.task_head import task_features
from switchyard.training.tokens import bag_of_tokens

DATA = default_data_dir() or Path("/nonexistent")
pytestmark = pytest.mark.skipif(
    not (DATA / "prompts").is_dir(), reason=f"prompt datasets not present at {DATA}"
)

SAMPLE = [
    "What is the capital of Australia?",
    "Write a haiku about autumn rain.",
    "def add(a, b):\n    return a - b\n\nFind and fix the bug.",
    "If 3x + 5 = 20, what is x?",
    "Summarize the following article in one sentence: The council voted to build a park.",
    # over the window: head and tail kept; the token bags' edges read the padded batch right
    "The council met again. " * 80 + "Which people are named above?",
]


def small_config(out: Path) -> BuildConfig:
    return BuildConfig(
        out=out,
        prompts_dir=DATA / "prompts",
        mmlu_file=DATA / DEFAULT_OUTCOMES_FILE,
        outcomes_file=DATA / DEFAULT_OUTCOMES_FILE,
        train_cap=4,
        eval_cap=4,
        outcome_limit=150,
        threads=1,
        log=lambda _: None,
    )


def small_build(out: Path) -> BuildResult:
    return build_model(small_config(out))


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> BuildResult:
    """The small build, its fine-tuned layer cached under ``cache`` beside it."""
    out = tmp_path_factory.mktemp("small")
    return build_model(dataclasses.replace(small_config(out / "model"), cache_dir=out / "cache"))


def test_same_inputs_give_the_same_bytes(built: BuildResult, tmp_path: Path) -> None:
    again = small_build(tmp_path / "again")
    for name in (MODEL_FILE, MANIFEST_NAME):
        assert (again.out / name).read_bytes() == (built.out / name).read_bytes(), name


def test_manifest_and_loading(built: BuildResult) -> None:
    manifest = json.loads((built.out / MANIFEST_NAME).read_text())
    assert manifest["inputs"]["encoder/model.safetensors"].startswith("53aa5117")
    assert len(manifest["task_types"]) == 10
    model = ClassifierModel(built.out)
    assert model.version.endswith(manifest["files"][MODEL_FILE][:12])
    predictions = model.predict(SAMPLE)
    for p in predictions:
        assert abs(sum(p.task_probabilities) - 1.0) < 1e-5
        assert 0.0 <= p.complexity <= 1.0 and 0.0 <= p.escalation <= 1.0
    assert (built.out / MODEL_FILE).stat().st_size < 30_000_000


def test_merged_graph_equals_two_step_pipeline(built: BuildResult, tmp_path: Path) -> None:
    files = locate_encoder_files()
    encoder_path = tmp_path / "encoder.onnx"
    assert built.encoder is not None
    onnx.save(built.encoder, encoder_path)  # the fine-tuned encoder the heads were fitted on
    encoder = ort.InferenceSession(str(encoder_path), providers=["CPUExecutionProvider"])
    merged = ort.InferenceSession(str(built.out / MODEL_FILE), providers=["CPUExecutionProvider"])
    tokenizer = PromptTokenizer(files.tokenizer, 256, 128)
    ids, mask, _ = tokenizer.encode(SAMPLE)
    bags = bag_of_tokens([t for t, _ in tokenizer.encode_each(SAMPLE)])
    feed = {"input_ids": ids, "attention_mask": mask}
    embedding, count, ends = encoder.run(["embedding", "token_count", "end_states"], feed)
    probs, complexity, escalation = merged.run(
        ["task_probabilities", "complexity", "escalation"], feed
    )
    # Step two with scikit-learn's own estimators (not the graph's copy of their weights).
    task, ridge, esc = (
        built.sklearn["task"],
        built.sklearn["complexity"],
        built.sklearn["escalation"],
    )
    expected = np.zeros_like(probs, dtype=np.float64)
    expected[:, task.classes_] = softmax(
        task.decision_function(task_features(embedding, bags, ends)) / built.heads.temperature
    )
    np.testing.assert_allclose(probs, expected, atol=2e-5)
    expected_cx = np.clip(ridge.predict(embedding), 0, 1)
    np.testing.assert_allclose(complexity, expected_cx, atol=2e-5)
    log_n = np.log(count.reshape(-1).astype(np.float64))
    p = esc.probability(embedding, log_n, TransferFeatures(log_n, expected_cx, expected))
    np.testing.assert_allclose(escalation, p, atol=2e-5)
    # the numpy reference the build evaluates with is the graph too
    reference = built.heads.predict(embedding, count, bags, ends)
    np.testing.assert_allclose(escalation, reference["escalation"], atol=2e-5)


def test_corrupt_or_missing_model_names_file_and_hash(built: BuildResult, tmp_path: Path) -> None:
    broken = tmp_path / "broken"
    shutil.copytree(built.out, broken)
    expected = json.loads((broken / MANIFEST_NAME).read_text())["files"][MODEL_FILE]
    data = bytearray((broken / MODEL_FILE).read_bytes())
    data[len(data) // 2] ^= 0xFF
    (broken / MODEL_FILE).write_bytes(bytes(data))
    with pytest.raises(ModelLoadError) as caught:
        ClassifierModel(broken)
    assert str(broken / MODEL_FILE) in caught.value.message and expected in caught.value.message
    (broken / MODEL_FILE).unlink()
    with pytest.raises(ModelLoadError, match=f"missing.*{expected}"):
        ClassifierModel(broken)


def test_bring_your_own_labels_without_builtin_data(tmp_path: Path) -> None:
    from switchyard.training.authored import authored_prompts

    rows = [p for p in authored_prompts() if p.task_type in ("chat", "creative_writing")][::6]
    labels = tmp_path / "labels.jsonl"
    labels.write_text(
        "".join(
            json.dumps({"prompt": p.prompt, "task_type": p.task_type, "complexity": p.complexity})
            + "\n"
            for p in rows
        ),
        encoding="utf-8",
    )
    result = build_model(
        BuildConfig(out=tmp_path / "custom", labels_file=labels, threads=1, log=lambda _: None)
    )
    model = ClassifierModel(result.out)
    assert model.manifest.name == "switchyard-custom-int8"
    (prediction,) = model.predict(["Write a poem about the sea."])
    names = model.manifest.task_types
    assert names[int(np.argmax(prediction.task_probabilities))] == "creative_writing"
    # No outcome data: escalation falls back on the complexity score.
    assert prediction.escalation == pytest.approx(prediction.complexity, abs=1e-6)


def _label_file(path: Path, rows: list[tuple[str, str]]) -> Path:
    path.write_text(
        "".join(json.dumps({"prompt": p, "task_type": t}) + "\n" for p, t in rows),
        encoding="utf-8",
    )
    return path


def test_added_labels_join_the_builtin_rows_as_one_source_and_win_on_the_same_prompt(
    tmp_path: Path,
) -> None:
    builtin = load_dataset_prompts(DATA / "prompts", include_authored=False, include_derived=False)
    gsm8k = next(r for r in builtin if r.group == "gsm8k_train")
    mine = [
        (f"Rate how urgent ticket #{i} about the billing page is: low or high?", "classification")
        for i in range(40)
    ]
    labels = _label_file(tmp_path / "team.jsonl", [*mine, ("  " + gsm8k.prompt.upper(), "chat")])
    config = BuildConfig(
        out=tmp_path / "model",
        prompts_dir=DATA / "prompts",
        added_labels_file=labels,
        train_cap=None,
        eval_cap=None,
        log=lambda _: None,
    )
    inputs: dict[str, str] = {}
    rows = select_rows(config, inputs)
    assert "added_labels/team.jsonl" in inputs and "prompts/gsm8k_train.jsonl" in inputs
    every = rows.task_train + rows.task_eval
    users = [r for r in every if source_of(r.group) == "user"]
    assert len(users) == 41  # all of them, split between training and held out like any row
    assert 0 < sum(1 for r in rows.task_train if source_of(r.group) == "user") < 41
    assert len({source_of(r.group) for r in every}) > 10  # the built-in sources are all there
    # the same prompt (case and spacing aside) is one row, with the team's label
    same = [r for r in every if " ".join(r.prompt.lower().split()) == gsm8k.prompt.lower()]
    assert [(r.task_type, source_of(r.group)) for r in same] == [("chat", "user")]


def test_add_labels_cannot_be_mixed_with_labels_or_without_builtin_data(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    labels = _label_file(tmp_path / "team.jsonl", [("hello there", "chat")])
    for extra in (["--labels", str(labels)], ["--no-builtin-data", "--labels", str(labels)]):
        argv = ["--out", str(tmp_path / "m"), "--add-labels", str(labels), *extra]
        assert cli.main([*argv, "--data-dir", str(DATA)]) == 2
        assert "--add-labels adds to the built-in task rows" in capsys.readouterr().err
    assert not (tmp_path / "m").exists()


def test_a_build_with_added_labels_is_a_custom_model_that_names_the_file(tmp_path: Path) -> None:
    labels = _label_file(
        tmp_path / "team.jsonl",
        [(f"Is order #{i} late? Answer yes or no.", "classification") for i in range(12)],
    )
    result = build_model(
        BuildConfig(
            out=tmp_path / "model",
            prompts_dir=DATA / "prompts",
            added_labels_file=labels,
            train_cap=4,
            eval_cap=4,
            threads=1,
            log=lambda _: None,
        )
    )
    manifest = json.loads((result.out / MANIFEST_NAME).read_text(encoding="utf-8"))
    assert manifest["name"] == "switchyard-custom-int8"
    assert "added_labels/team.jsonl" in manifest["inputs"]
    ClassifierModel(result.out).predict(["Is order #99 late? Answer yes or no."])


def test_the_build_fine_tunes_the_encoders_last_layer_and_records_it(
    built: BuildResult, tmp_path: Path
) -> None:
    assert built.encoder is not None
    record = json.loads((built.out / MANIFEST_NAME).read_text())["config"]["fine_tune"]
    assert record["epochs"] == FineTuneRecipe().epochs and record["layer"] == 6
    assert record["rows"] > 100 and len(record["key"]) == 64
    files = locate_encoder_files()
    tokenizer = PromptTokenizer(files.tokenizer, 256, 128)
    ids, mask, _ = tokenizer.encode(SAMPLE)
    feed = {"input_ids": ids, "attention_mask": mask}
    outputs = ["embedding", "end_states"]
    tuned = ort.InferenceSession(
        built.encoder.SerializeToString(), providers=["CPUExecutionProvider"]
    )
    plain = ort.InferenceSession(
        build_encoder_graph(files.weights, int8=True).SerializeToString(),
        providers=["CPUExecutionProvider"],
    )
    (tuned_x, tuned_ends), (plain_x, plain_ends) = (
        tuned.run(outputs, feed),
        plain.run(outputs, feed),
    )
    assert np.abs(tuned_x - plain_x).max() > 1e-3  # the last layer was trained
    np.testing.assert_array_equal(tuned_ends[:, 768:], plain_ends[:, 768:])  # the fourth was not


def test_a_cached_fine_tune_gives_the_same_model_and_zero_epochs_the_published_encoder(
    built: BuildResult, tmp_path: Path
) -> None:
    lines: list[str] = []
    cache = built.out.parent / "cache"
    assert len(list(cache.glob("tuned-encoder-*.safetensors"))) == 1
    again = dataclasses.replace(small_config(tmp_path / "again"), cache_dir=cache, log=lines.append)
    build_model(again)
    assert any(line.startswith("fine-tune: cached tuned-encoder-") for line in lines)
    for name in (MODEL_FILE, MANIFEST_NAME):
        assert (again.out / name).read_bytes() == (built.out / name).read_bytes(), name
    plain = build_model(dataclasses.replace(small_config(tmp_path / "plain"), fine_tune=None))
    manifest = json.loads((plain.out / MANIFEST_NAME).read_text())
    assert manifest["config"]["fine_tune"] is None
    graph = build_encoder_graph(locate_encoder_files().weights, int8=True)
    assert (
        plain.encoder is not None and plain.encoder.SerializeToString() == graph.SerializeToString()
    )
    assert cli.main(["--out", str(tmp_path / "x"), "--fine-tune-epochs", "-1"]) == 2
