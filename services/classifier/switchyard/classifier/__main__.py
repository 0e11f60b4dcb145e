"""``switchyard-classifier``: serve the model; ``switchyard-classifier train ...``: build one."""

from __future__ import annotations

import sys

__all__ = ["main"]


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    if args and args[0] == "train":
        try:
            from switchyard.training.cli import main as train_main
        except ImportError:
            print(
                "switchyard-classifier train: building a model needs the training tooling, "
                "which this install (the classifier service alone) does not have. From a "
                "checkout: pip install -e training (or ./scripts/setup), then run "
                "switchyard-classifier train again.",
                file=sys.stderr,
            )
            return 2
        return train_main(args[1:])
    from switchyard.classifier.service import serve

    return serve(args)


if __name__ == "__main__":
    sys.exit(main())
