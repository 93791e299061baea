#!/usr/bin/env bash
# shellcheck source-path=SCRIPTDIR
# Docker's first stage: copies into OUT only what the dependency installs need, so their layers
# stay cached while sources change.
#   OUT/npm:   package.json, package-lock.json, .npmrc, every workspace's package.json, deploy/scripts
#   OUT/proto: buf.yaml, buf.gen.yaml, proto/ (the root `prepare` generates packages/proto/gen from them)
set -euo pipefail
# shellcheck source=lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
out=${1:?usage: manifests.sh OUT_DIR}

mkdir -p "$out/npm/deploy" "$out/proto"
cd "$ROOT"
cp package.json package-lock.json .npmrc "$out/npm/"
while IFS= read -r ws; do
  mkdir -p "$out/npm/$ws"
  cp "$ws/package.json" "$out/npm/$ws/"
done < <(workspaces)
cp -R deploy/scripts "$out/npm/deploy/"
cp -R buf.yaml buf.gen.yaml proto "$out/proto/"
