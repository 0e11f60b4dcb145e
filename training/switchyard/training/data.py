"""Training data: the prompt datasets, authored prompts, user label files and outcome files.

User files are JSONL. Label files: ``prompt`` (non-empty string), ``task_type`` (a name from
``taxonomy.TASK_TYPE_NAMES``), optional ``complexity`` (number in [0, 1]). Outcome files:
``prompt``, ``local_ok`` and ``frontier_ok`` (booleans), optional ``id`` and ``subject``
(strings). Every problem is reported with its line number and field (``DataFileError``).
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable
from pathlib import Path

from switchyard.classifier.taxonomy import TASK_TYPE_NAMES
from switchyard.training.authored import authored_prompts
from switchyard.training.everyday import everyday_prompts
from switchyard.training.formats import derived_rows
from switchyard.training.mapping import map_mmlu_subject, map_prompt_row
from switchyard.training.records import LabeledPrompt, OutcomeRecord
from switchyard.training.second_sources import second_source_prompts
from switchyard.training.voices import voice_prompts

__all__ = [
    "DataFileError",
    "LabeledPrompt",
    "OutcomeRecord",
    "held_out",
    "load_dataset_prompts",
    "normalised_prompt",
    "read_label_file",
    "read_outcome_file",
]

MAX_ERRORS_SHOWN = 20


class DataFileError(ValueError):
    """A training file has problems; the message lists them as ``FILE:LINE: field: problem``."""


def held_out(key: str, percent: int, salt: str = "switchyard-heldout-v1") -> bool:
    """Deterministic split: True for about ``percent``% of keys, independent of file order."""
    digest = hashlib.sha256(f"{salt}:{key}".encode()).digest()
    return int.from_bytes(digest[:4], "big") % 100 < percent


def normalised_prompt(text: str) -> str:
    """A prompt as de-duplication compares it: lower case, runs of whitespace as one space."""
    return " ".join(text.lower().split())


def load_dataset_prompts(
    prompts_dir: Path,
    *,
    include_authored: bool = True,
    mmlu_file: Path | None = None,
    include_derived: bool = True,
) -> list[LabeledPrompt]:
    """Every row of ``prompts_dir/*.jsonl`` with our labels; then, in this order, the MMLU
    questions of ``mmlu_file`` (an outcome file; task type by subject, ``mapping.MMLU_SUBJECTS``),
    the authored prompts (templated ones from ``authored.py``, user-voice ones from ``voices.py``,
    everyday formats from ``everyday.py``, second sources from ``second_sources.py``) and the
    formats derived from dataset rows (``formats.py``).

    Rows are de-duplicated on the normalised prompt (first occurrence wins, files in name order).
    """
    rows: list[LabeledPrompt] = []
    seen: set[str] = set()

    def add(row: LabeledPrompt) -> None:
        key = normalised_prompt(row.prompt)
        if key and key not in seen:
            seen.add(key)
            rows.append(row)

    files = sorted(prompts_dir.glob("*.jsonl"))
    if not files:
        raise DataFileError(f"{prompts_dir}: no *.jsonl prompt files")
    for path in files:
        with path.open(encoding="utf-8") as handle:
            for line_no, line in enumerate(handle, 1):
                record = json.loads(line)
                try:
                    label = map_prompt_row(
                        path.stem, record["task_type_hint"], record["difficulty_hint"], record["id"]
                    )
                except KeyError as exc:
                    raise DataFileError(f"{path}:{line_no}: no label mapping for {exc}") from None
                add(
                    LabeledPrompt(
                        record["id"],
                        record["prompt"],
                        label.task_type,
                        label.complexity,
                        label.group,
                    )
                )
    if mmlu_file is not None:
        for outcome in read_outcome_file(mmlu_file):
            try:
                label = map_mmlu_subject(outcome.subject)
            except KeyError as exc:
                raise DataFileError(f"{mmlu_file}: {outcome.id}: no MMLU subject {exc}") from None
            add(
                LabeledPrompt(
                    outcome.id, outcome.prompt, label.task_type, label.complexity, label.group
                )
            )
    if include_authored:
        authored = (*authored_prompts(), *voice_prompts(), *everyday_prompts())
        for item in (*authored, *second_source_prompts()):
            add(LabeledPrompt(item.id, item.prompt, item.task_type, item.complexity, item.group))
    if include_derived:
        for row in list(derived_rows(rows)):
            add(row)
    return rows


def _read_jsonl(path: Path) -> Iterable[tuple[int, object, str | None]]:
    try:
        handle = path.open(encoding="utf-8")
    except OSError as exc:
        raise DataFileError(f"{path}: cannot be read: {exc.strerror}") from None
    with handle:
        for line_no, line in enumerate(handle, 1):
            if not line.strip():
                continue
            try:
                yield line_no, json.loads(line), None
            except json.JSONDecodeError as exc:
                yield line_no, None, f"not valid JSON ({exc.msg} at column {exc.colno})"


def _raise_if(problems: list[str], path: Path, count: int) -> None:
    if problems:
        shown = problems[:MAX_ERRORS_SHOWN]
        more = len(problems) - len(shown)
        tail = f"\n... and {more} more problems" if more else ""
        raise DataFileError(f"{path}: {len(problems)} problem(s):\n" + "\n".join(shown) + tail)
    if count == 0:
        raise DataFileError(f"{path}: no records")


def _check_fields(
    obj: dict[str, object], allowed: set[str], where: str, problems: list[str]
) -> None:
    for field in sorted(set(obj) - allowed):
        problems.append(f"{where}: {field}: unknown field (allowed: {', '.join(sorted(allowed))})")


def read_label_file(path: Path) -> list[LabeledPrompt]:
    """Validate and read a bring-your-own-labels JSONL file."""
    allowed = {"prompt", "task_type", "complexity", "id"}
    problems: list[str] = []
    rows: list[LabeledPrompt] = []
    for line_no, obj, error in _read_jsonl(path):
        where = f"{path}:{line_no}"
        if error:
            problems.append(f"{where}: {error}")
            continue
        if not isinstance(obj, dict):
            problems.append(f"{where}: expected a JSON object")
            continue
        _check_fields(obj, allowed, where, problems)
        prompt, task, complexity = obj.get("prompt"), obj.get("task_type"), obj.get("complexity")
        ok = True
        if not isinstance(prompt, str) or not prompt.strip():
            problems.append(f"{where}: prompt: required, a non-empty string")
            ok = False
        if (
            not isinstance(task, str)
            or task.strip().lower().removeprefix("task_type_") not in TASK_TYPE_NAMES
        ):
            problems.append(
                f"{where}: task_type: required, one of {', '.join(TASK_TYPE_NAMES)}; got {task!r}"
            )
            ok = False
        if complexity is not None and (
            isinstance(complexity, bool)
            or not isinstance(complexity, int | float)
            or not 0.0 <= float(complexity) <= 1.0
        ):
            problems.append(
                f"{where}: complexity: a number in [0, 1] when given; got {complexity!r}"
            )
            ok = False
        if ok:
            assert isinstance(prompt, str) and isinstance(task, str)
            rows.append(
                LabeledPrompt(
                    str(obj.get("id", f"{path.name}/{line_no}")),
                    prompt,
                    task.strip().lower().removeprefix("task_type_"),
                    None if complexity is None else float(complexity),
                    f"user/{line_no}",
                )
            )
    _raise_if(problems, path, len(rows))
    return rows


def read_outcome_file(path: Path) -> list[OutcomeRecord]:
    """Validate and read an outcome JSONL file (the schema of shared/datasets/outcomes); a file
    ``switchyard outcomes export`` wrote is read by ``team_outcomes`` (partial outcomes used for
    what they say)."""
    from switchyard.training.team_outcomes import is_exported_file, read_team_outcomes

    if is_exported_file(path):
        return read_team_outcomes(path).training
    allowed = {
        "id",
        "prompt",
        "subject",
        "local_model",
        "frontier_model",
        "local_ok",
        "frontier_ok",
    }
    problems: list[str] = []
    rows: list[OutcomeRecord] = []
    for line_no, obj, error in _read_jsonl(path):
        where = f"{path}:{line_no}"
        if error:
            problems.append(f"{where}: {error}")
            continue
        if not isinstance(obj, dict):
            problems.append(f"{where}: expected a JSON object")
            continue
        _check_fields(obj, allowed, where, problems)
        ok = True
        prompt = obj.get("prompt")
        if not isinstance(prompt, str) or not prompt.strip():
            problems.append(f"{where}: prompt: required, a non-empty string")
            ok = False
        for field in ("local_ok", "frontier_ok"):
            if not isinstance(obj.get(field), bool):
                problems.append(
                    f"{where}: {field}: required, true or false; got {obj.get(field)!r}"
                )
                ok = False
        for field in ("id", "subject", "local_model", "frontier_model"):
            if field in obj and not isinstance(obj[field], str):
                problems.append(f"{where}: {field}: a string when given")
                ok = False
        if ok:
            assert isinstance(prompt, str)
            rows.append(
                OutcomeRecord(
                    str(obj.get("id", f"{path.name}/{line_no}")),
                    prompt,
                    str(obj.get("subject", "")),
                    bool(obj["local_ok"]),
                    bool(obj["frontier_ok"]),
                )
            )
    _raise_if(problems, path, len(rows))
    return rows
