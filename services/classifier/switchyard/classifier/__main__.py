"""``switchyard-classifier``: serve the model; ``train``, ``evaluate``, ``promote``: the training
tooling's commands (switchyard-training)."""

from __future__ import annotations

import importlib
import sys

__all__ = ["TOOL_COMMANDS", "main"]

# Subcommand -> the training module whose ``main(argv)`` runs it.
TOOL_COMMANDS = {
    "train": "switchyard.training.cli",
    "evaluate": "switchyard.training.outcome_evaluation",
    "promote": "switchyard.training.promotion",
}


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    if args and args[0] in TOOL_COMMANDS:
        try:
            module = importlib.import_module(TOOL_COMMANDS[args[0]])
        except ImportError:
            print(
                f"switchyard-classifier {args[0]}: this needs the training tooling, which this "
                "install (the classifier service alone) does not have. From a checkout: pip "
                f"install -e training (or ./scripts/setup), then run switchyard-classifier "
                f"{args[0]} again.",
                file=sys.stderr,
            )
            return 2
        result: int = module.main(args[1:])
        return result
    from switchyard.classifier.service import serve

    return serve(args)


if __name__ == "__main__":
    sys.exit(main())
