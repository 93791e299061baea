#!/usr/bin/env bash
# shellcheck source-path=SCRIPTDIR
# Build stage, step 2 (after install-build.sh): assembles in OUT (default out/app) the tree the
# runtime needs, without node_modules: the root and workspace manifests, every workspace's
# sources (tests left out), the generated protos, examples/ and deploy/scripts. Services run their
# TypeScript through tsx, so there is nothing to compile; the CI typechecks.
# Then: OUT/deploy/scripts/install-production.sh installs the production dependencies in OUT.
set -euo pipefail
# shellcheck source=lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
out=${1:-$ROOT/out/app}
mkdir -p "$out"
out=$(cd "$out" && pwd)

cd "$ROOT"
if [ ! -f packages/proto/gen/descriptor.binpb ]; then
  echo "build: packages/proto/gen is missing: run deploy/scripts/install-build.sh first" >&2
  exit 1
fi
# OUT is emptied first: only a new or empty folder, or one this script made, is accepted.
marker=.temper-runtime-tree
if [ -n "$(ls -A "$out")" ] && [ ! -f "$out/$marker" ]; then
  echo "build: $out is neither empty nor an earlier build.sh output" >&2
  exit 1
fi
# (a node_modules that an earlier production install left there is kept)
find "$out" -mindepth 1 -maxdepth 1 ! -name node_modules -exec rm -rf {} +
touch "$out/$marker"

cp package.json package-lock.json .npmrc tsconfig.base.json tsconfig.json "$out/"
while IFS= read -r ws; do
  mkdir -p "$out/$ws"
  cp "$ws/package.json" "$out/$ws/"
  if [ -f "$ws/tsconfig.json" ]; then cp "$ws/tsconfig.json" "$out/$ws/"; fi
  if [ "$ws" = tests ]; then continue; fi # its manifest only: npm ci checks the lockfile against every workspace
  for part in src gen bin; do
    if [ -d "$ws/$part" ]; then cp -R "$ws/$part" "$out/$ws/"; fi
  done
done < <(workspaces)
mkdir -p "$out/deploy/scripts"
cp -R examples "$out/"
cp deploy/scripts/lib.sh deploy/scripts/install-production.sh "$out/deploy/scripts/"
find "$out" -path "$out/node_modules" -prune -o -type f -name '*.test.ts' -exec rm -f {} +
echo "build: runtime tree in $out"
