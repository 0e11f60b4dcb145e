#!/usr/bin/env bash
# The real `openai` npm package for the OpenAI-door tests (tests/clients/openai_node), exactly as
# locked. Idempotent: `npm ci` only when node_modules is older than package-lock.json.
set -euo pipefail

REPO="${REPO:-$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)}"
NODE_DIR="$REPO/tests/clients/openai_node"
if command -v npm >/dev/null 2>&1; then
  stamp="$NODE_DIR/node_modules/.package-lock.json"
  if [[ ! -f "$stamp" || "$NODE_DIR/package-lock.json" -nt "$stamp" ]]; then
    echo "45-openai-node: npm ci in tests/clients/openai_node"
    (cd "$NODE_DIR" && npm ci --no-audit --no-fund --loglevel=error)
  fi
else
  echo "45-openai-node: npm not found; the openai npm package test will be skipped" >&2
fi
