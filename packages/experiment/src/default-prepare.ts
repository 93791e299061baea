// Makes the default experiment's inputs once under a data dir (default-settings.ts says what):
// synthetic problems, a base model, and its SFT warm start, each cached and remade only when the
// setting that made it changed.
import { existsSync, mkdirSync, readFileSync, renameSync, rmSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { type Gsm8kExample, loadGsm8k, synthesizeSets } from "@temper/gsm8k";
import { initModel, presetConfig, tokenizerIds } from "@temper/qwen3";
import { runSft } from "@temper/training";
import type { DefaultSetting } from "./default-settings.ts";

function writeJsonl(path: string, rows: readonly Gsm8kExample[]): void {
  writeFileSync(
    path,
    rows.map((r) => JSON.stringify({ question: r.question, answer: r.answer })).join("\n") + "\n",
  );
}

/**
 * What the cached data, base model and warm start were made from, kept in <data-dir>/setting.json.
 * A cache made by another setting (an older Temper, or --smoke's dir reused) is remade rather than
 * silently reused: the report would otherwise compare structures on a warm start nobody asked for.
 */
export function invalidateStaleCache(
  dir: string,
  s: DefaultSetting,
  parts: readonly string[],
  say: (line: string) => void = () => {},
): void {
  const path = join(dir, "setting.json");
  const want = JSON.stringify({ preset: s.preset, synth: s.synth, sft: s.sft });
  let have: string | undefined;
  try {
    have = JSON.stringify(JSON.parse(readFileSync(path, "utf8")));
  } catch {
    have = undefined;
  }
  if (have === want) return;
  const cached = parts.filter((p) => existsSync(join(dir, p)));
  if (cached.length) {
    say(`${dir} was made by another setting: remaking ${cached.join(", ")}`);
    for (const p of cached) rmSync(join(dir, p), { recursive: true, force: true });
  }
  writeFileSync(path, `${want}\n`);
}

/** data/{sft,train,eval,dev}.jsonl, made once. */
function ensureData(dir: string, s: DefaultSetting, say: (line: string) => void): void {
  if (existsSync(join(dir, "eval.jsonl"))) return;
  say(`making synthetic problems in ${dir}`);
  const sets = synthesizeSets({
    sft: s.synth.sft,
    train: s.synth.train,
    eval: s.synth.eval,
    evalExtra: s.synth.evalExtra,
    seed: s.synth.seed,
    maxOperand: s.synth.maxOperand,
    maxResult: s.synth.maxResult,
    steps: { min: 1, max: s.synth.maxSteps },
    disjoint: s.synth.disjoint,
    dev: s.synth.dev,
  });
  const tmp = `${dir}.tmp-${process.pid}`;
  rmSync(tmp, { recursive: true, force: true });
  mkdirSync(tmp, { recursive: true });
  writeJsonl(join(tmp, "sft.jsonl"), sets.sft);
  writeJsonl(join(tmp, "train.jsonl"), sets.train);
  writeJsonl(join(tmp, "eval.jsonl"), sets.eval);
  if (sets.dev.length) writeJsonl(join(tmp, "dev.jsonl"), sets.dev);
  rmSync(dir, { recursive: true, force: true });
  renameSync(tmp, dir);
}

/**
 * <dir>/{train,eval}.jsonl of setting.rlData: problems the warm start never saw (no question of
 * sft.jsonl), made once.
 */
function ensureRlData(dir: string, sftFile: string, s: DefaultSetting, say: (line: string) => void): void {
  const r = s.rlData;
  if (!r || existsSync(join(dir, "eval.jsonl"))) return;
  say(`making ${r.minSteps}–${r.maxSteps}-step problems in ${dir}`);
  const sets = synthesizeSets({
    sft: 0,
    train: r.pool,
    eval: r.pool,
    seed: r.seed,
    maxOperand: s.synth.maxOperand,
    maxResult: s.synth.maxResult,
    steps: { min: r.minSteps, max: r.maxSteps },
    disjoint: "question",
  });
  const seen = new Set(loadGsm8k(sftFile).map((ex) => ex.question));
  const unseen = (rows: readonly Gsm8kExample[], name: string) => {
    const out = rows.filter((ex) => !seen.has(ex.question)).slice(0, r.take);
    if (out.length < r.take)
      throw new Error(`only ${out.length} ${name} problems the warm start never saw, fewer than ${r.take}`);
    return out;
  };
  const tmp = `${dir}.tmp-${process.pid}`;
  rmSync(tmp, { recursive: true, force: true });
  mkdirSync(tmp, { recursive: true });
  writeJsonl(join(tmp, "train.jsonl"), unseen(sets.train, "training"));
  writeJsonl(join(tmp, "eval.jsonl"), unseen(sets.eval, "held-out"));
  rmSync(dir, { recursive: true, force: true });
  renameSync(tmp, dir);
}

function ensureBase(dir: string, s: DefaultSetting, say: (line: string) => void): void {
  if (existsSync(join(dir, "config.json"))) return;
  say(`making the ${s.preset} base model in ${dir}`);
  const tmp = `${dir}.tmp-${process.pid}`;
  rmSync(tmp, { recursive: true, force: true });
  initModel({
    config: presetConfig(s.preset, tokenizerIds("bytes")),
    tokenizer: "bytes",
    out: tmp,
    seed: 0,
    dtype: "f32",
  });
  renameSync(tmp, dir);
}

async function ensureWarmStart(
  base: string,
  warm: string,
  data: string,
  s: DefaultSetting,
  say: (line: string) => void,
): Promise<void> {
  if (existsSync(join(warm, "config.json"))) {
    say(`warm start cached in ${warm}`);
    return;
  }
  const stop = s.sft.stop;
  say(
    stop
      ? `warm start: SFT in batches of ${s.sft.batchSize} on ${s.synth.sft} synthetic problems (a ${s.sft.steps}-step schedule) until ${(stop.targetAccuracy * 100).toFixed(1)}% of ${s.synth.dev} dev problems are solved (checked every ${stop.every} steps from step ${stop.from}, at most ${stop.maxSteps} steps)`
      : `warm start: ${s.sft.steps} SFT steps of batch ${s.sft.batchSize} on ${s.synth.sft} synthetic problems`,
  );
  const t0 = Date.now();
  const res = await runSft(
    {
      modelDir: base,
      train: loadGsm8k(join(data, "sft.jsonl")),
      eval: loadGsm8k(join(data, "eval.jsonl")),
      out: warm,
      steps: s.sft.steps,
      batchSize: s.sft.batchSize,
      learningRate: s.sft.learningRate,
      schedule: "cosine",
      warmupSteps: s.sft.warmupSteps,
      minLrRatio: s.sft.minLrRatio,
      evalEvery: 0,
      evalSize: s.sft.evalSize,
      maxNewTokens: 32,
      instruction: "",
      seed: s.sft.seed,
      resume: true,
      ...(stop && {
        dev: loadGsm8k(join(data, "dev.jsonl")),
        devEvery: stop.every,
        devFrom: stop.from,
        targetDevAccuracy: stop.targetAccuracy,
        maxSteps: stop.maxSteps,
      }),
    },
    {
      onStep: (i) => {
        if (i.step % 20 === 0 || i.step === i.steps)
          say(`  sft step ${i.step}/${i.steps}  loss ${i.loss.toFixed(3)}`);
      },
      onDevCheck: (d) => say(`  sft step ${d.step}: dev accuracy ${d.accuracy?.toFixed(3)} (n ${d.n})`),
    },
  );
  const acc = res.evals[res.evals.length - 1];
  say(
    `warm start done in ${((Date.now() - t0) / 1000).toFixed(0)} s after ${res.endStep} steps${acc ? `: held-out accuracy ${acc.accuracy.toFixed(3)} ± ${acc.stderr.toFixed(3)} (n ${acc.n})` : ""}`,
  );
}

/** Where prepareDefault puts the inputs under a data dir; rlData: the comparison's problems. */
export function defaultPaths(dir: string, setting?: DefaultSetting) {
  const data = join(dir, "data");
  const rlData = setting?.rlData ? join(dir, setting.rlData.dir) : data;
  return { data, rlData, base: join(dir, "model-base"), warm: join(dir, "model-warm") };
}

/**
 * Makes what the setting runs on under `dir`, each part once (cached; remade when an earlier
 * setting made it): data/{sft,train,eval}.jsonl, model-base and the warm start model-warm.
 */
export async function prepareDefault(
  dir: string,
  setting: DefaultSetting,
  say: (line: string) => void,
): Promise<ReturnType<typeof defaultPaths>> {
  const paths = defaultPaths(dir, setting);
  invalidateStaleCache(
    dir,
    setting,
    ["data", "data-sparse", "model-base", "model-warm", "model-warm.partial"],
    say,
  );
  ensureData(paths.data, setting, say);
  ensureBase(paths.base, setting, say);
  await ensureWarmStart(paths.base, paths.warm, paths.data, setting, say);
  ensureRlData(paths.rlData, join(paths.data, "sft.jsonl"), setting, say);
  return paths;
}
