// Training-step (forward + backward) throughput of the Qwen3 training graph on CPU for the `small`
// preset (~12.7M parameters, byte tokenizer), GRPO loss (token aggregation, β = 0.04), float32, batch
// 4 × 128 tokens: LoRA r=16 on all seven projections, and full-parameter. For each: ms per step, the
// step's GFLOP/s as a share of the same process's MatMul rate (baseline.ts: 1024³ float32, constant
// B, the rate the decode bench uses too), and the process's peak RSS, for
//
//   before  main at --baseline (default af090e8, the commit before the training-speed work), run from
//           a git worktree of that commit in a child process (its own @temper packages)
//   after   this checkout, in a child process too
//
// Each child measures one path and one mode: the trainer built, 2 warm-up steps, then --steps steps,
// each followed by a window of back-to-back MatMul runs as long as that step. The share of the MatMul
// rate is best against best, as this bench always measured it: the fastest step's GFLOP/s over the
// fastest single MatMul run's, both of that child. (On the shared 2-core machine the same MatMul
// flips between ~110 and ~370 GFLOP/s within a fraction of a second even when idle, so means and
// medians pair fast with slow moments; the windows' mean rate right after a full-parameter step came
// out below that step's own GFLOP/s, shares above 100%, and is not used.) The table prints the
// medians over --repeats children per path, run interleaved (before, after, after, before, …).
//
// FLOPs per sequence of S tokens (multiply-add = 2 FLOPs), with the forward pass counted as in
// qwen3-prefill.ts:
//   F_lin  = 2 · S · P_matmul,  P_matmul = L·(H·(q+2kv) + q·H + 3·H·I) + V·H  (lm_head once even when tied)
//   F_attn = L · 2 · S² · q     (QKᵀ and PV over the causal half; the graph computes the square and masks)
//   full-parameter: 3 · (F_lin + F_attn)      forward, input gradients, weight gradients
//   LoRA:           2 · F_lin + 3 · F_attn + 3 · F_lora,  F_lora = 2 · S · r · Σ_adapted (in + out)
//                   (frozen W needs no weight gradient; attention has no weights, both its operands get
//                   gradients; the low-rank path needs forward, input and A/B gradients)
//
// Run: node --import tsx tools/bench/qwen3-train.ts [--repeats 3] [--steps 5] [--threads 2]
//        [--baseline COMMIT] [--only before|after] [--profile DIR]
// (--profile DIR: the after children also write ORT profiles, DIR/<mode>_*.json; timings then include
// the profiler's overhead.) Internal: --worker lora|full --model DIR runs one child's measurement.
import { copyFileSync, mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { parseArgs } from "node:util";
import {
  initLoraAdapter,
  initModel,
  LORA_MODULES,
  type LoraConfig,
  loraLayout,
  openModelDir,
  parameterCount,
  presetConfig,
  type Qwen3Config,
  Qwen3Trainer,
  readWeightMap,
  type TrainLossConfig,
  type TrainSequence,
  tokenizerIds,
} from "@temper/qwen3";
import { checkoutCommit, matmulSession, median, REPO_ROOT, runNodeJson } from "./baseline.ts";

const { values } = parseArgs({
  options: {
    repeats: { type: "string", default: "3" },
    steps: { type: "string", default: "5" },
    threads: { type: "string", default: "2" },
    baseline: { type: "string", default: "af090e8" },
    only: { type: "string" },
    profile: { type: "string" },
    worker: { type: "string" },
    model: { type: "string" },
  },
});
const REPEATS = Number(values.repeats);
const STEPS = Number(values.steps);
const THREADS = Number(values.threads);
const WARMUP = 2;
const BATCH = 4;
const SEQ = 128;
const PROMPT = 32;
const LOSS: TrainLossConfig = { kind: "grpo", aggregation: "token", beta: 0.04 };
const LORA: LoraConfig = { rank: 16, alpha: 32, useRslora: false, targetModules: [...LORA_MODULES] };
const MODES = ["lora", "full"] as const;
type Mode = (typeof MODES)[number];

const config = presetConfig("small", tokenizerIds("bytes"));
const mib = (bytes: number) => (bytes / 2 ** 20).toFixed(0);

function forwardFlops(c: Qwen3Config, s: number): { linear: number; attention: number } {
  const q = c.numAttentionHeads * c.headDim;
  const kv = c.numKeyValueHeads * c.headDim;
  const h = c.hiddenSize;
  const perLayer = h * (q + 2 * kv) + q * h + 3 * h * c.intermediateSize;
  const matmulParams = c.numHiddenLayers * perLayer + c.vocabSize * h;
  return { linear: 2 * s * matmulParams, attention: c.numHiddenLayers * 2 * s * s * q };
}

function loraFlops(c: Qwen3Config, lora: LoraConfig, s: number): number {
  const sum = loraLayout(c, lora).reduce((acc, p) => acc + p.inFeatures + p.outFeatures, 0);
  return 2 * s * lora.rank * sum;
}

/** FLOPs of one training step on one sequence (see the header). */
function stepFlops(mode: Mode): number {
  const fwd = forwardFlops(config, SEQ);
  return mode === "lora"
    ? 2 * fwd.linear + 3 * fwd.attention + 3 * loraFlops(config, LORA, SEQ)
    : 3 * (fwd.linear + fwd.attention);
}

function batch(): TrainSequence[] {
  let seed = 1;
  const next = () => {
    seed = (seed * 1103515245 + 12345) % 2 ** 31;
    return seed;
  };
  return Array.from({ length: BATCH }, (_, b) => ({
    inputIds: Array.from({ length: SEQ }, () => next() % 261),
    completionMask: Array.from({ length: SEQ }, (_, t) => (t >= PROMPT ? 1 : 0)),
    advantage: b % 2 ? 0.8 : -0.6,
    oldLogprobs: Array.from({ length: SEQ }, () => -5.8 + (next() % 100) / 500),
    refLogprobs: Array.from({ length: SEQ }, () => -5.8 + (next() % 100) / 500),
  }));
}

/** One child's result. */
interface WorkerResult {
  mode: Mode;
  /** Seconds of the fastest step. */
  seconds: number;
  /** Its GFLOP/s over the fastest MatMul run's. */
  ratio: number;
  /** The fastest MatMul run's GFLOP/s. */
  matmul: number;
  build: number;
  peakRss: number;
}

async function worker(mode: Mode, dir: string): Promise<WorkerResult> {
  const model = openModelDir(dir);
  const t0 = performance.now();
  const trainer = await Qwen3Trainer.fromCheckpoint(model.config, model.checkpoint, {
    mode,
    lora: LORA,
    loss: LOSS,
    dtype: "float32",
    threads: THREADS,
    ...(values.profile
      ? { ortOptions: { enableProfiling: true, profileFilePrefix: join(values.profile, mode) } }
      : {}),
  });
  const build = (performance.now() - t0) / 1000;
  const params =
    mode === "lora"
      ? initLoraAdapter(config, LORA, { seed: 1, initB: "random" })
      : readWeightMap(config, model.checkpoint, "float32");
  model.checkpoint.close();
  const data = batch();
  for (let i = 0; i < WARMUP; i++) await trainer.step(data, params);
  const matmul = await matmulSession(THREADS);
  const flops = BATCH * stepFlops(mode);
  const seconds: number[] = [];
  const peaks: number[] = [];
  for (let i = 0; i < STEPS; i++) {
    const t = performance.now();
    await trainer.step(data, params);
    const s = (performance.now() - t) / 1000;
    seconds.push(s);
    peaks.push((await matmul.window(s)).best);
  }
  await trainer.release();
  await matmul.release();
  const best = Math.min(...seconds);
  const rate = Math.max(...peaks);
  return {
    mode,
    seconds: best,
    ratio: flops / best / 1e9 / rate,
    matmul: rate,
    build,
    peakRss: process.resourceUsage().maxRSS * 1024,
  };
}

async function main(): Promise<void> {
  const root = mkdtempSync(join(tmpdir(), "qwen3-train-"));
  const paths = values.only ? [values.only] : ["before", "after"];
  let before: ReturnType<typeof checkoutCommit> | undefined;
  try {
    const dir = join(root, "small");
    initModel({ config, tokenizer: "bytes", out: dir, seed: 1, dtype: "f32" });
    const script = "tools/bench/qwen3-train.ts";
    const cwd: Record<string, string> = { after: REPO_ROOT };
    if (paths.includes("before")) {
      before = checkoutCommit(values.baseline);
      // the same measurement code in both: this bench (and its helper) run against the old packages
      for (const f of [script, "tools/bench/baseline.ts"])
        copyFileSync(join(REPO_ROOT, f), join(before.dir, f));
      cwd.before = before.dir;
    }
    const fwd = forwardFlops(config, SEQ);
    console.log(
      `small preset: ${(parameterCount(config) / 1e6).toFixed(2)}M parameters; batch ${BATCH} × seq ${SEQ}, GRPO token β=${LOSS.beta}, float32, ${THREADS} threads; medians over ${REPEATS} child processes per path of each one's fastest of ${STEPS} steps`,
    );
    console.log(
      `FLOP per sequence: forward ${((fwd.linear + fwd.attention) / 1e9).toFixed(3)} G; step LoRA r=${LORA.rank} ${(stepFlops("lora") / 1e9).toFixed(3)} G, full ${(stepFlops("full") / 1e9).toFixed(3)} G`,
    );
    console.log(
      `before = main at ${before ? before.commit.slice(0, 12) : values.baseline} (git worktree, child process); after = this checkout`,
    );
    const results: Record<string, WorkerResult[]> = {};
    for (let r = 0; r < REPEATS; r++)
      for (const mode of MODES) {
        const order = r % 2 ? [...paths].reverse() : paths;
        for (const path of order) {
          const args = [
            "--worker",
            mode,
            "--model",
            dir,
            "--steps",
            String(STEPS),
            "--threads",
            String(THREADS),
          ];
          if (values.profile && path === "after") args.push("--profile", values.profile);
          const res = await runNodeJson<WorkerResult>(cwd[path], script, args);
          results[`${path}/${mode}`] = [...(results[`${path}/${mode}`] ?? []), res];
        }
      }
    const w = { label: 21, matmul: 14, cell: 26 };
    console.log(
      `${"mode".padEnd(w.label)} | ${"MatMul GFLOP/s".padStart(w.matmul)} | ${"before ms/step (share)".padStart(w.cell)} | ${"after ms/step (share)".padStart(w.cell)} | after/before speed | peak RSS before → after`,
    );
    for (const mode of MODES) {
      const of = (path: string) => results[`${path}/${mode}`] ?? [];
      const med = (xs: WorkerResult[], f: (x: WorkerResult) => number) => median(xs.map(f));
      const pct = (x: number) => `${(100 * x).toFixed(1)}%`;
      const cell = (path: string) =>
        of(path).length
          ? `${(med(of(path), (x) => x.seconds) * 1000).toFixed(0)} (${pct(med(of(path), (x) => x.ratio))})`
          : "-";
      const ms = (path: string) => med(of(path), (x) => x.seconds);
      const speed =
        of("before").length && of("after").length ? `${(ms("before") / ms("after")).toFixed(2)}×` : "-";
      const rss = (path: string) => (of(path).length ? `${mib(med(of(path), (x) => x.peakRss))} MiB` : "-");
      const all = [...of("before"), ...of("after")];
      const rates = med(all, (x) => x.matmul).toFixed(0);
      const label = mode === "lora" ? `LoRA r=${LORA.rank} (7 modules)` : "full-parameter";
      console.log(
        `${label.padEnd(w.label)} | ${rates.padStart(w.matmul)} | ${cell("before").padStart(w.cell)} | ${cell("after").padStart(w.cell)} | ${speed.padStart(18)} | ${rss("before")} → ${rss("after")}`,
      );
    }
    const runs = (p: string, m: Mode) =>
      (results[`${p}/${m}`] ?? []).map((x) => `${(100 * x.ratio).toFixed(0)}%`).join(" ");
    console.log(
      `per-run shares of the MatMul rate: ${MODES.flatMap((m) => paths.map((p) => `${p} ${m} ${runs(p, m)}`)).join("; ")}`,
    );
  } finally {
    before?.remove();
    rmSync(root, { recursive: true, force: true });
  }
}

if (values.worker) {
  const mode = values.worker as Mode;
  if (!MODES.includes(mode) || !values.model) {
    console.error("--worker lora|full needs --model DIR");
    process.exit(2);
  }
  console.log(JSON.stringify(await worker(mode, values.model)));
} else await main();
