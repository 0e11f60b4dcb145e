"""The two kinds of training record: a labelled prompt and an outcome (did each model succeed)."""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["LabeledPrompt", "OutcomeRecord"]


@dataclass(frozen=True, slots=True)
class LabeledPrompt:
    id: str
    prompt: str
    task_type: str | None
    complexity: float | None
    group: str


@dataclass(frozen=True, slots=True)
class OutcomeRecord:
    id: str
    prompt: str
    subject: str
    local_ok: bool
    frontier_ok: bool
    # A partial outcome standing for "escalating gained nothing" (team_outcomes.py): trained
    # on, never scored.
    partial: bool = False

    @property
    def escalate(self) -> bool:
        """Escalation pays off: the local model failed where the frontier model succeeded."""
        return (not self.local_ok) and self.frontier_ok
