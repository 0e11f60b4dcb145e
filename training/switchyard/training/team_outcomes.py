"""A team's outcome file (what ``switchyard outcomes export`` writes) as escalation training rows.

The exported format is docs/services/outcomes.md: per request ``local_ok`` and ``frontier_ok``
(each true, false or null: not rated), ``partial`` (one of them null), the ``prompt`` only where
the operator stored prompts, and the request's ``task_type``. A file in the shipped schema
(shared/datasets/outcomes: both flags always rated) is read too.

**What a partial outcome is used for** (and no more). Escalation pays off exactly where the local
answer was not good enough and the frontier answer was. The escalation head learns the gain of
escalating (``frontier_ok - local_ok``) and the chance that it pays off, so each kind of row says:

| local_ok | frontier_ok | what it says                              | used as  |
|----------|-------------|-------------------------------------------|----------|
| bool     | bool        | both tiers rated                          | as it is |
| true     | null        | local good: escalating could not pay off  | no gain  |
| null     | false       | frontier bad: escalating could not pay off| no gain  |
| false    | null        | local bad; nothing about the frontier's   | not used |
| null     | true        | frontier good; nothing about the local's  | not used |

A "no gain" row is written as an outcome where both tiers did the same (``local_ok ==
frontier_ok``), which is the most the row says: a gain of 0 is the best escalating could have
done there (its true gain is 0 or -1), and it is not an escalation. Rows that are not used are
counted in ``TeamOutcomes.unused``. Scoring (APGR and the other ranking metrics) needs both tiers
rated, so only full rows are ever held out for evaluation (``TeamOutcomes.full``).

Rows without prompt text (the operator did not opt in) cannot train the embedding-based head;
they are counted in ``TeamOutcomes.without_prompt`` and left out.

**Weighting.** The team's rows are combined with the shipped outcome data with each team row
counting ``team_weight`` times (``DEFAULT_TEAM_WEIGHT``; ``train --team-weight``): the team's
traffic is what the model will serve, the shipped data keeps it sound where the team has few
outcomes. Weight is applied by repeating the row (integer weights), so every fitted piece (the
ridge outcome model, the blend chosen by held-out-group validation, the Platt scale) sees it
and repeated rows stay in their row's held-out group.

**Validation.** A team row's held-out group is its prompt (``team_group``: rows asking the same
thing are held out together, so a prompt repeated in the traffic never sits on both sides of a
fold, and the folds do not depend on the router's random request ids), or its ``subject``'s
when the file has one; and when team rows are combined with the shipped data the escalation
recipe's choices (the ridge penalty and the blend of outcome model, length, complexity and task
prior) are made on 5 folds of the team's rows (``escalation.fit_escalation(validate_on=...)``):
whether the outcome model beats prompt length is decided on the team's traffic, not on MMLU's
subject categories (on which the shipped choice is length alone).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from switchyard.training.data import (
    DataFileError,
    _check_fields,
    _raise_if,
    _read_jsonl,
    held_out,
)
from switchyard.training.embedder import prompt_key
from switchyard.training.records import OutcomeRecord

__all__ = [
    "DEFAULT_TEAM_WEIGHT",
    "EXPORT_FIELDS",
    "TEAM_GROUP_PREFIX",
    "RatedOutcome",
    "TeamOutcomes",
    "escalation_evidence",
    "is_exported_file",
    "read_team_outcomes",
    "team_group",
    "split_for_training",
    "team_rows_mask",
    "weighted",
]

# Each team outcome counts this many times next to one row of the shipped outcome data.
DEFAULT_TEAM_WEIGHT = 3
# Held-out groups of team rows (the subject, else the prompt, else the row itself), prefixed so
# they never merge with the shipped data's subjects; ``team_rows_mask`` finds them.
TEAM_GROUP_PREFIX = "team/"


def team_group(subject: str | None, prompt: str | None, row_id: str) -> str:
    """A team row's held-out group: its subject when the file gives one, else its prompt (a
    digest of the text: the same prompt is one group), else the row itself."""
    if subject:
        return f"{TEAM_GROUP_PREFIX}{subject}"
    if prompt is not None:
        return f"{TEAM_GROUP_PREFIX}prompt-{prompt_key(prompt)[:16]}"
    return f"{TEAM_GROUP_PREFIX}{row_id}"


# Keys of the exported outcome file (format version 1) and of the shipped schema.
EXPORT_FIELDS = frozenset(
    {
        "id",
        "time",
        "tenant",
        "task_type",
        "complexity",
        "escalation_score",
        "classifier_model_version",
        "prompt_chars",
        "input_tokens",
        "served",
        "local_model",
        "frontier_model",
        "local_ok",
        "frontier_ok",
        "partial",
        "source",
        "sample_share",
        "judge",
        "feedback",
        "prompt",
        "subject",
    }
)


@dataclass(frozen=True, slots=True)
class RatedOutcome:
    """One row of an outcome file as rated: a flag is None when that tier was not rated."""

    id: str
    prompt: str | None
    group: str  # team_group(): TEAM_GROUP_PREFIX + the subject, else the prompt's digest
    local_ok: bool | None
    frontier_ok: bool | None

    @property
    def full(self) -> bool:
        return self.local_ok is not None and self.frontier_ok is not None


def escalation_evidence(row: RatedOutcome) -> OutcomeRecord | None:
    """The training row a rated outcome stands for (module docstring), or None when it says
    nothing about whether escalating pays off (or has no prompt to learn from)."""
    if row.prompt is None:
        return None
    if row.full:
        assert row.local_ok is not None and row.frontier_ok is not None
        return OutcomeRecord(row.id, row.prompt, row.group, row.local_ok, row.frontier_ok)
    if row.local_ok is True or row.frontier_ok is False:
        same = bool(row.local_ok) if row.local_ok is not None else False
        return OutcomeRecord(row.id, row.prompt, row.group, same, same, partial=True)
    return None


@dataclass
class TeamOutcomes:
    """A team's outcome file, sorted into what each row can be used for."""

    rows: list[RatedOutcome]
    training: list[OutcomeRecord] = field(default_factory=list)  # escalation evidence
    unused: int = 0  # partial rows that say nothing about escalating
    without_prompt: int = 0

    @property
    def full(self) -> list[RatedOutcome]:
        """Rows with both tiers rated: the only ones ranking metrics can score."""
        return [r for r in self.rows if r.full]

    def counts(self) -> dict[str, int]:
        return {
            "rows": len(self.rows),
            "full": len(self.full),
            "partial": len(self.rows) - len(self.full),
            "training": len(self.training),
            "unused_partial": self.unused,
            "without_prompt": self.without_prompt,
        }


# Keys only the exported format has (the shipped schema has none of them).
_EXPORT_ONLY = frozenset({"served", "partial", "source", "tenant"})


def is_exported_file(path: Path) -> bool:
    """True when the file's first record is in the exported format (has ``served``,
    ``partial``, ...); a file that cannot be read or parsed is left to the strict reader."""
    try:
        with path.open(encoding="utf-8") as handle:
            for line in handle:
                if line.strip():
                    obj = json.loads(line)
                    return isinstance(obj, dict) and bool(_EXPORT_ONLY & set(obj))
    except (OSError, ValueError):
        return False
    return False


def split_for_training(
    records: list[OutcomeRecord], percent: int, weight: int
) -> tuple[list[OutcomeRecord], list[OutcomeRecord], list[str]]:
    """(training rows, each ``weight`` times; held-out rows that can be scored; the ids trained
    on). The split is ``data.held_out`` on the row's own id, before weighting, so a row and its
    copies are on the same side."""
    train = [r for r in records if not held_out(r.id, percent)]
    held = [r for r in records if held_out(r.id, percent) and not r.partial]
    return weighted(train, weight), held, [r.id for r in train]


def _flag(obj: dict[str, object], name: str, where: str, problems: list[str]) -> bool | None:
    value = obj.get(name)
    if value is None or isinstance(value, bool):
        return value
    problems.append(f"{where}: {name}: true, false or null; got {value!r}")
    return None


def read_team_outcomes(path: Path) -> TeamOutcomes:
    """Validate and read an outcome file in the exported format (or the shipped schema); every
    problem is reported with its line number and field (``DataFileError``)."""
    problems: list[str] = []
    rows: list[RatedOutcome] = []
    for line_no, obj, error in _read_jsonl(path):
        where = f"{path}:{line_no}"
        if error:
            problems.append(f"{where}: {error}")
            continue
        if not isinstance(obj, dict):
            problems.append(f"{where}: expected a JSON object")
            continue
        _check_fields(obj, set(EXPORT_FIELDS), where, problems)
        before = len(problems)
        local_ok = _flag(obj, "local_ok", where, problems)
        frontier_ok = _flag(obj, "frontier_ok", where, problems)
        if local_ok is None and frontier_ok is None and len(problems) == before:
            problems.append(f"{where}: local_ok, frontier_ok: at least one must be rated")
        prompt = obj.get("prompt")
        if prompt is not None and (not isinstance(prompt, str) or not prompt.strip()):
            problems.append(f"{where}: prompt: a non-empty string when given")
        for name in ("id", "subject", "task_type"):
            if name in obj and not isinstance(obj[name], str):
                problems.append(f"{where}: {name}: a string when given")
        if "partial" in obj and obj["partial"] != (local_ok is None or frontier_ok is None):
            problems.append(f"{where}: partial: {obj['partial']!r} does not match the flags")
        if len(problems) > before:
            continue
        row_id = str(obj.get("id") or f"{path.name}/{line_no}")
        text = prompt if isinstance(prompt, str) else None
        rows.append(
            RatedOutcome(
                row_id,
                text,
                team_group(obj.get("subject"), text, row_id),
                local_ok,
                frontier_ok,
            )
        )
    _raise_if(problems, path, len(rows))
    team = TeamOutcomes(rows)
    for row in rows:
        evidence = escalation_evidence(row)
        if evidence is not None:
            team.training.append(evidence)
        elif row.prompt is None:
            team.without_prompt += 1
        else:
            team.unused += 1
    if not team.training:
        raise DataFileError(
            f"{path}: no row can train escalation ({team.without_prompt} without prompt text, "
            f"{team.unused} partial rows that say nothing about escalating)"
        )
    return team


def team_rows_mask(rows: list[OutcomeRecord]) -> np.ndarray | None:
    """Which rows are a team's (their group prefixed ``TEAM_GROUP_PREFIX``); None when none
    are, or all are (nothing to tell apart: the shipped validation applies)."""
    mask = np.array([r.subject.startswith(TEAM_GROUP_PREFIX) for r in rows], dtype=bool)
    return mask if mask.any() and not mask.all() else None


def weighted(rows: list[OutcomeRecord], weight: int) -> list[OutcomeRecord]:
    """Each row ``weight`` times (the copies keep the row's id suffixed and its group)."""
    if weight < 1:
        raise ValueError(f"team weight must be a whole number >= 1, got {weight}")
    if weight == 1:
        return list(rows)
    return [
        OutcomeRecord(
            r.id if copy == 0 else f"{r.id}#{copy}",
            r.prompt,
            r.subject,
            r.local_ok,
            r.frontier_ok,
            r.partial,
        )
        for r in rows
        for copy in range(weight)
    ]
