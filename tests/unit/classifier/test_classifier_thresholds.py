"""The router's shipped thresholds follow the written rule (``training/thresholds.py``) on the
shipped classifier's scores, so a new model cannot ship with thresholds fitted to the old one."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import yaml

from switchyard.classifier.model import SHIPPED_MODEL_DIR, ClassifierModel
from switchyard.router.config import load_config
from switchyard.suite.plan import router_config
from switchyard.training.cli import default_data_dir
from switchyard.training.evaluate import reference_mix
from switchyard.training.thresholds import choose_thresholds

ROOT = Path(__file__).resolve().parents[3]
DATA = default_data_dir() or Path("/nonexistent")


def test_rule_reads_quantiles_of_the_scores() -> None:
    scores = [i / 100 for i in range(1, 101)]  # 0.01 .. 1.00
    assert choose_thresholds(scores) == {
        "escalation_threshold": 0.75,  # 26 of the 100 scores are >= 0.75
        "cheap_threshold_delta": 0.12,  # 0.87: an eighth
        "strong_threshold_delta": -0.25,  # 0.50: half
    }
    # The rule moves with the scale: the same shape at a tenth of the scale.
    tenth = choose_thresholds([s / 10 for s in scores])
    assert tenth["escalation_threshold"] == pytest.approx(0.07, abs=0.011)
    with pytest.raises(ValueError, match="no scores"):
        choose_thresholds([])


@pytest.mark.skipif(
    not (DATA / "prompts").is_dir(), reason=f"prompt datasets not present at {DATA}"
)
def test_shipped_router_thresholds_are_the_rule_on_the_shipped_model(tmp_path: Path) -> None:
    rows = reference_mix(DATA / "prompts")
    model = ClassifierModel(SHIPPED_MODEL_DIR)
    scores = np.array([p.escalation for p in model.predict([prompt for _, prompt, _ in rows])])
    chosen = choose_thresholds(scores.tolist())
    share = float((scores >= chosen["escalation_threshold"]).mean())
    assert 0.15 <= share <= 0.35, f"{share:.2f} of the reference mix escalates"
    suite = tmp_path / "suite.yaml"
    generated = router_config(
        classifier="127.0.0.1:1",
        local="127.0.0.1:2",
        frontier="127.0.0.1:3",
        frontier_set="openai",
        local_model="m",
        ledger_path=tmp_path / "ledger.db",
    )
    suite.write_text(yaml.safe_dump(generated))
    # config/router.yaml stands for the compose and k8s copies (tests/deploy checks them equal).
    for path in (ROOT / "config" / "router.yaml", suite):
        routing = load_config(path).routing
        assert routing.escalation_threshold == chosen["escalation_threshold"], path
        for task, key in (
            ("CLASSIFICATION", "cheap_threshold_delta"),
            ("EXTRACTION", "cheap_threshold_delta"),
            ("MATH", "strong_threshold_delta"),
            ("SCIENCE", "strong_threshold_delta"),
        ):
            assert routing.task_rules[task].threshold_delta == chosen[key], (path, task)
