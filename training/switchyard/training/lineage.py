"""What a model directory was trained on, so that "held out" means held out.

A build with outcome data writes ``outcome_ids.txt`` (the ids of the outcome rows it trained
on, sorted, one a line; its sha256 in the manifest's ``files``, so loading checks it) and the
manifest key ``outcome_training`` (the file, the row count and the split). ``seen_outcomes``
answers for any model directory which outcome ids it may have trained on: the listed ids, or,
for a model built before this file existed (the shipped model), every id on the training side
of the recipe's split (``data.held_out(id, percent)`` false), which over-counts what it saw
and so never lets a trained-on row into an evaluation.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable
from pathlib import Path

from switchyard.classifier.model import MANIFEST_NAME
from switchyard.training.data import held_out
from switchyard.training.encoder import sha256_file

__all__ = ["OUTCOME_IDS_FILE", "record_trained_outcomes", "seen_outcomes"]

OUTCOME_IDS_FILE = "outcome_ids.txt"
# The outcome split of models whose manifest does not say (recipe v2: 20% held out).
DEFAULT_HELD_OUT_PERCENT = 20


def record_trained_outcomes(out: Path, ids: Iterable[str], held_out_percent: int) -> None:
    """Write ``outcome_ids.txt`` into the model directory and list it in the manifest."""
    unique = sorted(set(ids))
    if not unique:
        return
    path = out / OUTCOME_IDS_FILE
    path.write_text("".join(f"{i}\n" for i in unique), encoding="utf-8")
    manifest_path = out / MANIFEST_NAME
    manifest = json.loads(manifest_path.read_text(encoding="utf-8"))
    manifest["files"][OUTCOME_IDS_FILE] = sha256_file(path)
    manifest["outcome_training"] = {
        "ids_file": OUTCOME_IDS_FILE,
        "rows": len(unique),
        "held_out_percent": held_out_percent,
    }
    manifest_path.write_text(json.dumps(manifest, indent=2, sort_keys=True) + "\n", "utf-8")


def seen_outcomes(model_dir: Path) -> Callable[[str], bool]:
    """A test: may the model in ``model_dir`` have trained on the outcome with this id?"""
    manifest = json.loads((model_dir / MANIFEST_NAME).read_text(encoding="utf-8"))
    training = manifest.get("outcome_training")
    if isinstance(training, dict) and (model_dir / str(training.get("ids_file"))).is_file():
        text = (model_dir / str(training["ids_file"])).read_text(encoding="utf-8")
        ids = frozenset(line for line in text.splitlines() if line)
        return ids.__contains__
    config = manifest.get("config") or {}
    percent = int(config.get("outcome_held_out_percent", DEFAULT_HELD_OUT_PERCENT))
    return lambda outcome_id: not held_out(outcome_id, percent)
