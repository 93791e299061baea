// Models by Hub id: which files Temper fetches, and the one resolver every command and service
// uses to turn `Qwen/Qwen3-4B[@REV]` (or a directory) into a model directory.
import { existsSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { cachedCommit, repoCache } from "./cache.ts";
import { type HubEnv, hubEnv } from "./env.ts";
import { HubError } from "./errors.ts";
import { looksLikeRepoId, parseRepoId, type RepoRef, showRepo } from "./ids.ts";
import { type PullOptions, type PullResult, pull } from "./pull.ts";

/** The files of a model repository Temper reads: config, tokenizer, weights and their index. */
const MODEL_FILES = new Set([
  "config.json",
  "generation_config.json",
  "tokenizer.json",
  "tokenizer_config.json",
  "special_tokens_map.json",
  "added_tokens.json",
  "vocab.json",
  "merges.txt",
  "chat_template.jinja",
  "model.safetensors.index.json",
]);

export const isModelFile = (path: string) => MODEL_FILES.has(path) || /^[^/]+\.safetensors$/.test(path);

/** The files a snapshot must hold to be a usable model, first missing one or undefined. */
export function missingModelFile(dir: string): string | undefined {
  for (const f of ["config.json", "tokenizer.json", "tokenizer_config.json"])
    if (!existsSync(join(dir, f))) return f;
  const index = join(dir, "model.safetensors.index.json");
  if (!existsSync(index)) return existsSync(join(dir, "model.safetensors")) ? undefined : "model.safetensors";
  let shards: string[];
  try {
    shards = Object.values(JSON.parse(readFileSync(index, "utf8")).weight_map as Record<string, string>);
  } catch {
    return "model.safetensors.index.json";
  }
  return [...new Set(shards)].find((s) => !existsSync(join(dir, s)));
}

/** Pulls a model's files (HF_HUB_OFFLINE=1: finds them) and checks the snapshot is complete. */
export async function pullModel(ref: RepoRef, o: PullOptions = {}): Promise<PullResult> {
  const env = o.env ?? hubEnv();
  const result = await pull(ref, { ...o, env, select: isModelFile });
  const missing = missingModelFile(result.dir);
  if (missing)
    throw new HubError(
      `${showRepo(ref)}: ${missing} is not in the Hub cache (${result.dir})${env.offline ? " and HF_HUB_OFFLINE=1" : ""}`,
    );
  return result;
}

/** Whether a model argument names a Hub repository rather than a directory. */
export const isModelId = (value: string) => !existsSync(value) && looksLikeRepoId(value);

/** A cached model's snapshot directory (no network), or a one-line HubError saying how to get it. */
export function cachedModelDir(id: string, env: HubEnv = hubEnv()): string {
  const ref = parseRepoId(id);
  const cache = repoCache(env.cacheDir, ref.type, ref.id);
  const commit = cachedCommit(cache, ref.revision);
  const how = `run: temper model pull ${ref.id}${ref.revision === "main" ? "" : `@${ref.revision}`}`;
  if (!commit) throw new HubError(`${showRepo(ref)} is not in the Hub cache (${env.cacheDir}); ${how}`);
  const dir = cache.snapshot(commit);
  const missing = missingModelFile(dir);
  if (missing) throw new HubError(`${showRepo(ref)}: ${missing} is not in the Hub cache (${dir}); ${how}`);
  return dir;
}

/**
 * A model argument (directory or Hub id) → a model directory. An id is answered from the cache; with
 * `pull`, one not cached yet is pulled first (interactive commands); without, it is an error
 * (services never download on their own).
 */
export async function resolveModel(value: string, o: PullOptions & { pull?: boolean } = {}): Promise<string> {
  if (!isModelId(value)) return value;
  const env = o.env ?? hubEnv();
  try {
    return cachedModelDir(value, env);
  } catch (err) {
    if (!o.pull || env.offline || !(err instanceof HubError)) throw err;
  }
  return (await pullModel(parseRepoId(value), { ...o, env })).dir;
}
