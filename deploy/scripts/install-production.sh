#!/usr/bin/env bash
# shellcheck source-path=SCRIPTDIR
# Runtime stage: production dependencies only, in the tree build.sh assembled (this script's
# ../..). Lifecycle scripts are skipped: the root `prepare` would run buf, a dev dependency, and
# packages/proto/gen is already there; of the production packages with install scripts,
# onnxruntime-node's only downloads the CUDA provider (skipped anyway), esbuild's re-checks a
# binary its platform package already holds, and protobufjs's prints a notice.
# tsx stays: services and the temper command run TypeScript through it (a root dependency).
set -euo pipefail
# shellcheck source=lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
cd "$ROOT"
export ONNXRUNTIME_NODE_INSTALL=skip
npm ci --omit=dev --ignore-scripts --prefer-offline --no-audit --no-fund

# onnxruntime-node ships the binaries of every platform (~290 MB); keep this one's (~45 MB on
# linux/x64), the one its binding loads.
ort=node_modules/onnxruntime-node/bin
if [ -d "$ort" ]; then
  here=$(node -p 'process.platform + "/" + process.arch')
  for dir in "$ort"/napi-v*/*/*; do
    case "$dir" in
      */"$here") ;;
      *) rm -rf "$dir" ;;
    esac
  done
  find "$ort" -mindepth 1 -type d -empty -delete
fi
