"""The dataset-label -> task type / complexity mapping."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from switchyard.api.classifier.v1 import classifier_pb2 as pb
from switchyard.classifier.taxonomy import (
    DEFAULT_CUT_POINTS,
    TASK_TYPE_NAMES,
    complexity_level,
    task_type_from_name,
)
from switchyard.training.authored import authored_prompts
from switchyard.training.balance import source_of
from switchyard.training.cli import default_data_dir
from switchyard.training.data import read_outcome_file
from switchyard.training.everyday import everyday_prompts
from switchyard.training.mapping import (
    DEBUGBENCH_LEVELS,
    MATH_LEVELS,
    MMLU_SUBJECTS,
    map_mmlu_subject,
    map_prompt_row,
)
from switchyard.training.second_sources import SECOND_SOURCE_PROMPTS, second_source_prompts
from switchyard.training.unseen import UNSEEN_LABELS

DATA = default_data_dir() or Path("/nonexistent")


def test_math_levels_are_increasing_and_map_to_math() -> None:
    values = [MATH_LEVELS[f"Level {i}"] for i in range(1, 6)]
    assert values == sorted(values) and len(set(values)) == 5
    label = map_prompt_row("math_test", "Algebra", "Level 3")
    assert label.task_type == "math" and label.complexity == MATH_LEVELS["Level 3"]
    assert map_prompt_row("math_train", "Algebra", "Level ?").complexity is None


def test_debugbench_is_code_review_ordered_by_difficulty() -> None:
    assert DEBUGBENCH_LEVELS["easy"] < DEBUGBENCH_LEVELS["medium"] < DEBUGBENCH_LEVELS["hard"]
    assert map_prompt_row("debugbench", "python3_missing colons", "hard").task_type == "code_review"


@pytest.mark.parametrize(
    ("dataset", "hint", "task"),
    [
        ("bbh", "multistep_arithmetic_two", "math"),
        ("bbh", "web_of_lies", "reasoning"),
        ("bbh", "object_counting", "math"),
        ("bbh", "penguins_in_a_table", "extraction"),  # answered from the pasted table
        ("bbh", "movie_recommendation", "chat"),
        ("bbh", "word_sorting", None),  # fits no task type: left out of the task head
        ("olympiadbench", "Physics / Optics", "science"),
        ("olympiadbench", "Math / Geometry", "math"),
        ("theoremqa", "EECS / Graph theory", "science"),
        ("theoremqa", "Math / Calculus", "math"),
        ("scibench", "stat", "math"),
        ("scibench", "atkins", "science"),
        ("p3_prompts", "xsum_DOC_tldr", "summarization"),
        ("p3_prompts", "quoref_Read_And_Extract_", "extraction"),
        ("p3_prompts", "trec_which_category_best_describes", "classification"),
        ("simpleqa", "Art", "chat"),
        ("humaneval", None, "code_generation"),
        ("eqbench_creative_writing", None, "creative_writing"),
        ("self_instruct_seed", "is_classification=True", "classification"),
        ("self_instruct_seed", "is_classification=False", None),
        ("arena_hard_v0.1", "AI Image Upscaling", None),
    ],
)
def test_task_type_rules(dataset: str, hint: str | None, task: str | None) -> None:
    assert map_prompt_row(dataset, hint, None).task_type == task


def test_difficulty_anchors_order_datasets() -> None:
    def cx(dataset: str, hint: str | None = None, level: str | None = None) -> float:
        value = map_prompt_row(dataset, hint, level).complexity
        assert value is not None
        return value

    assert cx("simpleqa") < cx("gsm8k_train") < cx("college_math") < cx("aime24")
    assert cx("mbpp") < cx("humaneval")
    assert cx("arena_hard_v0.1") >= DEFAULT_CUT_POINTS[1]
    assert cx("simpleqa") < DEFAULT_CUT_POINTS[0]


def test_unknown_dataset_or_template_is_refused() -> None:
    with pytest.raises(KeyError):
        map_prompt_row("new_dataset", None, None)
    with pytest.raises(KeyError):
        map_prompt_row("p3_prompts", "new_template", None)


def test_every_shared_row_maps() -> None:
    prompts = DATA / "prompts"
    if not prompts.is_dir():
        pytest.skip(f"datasets not present at {prompts}")
    for path in sorted(prompts.glob("*.jsonl")):
        with path.open(encoding="utf-8") as handle:
            for line in handle:
                row = json.loads(line)
                label = map_prompt_row(path.stem, row["task_type_hint"], row["difficulty_hint"])
                assert label.task_type is None or label.task_type in TASK_TYPE_NAMES
                assert label.complexity is None or 0.0 <= label.complexity <= 1.0


def test_authored_prompts_are_deterministic_and_labelled() -> None:
    first, second = list(authored_prompts()), list(authored_prompts())
    assert first == second
    assert {p.task_type for p in first} <= set(TASK_TYPE_NAMES)
    assert all(p.id.startswith("authored/") and p.group.startswith("authored/") for p in first)


def test_taxonomy_names_and_levels() -> None:
    assert task_type_from_name("code_review") == pb.TASK_TYPE_CODE_REVIEW
    assert task_type_from_name("TASK_TYPE_MATH") == pb.TASK_TYPE_MATH
    with pytest.raises(ValueError, match="unknown task type"):
        task_type_from_name("poetry")
    low, high = DEFAULT_CUT_POINTS
    assert complexity_level(low - 0.01) == pb.COMPLEXITY_LEVEL_LOW
    assert complexity_level(low) == pb.COMPLEXITY_LEVEL_MEDIUM
    assert complexity_level(high) == pb.COMPLEXITY_LEVEL_HIGH


def test_self_instruct_seed_rows_by_task_name() -> None:
    assert (
        map_prompt_row(
            "self_instruct_seed", "is_classification=False", None, "seed_task_9:plan_a_trip"
        ).task_type
        == "chat"
    )
    assert (
        map_prompt_row(
            "self_instruct_seed", "is_classification=False", None, "seed_task_1:text_to_sql"
        ).task_type
        == "code_generation"
    )
    assert (
        map_prompt_row(
            "self_instruct_seed", "is_classification=False", None, "seed_task_2:dependency_parsing"
        ).task_type
        is None
    )


def test_mmlu_subject_table_covers_all_57_subjects() -> None:
    assert len(MMLU_SUBJECTS) == 57
    assert map_mmlu_subject("high_school_chemistry").task_type == "science"
    assert map_mmlu_subject("abstract_algebra").task_type == "math"
    assert map_mmlu_subject("high_school_us_history").task_type == "chat"
    assert map_mmlu_subject("formal_logic").task_type == "reasoning"
    assert map_mmlu_subject("elementary_mathematics").group == "mmlu/elementary_mathematics"
    easy, hard = (
        map_mmlu_subject(s).complexity for s in ("elementary_mathematics", "college_physics")
    )
    assert easy is not None and hard is not None and easy < hard
    with pytest.raises(KeyError):
        map_mmlu_subject("astrology")


def test_every_outcome_subject_maps() -> None:
    path = DATA / "outcomes" / "mmlu_mixtral_vs_gpt4.jsonl"
    if not path.is_file():
        pytest.skip(f"outcome data not present at {path}")
    assert {r.subject for r in read_outcome_file(path)} <= set(MMLU_SUBJECTS)


def test_everyday_prompts_are_ours_unique_and_labelled() -> None:
    items = list(everyday_prompts())
    assert len({i.prompt for i in items}) == len(items)
    assert all(i.id.startswith("authored/everyday_") and i.group == i.id for i in items)
    assert all(i.task_type in TASK_TYPE_NAMES for i in items)
    greetings = [i for i in items if i.id.startswith("authored/everyday_greeting/")]
    assert greetings and {i.task_type for i in greetings} == {"chat"}


def _shingles(text: str, n: int = 6) -> set[str]:
    words = re.sub(r"\W+", " ", text.lower()).split()
    return {" ".join(words[i : i + n]) for i in range(max(1, len(words) - n + 1))}


def test_second_sources_are_ours_labelled_and_not_copied_from_the_evaluation_sets() -> None:
    items = list(second_source_prompts())
    assert len({i.prompt for i in items}) == len(items) >= 100
    assert all(i.id.startswith("authored/second_") and i.group == i.id for i in items)
    assert all(i.task_type in TASK_TYPE_NAMES for i in items)
    # one source per kind, so leave-source-out leaves each kind out whole
    assert len({source_of(i.group) for i in items}) == len(SECOND_SOURCE_PROMPTS)
    evaluation = Path(__file__).parent / "data"
    for name in ("unseen_fresh.jsonl", "unseen_ours.jsonl"):
        for line in (evaluation / name).read_text(encoding="utf-8").splitlines():
            held_out = _shingles(json.loads(line)["prompt"])
            for item in items:
                shared = len(held_out & _shingles(item.prompt)) / len(held_out)
                assert shared <= 0.3, (name, json.loads(line)["id"], item.id)


def test_real_users_set_is_disjoint_from_sets_1_and_2_verbatim_and_never_trains() -> None:
    evaluation = Path(__file__).parent / "data"
    set_2 = {
        json.loads(line)["id"]
        for line in (evaluation / "unseen_fresh.jsonl").read_text(encoding="utf-8").splitlines()
    }
    set_4_file = evaluation / "unseen_real_users.jsonl"
    set_4 = [json.loads(line) for line in set_4_file.read_text(encoding="utf-8").splitlines()]
    ids = [r["id"] for r in set_4]
    assert len(ids) == len(set(ids)) >= 450
    assert not set(ids) & (set(UNSEEN_LABELS) | set_2)
    assert {r["task_type"] for r in set_4} <= set(TASK_TYPE_NAMES)
    for r in set_4:  # the mapping gives these rows no task type: the task head never sees them
        dataset, _, bare_id = r["id"].partition("/")
        assert dataset in ("arena_hard_v0.1", "self_instruct_user_oriented")
        assert map_prompt_row(dataset, None, None, bare_id).task_type is None
    prompts = DATA / "prompts"
    if not prompts.is_dir():
        pytest.skip(f"datasets not present at {prompts}")
    text = {}
    for dataset in ("arena_hard_v0.1", "self_instruct_user_oriented"):
        for line in (prompts / f"{dataset}.jsonl").read_text(encoding="utf-8").splitlines():
            row = json.loads(line)
            text[f"{dataset}/{row['id']}"] = row["prompt"]
    assert all(text[r["id"]] == r["prompt"] for r in set_4)
