// Hub identifiers as users write them: `ORG/NAME[@REVISION]` for a model, and the Hub's own URL
// form `hf://datasets/ORG/NAME[@REVISION]/PATH` for a file of a dataset (or of a model, without
// the `datasets/` prefix).
import { HubError } from "./errors.ts";

export type RepoType = "model" | "dataset";

export interface RepoRef {
  type: RepoType;
  /** ORG/NAME. */
  id: string;
  /** A branch, tag or commit (default "main"). */
  revision: string;
}

export interface FileRef extends RepoRef {
  /** The file's path in the repository. */
  path: string;
}

const PART = /^[A-Za-z0-9][A-Za-z0-9._-]*$/;

const isName = (s: string) => {
  const parts = s.split("/");
  return parts.length === 2 && parts.every((p) => PART.test(p) && !p.includes("..") && !p.endsWith("."));
};

/** Whether `s` has the form of a repository id, ORG/NAME or ORG/NAME@REVISION. */
export function looksLikeRepoId(s: string): boolean {
  const at = s.indexOf("@");
  return isName(at < 0 ? s : s.slice(0, at)) && (at < 0 || s.length > at + 1);
}

function checkRevision(rev: string, shown: string): string {
  // a branch or tag may hold slashes (refs/pr/1); never an empty segment or `..`
  if (rev === "" || rev.split("/").some((p) => p === "" || p === "." || p === "..") || /[\s\\]/.test(rev))
    throw new HubError(`${shown}: bad revision "${rev}"`);
  return rev;
}

/** `ORG/NAME[@REVISION]` → a repo reference. */
export function parseRepoId(s: string, type: RepoType = "model"): RepoRef {
  const at = s.indexOf("@");
  const id = at < 0 ? s : s.slice(0, at);
  if (!isName(id))
    throw new HubError(`"${s}" is not a Hub repository id (expected ORG/NAME or ORG/NAME@REVISION)`);
  return { type, id, revision: at < 0 ? "main" : checkRevision(s.slice(at + 1), s) };
}

/** `hf://[datasets/]ORG/NAME[@REVISION]/PATH` → a file reference. */
export function parseHfUrl(url: string): FileRef {
  const m = /^hf:\/\/(datasets\/)?([^/@]+\/[^/@]+)(?:@([^/]+(?:%2F[^/]+)*))?\/(.+)$/.exec(url);
  const bad = () =>
    new HubError(`"${url}" is not a Hub file URL (expected hf://datasets/ORG/NAME[@REVISION]/PATH)`);
  if (!m || !isName(m[2])) throw bad();
  const path = m[4];
  if (path.split("/").some((p) => p === "" || p === "." || p === "..")) throw bad();
  const revision = m[3] === undefined ? "main" : checkRevision(decodeURIComponent(m[3]), url);
  return { type: m[1] ? "dataset" : "model", id: m[2], revision, path };
}

export const isHfUrl = (s: string) => s.startsWith("hf://");

/** `Qwen/Qwen3-4B@abc` (the form users write, `@main` left out). */
export function showRepo(r: RepoRef): string {
  return `${r.type === "dataset" ? "dataset " : ""}${r.id}${r.revision === "main" ? "" : `@${r.revision}`}`;
}
