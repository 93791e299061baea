#!/usr/bin/env bash
# Shared by the deploy scripts (sourced, not run): the repository root and its workspace folders.
# shellcheck disable=SC2034 # ROOT is used by the scripts that source this file

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)

# Prints every workspace folder of the root package.json (globs expanded), one a line.
workspaces() {
  local pattern dir
  while IFS= read -r pattern; do
    for dir in "$ROOT"/$pattern; do
      if [ -f "$dir/package.json" ]; then printf '%s\n' "${dir#"$ROOT"/}"; fi
    done
  done < <(node -e 'for (const w of require(process.argv[1]).workspaces) console.log(w)' "$ROOT/package.json")
}
