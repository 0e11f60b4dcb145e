"""Learning the escalation score from outcome records (did the local / the frontier model succeed).

Two parts, fitted here and written into the graph by ``heads.py``:

- the **outcome model**: ridge regression of the gain ``frontier_ok - local_ok`` on
  [embedding, log token count]. It knows the outcome data's own kind of request well (MMLU
  subjects it was fitted on), less so new subjects, and nothing about requests unlike them.
- the **stacker**: one logistic regression that turns the outcome model's score and what
  transfers across datasets (log token count, the complexity score, the task-type
  probabilities) into P(escalation pays off). The outcome model's score enters multiplied by
  its *trust*: 1 for requests like the outcome data, 0 for requests unlike it (cosine similarity
  to the nearest outcome-data centroid, linear between two cut points). So an unlike request
  (a greeting, a code request, a grade-school word problem) is scored by the transferable part
  alone. The stacker is fitted on **out-of-group** outcome scores (each subject scored by an
  outcome model that never saw it), so its weight on the outcome model is what that model is
  worth on subjects it has not seen, not what it is worth on its own training rows.

Everything a team needs to fit its own escalation data (``train --outcomes``) goes through
``fit_escalation``; ``escalation_report`` scores any escalation score against prompt length
and random ordering (APGR and CPT(50%), RouteLLM's definitions), per held-out group.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np

from switchyard.training import metrics

__all__ = [
    "ESCALATION_SEED",
    "EscalationFit",
    "OutcomeModel",
    "TransferFeatures",
    "escalation_report",
    "fit_escalation",
    "fit_outcome_model",
    "out_of_group_scores",
]

ESCALATION_SEED = 20240601
# Ridge penalties tried for the outcome model (chosen by out-of-group APGR).
OUTCOME_ALPHAS = (10.0, 30.0, 100.0, 300.0, 1000.0)
# Groups (subjects) folded together when scoring out of group: each fold leaves out ~1/5.
OUT_OF_GROUP_FOLDS = 5


@dataclass(frozen=True)
class TransferFeatures:
    """Per-request inputs of the stacker that mean the same on any dataset."""

    log_tokens: np.ndarray  # [n]
    complexity: np.ndarray  # [n]
    task_probabilities: np.ndarray  # [n, types]

    def matrix(self) -> np.ndarray:
        return np.hstack(
            [
                self.log_tokens.reshape(-1, 1),
                self.complexity.reshape(-1, 1),
                self.task_probabilities,
            ]
        )


@dataclass
class OutcomeModel:
    """Ridge regression of the outcome gain on [embedding, log token count]."""

    weights: np.ndarray  # [hidden]
    length_weight: float
    bias: float
    alpha: float

    def score(self, embedding: np.ndarray, log_tokens: np.ndarray) -> np.ndarray:
        return (
            embedding.astype(np.float64) @ self.weights
            + log_tokens.reshape(-1) * self.length_weight
            + self.bias
        )


def fit_outcome_model(
    embedding: np.ndarray, log_tokens: np.ndarray, gain: np.ndarray, alpha: float
) -> OutcomeModel:
    from sklearn.linear_model import Ridge

    features = np.hstack([embedding, log_tokens.reshape(-1, 1)])
    ridge = Ridge(alpha=alpha).fit(features, gain)
    coef = np.asarray(ridge.coef_, dtype=np.float64)
    return OutcomeModel(coef[:-1], float(coef[-1]), float(ridge.intercept_), alpha)


def _group_folds(groups: Sequence[str], folds: int) -> list[np.ndarray]:
    """Row indices of each fold; every group in exactly one fold (groups dealt round-robin in
    sorted order, so the folds are fixed by the data)."""
    names = sorted(set(groups))
    fold_of = {name: i % folds for i, name in enumerate(names)}
    assignment = np.array([fold_of[g] for g in groups])
    return [np.nonzero(assignment == f)[0] for f in range(min(folds, len(names)))]


def out_of_group_scores(
    embedding: np.ndarray,
    log_tokens: np.ndarray,
    gain: np.ndarray,
    groups: Sequence[str],
    alpha: float,
    folds: int = OUT_OF_GROUP_FOLDS,
) -> np.ndarray:
    """Each row's outcome-model score from a model fitted without the row's group."""
    scores = np.zeros(len(gain))
    for held in _group_folds(groups, folds):
        keep = np.ones(len(gain), bool)
        keep[held] = False
        model = fit_outcome_model(embedding[keep], log_tokens[keep], gain[keep], alpha)
        scores[held] = model.score(embedding[held], log_tokens[held])
    return scores


@dataclass
class EscalationFit:
    """The fitted escalation score: z = trust * (outcome_scale * outcome score) +
    transfer_weights . transfer features + bias, P = sigmoid(z)."""

    outcome: OutcomeModel
    outcome_scale: float
    transfer_weights: np.ndarray  # [2 + types]: log tokens, complexity, task probabilities
    bias: float
    centroids: np.ndarray  # [k, hidden], unit length
    sim_low: float
    sim_high: float
    report: dict[str, object]

    def trust(self, embedding: np.ndarray) -> np.ndarray:
        sim = (embedding.astype(np.float64) @ self.centroids.T).max(axis=1)
        return np.clip((sim - self.sim_low) / (self.sim_high - self.sim_low), 0.0, 1.0)

    def logit(
        self, embedding: np.ndarray, log_tokens: np.ndarray, transfer: TransferFeatures
    ) -> np.ndarray:
        outcome = self.outcome.score(embedding, log_tokens) * self.outcome_scale
        return (
            self.trust(embedding) * outcome + transfer.matrix() @ self.transfer_weights + self.bias
        )

    def probability(
        self, embedding: np.ndarray, log_tokens: np.ndarray, transfer: TransferFeatures
    ) -> np.ndarray:
        return 1.0 / (1.0 + np.exp(-self.logit(embedding, log_tokens, transfer)))


def _centroids(
    embedding: np.ndarray, other: np.ndarray, seed: int
) -> tuple[np.ndarray, float, float]:
    """k-means centroids of the outcome prompts and the trust cut points: full trust at or above
    the 2nd percentile of the outcome prompts' own similarity, none at or below the median
    similarity of other training prompts (or 0.05 under the high cut)."""
    from sklearn.cluster import KMeans

    k = min(32, max(1, len(embedding) // 50))
    km = KMeans(n_clusters=k, random_state=seed, n_init=1).fit(embedding)
    centroids = km.cluster_centers_ / np.linalg.norm(km.cluster_centers_, axis=1, keepdims=True)
    sim_own = (embedding @ centroids.T).max(axis=1)
    sim_high = float(np.percentile(sim_own, 2))
    if len(other):
        sim_other = float(np.percentile((other @ centroids.T).max(axis=1), 50))
    else:
        sim_other = sim_high - 0.05
    return centroids, float(min(sim_other, sim_high - 0.05)), sim_high


def fit_escalation(
    embedding: np.ndarray,
    log_tokens: np.ndarray,
    local_ok: np.ndarray,
    frontier_ok: np.ndarray,
    groups: Sequence[str],
    transfer: TransferFeatures,
    other_embedding: np.ndarray,
    log: Callable[[str], None] = lambda _: None,
    *,
    stacker_c: float = 1.0,
) -> EscalationFit:
    """Fit the outcome model (alpha by out-of-group APGR), the trust centroids, and the stacker
    on out-of-group outcome scores. ``groups`` are the units held out together (MMLU subjects;
    a team's file without subjects counts each row as its own group)."""
    from sklearn.linear_model import LogisticRegression

    gain = frontier_ok.astype(float) - local_ok.astype(float)
    escalate = ((~local_ok.astype(bool)) & frontier_ok.astype(bool)).astype(int)
    best: tuple[float, float, np.ndarray] | None = None
    for alpha in OUTCOME_ALPHAS:
        oog = out_of_group_scores(embedding, log_tokens, gain, groups, alpha)
        apgr, _ = metrics.apgr_and_cpt(oog, local_ok, frontier_ok)
        log(f"  escalation outcome model alpha={alpha}: out-of-group APGR {apgr:.4f}")
        if best is None or apgr > best[0]:
            best = (apgr, alpha, oog)
    assert best is not None
    _, alpha, oog = best
    centroids, sim_low, sim_high = _centroids(embedding, other_embedding, ESCALATION_SEED)
    outcome = fit_outcome_model(embedding, log_tokens, gain, alpha)
    # The stacker sees the out-of-group score (scaled to unit spread) times the trust the
    # graph will give it: outcome prompts are all trusted fully or nearly so.
    spread = float(np.std(oog)) or 1.0
    sim = (embedding.astype(np.float64) @ centroids.T).max(axis=1)
    trust = np.clip((sim - sim_low) / (sim_high - sim_low), 0.0, 1.0)
    stack_x = np.hstack([(trust * oog / spread).reshape(-1, 1), transfer.matrix()])
    stacker = LogisticRegression(C=stacker_c, max_iter=2000).fit(stack_x, escalate)
    coef = stacker.coef_[0]
    fit = EscalationFit(
        outcome=outcome,
        outcome_scale=float(coef[0]) / spread,
        transfer_weights=np.asarray(coef[1:], dtype=np.float64),
        bias=float(stacker.intercept_[0]),
        centroids=centroids,
        sim_low=sim_low,
        sim_high=sim_high,
        report={"alpha": alpha, "out_of_group_apgr": best[0], "stacker_c": stacker_c},
    )
    log(
        f"  escalation: alpha={alpha}, outcome weight {coef[0]:.3f}, log-tokens weight "
        f"{coef[1]:.3f}, complexity weight {coef[2]:.3f}"
    )
    return fit


def escalation_report(
    scores: dict[str, np.ndarray],
    local_ok: np.ndarray,
    frontier_ok: np.ndarray,
    seed: int = ESCALATION_SEED,
) -> dict[str, object]:
    """APGR and CPT(50%) of each named score, plus random ordering (mean of 100 draws)."""
    out: dict[str, object] = {"rows": len(local_ok)}
    draws = np.random.default_rng(seed).random((100, len(local_ok)))
    runs = [metrics.apgr_and_cpt(d, local_ok, frontier_ok) for d in draws]
    out["random_mean_of_100"] = {
        "apgr": float(np.mean([r[0] for r in runs])),
        "cpt50": float(np.mean([r[1] for r in runs])),
    }
    for name, s in scores.items():
        apgr, cpt = metrics.apgr_and_cpt(s, local_ok, frontier_ok)
        out[name] = {"apgr": apgr, "cpt50": cpt}
    return out
