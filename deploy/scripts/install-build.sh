#!/usr/bin/env bash
# shellcheck source-path=SCRIPTDIR
# Build stage, step 1: what the build needs, dev dependencies included even under
# NODE_ENV=production. Services run their TypeScript through tsx, so the one build step is code
# generation: only @temper/proto's dependencies are installed (buf and ts-proto among them, at the
# lockfile's versions), and its build (what the root `prepare` runs after a full `npm ci`) writes
# packages/proto/gen. Lifecycle scripts are skipped: the build runs here, explicitly.
set -euo pipefail
# shellcheck source=lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
cd "$ROOT"
export ONNXRUNTIME_NODE_INSTALL=skip
npm ci --workspace=@temper/proto --include=dev --ignore-scripts --prefer-offline --no-audit --no-fund
npm run build --workspace=@temper/proto
if [ ! -f packages/proto/gen/descriptor.binpb ]; then
  echo "install-build: the protos were not generated (packages/proto/gen)" >&2
  exit 1
fi
