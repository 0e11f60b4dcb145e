"""Loading and running the classifier model: one ONNX file, a tokenizer and a manifest.

A model directory holds ``manifest.json`` (name, version, labels, cut points, window, how a
prompt longer than the window is cut, and the sha256 of every file), ``classifier.onnx``
(encoder + heads in one graph) and ``tokenizer.json``. Loading checks every file against its
manifest hash and raises ``ModelLoadError`` naming the file and the expected hash when one is
missing or differs.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from switchyard.runtime.errors import FailedPrecondition

__all__ = [
    "MANIFEST_NAME",
    "MODEL_FILE",
    "SHIPPED_MODEL_DIR",
    "TOKENIZER_FILE",
    "ClassifierModel",
    "ModelLoadError",
    "ModelManifest",
    "Prediction",
    "PromptTokenizer",
]

MANIFEST_NAME = "manifest.json"
MODEL_FILE = "classifier.onnx"
TOKENIZER_FILE = "tokenizer.json"
SHIPPED_MODEL_DIR = Path(__file__).parent / "shipped_model"
# predict() groups a batch so that no prompt is padded beyond PAD_RATIO x its length + PAD_SLACK.
PAD_RATIO = 1.25
PAD_SLACK = 4


class ModelLoadError(FailedPrecondition):
    """The model directory is missing, incomplete or does not match its manifest."""


@dataclass(frozen=True, slots=True)
class ModelManifest:
    name: str
    version: str
    task_types: tuple[str, ...]
    cut_points: tuple[float, float]
    max_tokens: int
    # A prompt over the window keeps its first ``head_tokens`` tokens and its last ones (the ask
    # of a long pasted document is usually at one end); None: the first ``max_tokens`` only
    # (models built before v2, whose manifests do not say).
    head_tokens: int | None
    files: dict[str, str]  # file name -> sha256
    raw: dict[str, object]

    @classmethod
    def read(cls, directory: Path) -> ModelManifest:
        path = directory / MANIFEST_NAME
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
            cuts = data["cut_points"]
            return cls(
                name=str(data["name"]),
                version=str(data["version"]),
                task_types=tuple(data["task_types"]),
                cut_points=(float(cuts[0]), float(cuts[1])),
                max_tokens=int(data["max_tokens"]),
                head_tokens=None if data.get("head_tokens") is None else int(data["head_tokens"]),
                files={str(k): str(v) for k, v in data["files"].items()},
                raw=data,
            )
        except FileNotFoundError:
            raise ModelLoadError(f"model manifest {path} is missing") from None
        except (ValueError, KeyError, TypeError, IndexError) as exc:
            raise ModelLoadError(f"model manifest {path} is not valid: {exc!r}") from None


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


class PromptTokenizer:
    """WordPiece tokenisation cut to the window, padded to the longest prompt of a batch.

    A prompt over ``max_tokens`` keeps its first ``head_tokens`` tokens (``[CLS]`` included) and
    its last ``max_tokens - head_tokens`` (``[SEP]`` included), so the ask survives whether it
    comes before or after a long pasted text; with ``head_tokens=None`` only the first
    ``max_tokens`` (the window of models built before v2).
    """

    def __init__(
        self, tokenizer_file: Path, max_tokens: int, head_tokens: int | None = None
    ) -> None:
        from tokenizers import Tokenizer

        if head_tokens is not None and not 1 <= head_tokens < max_tokens:
            raise ValueError(f"head_tokens must be in [1, {max_tokens}), got {head_tokens}")
        self._tokenizer = Tokenizer.from_file(str(tokenizer_file))
        # The shipped tokenizer.json pads and truncates everything to 128: override both.
        self._tokenizer.no_padding()
        if head_tokens is None:
            self._tokenizer.enable_truncation(max_length=max_tokens)
        else:
            self._tokenizer.no_truncation()
        self.max_tokens = max_tokens
        self.head_tokens = head_tokens

    def encode_each(self, prompts: Sequence[str]) -> list[tuple[list[int], bool]]:
        """(token ids, truncated) for each prompt, unpadded."""
        encodings = self._tokenizer.encode_batch(list(prompts))
        if self.head_tokens is None:
            return [(list(e.ids), bool(e.overflowing)) for e in encodings]
        out = []
        for e in encodings:
            ids = list(e.ids)
            if len(ids) > self.max_tokens:
                tail = self.max_tokens - self.head_tokens
                out.append((ids[: self.head_tokens] + ids[len(ids) - tail :], True))
            else:
                out.append((ids, False))
        return out

    def encode(self, prompts: Sequence[str]) -> tuple[np.ndarray, np.ndarray, list[bool]]:
        """(input_ids, attention_mask, truncated) for a batch, padded to its longest prompt."""
        encoded = self.encode_each(prompts)
        width = max(len(ids) for ids, _ in encoded)
        ids = np.zeros((len(encoded), width), dtype=np.int64)
        mask = np.zeros((len(encoded), width), dtype=np.int64)
        for row, (tokens, _) in enumerate(encoded):
            ids[row, : len(tokens)] = tokens
            mask[row, : len(tokens)] = 1
        return ids, mask, [truncated for _, truncated in encoded]


@dataclass(frozen=True, slots=True)
class Prediction:
    """The model's outputs for one prompt."""

    task_probabilities: tuple[float, ...]  # in manifest.task_types order
    complexity: float
    escalation: float
    input_tokens: int
    truncated: bool
    # The model that predicted it (``ClassifierModel.version``) and its complexity cut points:
    # a reload can swap the model between two predictions ("" / None: not said).
    model_version: str = ""
    cut_points: tuple[float, float] | None = None


class ClassifierModel:
    """The loaded, hash-checked model; ``predict`` is synchronous and thread-safe."""

    def __init__(self, directory: Path, *, intra_op_threads: int = 1) -> None:
        import onnxruntime as ort

        self.directory = directory
        if not directory.is_dir():
            raise ModelLoadError(f"model directory {directory} does not exist")
        self.manifest = ModelManifest.read(directory)
        for required in (MODEL_FILE, TOKENIZER_FILE):
            if required not in self.manifest.files:
                raise ModelLoadError(f"{directory / MANIFEST_NAME} lists no hash for {required}")
        for name, expected in self.manifest.files.items():
            path = directory / name
            if not path.is_file():
                raise ModelLoadError(f"model file {path} is missing (expected sha256 {expected})")
            actual = _sha256(path)
            if actual != expected:
                raise ModelLoadError(
                    f"model file {path} is corrupt: sha256 {actual}, expected {expected}"
                )
        self.tokenizer = PromptTokenizer(
            directory / TOKENIZER_FILE, self.manifest.max_tokens, self.manifest.head_tokens
        )
        options = ort.SessionOptions()
        options.intra_op_num_threads = intra_op_threads
        options.inter_op_num_threads = 1
        options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
        try:
            self._session = ort.InferenceSession(
                str(directory / MODEL_FILE), options, providers=["CPUExecutionProvider"]
            )
        except Exception as exc:  # onnxruntime raises its own exception types
            raise ModelLoadError(
                f"model file {directory / MODEL_FILE} cannot be loaded: {exc}"
            ) from None

    @property
    def version(self) -> str:
        """``<name>@<version>``: the model's name and the first 12 hex digits of its ONNX hash."""
        return f"{self.manifest.name}@{self.manifest.version}"

    def predict(self, prompts: Sequence[str]) -> list[Prediction]:
        """Outputs for each prompt, in order.

        Prompts are run in groups of similar token length (each group padded to its longest),
        so a short prompt batched with a long one does not pay for the long one's padding.
        """
        if not prompts:
            return []
        encoded = self.tokenizer.encode_each(prompts)
        order = sorted(range(len(prompts)), key=lambda i: len(encoded[i][0]))
        results: list[Prediction | None] = [None] * len(prompts)
        start = 0
        while start < len(order):
            limit = len(encoded[order[start]][0]) * PAD_RATIO + PAD_SLACK
            end = start + 1
            while end < len(order) and len(encoded[order[end]][0]) <= limit:
                end += 1
            group = order[start:end]
            width = len(encoded[group[-1]][0])
            ids = np.zeros((len(group), width), dtype=np.int64)
            mask = np.zeros((len(group), width), dtype=np.int64)
            for row, index in enumerate(group):
                tokens = encoded[index][0]
                ids[row, : len(tokens)] = tokens
                mask[row, : len(tokens)] = 1
            probs, complexity, escalation = self._session.run(
                ["task_probabilities", "complexity", "escalation"],
                {"input_ids": ids, "attention_mask": mask},
            )
            for row, index in enumerate(group):
                results[index] = Prediction(
                    task_probabilities=tuple(float(p) for p in probs[row]),
                    complexity=float(complexity[row]),
                    escalation=float(escalation[row]),
                    input_tokens=len(encoded[index][0]),
                    truncated=encoded[index][1],
                    model_version=self.version,
                    cut_points=self.manifest.cut_points,
                )
            start = end
        return [r for r in results if r is not None]
