"""`switchyard-local-inference`: serve InferenceService on vLLM, or prepare the default model.

switchyard-local-inference                 serve (settings from SWITCHYARD_LOCAL_INFERENCE_*)
switchyard-local-inference prepare-model   make the SmolLM2-135M-Instruct folder (idempotent)
switchyard-local-inference --help          the settings, without starting anything
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

__all__ = ["main"]

SUMMARY = (
    "Local inference: switchyard.inference.v1.InferenceService on vLLM's engine (the CPU build "
    "by default, SmolLM2-135M-Instruct), with each request's cost attributed from the machine's "
    "hourly price (docs/services/local-inference.md)."
)
COMMANDS = {
    "prepare-model [--dir DIR] [--force]": "make the default CPU model's folder "
    "(SmolLM2-135M-Instruct; idempotent)",
    "serve": "serve InferenceService (the same as no arguments)",
}


def _prepare(argv: list[str]) -> int:
    from switchyard.local_inference.model_preparation import ModelNotPrepared, prepare_model

    parser = argparse.ArgumentParser(
        prog="switchyard-local-inference prepare-model",
        description="Prepare the default CPU model (SmolLM2-135M-Instruct).",
    )
    parser.add_argument("--dir", type=Path, default=None, help="target folder (default: cache)")
    parser.add_argument("--force", action="store_true", help="convert again even if verified")
    args = parser.parse_args(argv)
    try:
        prepared = prepare_model(args.dir, force=args.force)
    except ModelNotPrepared as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    state = "converted" if prepared.converted else "already prepared (hashes verified)"
    print(f"{prepared.path}: {state}")
    return 0


def _build(settings: Any) -> Any:
    # vLLM is imported only when the service really starts (not for --help).
    from switchyard.local_inference.service import build_service

    return build_service(settings)


def main(argv: list[str] | None = None) -> int:
    from switchyard.local_inference.settings import LocalInferenceSettings
    from switchyard.runtime.server import run_service

    args = list(sys.argv[1:] if argv is None else argv)
    if args and args[0] == "prepare-model":
        return _prepare(args[1:])
    if args and args[0] == "serve":
        args = args[1:]
    return run_service(
        "switchyard-local-inference",
        LocalInferenceSettings,
        _build,
        argv=args,
        summary=SUMMARY,
        commands=COMMANDS,
    )


if __name__ == "__main__":  # the engine spawns child processes: keep this guard
    sys.exit(main())
