#!/usr/bin/env python3
"""The short demo: start the suite (`switchyard up`), send a few mixed requests, print where each
went and what it cost, print the cost report with the saving against all-frontier, stop the suite.

    .venv/bin/python scripts/demo.py                    # starts and stops the suite itself
    .venv/bin/python scripts/demo.py --address HOST:PORT  # against a router already running

Without OPENAI_API_KEY / ANTHROPIC_API_KEY the frontier is a stand-in (the small model behind
vLLM's OpenAI-compatible server); `switchyard up` says so loudly.
"""

from __future__ import annotations

import argparse
import os
import sys


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--address", help="an already running router; default: start the suite")
    parser.add_argument("--api-key", default=os.environ.get("SWITCHYARD_API_KEY", ""))
    args = parser.parse_args()
    if args.address:
        from switchyard.suite.demo import run_demo

        run_demo(args.address, sys.stdout, api_key=args.api_key or None)
        return 0
    from switchyard_client.cli import main as switchyard

    return switchyard(["up", "--demo", "--exit-after-demo"])


if __name__ == "__main__":
    sys.exit(main())
