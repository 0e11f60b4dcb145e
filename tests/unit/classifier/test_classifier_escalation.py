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


def team_data(seed: int = 5) -> dict[str, np.ndarray]:
    """Shipped rows where length says a little, plus a team's traffic of 8 kinds of request
    (clusters on a 3-d sphere) whose escalation gain is each kind's own: no direction of the
    embedding orders them (8 arbitrary rates), the kinds' rates do."""
    rng = np.random.default_rng(seed)
    hidden, shipped, team = 3, 1500, 600
    centres = rng.normal(size=(8, hidden))
    centres /= np.linalg.norm(centres, axis=1, keepdims=True)
    pays = np.array([0.05, 0.6, 0.1, 0.55, 0.05, 0.5, 0.1, 0.65])  # P(local wrong, frontier right)
    kind = rng.integers(0, 8, team)
    xt = centres[kind] + 0.08 * rng.normal(size=(team, hidden))
    escalate = rng.random(team) < pays[kind]
    xs = rng.normal(size=(shipped, hidden))
    log_ns = rng.uniform(1.0, 5.0, shipped)
    local_s = rng.random(shipped) > 1 / (1 + np.exp(-0.8 * (log_ns - 3.0)))
    x = np.vstack([xs, xt])
    x /= np.linalg.norm(x, axis=1, keepdims=True)
    return {
        "x": x,
        "log_n": np.concatenate([log_ns, rng.uniform(1.0, 5.0, team)]),
        "local": np.concatenate([local_s, ~escalate]),
        "frontier": np.concatenate(
            [rng.random(shipped) < 0.9, escalate | (rng.random(team) < 0.5)]
        ),
        "s": np.array(
            [SUBJECTS[i % len(SUBJECTS)] for i in range(shipped)]
            + [f"team/{i}" for i in range(team)]
        ),
        "team": np.arange(shipped + team) >= shipped,
    }


def test_a_teams_kinds_of_request_are_learnt_by_the_neighbourhood_term() -> None:
    d = team_data()
    held = d["team"] & (np.arange(len(d["s"])) % 4 == 0)  # a quarter of the team's traffic
    sel = ~held
    transfer = TransferFeatures(
        d["log_n"][sel], np.full(sel.sum(), 0.5), np.full((sel.sum(), 10), 0.1)
    )
    model = fit_escalation(
        d["x"][sel],
        d["log_n"][sel],
        d["local"][sel],
        d["frontier"][sel],
        list(d["s"][sel]),
        transfer,
        d["x"][sel][:50],
        validate_on=d["team"][sel],
    )
    assert model.report["mu"] > 0 and model.report["neighbourhood_clusters"] >= 4  # type: ignore[operator]
    assert model.neighbourhood is not None
    ours, _ = apgr_and_cpt(score(model, d, held), d["local"][held], d["frontier"][held])
    length, _ = apgr_and_cpt(d["log_n"][held], d["local"][held], d["frontier"][held])
    assert ours > length + 0.1
    # without the team's rows marked there is no neighbourhood term
    shipped_only = ~d["team"]
    assert fit(d, shipped_only).neighbourhood is None


def test_the_graph_computes_the_neighbourhood_term_as_numpy_does() -> None:
    import onnxruntime as ort

    from switchyard.training.encoder import HIDDEN
    from switchyard.training.heads import Heads, build_heads_graph

    rng = np.random.default_rng(11)
    types = 10

    def unit(rows: int) -> np.ndarray:
        v = rng.normal(size=(rows, HIDDEN))
        return v / np.linalg.norm(v, axis=1, keepdims=True)

    heads = Heads(
        task_weights=rng.normal(size=(HIDDEN, types)) * 0.1,
        task_bias=rng.normal(size=types),
        temperature=1.0,
        complexity_weights=rng.normal(size=HIDDEN) * 0.05,
        complexity_bias=0.4,
        outcome_weights=rng.normal(size=HIDDEN) * 0.1,
        outcome_length_weight=0.2,
        outcome_bias=-0.1,
        transfer_length_weight=0.3,
        transfer_complexity_weight=0.5,
        transfer_task_weights=rng.normal(size=types),
        escalation_bias=-1.0,
        centroids=unit(4),
        sim_low=-0.5,
        sim_high=0.2,
        neighbourhood_centroids=unit(8),
        neighbourhood_gains=rng.normal(size=8),
    )
    session = ort.InferenceSession(
        build_heads_graph(heads).SerializeToString(), providers=["CPUExecutionProvider"]
    )
    embedding = (unit(16) + 0.5 * heads.neighbourhood_centroids[:2].mean(0)).astype(np.float32)  # type: ignore[index]
    count = rng.integers(3, 200, (16, 1)).astype(np.float32)
    [escalation] = session.run(["escalation"], {"embedding": embedding, "token_count": count})
    expected = heads.predict(embedding, count)["escalation"]
    np.testing.assert_allclose(escalation, expected, atol=2e-5)
    without = Heads(
        **{**heads.__dict__, "neighbourhood_centroids": None, "neighbourhood_gains": None}
    )
    assert np.abs(without.predict(embedding, count)["escalation"] - expected).max() > 1e-3
