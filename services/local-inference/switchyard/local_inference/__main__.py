"""`switchyard-local-inference`: serve InferenceService on vLLM, or prepare the default model.

switchyard-local-inference                 serve (settings from SWITCHYARD_LOCAL_INFERENCE_*)
switchyard-local-inference prepare-model   make the SmolLM2-135M-Instruct folder (idempotent)
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

__all__ = ["main"]


def _prepare(args: argparse.Namespace) -> int:
    from switchyard.local_inference.model_preparation import ModelNotPrepared, prepare_model

    try:
        prepared = prepare_model(args.dir, force=args.force)
    except ModelNotPrepared as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    state = "converted" if prepared.converted else "already prepared (hashes verified)"
    print(f"{prepared.path}: {state}")
    return 0


def _serve() -> int:
    from switchyard.local_inference.service import SERVICE_NAME, build_service
    from switchyard.local_inference.settings import LocalInferenceSettings
    from switchyard.runtime.server import run_service

    return run_service(SERVICE_NAME, LocalInferenceSettings, build_service)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="switchyard-local-inference",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    commands = parser.add_subparsers(dest="command")
    prepare = commands.add_parser("prepare-model", help="prepare the default CPU model")
    prepare.add_argument("--dir", type=Path, default=None, help="target folder (default: cache)")
    prepare.add_argument("--force", action="store_true", help="convert again even if verified")
    commands.add_parser("serve", help="serve InferenceService (the default)")
    args = parser.parse_args(argv)
    if args.command == "prepare-model":
        return _prepare(args)
    return _serve()


if __name__ == "__main__":  # the engine spawns child processes: keep this guard
    sys.exit(main())
