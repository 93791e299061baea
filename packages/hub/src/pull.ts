// Pulling a repository's files into the Hub cache. The revision API (through @huggingface/hub's
// modelInfo/datasetInfo) gives the commit and the file list; a HEAD on each file's `resolve` URL,
// redirects not followed, gives its ETag, X-Linked-Etag, X-Linked-Size and the CDN location, as
// the Python client reads them; transfer.ts moves and checks the bytes. The client's own download
// functions are not used: they neither resume nor verify, and print "Downloading …" on stdout.
// Files never go through Xet reconstruction: the plain resolve URL serves Xet-stored files too.
import { existsSync, mkdirSync, renameSync, rmSync, statSync, symlinkSync } from "node:fs";
import { dirname, join } from "node:path";
import { datasetInfo, HubApiError, modelInfo } from "@huggingface/hub";
import { cachedCommit, linkTarget, type RepoCache, repoCache, snapshotHas, writeRef } from "./cache.ts";
import { type HubEnv, hubEnv } from "./env.ts";
import { HubError } from "./errors.ts";
import { type RepoRef, showRepo } from "./ids.ts";
import { type Checksum, checksumOf, fileChecksum, transfer } from "./transfer.ts";

export interface PullProgress {
  /** Bytes in the cache of the files being fetched (resumed bytes included). */
  done: number;
  /** Bytes of every file being fetched. */
  total: number;
  /** Bytes received over the network so far by this pull. */
  received: number;
  /** The file being fetched. */
  file: string;
}

export interface PullOptions {
  env?: HubEnv;
  /** Which of the repository's files to fetch (default: all). */
  select?: (path: string) => boolean;
  /** Files that must be among them (a missing one is a "not found" error). */
  require?: string[];
  /** Hash every cached blob again (default: blobs already cached are trusted when their size matches). */
  verify?: boolean;
  onProgress?: (p: PullProgress) => void;
}

export interface PulledFile {
  path: string;
  size: number;
  etag: string;
  /** Bytes fetched over the network for it by this pull (0: it was cached). */
  fetched: number;
}

export interface PullResult {
  ref: RepoRef;
  commit: string;
  /** The snapshot folder: snapshots/<commit>. */
  dir: string;
  files: PulledFile[];
}

const repoUrlPart = (ref: RepoRef) => `${ref.type === "dataset" ? "datasets/" : ""}${ref.id}`;

function authHeaders(env: HubEnv): Record<string, string> {
  return env.token ? { Authorization: `Bearer ${env.token}` } : {};
}

/** One line for an HTTP answer that stops a pull. */
function httpError(ref: RepoRef, env: HubEnv, status: number, code: string | null, what: string): HubError {
  const repo = showRepo(ref);
  if (status === 401)
    return new HubError(
      env.token
        ? `${repo}: HF_TOKEN was refused (401): check the token at ${env.endpoint}/settings/tokens`
        : `${repo} needs a login (401: gated, private or not there): set HF_TOKEN to a token with access`,
    );
  if (status === 403)
    return new HubError(
      `${repo}: HF_TOKEN has no access (403): accept the repository's conditions at ${env.endpoint}/${repoUrlPart(ref)}`,
    );
  if (status === 404) {
    if (code === "RevisionNotFound" || (code === null && /\brev/i.test(what)))
      return new HubError(`${repo}: revision "${ref.revision}" not found`);
    if (code === "EntryNotFound") return new HubError(`${repo}: file ${what} not found`);
    return new HubError(`${ref.type} ${ref.id} not found on ${env.endpoint}`);
  }
  return new HubError(`${repo}: ${env.endpoint} answered HTTP ${status}${what ? ` (${what})` : ""}`);
}

function networkError(env: HubEnv, err: unknown): HubError | undefined {
  if (!(err instanceof TypeError) || err.message !== "fetch failed") return undefined;
  const cause = (err as { cause?: { code?: string; message?: string } }).cause;
  return new HubError(
    `cannot reach ${env.endpoint} (${cause?.code ?? cause?.message ?? "network error"}): check HF_ENDPOINT, or set HF_HUB_OFFLINE=1 to use the cache alone`,
  );
}

/** The commit a revision points at and the repository's file paths (the revision API). */
export async function revisionInfo(ref: RepoRef, env: HubEnv): Promise<{ commit: string; files: string[] }> {
  if (env.token && !env.token.startsWith("hf_"))
    throw new HubError("HF_TOKEN does not look like a Hub token (it starts with hf_)");
  const params = { name: ref.id, revision: ref.revision, hubUrl: env.endpoint, accessToken: env.token };
  let data: { sha?: string; files?: string[] };
  try {
    if (ref.type === "model") {
      const m = await modelInfo({ ...params, additionalFields: ["sha", "filePaths"] });
      data = { sha: m.sha, files: m.filePaths };
    } else {
      // datasetInfo passes any expand key through; its types just do not list `siblings`
      const fields = ["sha", "siblings"] as unknown as "sha"[];
      const d = (await datasetInfo({ ...params, additionalFields: fields })) as {
        sha?: string;
        siblings?: { rfilename: string }[];
      };
      data = { sha: d.sha, files: d.siblings?.map((s) => s.rfilename) };
    }
  } catch (err) {
    if (err instanceof HubApiError)
      throw httpError(
        ref,
        env,
        err.statusCode,
        null,
        err.statusCode === 404 ? String(err.data?.error ?? "") : "",
      );
    throw networkError(env, err) ?? err;
  }
  if (typeof data.sha !== "string" || !/^[0-9a-f]{40}$/.test(data.sha) || !Array.isArray(data.files))
    throw new HubError(
      `${showRepo(ref)}: ${env.endpoint} answered the revision API without sha and siblings`,
    );
  return { commit: data.sha, files: data.files };
}

interface FileMeta {
  path: string;
  etag: string;
  size: number;
  checksum: Checksum;
  /** Where the bytes are (the CDN location the Hub redirects to, or the resolve URL). */
  url: string;
  headers: Record<string, string>;
}

const stripEtag = (v: string) => v.replace(/^W\//, "").replace(/^"|"$/g, "");

/** HEAD on a file's resolve URL: its ETag, size and where its bytes are. */
async function fileMeta(ref: RepoRef, commit: string, path: string, env: HubEnv): Promise<FileMeta> {
  const shown = `${showRepo(ref)}: ${path}`;
  let url = `${env.endpoint}/${repoUrlPart(ref)}/resolve/${commit}/${path.split("/").map(encodeURIComponent).join("/")}`;
  const headers = { ...authHeaders(env), "Accept-Encoding": "identity" };
  for (let hops = 0; ; hops++) {
    let res: Response;
    try {
      res = await fetch(url, { method: "HEAD", redirect: "manual", headers });
    } catch (err) {
      throw networkError(env, err) ?? err;
    }
    const location = res.headers.get("Location");
    const linked = res.headers.get("X-Linked-Etag") ?? res.headers.get("ETag");
    // a relative redirect (a renamed repository) is the Hub's own; follow it for the metadata
    if (res.status >= 300 && res.status < 400 && location && !linked && hops < 5) {
      url = new URL(location, url).href;
      continue;
    }
    if (!res.ok && !(res.status >= 300 && res.status < 400))
      throw httpError(ref, env, res.status, res.headers.get("X-Error-Code"), path);
    const commitHeader = res.headers.get("X-Repo-Commit");
    if (commitHeader && commitHeader !== commit)
      throw new HubError(`${shown}: the Hub served commit ${commitHeader}, expected ${commit}`);
    if (!linked) throw new HubError(`${shown}: the Hub sent no ETag`);
    const etag = stripEtag(linked);
    const size = Number(res.headers.get("X-Linked-Size") ?? res.headers.get("Content-Length"));
    if (!Number.isSafeInteger(size) || size < 0) throw new HubError(`${shown}: the Hub sent no file size`);
    const at = location ? new URL(location, url).href : url;
    // the token goes to the Hub only, never to a CDN host it redirects to
    const sameHost = new URL(at).origin === new URL(env.endpoint).origin;
    return {
      path,
      etag,
      size,
      checksum: checksumOf(etag, shown),
      url: at,
      headers: sameHost ? authHeaders(env) : {},
    };
  }
}

/** Points snapshots/<commit>/<path> at blobs/<etag>: a relative symlink, swapped in whole. */
function link(cache: RepoCache, commit: string, path: string, etag: string): void {
  const pointer = join(cache.snapshot(commit), path);
  mkdirSync(dirname(pointer), { recursive: true });
  const tmp = `${pointer}.tmp-${process.pid}`;
  rmSync(tmp, { force: true });
  symlinkSync(linkTarget(cache, commit, path, etag), tmp);
  renameSync(tmp, pointer);
}

/**
 * Fetches a repository's selected files at a revision into the Hub cache (only what is missing),
 * or, with HF_HUB_OFFLINE=1, finds them there. Throws HubError with one line on what stops it.
 */
export async function pull(ref: RepoRef, o: PullOptions = {}): Promise<PullResult> {
  const env = o.env ?? hubEnv();
  const select = o.select ?? (() => true);
  const cache = repoCache(env.cacheDir, ref.type, ref.id);
  if (env.offline) return offline(ref, env, cache);

  const info = await revisionInfo(ref, env);
  const wanted = info.files.filter(select).sort();
  for (const path of o.require ?? [])
    if (!info.files.includes(path))
      throw new HubError(`${showRepo(ref)}: file ${path} not found (at commit ${info.commit.slice(0, 12)})`);
  if (wanted.length === 0) throw new HubError(`${showRepo(ref)}: none of its files is one Temper uses`);
  const metas: FileMeta[] = [];
  for (const path of wanted) metas.push(await fileMeta(ref, info.commit, path, env));

  const missing = metas.filter((m) => !existsSync(cache.blob(m.etag)));
  const total = missing.reduce((s, m) => s + m.size, 0);
  let done = 0;
  let received = 0;
  const files: PulledFile[] = [];
  for (const m of metas) {
    const blob = cache.blob(m.etag);
    const shown = `${showRepo(ref)}: ${m.path}`;
    let fetched = 0;
    if (existsSync(blob)) {
      if (statSync(blob).size !== m.size)
        throw new HubError(
          `${shown}: cached blob ${blob} holds ${statSync(blob).size} bytes, the Hub says ${m.size}; delete it and pull again`,
        );
      if (o.verify) await verifyBlob(blob, m.checksum, m.size, shown);
    } else {
      o.onProgress?.({ done, total, received, file: m.path });
      await transfer({
        url: m.url,
        headers: m.headers,
        blob,
        size: m.size,
        checksum: m.checksum,
        shown,
        onResume: (n) => {
          done += n;
          o.onProgress?.({ done, total, received, file: m.path });
        },
        onBytes: (n) => {
          done += n;
          received += n;
          fetched += n;
          o.onProgress?.({ done, total, received, file: m.path });
        },
      });
    }
    link(cache, info.commit, m.path, m.etag);
    files.push({ path: m.path, size: m.size, etag: m.etag, fetched });
  }
  writeRef(cache, ref.revision, info.commit);
  o.onProgress?.({ done: total, total, received, file: "" });
  return { ref, commit: info.commit, dir: cache.snapshot(info.commit), files };
}

async function verifyBlob(blob: string, c: Checksum, size: number, shown: string): Promise<void> {
  const digest = await fileChecksum(blob, c, size);
  if (digest !== c.hex)
    throw new HubError(
      `${shown}: cached blob ${blob} is corrupt (${c.kind} ${digest}, the Hub says ${c.hex}); delete it and pull again`,
    );
}

/** HF_HUB_OFFLINE=1: the snapshot a revision points at in the cache, or a one-line error. */
function offline(ref: RepoRef, env: HubEnv, cache: RepoCache): PullResult {
  const commit = cachedCommit(cache, ref.revision);
  if (!commit)
    throw new HubError(
      `${showRepo(ref)} is not in the Hub cache (${env.cacheDir}) and HF_HUB_OFFLINE=1: pull it once without HF_HUB_OFFLINE`,
    );
  return { ref, commit, dir: cache.snapshot(commit), files: [] };
}

/** Checks that a snapshot holds `paths` (each a complete file); throws one line naming the first missing. */
export function requireFiles(result: PullResult, paths: string[], env: HubEnv): void {
  for (const p of paths)
    if (!snapshotHas(result.dir, p))
      throw new HubError(
        `${showRepo(result.ref)}@${result.commit.slice(0, 12)}: ${p} is not in the Hub cache (${result.dir})${env.offline ? " and HF_HUB_OFFLINE=1" : ""}`,
      );
}
