// Decode throughput of KV-cached generation for the `small` preset (~12.7M parameters, byte
// tokenizer) with a LoRA adapter loaded (r=16 on all seven projections), greedy, no EOS:
//
//   before  KvCacheBackend over Qwen3KvEngine: the path of main at 79d278a (its files are checked
//           unchanged against that commit and the bench says so)
//   after   DecodeCacheBackend over Qwen3DecodeEngine (cache in place, two-part attention)
//
// At batch 1, 8, 32, 64 and 128 (prompts of 128 random tokens, 64 new tokens), each measurement
// repeated --repeats times, interleaved (MatMul, before, MatMul, after, MatMul …) so that both paths
// share the machine's moments; medians are printed, the ratio as the median of each run's ratio to
// the MatMul measured just before and after it. Decode tokens/s = batch × (new tokens − 1) /
// (generate time − prefill).
//
// The MatMul-bound rate is the same run's 1024³ float32 MatMul FLOP/s (constant B, as a linear layer)
// divided by the FLOPs of one decode token at the mean context c of the decode steps:
//   F = 2·P_matmul + 4·L·q·c,   P_matmul = L·(H·(q+2kv) + q·H + 3·H·I) + V·H   (LoRA FLOPs not counted)
// Then the rollout's shape (16 prompts of 48–176 tokens × n = 4 and 8, sampled, rows ending on an
// EOS id at different times), prefill times, and peak RSS.
//
// Run: node --import tsx tools/bench/qwen3-decode.ts [--batches 1,8,32,64,128] [--repeats 3]
//        [--new-tokens 64] [--threads 2] [--provider cpu|webgpu] [--only before|after] [--spin on|off]
// (--spin on: the after engine's idle intra-op threads spin as ORT's default; off, its default, yield)
// webgpu needs a GPU and a Vulkan loader; where it cannot start the bench says so and measures nothing.
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { parseArgs } from "node:util";
import { checkProvider, type ExecutionProvider } from "@temper/onnx";
import {
  type DecodeBackend,
  DecodeCacheBackend,
  type GenerateOptions,
  generate,
  initLoraAdapter,
  initModel,
  KvCacheBackend,
  LORA_MODULES,
  type LoraConfig,
  loadTokenizer,
  parameterCount,
  presetConfig,
  Qwen3DecodeEngine,
  Qwen3KvEngine,
  type Tokenizer,
  tokenizerIds,
} from "@temper/qwen3";
import { matmulSession as matmulProbe, median, unchangedSince } from "./baseline.ts";

const { values } = parseArgs({
  options: {
    provider: { type: "string", default: "cpu" },
    batches: { type: "string", default: "1,8,32,64,128" },
    repeats: { type: "string", default: "3" },
    "new-tokens": { type: "string", default: "64" },
    threads: { type: "string", default: "2" },
    only: { type: "string" },
    spin: { type: "string", default: "off" },
  },
});
const provider = values.provider as ExecutionProvider;
if (!["cpu", "webgpu"].includes(provider)) {
  console.error(`--provider: expected cpu or webgpu, got "${provider}"`);
  process.exit(2);
}
const BATCHES = values.batches.split(",").map(Number);
const REPEATS = Number(values.repeats);
const NEW_TOKENS = Number(values["new-tokens"]);
const THREADS = Number(values.threads);
const PROMPT = 128;
const PATHS = values.only ? [values.only] : ["before", "after"];
const LORA: LoraConfig = { rank: 16, alpha: 32, useRslora: false, targetModules: [...LORA_MODULES] };

const root = mkdtempSync(join(tmpdir(), "qwen3-decode-"));
const config = presetConfig("small", tokenizerIds("bytes"));
const mib = (bytes: number) => (bytes / 2 ** 20).toFixed(0);
const peakRss = () => process.resourceUsage().maxRSS * 1024;

/** FLOPs of one decode token at context length c (see the header). */
function tokenFlops(c: number): number {
  const { hiddenSize: H, intermediateSize: I, numHiddenLayers: L, vocabSize: V } = config;
  const q = config.numAttentionHeads * config.headDim;
  const kv = config.numKeyValueHeads * config.headDim;
  const matmulParams = L * (H * (q + 2 * kv) + q * H + 3 * H * I) + V * H;
  return 2 * matmulParams + 4 * L * q * c;
}

/** Median GFLOP/s of a 1024³ MatMul with a constant B (a linear layer's shape), 10 runs. */
async function matmulSession(): Promise<() => Promise<number>> {
  const probe = await matmulProbe(THREADS);
  return () => probe.measure();
}

/** Wraps a backend to time its prefill (the rest of a generate call is decoding and sampling). */
class TimedBackend implements DecodeBackend {
  prefillSeconds = 0;
  constructor(private readonly inner: DecodeBackend) {}
  get vocabSize() {
    return this.inner.vocabSize;
  }
  get maxPositions() {
    return this.inner.maxPositions;
  }
  async prefill(prompts: readonly (readonly number[])[]) {
    const t = performance.now();
    const out = await this.inner.prefill(prompts);
    this.prefillSeconds += (performance.now() - t) / 1000;
    return out;
  }
}

let seed = 1;
const randomIds = (n: number) =>
  Array.from({ length: n }, () => {
    seed = (seed * 1103515245 + 12345) % 2 ** 31;
    return seed % 256;
  });

/** Whether the before-path's files are those of 79d278a (null: git could not tell). */
function beforeUnchanged(): boolean | null {
  return unchangedSince("79d278a", [
    "packages/qwen3/src/infer/engine-kv.ts",
    "packages/qwen3/src/infer/generate-kv.ts",
    "packages/qwen3/src/graph/forward-graph.ts",
    "packages/qwen3/src/graph/lora-graph.ts",
    "packages/qwen3/src/infer/generate.ts",
    "packages/qwen3/src/infer/sampler.ts",
    "packages/onnx/src",
    // backward passes: not on the decode path
    ":(exclude)packages/onnx/src/autodiff.ts",
    ":(exclude)packages/onnx/src/grad-rules.ts",
  ]);
}

interface Run {
  seconds: number;
  prefill: number;
  tokens: number;
}

async function timeGenerate(
  backend: DecodeBackend,
  tokenizer: Tokenizer,
  prompts: number[][],
  options: GenerateOptions,
): Promise<Run> {
  const timed = new TimedBackend(backend);
  const t = performance.now();
  const out = await generate(timed, tokenizer, prompts, options);
  const seconds = (performance.now() - t) / 1000;
  return {
    seconds,
    prefill: timed.prefillSeconds,
    tokens: out.flat().reduce((a, c) => a + c.tokenIds.length, 0),
  };
}

try {
  const dir = join(root, "small");
  initModel({ config, tokenizer: "bytes", out: dir, seed: 1 });
  const tokenizer = await loadTokenizer(dir);
  const adapter = initLoraAdapter(config, LORA, { seed: 7, initB: "random" });
  const unchanged = beforeUnchanged();
  console.log(
    `small preset: ${(parameterCount(config) / 1e6).toFixed(2)}M parameters, LoRA r=16 on all 7 projections loaded; prompts ${PROMPT} tokens, ${NEW_TOKENS} new tokens, greedy, no EOS; provider ${provider}, ${THREADS} threads (after: spinning ${values.spin}); medians of ${REPEATS} interleaved runs`,
  );
  console.log(
    `before = KvCacheBackend/Qwen3KvEngine, ${unchanged === true ? "its files identical to 79d278a" : unchanged === false ? "ITS FILES DIFFER FROM 79d278a" : "(git could not compare with 79d278a)"}; after = DecodeCacheBackend/Qwen3DecodeEngine`,
  );
  let engines: { before?: Qwen3KvEngine; after?: Qwen3DecodeEngine };
  try {
    checkProvider(provider);
    engines = {
      before: PATHS.includes("before")
        ? await Qwen3KvEngine.load(dir, { provider, threads: THREADS, lora: LORA })
        : undefined,
      after: PATHS.includes("after")
        ? await Qwen3DecodeEngine.load(dir, {
            provider,
            threads: THREADS,
            lora: LORA,
            spin: values.spin !== "off",
          })
        : undefined,
    };
  } catch (err) {
    console.log(
      `provider ${provider}: could not run here (${(err as Error).message}); no ${provider} figures were measured`,
    );
    process.exit(0);
  }
  engines.before?.setAdapter(adapter);
  engines.after?.setAdapter(adapter);
  const backends: Record<string, DecodeBackend> = {};
  if (engines.before) backends.before = new KvCacheBackend(engines.before);
  if (engines.after) backends.after = new DecodeCacheBackend(engines.after);
  const matmul = await matmulSession();
  const prompts = Array.from({ length: Math.max(...BATCHES) }, () => randomIds(PROMPT));
  const greedy: GenerateOptions = { temperature: 0, maxNewTokens: NEW_TOKENS };
  const flops = tokenFlops(PROMPT + NEW_TOKENS / 2);
  console.log(
    `FLOPs per decode token (mean context ${PROMPT + NEW_TOKENS / 2}): ${(flops / 1e6).toFixed(1)} M`,
  );
  console.log(
    "batch | MatMul GFLOP/s | MatMul-bound tokens/s | before tokens/s (ratio) | after tokens/s (ratio) | after/before | prefill before / after ms",
  );
  for (const batch of BATCHES) {
    const gflops: number[] = [];
    const rate: Record<string, number[]> = { before: [], after: [] };
    const prefill: Record<string, number[]> = { before: [], after: [] };
    // Each decode run is bracketed by MatMul measurements; its ratio uses their mean (the load of a
    // shared machine changes within seconds), and the medians of the per-run ratios are printed.
    const ratio: Record<string, number[]> = { before: [], after: [] };
    let last = await matmul();
    for (let r = 0; r < REPEATS; r++) {
      gflops.push(last);
      for (const path of PATHS) {
        const run = await timeGenerate(backends[path], tokenizer, prompts.slice(0, batch), greedy);
        if (run.tokens !== batch * NEW_TOKENS) throw new Error(`${path}: a row stopped early`);
        const next = await matmul();
        const tps = (batch * (NEW_TOKENS - 1)) / (run.seconds - run.prefill);
        rate[path].push(tps);
        ratio[path].push(tps / ((((last + next) / 2) * 1e9) / flops));
        prefill[path].push(run.prefill);
        last = next;
      }
    }
    const bound = (median(gflops) * 1e9) / flops;
    const cell = (path: string) =>
      rate[path].length
        ? `${median(rate[path]).toFixed(0).padStart(6)} (${(100 * median(ratio[path])).toFixed(1).padStart(4)}%)`
        : "     -        ";
    const speedup =
      rate.before.length && rate.after.length ? median(rate.after) / median(rate.before) : Number.NaN;
    const ms = (path: string) => (prefill[path].length ? (median(prefill[path]) * 1000).toFixed(0) : "-");
    console.log(
      `${String(batch).padStart(5)} | ${median(gflops).toFixed(0).padStart(14)} | ${bound.toFixed(0).padStart(21)} | ${cell("before").padStart(23)} | ${cell("after").padStart(21)} | ${Number.isNaN(speedup) ? "-" : `${speedup.toFixed(2)}×`.padStart(12)} | ${ms("before")} / ${ms("after")}`,
    );
  }

  // The rollout's shape: 16 prompts of different lengths × n, sampled (temperature 1), rows ending
  // on an EOS id at different steps; prefill and decode together, generated tokens / time.
  const shapePrompts = Array.from({ length: 16 }, (_, i) => randomIds(48 + 8 * i));
  const eos = [10, 32, 101];
  for (const n of [4, 8]) {
    const options: GenerateOptions = {
      temperature: 1,
      maxNewTokens: NEW_TOKENS,
      n,
      seed: 3,
      eosTokenIds: eos,
      batchSize: 16 * n,
    };
    const res: Record<string, Run[]> = { before: [], after: [] };
    for (let r = 0; r < REPEATS; r++)
      for (const path of PATHS)
        res[path].push(await timeGenerate(backends[path], tokenizer, shapePrompts, options));
    const line = (path: string) => {
      if (!res[path].length) return `${path} -`;
      const tps = median(res[path].map((x) => x.tokens / x.seconds));
      return `${path} ${tps.toFixed(0)} tokens/s (prefill ${(median(res[path].map((x) => x.prefill)) * 1000).toFixed(0)} ms)`;
    };
    const tokens = (res.after[0] ?? res.before[0]).tokens;
    console.log(
      `rollout shape 16 prompts (48–168 tokens) × ${n} = ${16 * n} rows, sampled, EOS at different steps (${tokens} tokens): ${line("before")}; ${line("after")}`,
    );
  }
  console.log(`peak RSS ${mib(peakRss())} MiB`);
  if (provider === "cpu")
    console.log(
      "GPU (webgpu): not measured in this run (no GPU lent to this session; pass --provider webgpu on one)",
    );
  await engines.before?.release();
  await engines.after?.release();
} finally {
  rmSync(root, { recursive: true, force: true });
}
