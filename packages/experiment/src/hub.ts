// Hub references in an experiment file: `model: ORG/NAME[@REV]` and `data: hf://datasets/...`.
// Loading (resolve.ts) answers them from the Hub cache alone; an interactive command first calls
// pullHubRefs, which pulls what the cache lacks, so that a fresh machine runs an example as is.
import { existsSync, readFileSync } from "node:fs";
import { dirname, resolve } from "node:path";
import {
  cachedHubJsonl,
  cachedModelDir,
  HubError,
  hubJsonl,
  isHfUrl,
  looksLikeRepoId,
  type PullProgress,
  parseHfUrl,
  resolveModel,
} from "@temper/hub";
import type { PathSegment } from "./errors.ts";
import { errorAt, fileOrigin, parseYaml } from "./source.ts";

const isMapping = (v: unknown): v is Record<string, unknown> =>
  typeof v === "object" && v !== null && !Array.isArray(v);

/** Whether an experiment's model value names a Hub repository (not a directory beside the file). */
export const isHubModel = (baseDir: string, value: string) =>
  !existsSync(resolve(baseDir, value)) && looksLikeRepoId(value);

/** A model value → a directory: a Hub id from the cache (HubError when absent), else a path. */
export function modelPath(baseDir: string, value: string): string {
  if (!isHubModel(baseDir, value)) return resolve(baseDir, value);
  try {
    return cachedModelDir(value);
  } catch (err) {
    // a mistyped relative directory reads as a Hub id too: say both
    if (err instanceof HubError)
      throw new HubError(`${err.message} (nor is it a directory: ${resolve(baseDir, value)})`);
    throw err;
  }
}

/** A data value → a jsonl file: an hf:// parquet file's converted jsonl from the cache, else a path. */
export function dataPath(baseDir: string, value: string): string {
  return isHfUrl(value) ? cachedHubJsonl(parseHfUrl(value)) : resolve(baseDir, value);
}

/** Every model and data value of an experiment or comparison file, with its path in the file. */
function hubValues(doc: unknown): { path: PathSegment[]; value: string; kind: "model" | "data" }[] {
  const out: { path: PathSegment[]; value: string; kind: "model" | "data" }[] = [];
  const visit = (exp: unknown, prefix: PathSegment[]) => {
    if (!isMapping(exp)) return;
    if (typeof exp.model === "string")
      out.push({ path: [...prefix, "model"], value: exp.model, kind: "model" });
    if (isMapping(exp.data))
      for (const split of ["train", "eval"])
        if (typeof exp.data[split] === "string")
          out.push({ path: [...prefix, "data", split], value: exp.data[split], kind: "data" });
  };
  visit(doc, []);
  if (isMapping(doc)) {
    visit(doc.base, ["base"]);
    if (Array.isArray(doc.variants)) for (const [i, v] of doc.variants.entries()) visit(v, ["variants", i]);
  }
  return out;
}

/**
 * Pulls the Hub models and data an experiment (or comparison) file names that the cache lacks.
 * A Hub problem is an ExperimentError naming the file, line and field.
 */
export async function pullHubRefs(
  file: string,
  progress?: (label: string) => (p: PullProgress) => void,
): Promise<void> {
  let text: string;
  try {
    text = readFileSync(file, "utf8");
  } catch {
    return; // loading reports it
  }
  const src = parseYaml(text, file);
  const baseDir = dirname(resolve(file));
  for (const ref of hubValues(src.value)) {
    try {
      if (ref.kind === "model" && isHubModel(baseDir, ref.value))
        await resolveModel(ref.value, { pull: true, onProgress: progress?.(`pull ${ref.value}`) });
      else if (ref.kind === "data" && isHfUrl(ref.value))
        await hubJsonl(parseHfUrl(ref.value), { onProgress: progress?.(`pull ${ref.value}`) });
    } catch (err) {
      if (err instanceof HubError) throw errorAt([fileOrigin(src)], ref.path, err.message);
      throw err;
    }
  }
}
