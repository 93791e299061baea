// Decode throughput of KV-cached generation (KvCacheBackend over Qwen3KvEngine) for the `small`
// preset (~12.7M parameters, byte tokenizer): prompts of 128 random tokens, 32 new tokens, greedy,
// no EOS stop, at batch 1, 8 and 32, under several ORT settings. Prints per batch the prefill time,
// decode tokens/s (31 decode steps × batch, after the prefill's first token) and the batch-32 /
// batch-1 decode ratio; then the cost of finished rows kept padded vs compacted out of the cache
// (batch 32, one row finishing per step); and the peak RSS.
//
// Run: node --import tsx tools/bench/qwen3-decode.ts [--provider cpu|webgpu]
// webgpu needs a GPU and a Vulkan loader; where it cannot start the bench says so and measures nothing.
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { parseArgs } from "node:util";
import { checkProvider, type ExecutionProvider } from "@temper/onnx";
import {
  type DecodeBackend,
  generate,
  initModel,
  KvCacheBackend,
  loadTokenizer,
  parameterCount,
  presetConfig,
  Qwen3KvEngine,
  tokenizerIds,
} from "@temper/qwen3";

const PROMPT = 128;
const NEW_TOKENS = 32;
const BATCHES = [1, 8, 32];
const REPEATS = 2;
const SETTINGS: { optimization: "all" | "basic"; threads: number }[] = [
  { optimization: "all", threads: 2 },
  { optimization: "basic", threads: 2 },
  { optimization: "all", threads: 1 },
];

const { values } = parseArgs({ options: { provider: { type: "string", default: "cpu" } } });
const provider = values.provider as ExecutionProvider;
if (!["cpu", "webgpu"].includes(provider)) {
  console.error(`--provider: expected cpu or webgpu, got "${provider}"`);
  process.exit(2);
}

const root = mkdtempSync(join(tmpdir(), "qwen3-decode-"));
const config = presetConfig("small", tokenizerIds("bytes"));
const mib = (bytes: number) => (bytes / 2 ** 20).toFixed(0);
const peakRss = () => process.resourceUsage().maxRSS * 1024;

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
    this.prefillSeconds = (performance.now() - t) / 1000;
    return out;
  }
}

let seed = 1;
const randomIds = (n: number) =>
  Array.from({ length: n }, () => {
    seed = (seed * 1103515245 + 12345) % 2 ** 31;
    return seed % 256;
  });

async function openEngine(dir: string, setting: (typeof SETTINGS)[number]): Promise<Qwen3KvEngine | null> {
  try {
    checkProvider(provider);
    return await Qwen3KvEngine.load(dir, { provider, ...setting });
  } catch (err) {
    console.log(
      `provider ${provider}: could not run here (${(err as Error).message}); no ${provider} figures were measured`,
    );
    return null;
  }
}

try {
  const dir = join(root, "small");
  initModel({ config, tokenizer: "bytes", out: dir, seed: 1 });
  const tokenizer = await loadTokenizer(dir);
  console.log(
    `small preset: ${(parameterCount(config) / 1e6).toFixed(2)}M parameters; prompts ${PROMPT} tokens, ${NEW_TOKENS} new tokens, greedy, no EOS; provider ${provider}; best of ${REPEATS}`,
  );
  const prompts = Array.from({ length: Math.max(...BATCHES) }, () => randomIds(PROMPT));
  let available = true;
  for (const setting of SETTINGS) {
    const engine = await openEngine(dir, setting);
    if (!engine) {
      available = false;
      break;
    }
    const decodeRate = new Map<number, number>();
    for (const batch of BATCHES) {
      const timed = new TimedBackend(new KvCacheBackend(engine));
      let best = { total: Number.POSITIVE_INFINITY, prefill: 0 };
      for (let r = 0; r < REPEATS; r++) {
        const t = performance.now();
        const out = await generate(timed, tokenizer, prompts.slice(0, batch), {
          temperature: 0,
          maxNewTokens: NEW_TOKENS,
        });
        const total = (performance.now() - t) / 1000;
        if (out.flat().some((c) => c.tokenIds.length !== NEW_TOKENS)) throw new Error("a row stopped early");
        if (total < best.total) best = { total, prefill: timed.prefillSeconds };
      }
      const decodeSeconds = best.total - best.prefill;
      const rate = (batch * (NEW_TOKENS - 1)) / decodeSeconds;
      decodeRate.set(batch, rate);
      console.log(
        `optimization ${setting.optimization.padEnd(5)} threads ${setting.threads}  batch ${String(batch).padStart(2)}: prefill ${(best.prefill * 1000).toFixed(0).padStart(5)} ms, decode ${rate.toFixed(0).padStart(6)} tokens/s (${((decodeSeconds / (NEW_TOKENS - 1)) * 1000).toFixed(1)} ms/step), end to end ${((batch * NEW_TOKENS) / best.total).toFixed(0)} tokens/s`,
      );
    }
    const ratio = decodeRate.get(32)! / decodeRate.get(1)!;
    console.log(`  decode batch 32 / batch 1 = ${ratio.toFixed(1)}× (target ≥ 10×)`);
    await engine.release();
  }

  // Finished rows: batch 32 where row r leaves after r decode steps; compacted out of the cache or
  // kept in the batch with a padding token.
  const engine = available ? await openEngine(dir, SETTINGS[0]) : null;
  if (engine) {
    for (const compact of [true, false]) {
      const backend = new KvCacheBackend(engine, { compact });
      let best = Number.POSITIVE_INFINITY;
      for (let r = 0; r < REPEATS; r++) {
        const { session } = await backend.prefill(prompts.slice(0, 32));
        const t = performance.now();
        for (let step = 0; step < NEW_TOKENS - 1; step++) {
          const rows = Array.from({ length: 32 - step }, (_, i) => i + step);
          await session.decode(
            rows,
            rows.map(() => 65),
          );
        }
        best = Math.min(best, (performance.now() - t) / 1000);
        session.close();
      }
      console.log(
        `finished rows ${compact ? "compacted" : "kept padded"}: 31 decode steps of 32 → 2 live rows in ${(best * 1000).toFixed(0)} ms`,
      );
    }
    await engine.release();
  }
  if (available) console.log(`peak RSS ${mib(peakRss())} MiB`);
  if (provider === "cpu")
    console.log(
      "GPU (webgpu): not measured in this run (no GPU lent to this session; pass --provider webgpu on one)",
    );
} finally {
  rmSync(root, { recursive: true, force: true });
}
