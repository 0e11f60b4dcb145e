"""``switchyard-classifier``: serve the model; ``train``, ``evaluate``, ``promote``,
``rollback``: the training tooling's commands (switchyard-training)."""

from __future__ import annotations

import importlib
import sys

__all__ = ["TOOL_COMMANDS", "main"]

# Subcommand -> (the training module, its function taking argv) that runs it.
TOOL_COMMANDS = {
    "train": ("switchyard.training.cli", "main"),
    "evaluate": ("switchyard.training.outcome_evaluation", "main"),
    "promote": ("switchyard.training.promotion", "main"),
    "rollback": ("switchyard.training.promotion", "rollback_main"),
}


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    if args and args[0] in TOOL_COMMANDS:
        try:
            module_name, function = TOOL_COMMANDS[args[0]]
            module = importlib.import_module(module_name)
        except ImportError:
            print(
                f"switchyard-classifier {args[0]}: this needs the training tooling, which this "
                "install (the classifier service alone) does not have. From a checkout: pip "
                f"install -e training (or ./scripts/setup), then run switchyard-classifier "
                f"{args[0]} again.",
                file=sys.stderr,
            )
            return 2
        result: int = getattr(module, function)(args[1:])
        return result
    from switchyard.classifier.service import serve

    return serve(args)


if __name__ == "__main__":
    sys.exit(main())
