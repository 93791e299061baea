// Loading experiment and comparison files.
//
// A comparison file has `base:` (an experiment that may leave out anything, `name` included),
// `variants:` (partial experiments, each with a `name`, deep-merged over the base) and optionally
// `seeds:` (every variant runs once per seed). Runs come seed-major: every variant for the first
// seed, then every variant for the next, so a comparison stopped part-way has covered all variants.
// A plain experiment file is a comparison of one run.
import { readFileSync } from "node:fs";
import { dirname, resolve } from "node:path";
import { stringify } from "yaml";
import { ExperimentError, type PathSegment, show } from "./errors.ts";
import { type DataCache, type LoadedExperiment, type LoadOptions, resolveValue } from "./resolve.ts";
import type { ResolvedExperiment } from "./schema.ts";
import { childOrigin, errorAt, fileOrigin, type Origin, parseYaml } from "./source.ts";

export interface Comparison {
  /** Seed-major: for each seed, every variant in file order. */
  runs: LoadedExperiment[];
}

const isMapping = (v: unknown): v is Record<string, unknown> =>
  typeof v === "object" && v !== null && !Array.isArray(v);

function readText(path: string): string {
  try {
    return readFileSync(path, "utf8");
  } catch (err) {
    throw new ExperimentError(
      path,
      1,
      "(file)",
      `cannot read (${(err as NodeJS.ErrnoException).code ?? err})`,
    );
  }
}

/** Resolves an experiment file's text; relative paths in it resolve against `baseDir`. */
export function resolveExperiment(
  text: string,
  fileName: string,
  baseDir: string,
  opts: LoadOptions = {},
): LoadedExperiment {
  const src = parseYaml(text, fileName);
  return resolveValue(src.value, [fileOrigin(src)], baseDir, opts);
}

/** Loads an experiment file; relative paths in it resolve against the file's directory. */
export function loadExperiment(path: string, opts: LoadOptions = {}): LoadedExperiment {
  return resolveExperiment(readText(path), path, dirname(resolve(path)), opts);
}

/**
 * Deep merge for variants: mappings merge key by key, anything else (lists included) replaces,
 * and `null` removes the key (e.g. `adaptive: { time: null, progress: {...} }`).
 */
export function deepMerge(base: unknown, over: unknown): unknown {
  if (!isMapping(base) || !isMapping(over)) return over;
  const out: Record<string, unknown> = { ...base };
  for (const [k, v] of Object.entries(over)) {
    if (v === null) delete out[k];
    else out[k] = k in base ? deepMerge(base[k], v) : v;
  }
  return out;
}

/** Resolves a comparison file's text (or a plain experiment's, as a comparison of one). */
export function resolveComparison(
  text: string,
  fileName: string,
  baseDir: string,
  opts: LoadOptions = {},
): Comparison {
  const src = parseYaml(text, fileName);
  const root = fileOrigin(src);
  const doc = src.value;
  const cache: DataCache = new Map();
  if (!isMapping(doc) || !("variants" in doc || "base" in doc))
    return { runs: [resolveValue(doc, [root], baseDir, opts, cache)] };

  const fail = (path: PathSegment[], problem: string) => errorAt([root], path, problem);
  for (const k of Object.keys(doc))
    if (!["base", "variants", "seeds"].includes(k))
      throw fail([k], "unknown key (a comparison file has base, variants and seeds)");
  const base = doc.base ?? {};
  if (!isMapping(base)) throw fail(["base"], `must be a mapping (an experiment), got ${show(base)}`);
  const variants = doc.variants;
  if (variants === undefined)
    throw fail(["variants"], "is required (a list of experiments with a name each)");
  if (!Array.isArray(variants) || variants.length === 0)
    throw fail(["variants"], `must be a non-empty list of experiments, got ${show(variants)}`);

  let seeds: (number | undefined)[] = [undefined];
  if (doc.seeds !== undefined) {
    const s = doc.seeds;
    if (!Array.isArray(s) || s.length === 0)
      throw fail(["seeds"], `must be a non-empty list of integers, got ${show(s)}`);
    s.forEach((x, i) => {
      if (!Number.isSafeInteger(x) || (x as number) < 0)
        throw fail(["seeds", i], `must be an integer ≥ 0, got ${show(x)}`);
      if (s.indexOf(x) !== i) throw fail(["seeds", i], `duplicate seed ${x}`);
    });
    if ("seed" in base) throw fail(["base", "seed"], "conflicts with seeds (remove one of them)");
    seeds = s as number[];
  }

  const names = new Map<string, number>();
  variants.forEach((v, i) => {
    if (!isMapping(v))
      throw fail(["variants", i], `must be a mapping (a partial experiment), got ${show(v)}`);
    if (v.name === undefined) throw fail(["variants", i, "name"], "is required (each variant has a name)");
    if (typeof v.name === "string") {
      const prev = names.get(v.name);
      if (prev !== undefined) throw fail(["variants", i, "name"], `duplicate name (also variants[${prev}])`);
      names.set(v.name, i);
    }
    if (seeds[0] !== undefined && "seed" in v)
      throw fail(["variants", i, "seed"], "conflicts with seeds (remove one of them)");
  });

  const baseOrigin = childOrigin(root, ["base"]);
  const runs: LoadedExperiment[] = [];
  for (const seed of seeds) {
    variants.forEach((v, i) => {
      const merged = deepMerge(base, v) as Record<string, unknown>;
      if (seed !== undefined) merged.seed = seed;
      const origins: Origin[] = [childOrigin(root, ["variants", i]), baseOrigin];
      runs.push(resolveValue(merged, origins, baseDir, opts, cache));
    });
  }
  return { runs };
}

/** Loads a comparison file (or a plain experiment file, as a comparison of one). */
export function loadComparison(path: string, opts: LoadOptions = {}): Comparison {
  return resolveComparison(readText(path), path, dirname(resolve(path)), opts);
}

/** The resolved experiment as YAML (spec.yaml); it loads again as the same experiment. */
export function toYaml(resolved: ResolvedExperiment | Record<string, unknown>): string {
  return stringify(resolved, { lineWidth: 0 });
}
