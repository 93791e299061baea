// GSM8K from the Hub dataset openai/gsm8k (config `main`: question/answer parquet files), converted
// to the jsonl Temper reads ({"question","answer"} a line). The jsonl is derived data: it lives
// beside the Hub cache (cache.ts derivedDir), keyed by the dataset commit, never in the snapshot.
import { existsSync, mkdirSync, readdirSync, readFileSync, renameSync, writeFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { parquetReadObjects } from "hyparquet";
import { cachedCommit, derivedDir, repoCache } from "./cache.ts";
import { type HubEnv, hubEnv } from "./env.ts";
import { HubError } from "./errors.ts";
import type { FileRef, RepoRef } from "./ids.ts";
import { type PullOptions, pull, requireFiles } from "./pull.ts";

export const GSM8K_REPO = "openai/gsm8k";
export const GSM8K_CONFIG = "main";

/** Reads a GSM8K parquet file's rows as jsonl text; `shown` names the file in errors. */
export async function parquetToJsonl(
  bytes: Uint8Array,
  shown: string,
): Promise<{ text: string; rows: number }> {
  const file = bytes.buffer.slice(bytes.byteOffset, bytes.byteOffset + bytes.byteLength) as ArrayBuffer;
  let rows: Record<string, unknown>[];
  try {
    rows = await parquetReadObjects({ file, columns: ["question", "answer"] });
  } catch (err) {
    throw new HubError(`${shown}: not a GSM8K parquet file (${(err as Error).message})`);
  }
  let text = "";
  rows.forEach((r, i) => {
    if (typeof r.question !== "string" || typeof r.answer !== "string")
      throw new HubError(`${shown}: row ${i} has no string "question" and "answer"`);
    text += `${JSON.stringify({ question: r.question, answer: r.answer })}\n`;
  });
  return { text, rows: rows.length };
}

/**
 * A Hub file of a dataset (parquet) as a jsonl file Temper reads: pulled into the Hub cache
 * (HF_HUB_OFFLINE=1: found there), converted once, returned by path.
 */
export async function hubJsonl(ref: FileRef, o: PullOptions = {}): Promise<string> {
  const env = o.env ?? hubEnv();
  if (!ref.path.endsWith(".parquet"))
    throw new HubError(
      `hf://${ref.type === "dataset" ? "datasets/" : ""}${ref.id}/${ref.path}: Temper reads .parquet files from the Hub`,
    );
  const repo: RepoRef = { type: ref.type, id: ref.id, revision: ref.revision };
  const pulled = await pull(repo, { ...o, env, select: (p) => p === ref.path, require: [ref.path] });
  requireFiles(pulled, [ref.path], env);
  return convert(env, { ...repo, commit: pulled.commit }, join(pulled.dir, ref.path), ref.path);
}

/**
 * The converted jsonl of a Hub parquet file already pulled (no network), or a one-line HubError
 * saying how to get it.
 */
export function cachedHubJsonl(ref: FileRef, env: HubEnv = hubEnv()): string {
  const url = `hf://${ref.type === "dataset" ? "datasets/" : ""}${ref.id}${ref.revision === "main" ? "" : `@${ref.revision}`}/${ref.path}`;
  const commit = cachedCommit(repoCache(env.cacheDir, ref.type, ref.id), ref.revision);
  const out =
    commit && join(derivedDir(env.cacheDir, { ...ref, commit }), ref.path.replace(/\.parquet$/, ".jsonl"));
  if (!out || !existsSync(out))
    throw new HubError(
      `${url} is not in the Hub cache (${env.cacheDir}); temper run pulls it, or run temper data pull`,
    );
  return out;
}

/** The converted jsonl of a snapshot file (written once, whole). */
export async function convert(
  env: HubEnv,
  ref: RepoRef & { commit: string },
  source: string,
  path: string,
): Promise<string> {
  const out = join(derivedDir(env.cacheDir, ref), path.replace(/\.parquet$/, ".jsonl"));
  if (existsSync(out)) return out;
  const { text } = await parquetToJsonl(readFileSync(source), `${ref.id}@${ref.commit.slice(0, 12)}/${path}`);
  mkdirSync(dirname(out), { recursive: true });
  const tmp = `${out}.tmp-${process.pid}`;
  writeFileSync(tmp, text);
  renameSync(tmp, out);
  return out;
}

function cachedParquet(snapshot: string): string[] {
  try {
    return readdirSync(join(snapshot, GSM8K_CONFIG))
      .filter((f) => f.endsWith(".parquet"))
      .sort()
      .map((f) => `${GSM8K_CONFIG}/${f}`);
  } catch {
    return [];
  }
}

/** GSM8K's `main` config: its train and test parquet files, converted. */
export async function pullGsm8k(
  revision: string,
  o: PullOptions = {},
): Promise<{ commit: string; splits: { split: string; jsonl: string; rows: number; source: string }[] }> {
  const env = o.env ?? hubEnv();
  const repo: RepoRef = { type: "dataset", id: GSM8K_REPO, revision };
  const isMain = (p: string) => p.startsWith(`${GSM8K_CONFIG}/`) && p.endsWith(".parquet");
  const pulled = await pull(repo, { ...o, env, select: isMain });
  // offline there is no file list but the snapshot's own
  const paths = env.offline ? cachedParquet(pulled.dir) : pulled.files.map((f) => f.path).sort();
  if (paths.length === 0)
    throw new HubError(
      `dataset ${GSM8K_REPO}: no ${GSM8K_CONFIG}/*.parquet in the Hub cache (${pulled.dir}) and HF_HUB_OFFLINE=1`,
    );
  requireFiles(pulled, paths, env);
  const splits = [];
  for (const path of paths) {
    const jsonl = await convert(env, { ...repo, commit: pulled.commit }, join(pulled.dir, path), path);
    const rows = readFileSync(jsonl, "utf8").split("\n").filter(Boolean).length;
    splits.push({
      split: path.slice(GSM8K_CONFIG.length + 1).replace(/-\d+-of-\d+\.parquet$/, ""),
      jsonl,
      rows,
      source: path,
    });
  }
  return { commit: pulled.commit, splits };
}
