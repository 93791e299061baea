// The Hub cache layout the Python client, transformers and huggingface-cli share, so a cache one of
// them filled is reused here and the reverse:
//   <cache>/models--ORG--NAME/blobs/<etag>              the bytes (sha256 for LFS, git blob sha1 else)
//   <cache>/models--ORG--NAME/snapshots/<commit>/<path> relative symlinks to ../../blobs/<etag>
//   <cache>/models--ORG--NAME/refs/<revision>           the commit a branch or tag pointed at
// Datasets live under datasets--ORG--NAME. Files Temper derives (converted data) live beside the
// cache in <cache>/../temper, never inside a snapshot.
import { existsSync, mkdirSync, readFileSync, renameSync, statSync, writeFileSync } from "node:fs";
import { dirname, join, relative, resolve, sep } from "node:path";
import type { RepoRef, RepoType } from "./ids.ts";

export const COMMIT = /^[0-9a-f]{40}$/;

/** `models--Qwen--Qwen3-4B`. */
export function repoFolderName(type: RepoType, id: string): string {
  return `${type}s--${id.replaceAll("/", "--")}`;
}

export interface RepoCache {
  root: string;
  blob(etag: string): string;
  snapshot(commit: string): string;
  ref(revision: string): string;
}

export function repoCache(cacheDir: string, type: RepoType, id: string): RepoCache {
  const root = join(cacheDir, repoFolderName(type, id));
  return {
    root,
    blob: (etag) => join(root, "blobs", etag),
    snapshot: (commit) => join(root, "snapshots", commit),
    ref: (revision) => join(root, "refs", ...revision.split("/")),
  };
}

/** The commit `revision` names in the cache (itself when it is one), or undefined. */
export function cachedCommit(cache: RepoCache, revision: string): string | undefined {
  if (COMMIT.test(revision)) return existsSync(cache.snapshot(revision)) ? revision : undefined;
  try {
    const commit = readFileSync(cache.ref(revision), "utf8").trim();
    return COMMIT.test(commit) ? commit : undefined;
  } catch {
    return undefined;
  }
}

/** Records that `revision` pointed at `commit` (written whole or not at all). */
export function writeRef(cache: RepoCache, revision: string, commit: string): void {
  if (revision === commit) return;
  const path = cache.ref(revision);
  mkdirSync(dirname(path), { recursive: true });
  const tmp = `${path}.tmp-${process.pid}`;
  writeFileSync(tmp, commit);
  renameSync(tmp, path);
}

/** Whether a snapshot entry exists and leads to a complete file (a dangling link does not). */
export function snapshotHas(snapshotDir: string, path: string): boolean {
  try {
    return statSync(join(snapshotDir, path)).isFile();
  } catch {
    return false;
  }
}

/** Where Temper keeps what it derives from a repo's snapshot (beside the Hub cache, not in it). */
export function derivedDir(cacheDir: string, ref: RepoRef & { commit: string }): string {
  return join(dirname(resolve(cacheDir)), "temper", repoFolderName(ref.type, ref.id), ref.commit);
}

/**
 * The repository and commit a path comes from, when it lies in a cache snapshot
 * (`.../models--ORG--NAME/snapshots/<commit>[/file]`) or in what Temper derived from one
 * (`.../temper/datasets--ORG--NAME/<commit>/file`), else undefined: how a run's spec names a model
 * or data that came from the Hub.
 */
export function snapshotOf(
  path: string,
): { type: RepoType; id: string; commit: string; path: string } | undefined {
  const parts = resolve(path).split(sep);
  for (let i = parts.length - 1; i >= 2; i--) {
    if (!COMMIT.test(parts[i])) continue;
    const folder =
      parts[i - 1] === "snapshots" ? parts[i - 2] : parts[i - 2] === "temper" ? parts[i - 1] : "";
    const m = /^(model|dataset)s--([^-][^/]*?)--(.+)$/.exec(folder);
    if (m && !m[2].includes("--"))
      return {
        type: m[1] as RepoType,
        id: `${m[2]}/${m[3]}`,
        commit: parts[i],
        path: parts.slice(i + 1).join("/"),
      };
  }
  return undefined;
}

/** The relative target a snapshot link holds: ../../blobs/<etag> (one more ../ per folder of `path`). */
export function linkTarget(cache: RepoCache, commit: string, path: string, etag: string): string {
  return relative(dirname(join(cache.snapshot(commit), path)), cache.blob(etag));
}
