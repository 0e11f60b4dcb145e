"""The reviewable mapping from the prompt datasets' own labels to our task types and complexity.

Each row of ``shared/datasets/prompts/*.jsonl`` carries its dataset's own category
(``task_type_hint``) and difficulty (``difficulty_hint``). This module is the ONE place that
turns those into our labels: a task type (a name from ``taxonomy.TASK_TYPE_NAMES``, or None when
the row's task is unknown) and a complexity target in [0, 1] (or None when nothing is known).

Complexity targets are ordinal anchors, not measurements: they order datasets by how hard they
are by construction (short factual lookups < templated reading tasks < grade-school math <
textbook problems < competition / olympiad problems), and within a dataset by its own difficulty
label (MATH ``Level 1..5``, DebugBench ``easy/medium/hard``). See docs/model-card-classifier.md.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

__all__ = [
    "DEBUGBENCH_LEVELS",
    "MATH_LEVELS",
    "MMLU_CATEGORIES",
    "MMLU_SUBJECTS",
    "MappedLabel",
    "map_mmlu_subject",
    "map_prompt_row",
]

# MATH's `Level 1..5` -> complexity target.
MATH_LEVELS: Mapping[str, float] = {
    "Level 1": 0.25,
    "Level 2": 0.40,
    "Level 3": 0.55,
    "Level 4": 0.70,
    "Level 5": 0.85,
}
# DebugBench's easy / medium / hard -> complexity target.
DEBUGBENCH_LEVELS: Mapping[str, float] = {"easy": 0.35, "medium": 0.55, "hard": 0.75}

# BIG-Bench Hard tasks whose ask a user would not call a logic puzzle (v2.1; the rest are
# reasoning): arithmetic and counting -> math; a question answered from a pasted table ->
# extraction; "find a movie similar to ..." -> chat (a recommendation); sorting words
# alphabetically fits no task type and is left out of the task head.
_BBH_TASKS: Mapping[str, str | None] = {
    "multistep_arithmetic_two": "math",
    "object_counting": "math",
    "penguins_in_a_table": "extraction",
    "movie_recommendation": "chat",
    "word_sorting": None,
}
# SciBench's textbooks that are mathematics rather than physics / chemistry.
_SCIBENCH_MATH = frozenset({"calculus", "diff", "stat"})
# P3 templates -> (task type, complexity).
_P3_TEMPLATES: Mapping[str, tuple[str, float]] = {
    "xsum_DOC_tldr": ("summarization", 0.25),
    "cnn_dailymail_3_0_0_sum_in_brief": ("summarization", 0.25),
    "quoref_Read_And_Extract_": ("extraction", 0.30),
    "adversarial_qa_dbert_answer_the_following_q": ("extraction", 0.25),
    "ropes_prompt_mix": ("extraction", 0.35),
    "wiki_bio_key_content": ("extraction", 0.20),
    "kilt_tasks_hotpotqa_straighforward_qa": ("chat", 0.25),
    "dbpedia_14_pick_one_category_for_the_following_text": ("classification", 0.15),
    "trec_which_category_best_describes": ("classification", 0.15),
    "imdb_Sentiment_with_choices_": ("classification", 0.15),
}
# Datasets with one task type and one complexity for every row.
_WHOLE_DATASET: Mapping[str, tuple[str | None, float | None]] = {
    "gsm8k_train": ("math", 0.30),
    "college_math": ("math", 0.50),
    "amc23": ("math", 0.85),
    "aime24": ("math", 0.95),
    "humaneval": ("code_generation", 0.40),
    "mbpp": ("code_generation", 0.25),
    "simpleqa": ("chat", 0.10),
    "eqbench_creative_writing": ("creative_writing", 0.50),
    # Hard real-user prompts of many kinds: no task label, but hard by construction.
    "arena_hard_v0.1": (None, 0.85),
    # Mixed instructions with no per-row task label: not used for training (see the card).
    "self_instruct_user_oriented": (None, None),
}


# self_instruct_seed: 175 human-written instructions. The set marks only classification tasks;
# the project labelled the other rows by their task name where one task type clearly fits.
# Names not listed here stay unlabelled (not used for the task head).
_SEED_TASKS: Mapping[str, tuple[str, float]] = {
    **{
        name: ("chat", 0.20)
        for name in (
            "breakfast_suggestion",
            "interview_question_answering",
            "idiom_meaning",
            "movie_recommendation",
            "game_suggestion",
            "grocery_list",
            "explain_behavior",
            "birthday_planning_checklist",
            "cooking_recipe",
            "school_lunches",
            "snack_suggestion",
            "exercise_explanation",
            "suggestion_for_breaking_up",
            "plan_a_trip",
            "question_answering",
            "pre-run_warmup",
            "word_definition",
            "coach_planning",
            "recipe_by_ingredient",
            "part-time_job_pros_and_cons",
            "city_todo_list",
            "movie_ending",
            "meaning_to_phrase",
            "monthly_budget",
            "explain_natural_phenomenon",
            "science_cannot_explain",
            "explain_like_i_am_5",
            "color_explanation",
            "national_dishes",
            "reduce_unconscious_bias",
            "travel_budget",
            "de-stress_list",
            "reducing_belly_fat_exercises",
            "sports_coach_qualifications",
            "sue_or_not",
            "ask_for_law",
            "plan_syllabus",
            "brainstorming_method_explanation",
        )
    },
    **{
        name: ("creative_writing", 0.30)
        for name in (
            "new_year's_resolutions",
            "english_haiku_generation",
            "horror_movie_opening",
            "story_composition",
            "joke_about_phd",
            "knock_knock_joke",
            "three_sentence_story",
            "question-answer_jokes",
            "new_ice_cream",
            "complete_the_lyrics",
            "dad_joke_intensified",
            "proverbs",
            "metaphor_for_a_situation",
            "cover_letter",
            "recommendation_letter",
            "writing_article_from_outline",
            "negative_blender_review",
            "refuse_invitation_email",
            "decline_a_job_offer_email",
            "funny_interview_question",
            "product_description_generation",
        )
    },
    **{
        name: ("code_generation", 0.35)
        for name in (
            "complete_python_code",
            "code_todo",
            "regular_expression_generation",
            "text_to_sql",
            "python_code_generation",
            "python_sorting",
            "code_for_bitcoin_price",
            "program_for_summation",
            "javascript_date_and_time",
            "python_leetcode",
        )
    },
    **{
        name: ("math", 0.30)
        for name in (
            "find_subset_of_numbers_with_target_sum",
            "perfect_numbers",
            "solving_equation",
            "math_word_problem_with_reasoning",
            "measurement_conversion",
            "numerical_question_answering",
            "solving_math_problem",
            "temperature_conversion",
            "word_math_with_algebra",
            "solve_equation_system",
        )
    },
    **{
        name: ("extraction", 0.20)
        for name in (
            "extract_country_names",
            "place_extraction",
            "anonymizing_human_names",
            "entity_linking_to_wikipedia",
            "word_location_in_text",
            "finding_toxic_words",
        )
    },
    **{
        name: ("summarization", 0.25)
        for name in (
            "summarizing_news",
            "paper_summarization",
            "summarize_email",
        )
    },
    **{name: ("classification", 0.20) for name in ("fact_verification",)},
    **{name: ("reasoning", 0.40) for name in ("antonym_relation", "analogy_completion")},
}


# MMLU subjects (the multiple-choice questions of shared/datasets/outcomes/) -> (task type,
# complexity). All 57 subjects are listed so any MMLU-format outcome file maps; 38 are in the
# outcome file. The rule: what the question asks the model to do, as a user would see it.
# - math: computing or proving (algebra, arithmetic, statistics, econometrics' estimators);
# - science: natural science, medicine and computer-science knowledge (a question about what a
#   gene, a reaction or an algorithm does, not a request to write code);
# - reasoning: deciding what follows from given premises or facts (formal logic, fallacies,
#   moral scenarios, applying law to a fact pattern);
# - chat: knowledge questions of the humanities and social sciences (history, geography,
#   economics, psychology, business, policy, philosophy), answered from what one knows.
# Complexity: elementary 0.30, high school 0.40, college / professional / abstract 0.55, others
# 0.45 (ordinal anchors like the rest of this module).
_MMLU_MATH = (
    "abstract_algebra",
    "college_mathematics",
    "elementary_mathematics",
    "high_school_mathematics",
    "high_school_statistics",
    "econometrics",
    "professional_accounting",
)
_MMLU_SCIENCE = (
    "anatomy",
    "astronomy",
    "clinical_knowledge",
    "college_biology",
    "college_chemistry",
    "college_computer_science",
    "college_medicine",
    "college_physics",
    "computer_security",
    "conceptual_physics",
    "electrical_engineering",
    "high_school_biology",
    "high_school_chemistry",
    "high_school_computer_science",
    "high_school_physics",
    "human_aging",
    "machine_learning",
    "medical_genetics",
    "nutrition",
    "professional_medicine",
    "virology",
)
_MMLU_REASONING = ("formal_logic", "logical_fallacies", "moral_scenarios", "professional_law")
_MMLU_CHAT = (
    "business_ethics",
    "global_facts",
    "high_school_european_history",
    "high_school_geography",
    "high_school_government_and_politics",
    "high_school_macroeconomics",
    "high_school_microeconomics",
    "high_school_psychology",
    "high_school_us_history",
    "high_school_world_history",
    "human_sexuality",
    "international_law",
    "jurisprudence",
    "management",
    "marketing",
    "miscellaneous",
    "moral_disputes",
    "philosophy",
    "prehistory",
    "professional_psychology",
    "public_relations",
    "security_studies",
    "sociology",
    "us_foreign_policy",
    "world_religions",
)


def _mmlu_complexity(subject: str) -> float:
    if subject.startswith("elementary_"):
        return 0.30
    if subject.startswith("high_school_"):
        return 0.40
    if subject.startswith(("college_", "professional_", "abstract_")):
        return 0.55
    return 0.45


MMLU_SUBJECTS: Mapping[str, tuple[str, float]] = {
    subject: (task, _mmlu_complexity(subject))
    for task, subjects in (
        ("math", _MMLU_MATH),
        ("science", _MMLU_SCIENCE),
        ("reasoning", _MMLU_REASONING),
        ("chat", _MMLU_CHAT),
    )
    for subject in subjects
}


@dataclass(frozen=True, slots=True)
class MappedLabel:
    """Our labels for one dataset row."""

    task_type: str | None
    complexity: float | None
    # Rows of one group share a template or source; splits keep a group on one side.
    group: str


def map_prompt_row(
    dataset: str, task_hint: str | None, difficulty_hint: str | None, row_id: str = ""
) -> MappedLabel:
    """Our labels for a row of ``<dataset>.jsonl`` with the dataset's own hints.

    Raises ``KeyError`` for a dataset or template this mapping does not know, so that a new file
    cannot slip into training unmapped.
    """
    hint = task_hint or ""
    if dataset in ("math_train", "math_test"):
        # Two rows in math_train say `Level ?`: task known, difficulty not.
        return MappedLabel("math", MATH_LEVELS.get(difficulty_hint or ""), dataset)
    if dataset == "debugbench":
        return MappedLabel("code_review", DEBUGBENCH_LEVELS[difficulty_hint or ""], dataset)
    if dataset == "bbh":
        task = _BBH_TASKS.get(hint, "reasoning")
        return MappedLabel(task, 0.50, f"bbh/{hint}")
    if dataset == "olympiadbench":
        task = "science" if hint.startswith("Physics") else "math"
        return MappedLabel(task, 0.95, f"olympiadbench/{hint.split(' / ')[0]}")
    if dataset == "theoremqa":
        field = hint.split(" / ")[0]
        task = "math" if field in ("Math", "Finance") else "science"
        return MappedLabel(task, 0.75, f"theoremqa/{field}")
    if dataset == "scibench":
        task = "math" if hint in _SCIBENCH_MATH else "science"
        return MappedLabel(task, 0.65, f"scibench/{hint}")
    if dataset == "p3_prompts":
        task, complexity = _P3_TEMPLATES[hint]
        return MappedLabel(task, complexity, f"p3/{hint}")
    if dataset == "self_instruct_seed":
        # The seed set marks classification instructions; the rest are of mixed, unlabelled kinds.
        if hint == "is_classification=True":
            return MappedLabel("classification", 0.20, dataset)
        task_name = row_id.partition(":")[2]
        if task_name in _SEED_TASKS:
            seed_task, seed_complexity = _SEED_TASKS[task_name]
            return MappedLabel(seed_task, seed_complexity, dataset)
        return MappedLabel(None, None, dataset)
    whole_task, whole_complexity = _WHOLE_DATASET[dataset]
    return MappedLabel(whole_task, whole_complexity, dataset)


# MMLU's own four subject categories (Hendrycks et al.), for leave-category-out.
_STEM = (
    "abstract_algebra anatomy astronomy college_biology college_chemistry "
    "college_computer_science college_mathematics college_physics computer_security "
    "conceptual_physics electrical_engineering elementary_mathematics high_school_biology "
    "high_school_chemistry high_school_computer_science high_school_mathematics "
    "high_school_physics high_school_statistics machine_learning"
)
_HUMANITIES = (
    "formal_logic high_school_european_history high_school_us_history "
    "high_school_world_history international_law jurisprudence logical_fallacies "
    "moral_disputes moral_scenarios philosophy prehistory professional_law world_religions"
)
_SOCIAL = (
    "econometrics high_school_geography high_school_government_and_politics "
    "high_school_macroeconomics high_school_microeconomics high_school_psychology "
    "human_sexuality professional_psychology public_relations security_studies sociology "
    "us_foreign_policy"
)
_OTHER = (
    "business_ethics clinical_knowledge college_medicine global_facts human_aging management "
    "marketing medical_genetics miscellaneous nutrition professional_accounting "
    "professional_medicine virology"
)
MMLU_CATEGORIES: Mapping[str, str] = {
    subject: category
    for category, names in (
        ("stem", _STEM),
        ("humanities", _HUMANITIES),
        ("social_sciences", _SOCIAL),
        ("other", _OTHER),
    )
    for subject in names.split()
}


def map_mmlu_subject(subject: str) -> MappedLabel:
    """Our labels for an MMLU question of ``subject``; ``KeyError`` for an unknown subject."""
    task, complexity = MMLU_SUBJECTS[subject]
    return MappedLabel(task, complexity, f"mmlu/{subject}")
