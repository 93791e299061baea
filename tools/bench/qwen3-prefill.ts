// Prefill (logprobs) throughput of the Qwen3 ONNX graph on CPU for the `small` preset (~12.7M
// parameters, byte tokenizer): tokens/s at sequence 256, batch 1 and 8, achieved GFLOP/s, and the same
// process's GFLOP/s on one large plain MatMul (1024×1024 · 1024×1024) as the ceiling to compare with.
//
// FLOPs counted per sequence of S tokens (multiply-add = 2 FLOPs):
//   linear layers: 2 · S · P_matmul, P_matmul = L·(H·(q+2kv) + q·H + 3·H·I) + V·H  (q = heads·d, kv = kv_heads·d;
//                  the lm_head counts once even when tied; embedding lookups and norms are not counted)
//   attention:     per layer 2 · (2 · S² · heads · d) / 2 — QKᵀ and PV over the causal half of the S×S scores
//                  (the graph computes the full square and masks it; the masked half is not counted)
// Run: node --import tsx tools/bench/qwen3-prefill.ts
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { GraphBuilder, Session, tensor } from "@temper/onnx";
import {
  initModel,
  parameterCount,
  presetConfig,
  type Qwen3Config,
  Qwen3Engine,
  tokenizerIds,
} from "@temper/qwen3";

const SEQ = 256;
const BATCHES = [1, 8];
const MIN_SECONDS = 2;
const SETTINGS: { optimization: "all" | "basic"; threads: number }[] = [
  { optimization: "all", threads: 2 },
  { optimization: "basic", threads: 2 },
  { optimization: "all", threads: 1 },
];

const root = mkdtempSync(join(tmpdir(), "qwen3-prefill-"));
const config = presetConfig("small", tokenizerIds("bytes"));
const mib = (bytes: number) => (bytes / 2 ** 20).toFixed(0);
const peakRss = () => process.resourceUsage().maxRSS * 1024;

function flopsPerSequence(c: Qwen3Config, s: number): number {
  const q = c.numAttentionHeads * c.headDim;
  const kv = c.numKeyValueHeads * c.headDim;
  const h = c.hiddenSize;
  const perLayer = h * (q + 2 * kv) + q * h + 3 * h * c.intermediateSize;
  const matmulParams = c.numHiddenLayers * perLayer + c.vocabSize * h;
  const attention = c.numHiddenLayers * 2 * s * s * q; // 2 matmuls · 2 FLOPs · S²·q / 2 (causal)
  return 2 * s * matmulParams + attention;
}

/**
 * Seconds of the fastest call of `fn` (after one warm-up; at least 3 calls and MIN_SECONDS): the
 * machine is shared, and the best call is the one least disturbed by other processes.
 */
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

try {
  const dir = join(root, "small");
  initModel({ config, tokenizer: "bytes", out: dir, seed: 1 });
  const perSeq = flopsPerSequence(config, SEQ);
  console.log(
    `small preset: ${(parameterCount(config) / 1e6).toFixed(2)}M parameters, sequence ${SEQ}, ${(perSeq / 1e9).toFixed(2)} GFLOP per sequence`,
  );
  let seed = 1;
  const randomIds = (n: number) =>
    Array.from({ length: n }, () => {
      seed = (seed * 1103515245 + 12345) % 2 ** 31;
      return seed % 261;
    });
  for (const setting of SETTINGS) {
    const engine = await Qwen3Engine.load(dir, { dtype: "float32", ...setting });
    for (const batch of BATCHES) {
      const sequences = Array.from({ length: batch }, () => randomIds(SEQ));
      // the ceiling is measured right before each run: the machine is shared, its load drifts
      const ceiling = await matmulGflops(setting.threads);
      const seconds = await time(() => engine.logprobs(sequences));
      const gflops = (batch * perSeq) / seconds / 1e9;
      console.log(
        `optimization ${setting.optimization.padEnd(5)} threads ${setting.threads}  batch ${batch}: ${((batch * SEQ) / seconds).toFixed(0).padStart(6)} tokens/s, ${(seconds * 1000).toFixed(0).padStart(5)} ms/run, ${gflops.toFixed(1).padStart(5)} GFLOP/s vs large MatMul ${ceiling.toFixed(1)} GFLOP/s (${((100 * gflops) / ceiling).toFixed(0)}%)`,
      );
    }
    await engine.release();
  }
  console.log(`peak RSS ${mib(peakRss())} MiB`);
} finally {
  rmSync(root, { recursive: true, force: true });
}
