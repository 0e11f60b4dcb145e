"""The escalation recipe's choice: it uses the outcome model only where that beats length on
held-out groups of subjects, and never ships a blend that loses to length on the groups."""

from __future__ import annotations

import numpy as np

from switchyard.training.escalation import TransferFeatures, fit_escalation, held_out_groups
from switchyard.training.metrics import apgr_and_cpt

SUBJECTS = [f"subject_{i}" for i in range(10)]


def outcome_data(signal_in_embedding: bool, seed: int = 3) -> dict[str, np.ndarray]:
    """Synthetic outcome records: local failures follow a direction of the embedding (which
    holds across subjects) or nothing but length."""
    rng = np.random.default_rng(seed)
    n, hidden = 2000, 16
    x = rng.normal(size=(n, hidden))
    x /= np.linalg.norm(x, axis=1, keepdims=True)
    log_n = rng.uniform(1.0, 5.0, n)
    logit = 0.8 * (log_n - 3.0) + (6.0 * x[:, 0] if signal_in_embedding else 0.0)
    local_ok = rng.random(n) > 1 / (1 + np.exp(-logit))
    frontier_ok = rng.random(n) < 0.9
    subjects = np.array([SUBJECTS[i % len(SUBJECTS)] for i in range(n)])
    return {"x": x, "log_n": log_n, "local": local_ok, "frontier": frontier_ok, "s": subjects}


def fit(d: dict[str, np.ndarray], sel: np.ndarray):  # type: ignore[no-untyped-def]
    transfer = TransferFeatures(
        d["log_n"][sel], np.full(sel.sum(), 0.5), np.full((sel.sum(), 10), 0.1)
    )
    return fit_escalation(
        d["x"][sel],
        d["log_n"][sel],
        d["local"][sel],
        d["frontier"][sel],
        list(d["s"][sel]),
        transfer,
        d["x"][sel][:50],
    )


def score(model, d: dict[str, np.ndarray], sel: np.ndarray) -> np.ndarray:  # type: ignore[no-untyped-def]
    transfer = TransferFeatures(
        d["log_n"][sel], np.full(sel.sum(), 0.5), np.full((sel.sum(), 10), 0.1)
    )
    return model.probability(d["x"][sel], d["log_n"][sel], transfer)


def test_groups_are_subject_folds() -> None:
    groups = held_out_groups(SUBJECTS + ["high_school_physics", "philosophy"])
    folds = [g for name, g in groups.items() if name.startswith("subjects_fold_")]
    assert len(folds) == 5 and sorted(sum(folds, [])) == sorted(
        SUBJECTS + ["high_school_physics", "philosophy"]
    )
    assert groups["category_stem"] == ["high_school_physics"]


def test_outcome_model_used_where_it_transfers() -> None:
    d = outcome_data(signal_in_embedding=True)
    held = np.isin(d["s"], SUBJECTS[:2])
    model = fit(d, ~held)
    assert model.report["lambda"] > 0
    p = score(model, d, held)
    ours, _ = apgr_and_cpt(p, d["local"][held], d["frontier"][held])
    length, _ = apgr_and_cpt(d["log_n"][held], d["local"][held], d["frontier"][held])
    assert ours > length + 0.03


def test_not_below_length_when_nothing_else_transfers() -> None:
    d = outcome_data(signal_in_embedding=False)
    held = np.isin(d["s"], SUBJECTS[:2])
    model = fit(d, ~held)
    assert model.report["worst_margin_over_length"] >= 0.0
    p = score(model, d, held)
    ours, _ = apgr_and_cpt(p, d["local"][held], d["frontier"][held])
    length, _ = apgr_and_cpt(d["log_n"][held], d["local"][held], d["frontier"][held])
    assert ours >= length - 0.01
    # a longer prompt of the same kind never scores lower
    same = np.tile(d["x"][held][:1], (50, 1))
    log_n = np.linspace(1.0, 5.0, 50)
    flat = TransferFeatures(log_n, np.full(50, 0.5), np.full((50, 10), 0.1))
    assert np.all(np.diff(model.probability(same, log_n, flat)) >= -1e-12)
