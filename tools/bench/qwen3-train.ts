// Training-step (forward + backward) throughput of the Qwen3 training graph on CPU for the `small`
// preset (~12.6M parameters, byte tokenizer), GRPO loss (token aggregation, β = 0.04), float32:
// LoRA r=16 on all seven projections, and full-parameter. Prints tokens/s, ms/step, achieved GFLOP/s
// next to the same process's GFLOP/s on one large plain MatMul (1024×1024 · 1024×1024), and peak RSS.
//
// FLOPs per sequence of S tokens (multiply-add = 2 FLOPs), with the forward pass counted as in
// qwen3-prefill.ts:
//   F_lin  = 2 · S · P_matmul,  P_matmul = L·(H·(q+2kv) + q·H + 3·H·I) + V·H  (lm_head once even when tied)
//   F_attn = L · 2 · S² · q     (QKᵀ and PV over the causal half; the graph computes the square and masks)
//   full-parameter: 3 · (F_lin + F_attn)      forward, input gradients, weight gradients
//   LoRA:           2 · F_lin + 3 · F_attn + 3 · F_lora,  F_lora = 2 · S · r · Σ_adapted (in + out)
//                   (frozen W needs no weight gradient; attention has no weights, both its operands get
//                   gradients; the low-rank path needs forward, input and A/B gradients)
// Run: node --import tsx tools/bench/qwen3-train.ts
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { GraphBuilder, Session, tensor } from "@temper/onnx";
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

const BATCH = 4;
const SEQ = 128;
const PROMPT = 32;
const THREADS = 2;
const MIN_SECONDS = 3;
const LOSS: TrainLossConfig = { kind: "grpo", aggregation: "token", beta: 0.04 };
const LORA: LoraConfig = { rank: 16, alpha: 32, useRslora: false, targetModules: [...LORA_MODULES] };

const root = mkdtempSync(join(tmpdir(), "qwen3-train-"));
const config = presetConfig("small", tokenizerIds("bytes"));
const mib = (bytes: number) => (bytes / 2 ** 20).toFixed(0);
const peakRss = () => process.resourceUsage().maxRSS * 1024;

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

/** Seconds of the fastest call (after one warm-up; ≥ 3 calls and MIN_SECONDS): the machine is shared. */
async function time(fn: () => Promise<unknown>): Promise<number> {
  await fn();
  let runs = 0;
  let best = Number.POSITIVE_INFINITY;
  const t0 = performance.now();
  while (runs < 3 || performance.now() - t0 < MIN_SECONDS * 1000) {
    const t = performance.now();
    await fn();
    best = Math.min(best, performance.now() - t);
    runs++;
  }
  return best / 1000;
}

async function matmulGflops(threads: number): Promise<number> {
  const n = 1024;
  const g = new GraphBuilder("matmul");
  g.output(g.matmul(g.floatInput("a", [n, n]), g.floatInput("b", [n, n])), "c");
  const session = await Session.create(g.build(), { threads });
  const data = Float32Array.from({ length: n * n }, (_, i) => ((i * 7919) % 1000) / 1000 - 0.5);
  const feeds = { a: tensor("float32", data, [n, n]), b: tensor("float32", data, [n, n]) };
  const seconds = await time(() => session.run(feeds));
  await session.release();
  return (2 * n ** 3) / seconds / 1e9;
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

try {
  const dir = join(root, "small");
  initModel({ config, tokenizer: "bytes", out: dir, seed: 1, dtype: "f32" });
  const fwd = forwardFlops(config, SEQ);
  const lora = loraFlops(config, LORA, SEQ);
  const perSeq = {
    lora: 2 * fwd.linear + 3 * fwd.attention + 3 * lora,
    full: 3 * (fwd.linear + fwd.attention),
  };
  console.log(
    `small preset: ${(parameterCount(config) / 1e6).toFixed(2)}M parameters; batch ${BATCH} × seq ${SEQ}, GRPO token β=${LOSS.beta}, float32, ${THREADS} threads`,
  );
  console.log(
    `FLOP per sequence: forward ${((fwd.linear + fwd.attention) / 1e9).toFixed(3)} G; step LoRA r=${LORA.rank} ${(perSeq.lora / 1e9).toFixed(3)} G, full ${(perSeq.full / 1e9).toFixed(3)} G`,
  );
  const data = batch();
  const model = openModelDir(dir);
  for (const mode of ["lora", "full"] as const) {
    const rssBefore = peakRss();
    const t0 = performance.now();
    const trainer = await Qwen3Trainer.fromCheckpoint(model.config, model.checkpoint, {
      mode,
      lora: LORA,
      loss: LOSS,
      dtype: "float32",
      threads: THREADS,
    });
    const build = (performance.now() - t0) / 1000;
    const params =
      mode === "lora"
        ? initLoraAdapter(config, LORA, { seed: 1, initB: "random" })
        : readWeightMap(config, model.checkpoint, "float32");
    const ceiling = await matmulGflops(THREADS);
    const seconds = await time(() => trainer.step(data, params));
    const gflops = (BATCH * perSeq[mode]) / seconds / 1e9;
    const label = mode === "lora" ? `LoRA r=${LORA.rank} (7 modules)` : "full-parameter     ";
    console.log(
      `${label}: ${((BATCH * SEQ) / seconds).toFixed(0).padStart(5)} tokens/s, ${(seconds * 1000).toFixed(0).padStart(5)} ms/step, ${gflops.toFixed(1).padStart(5)} GFLOP/s vs large MatMul ${ceiling.toFixed(1)} GFLOP/s (${((100 * gflops) / ceiling).toFixed(0)}%); session build ${build.toFixed(1)} s; peak RSS ${mib(peakRss())} MiB (was ${mib(rssBefore)})`,
    );
    await trainer.release();
  }
  model.checkpoint.close();
} finally {
  rmSync(root, { recursive: true, force: true });
}
