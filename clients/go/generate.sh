#!/usr/bin/env bash
# Generates the Go code of the contract (protos/) into clients/go/src/switchyard/api/ with
# Debian's protoc, protoc-gen-go and protoc-gen-go-grpc (GOPATH mode, Go 1.19).
#
#   clients/go/generate.sh           regenerate in place
#   clients/go/generate.sh --check   exit 1 when the committed code differs (CI)
#
# The protos carry no go_package option (the contract stays language-neutral); import paths are
# given here with M flags: switchyard/<pkg>/v1/<file>.proto -> switchyard/api/<pkg>/v1.
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
REPO="$(cd "$HERE/../.." && pwd)"
PROTOS="$REPO/protos"
TARGET="$HERE/src/switchyard/api"

for tool in protoc protoc-gen-go protoc-gen-go-grpc; do
  command -v "$tool" >/dev/null || { echo "generate.sh: $tool not found (scripts/setup.d/40-clients.sh installs it)" >&2; exit 2; }
done

out="$(mktemp -d)"
trap 'rm -rf "$out"' EXIT

mapfile -t files < <(cd "$PROTOS" && find switchyard -name '*.proto' | sort)
mflags=()
for f in "${files[@]}"; do
  pkg_dir="$(dirname "$f")"                 # switchyard/router/v1
  rel="${pkg_dir#switchyard/}"              # router/v1
  name="${rel%%/*}"                         # router
  mflags+=("M$f=switchyard/api/$rel;${name}v1")
done
go_opts=(); grpc_opts=()
for m in "${mflags[@]}"; do go_opts+=("--go_opt=$m"); grpc_opts+=("--go-grpc_opt=$m"); done

protoc -I "$PROTOS" -I /usr/include \
  --go_out="$out" --go_opt=paths=import "${go_opts[@]}" \
  --go-grpc_out="$out" --go-grpc_opt=paths=import "${grpc_opts[@]}" \
  "${files[@]}"

if [[ "${1:-}" == "--check" ]]; then
  if ! diff -r "$out/switchyard/api" "$TARGET" >/dev/null; then
    diff -r "$out/switchyard/api" "$TARGET" | head -40 >&2 || true
    echo "generate.sh: clients/go/src/switchyard/api is stale; run clients/go/generate.sh" >&2
    exit 1
  fi
  echo "generate.sh: Go code is up to date"
  exit 0
fi
rm -rf "$TARGET"
mkdir -p "$(dirname "$TARGET")"
cp -r "$out/switchyard/api" "$TARGET"
echo "generate.sh: wrote $(find "$TARGET" -name '*.go' | wc -l) files to ${TARGET#"$REPO"/}"
