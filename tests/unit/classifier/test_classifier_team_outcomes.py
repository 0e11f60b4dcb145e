"""A team's exported outcome file as training data: partial outcomes used for what they say, the
team's rows weighted, and the model directory recording what it trained on."""

from __future__ import annotations

import contextlib
import io
import json
from dataclasses import replace
from pathlib import Path

import pytest
from support.outcome_files import export_row, mmlu_rows, write_jsonl

from switchyard.classifier.model import MANIFEST_NAME, ClassifierModel
from switchyard.training import outcome_evaluation
from switchyard.training.build import BuildConfig, BuildResult, build_model, select_rows
from switchyard.training.cli import DEFAULT_OUTCOMES_FILE, default_data_dir
from switchyard.training.data import DataFileError, held_out, read_outcome_file
from switchyard.training.lineage import OUTCOME_IDS_FILE, seen_outcomes
from switchyard.training.team_outcomes import read_team_outcomes, team_group, weighted

DATA = default_data_dir() or Path("/nonexistent")
needs_data = pytest.mark.skipif(
    not (DATA / "prompts").is_dir(), reason=f"prompt datasets not present at {DATA}"
)


def test_each_kind_of_partial_outcome_is_used_for_what_it_says(tmp_path: Path) -> None:
    path = write_jsonl(
        tmp_path / "team.jsonl",
        [
            export_row("r1", "full: escalation paid off", False, True),
            export_row("r2", "full: a tie", True, True),
            export_row("r3", "local good, frontier not rated", True, None),
            export_row("r4", "frontier bad, local not rated", None, False, served="FRONTIER"),
            export_row("r5", "local bad, frontier not rated", False, None),
            export_row("r6", "frontier good, local not rated", None, True, served="FRONTIER"),
            export_row("r7", None, False, True),  # no prompt stored
        ],
    )
    team = read_team_outcomes(path)
    rows = {r.id: r for r in team.training}
    assert set(rows) == {"r1", "r2", "r3", "r4"}
    assert rows["r1"].escalate and not rows["r1"].partial
    assert not rows["r2"].escalate and not rows["r2"].partial
    # "the local answer was good" / "the frontier's was bad": escalating gained nothing there
    for rid in ("r3", "r4"):
        assert rows[rid].partial and not rows[rid].escalate
        assert rows[rid].local_ok == rows[rid].frontier_ok  # gain 0: no more than it says
    assert team.counts() == {
        "rows": 7,
        "full": 3,
        "partial": 4,
        "training": 4,
        "unused_partial": 2,
        "without_prompt": 1,
    }
    # read_outcome_file reads the exported format the same way
    assert [r.id for r in read_outcome_file(path)] == ["r1", "r2", "r3", "r4"]


def test_bad_export_rows_name_line_and_field(tmp_path: Path) -> None:
    bad_flag = export_row("a", "p", True, True) | {"local_ok": "yes"}
    unrated = export_row("b", "p", None, None)
    lying = export_row("c", "p", True, False) | {"partial": True}
    path = write_jsonl(tmp_path / "bad.jsonl", [export_row("ok", "p", True, False), bad_flag])
    with open(path, "a", encoding="utf-8") as handle:
        for row in (unrated, lying):
            handle.write(json.dumps(row) + "\n")
        handle.write(json.dumps(export_row("d", "p", True, True) | {"colour": "red"}) + "\n")
    with pytest.raises(DataFileError) as caught:
        read_team_outcomes(path)
    message = str(caught.value)
    assert f"{path}:2: local_ok: true, false or null" in message
    assert f"{path}:3: local_ok, frontier_ok: at least one must be rated" in message
    assert f"{path}:4: partial: True does not match" in message
    assert f"{path}:5: colour: unknown field" in message


def test_a_file_that_cannot_train_escalation_says_why(tmp_path: Path) -> None:
    path = write_jsonl(
        tmp_path / "t.jsonl",
        [export_row("a", None, True, False), export_row("b", "p", False, None)],
    )
    with pytest.raises(DataFileError, match="1 without prompt text, 1 partial rows"):
        read_team_outcomes(path)


def test_weighting_repeats_rows_and_keeps_their_group(tmp_path: Path) -> None:
    path = write_jsonl(tmp_path / "t.jsonl", [export_row("a", "p", False, True)])
    rows = weighted(read_team_outcomes(path).training, 3)
    group = team_group(None, "p", "a")
    assert [(r.id, r.subject) for r in rows] == [("a", group), ("a#1", group), ("a#2", group)]
    with pytest.raises(ValueError, match=">= 1"):
        weighted(rows, 0)


def test_a_prompt_asked_again_is_one_held_out_group_whatever_its_request_ids(
    tmp_path: Path,
) -> None:
    rows = [
        export_row("req-1", "What is the capital of France?", True, True),
        export_row("req-2", "What is the capital of France?", False, True),
        export_row("req-3", "Prove that every PID is a UFD.", False, True),
        export_row("req-4", "What is the capital of France?", True, True) | {"subject": "geo"},
    ]
    groups = [
        r.subject for r in read_team_outcomes(write_jsonl(tmp_path / "t.jsonl", rows)).training
    ]
    assert groups[0] == groups[1]  # same prompt, other request ids: held out together
    assert groups[2] != groups[0]
    assert groups[3] == "team/geo"  # a subject the file gives wins
    assert all(g.startswith("team/") for g in groups)
    renamed = [r | {"id": f"other-{i}"} for i, r in enumerate(rows)]
    again = read_team_outcomes(write_jsonl(tmp_path / "u.jsonl", renamed)).training
    assert [r.subject for r in again] == groups  # the folds do not follow the router's ids


# ---- builds with a team file (small: 150 shipped outcome rows, 4 task rows per type) ----------

TEAM_SUBJECTS = {"high_school_world_history", "virology"}


def team_rows(extra: list[dict[str, object]] | None = None) -> list[dict[str, object]]:
    """Outcomes of two MMLU subjects as a team's export: full rows, then `extra`."""
    rows = [
        export_row(f"req-{i:04d}", r["prompt"], r["local_ok"], r["frontier_ok"])  # type: ignore[arg-type]
        for i, r in enumerate(mmlu_rows(DATA / DEFAULT_OUTCOMES_FILE, TEAM_SUBJECTS)[:120])
    ]
    return rows + (extra or [])


def build(out: Path, team: Path | None, weight: int = 3, holdout: int = 20) -> BuildResult:
    return build_model(
        BuildConfig(
            out=out,
            prompts_dir=DATA / "prompts",
            outcomes_file=DATA / DEFAULT_OUTCOMES_FILE,
            team_outcomes_file=team,
            team_weight=weight,
            team_held_out_percent=holdout,
            train_cap=4,
            eval_cap=4,
            outcome_limit=150,
            threads=1,
            log=lambda _: None,
        )
    )


@pytest.fixture(scope="module")
def team_build(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, BuildResult]:
    tmp = tmp_path_factory.mktemp("team")
    team = write_jsonl(tmp / "team.jsonl", team_rows())
    return team, build(tmp / "model", team)


@needs_data
def test_the_model_directory_records_which_outcomes_it_trained_on(
    team_build: tuple[Path, BuildResult],
) -> None:
    team, result = team_build
    manifest = json.loads((result.out / MANIFEST_NAME).read_text())
    assert f"team_outcomes/{team.name}" in manifest["inputs"]
    assert OUTCOME_IDS_FILE in manifest["files"]  # hash-checked on load
    ClassifierModel(result.out)
    seen = seen_outcomes(result.out)
    team_ids = [f"req-{i:04d}" for i in range(120)]
    trained = [i for i in team_ids if seen(i)]
    assert trained == [i for i in team_ids if not held_out(i, 20)]  # held out means held out
    assert not any(seen(f"{i}#1") for i in team_ids)  # weighting copies are not ids
    ids = (result.out / OUTCOME_IDS_FILE).read_text().split()
    assert manifest["outcome_training"]["rows"] == len(ids)
    assert len(ids) == len(trained) + sum(i.startswith("mmlu/") for i in ids)


@needs_data
def test_with_no_team_holdout_every_team_row_trains(tmp_path: Path) -> None:
    team = write_jsonl(tmp_path / "team.jsonl", team_rows())
    result = build(tmp_path / "model", team, holdout=0)
    seen = seen_outcomes(result.out)
    assert all(seen(f"req-{i:04d}") for i in range(120))
    manifest = json.loads((result.out / MANIFEST_NAME).read_text())
    assert manifest["config"]["team_held_out_percent"] == 0
    # nothing of that file is left to evaluate the model on: evaluate says so (a later file)
    err = io.StringIO()
    with contextlib.redirect_stderr(err):
        code = outcome_evaluation.main([str(result.out), "--outcomes", str(team), "--json"])
    assert code == 2 and "no row to score" in err.getvalue()


@needs_data
def test_a_bad_local_answer_without_a_frontier_rating_changes_nothing(tmp_path: Path) -> None:
    extra = [
        export_row(f"bad-{i}", r["prompt"], False, None)  # type: ignore[arg-type]
        for i, r in enumerate(mmlu_rows(DATA / DEFAULT_OUTCOMES_FILE, TEAM_SUBJECTS)[120:160])
    ]
    plain = write_jsonl(tmp_path / "plain.jsonl", team_rows())
    with_bad = write_jsonl(tmp_path / "with_bad.jsonl", team_rows(extra))
    config = BuildConfig(
        out=tmp_path, outcomes_file=DATA / DEFAULT_OUTCOMES_FILE, outcome_limit=150
    )
    prompts = DATA / "prompts"
    rows = [
        select_rows(replace(config, team_outcomes_file=team, prompts_dir=prompts), {})
        for team in (plain, with_bad)
    ]
    assert rows[1].outcome_train == rows[0].outcome_train
    assert rows[1].outcome_eval == rows[0].outcome_eval
    assert len(rows[0].outcome_train) > 150  # the team's rows, three times each, are in


@needs_data
def test_good_local_answers_train_as_rows_where_escalating_gains_nothing(tmp_path: Path) -> None:
    """Feedback that the local answer was good enters training, weighted, as rows where
    escalating gained nothing (never as an escalation), and is never scored."""
    subject = mmlu_rows(DATA / DEFAULT_OUTCOMES_FILE, {"virology"})
    extra = [
        export_row(f"good-{i}", r["prompt"], True, None)  # type: ignore[arg-type]
        for i, r in enumerate(subject[60:130])
    ]
    team = write_jsonl(tmp_path / "team.jsonl", team_rows(extra))
    config = BuildConfig(
        out=tmp_path,
        prompts_dir=DATA / "prompts",
        outcomes_file=DATA / DEFAULT_OUTCOMES_FILE,
        outcome_limit=150,
        team_outcomes_file=team,
        team_weight=3,
    )
    rows = select_rows(config, {})
    good = [r for r in rows.outcome_train if r.id.split("#")[0].startswith("good-")]
    trained_ids = {f"good-{i}" for i in range(70) if not held_out(f"good-{i}", 20)}
    assert len(good) == 3 * len(trained_ids) and trained_ids
    assert all(r.partial and r.local_ok == r.frontier_ok and not r.escalate for r in good)
    assert not any(r.id.startswith("good-") for r in rows.outcome_eval)
    assert {i for i in trained_ids} <= set(rows.trained_outcome_ids)
