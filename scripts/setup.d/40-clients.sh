#!/usr/bin/env bash
# Toolchains for the Node and Go clients (clients/node, clients/go) and their tests.
# Idempotent: installs Debian packages only when one is missing, runs `npm ci` only when
# clients/node/node_modules is older than package-lock.json.
set -euo pipefail

REPO="${REPO:-$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)}"

# Go 1.19 from Debian, used in GOPATH mode (no Go module proxy is reachable). The 1-5 package of
# github.com/golang/protobuf matters: with the default 1-3 one, grpc-go panics at the first call.
GO_PACKAGES=(
  golang-go
  golang-google-grpc-dev
  golang-google-protobuf-dev
  golang-github-golang-protobuf-1-5-dev
  protoc-gen-go
  protoc-gen-go-grpc
  protobuf-compiler
  libprotobuf-dev        # google/protobuf/*.proto for protoc (only "Recommended" by protobuf-compiler)
)
missing=()
for pkg in "${GO_PACKAGES[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed"; then
    missing+=("$pkg")
  fi
done
if ((${#missing[@]})); then
  echo "40-clients: installing ${missing[*]}"
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

# Node client dependencies, exactly as locked.
NODE_DIR="$REPO/clients/node"
if command -v npm >/dev/null 2>&1; then
  stamp="$NODE_DIR/node_modules/.package-lock.json"
  if [[ ! -f "$stamp" || "$NODE_DIR/package-lock.json" -nt "$stamp" ]]; then
    echo "40-clients: npm ci in clients/node"
    (cd "$NODE_DIR" && npm ci --no-audit --no-fund --loglevel=error)
  fi
else
  echo "40-clients: npm not found; the Node client tests will be skipped" >&2
fi
