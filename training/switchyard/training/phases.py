"""What the build's phases hand each other (``build.py`` runs them)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import onnx

from switchyard.training.escalation import EscalationFit
from switchyard.training.fine_tune import FineTuneRecipe
from switchyard.training.heads import Heads
from switchyard.training.records import LabeledPrompt, OutcomeRecord
from switchyard.training.task_head import TaskHead

__all__ = [
    "BuildConfig",
    "BuildResult",
    "Embedded",
    "EmbeddedRows",
    "FittedHeads",
    "TrainingRows",
]


@dataclass
class BuildConfig:
    out: Path
    prompts_dir: Path | None = None
    # MMLU-format outcome file whose questions become task-type rows by subject (the shipped
    # model: the built-in outcome file); None: none.
    mmlu_file: Path | None = None
    outcomes_file: Path | None = None
    labels_file: Path | None = None
    # A team's labelled prompts (the --labels format) added to the built-in task rows as one more
    # source, weighted like the others; a built-in row with the same prompt gives way to it.
    added_labels_file: Path | None = None
    # Training rows: at most this many per task type and source (None: all). A team's own
    # labels count as one source.
    train_cap: int | None = 1000
    # Held-out rows evaluated: at most this many per task type.
    eval_cap: int | None = 500
    outcome_limit: int | None = None
    # A team's outcome file (the exported format), combined with ``outcomes_file``, each row
    # counting ``team_weight`` times (team_outcomes.py).
    team_outcomes_file: Path | None = None
    team_weight: int = 3
    # The share of the team's rows the build holds out from training (its own report, and
    # `evaluate` / `promote` on the same file). 0: train on every team row, and judge the model
    # on outcomes recorded after the export (a later file).
    team_held_out_percent: int = 20
    threads: int = 2
    cache_dir: Path | None = None
    log: Callable[[str], None] = print
    # The encoder's last layer trained on the task rows before the heads (fine_tune.py); None
    # or zero epochs: the encoder as published.
    fine_tune: FineTuneRecipe | None = field(default_factory=FineTuneRecipe)


@dataclass
class TrainingRows:
    """What each head is fitted and evaluated on."""

    task_train: list[LabeledPrompt]
    task_eval: list[LabeledPrompt]
    complexity_train: list[LabeledPrompt]
    complexity_eval: list[LabeledPrompt]
    outcome_train: list[OutcomeRecord]
    outcome_eval: list[OutcomeRecord]
    weighted: bool  # source-balanced task rows (the built-in data), not a team's own labels
    inputs: dict[str, str]  # input file -> sha256
    # ids of the outcome rows trained on (before weighting), recorded in the model directory
    trained_outcome_ids: list[str] = field(default_factory=list)


@dataclass
class Embedded:
    x: np.ndarray  # [n, HIDDEN]
    n: np.ndarray  # [n, 1] token counts
    ends: np.ndarray  # [n, END_STATES] the prompt's two ends (the encoder's end_states)
    bags: object  # [n, SEGMENTS * VOCAB] sparse token bags (tokens.bag_of_tokens)

    @property
    def log_n(self) -> np.ndarray:
        return np.log(self.n.reshape(-1).astype(np.float64))


@dataclass
class EmbeddedRows:
    task_train: Embedded
    task_eval: Embedded
    complexity_train: Embedded
    complexity_eval: Embedded
    outcome_train: Embedded
    outcome_eval: Embedded


@dataclass
class FittedHeads:
    heads: Heads
    task: TaskHead
    complexity: object  # scikit-learn Ridge
    escalation: EscalationFit | None


@dataclass
class BuildResult:
    out: Path
    heads: Heads
    report: dict[str, object]
    sklearn: dict[str, object] = field(default_factory=dict)
    # The encoder graph the heads were fitted on (fine-tuned unless the build said not to).
    encoder: onnx.ModelProto | None = None
