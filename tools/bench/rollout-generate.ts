// The rollout service's overhead: one Generate of 8 prompts × 8 completions (64 rows) × 64 new
// tokens through gRPC (real nats-server and rollout process) against the same generation in-process
// (openDecodeBackend with the rollout's default dtype and engine, generate() with the same seeds), on
// the small model, float32. The service adds
// request checks and tokenizing, the hop to the engine thread, the response and the
// rollout.completed event. Prints wall time, engine_seconds and overhead % (target ≤ 5%); asserts
// nothing.
//   node --import tsx tools/bench/rollout-generate.ts [--calls 3] [--threads 2]
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { parseArgs } from "node:util";
import { rollout } from "@temper/proto";
import {
  DEFAULT_DECODE_DTYPE,
  DEFAULT_DECODE_ENGINE,
  generate,
  initModel,
  loadTokenizer,
  openDecodeBackend,
  openModelDir,
  presetConfig,
  tokenizerIds,
} from "@temper/qwen3";
import { promptSeed } from "../../services/rollout/src/seed.ts";
import { Harness } from "../../tests/src/index.ts";

const { values: args } = parseArgs({
  options: { calls: { type: "string", default: "3" }, threads: { type: "string", default: "2" } },
});
const CALLS = Number(args.calls);
const THREADS = Number(args.threads);
const PROMPTS = 8;
const N = 8;
const NEW_TOKENS = 64;
const SEED = 5;

const tmp = mkdtempSync(join(tmpdir(), "temper-bench-rollout-"));
const modelDir = join(tmp, "small");
initModel({
  config: presetConfig("small", tokenizerIds("bytes")),
  tokenizer: "bytes",
  out: modelDir,
  seed: 1,
  dtype: "f32",
});

const prompts = Array.from({ length: PROMPTS }, (_, i) => ({
  id: `q${i}`,
  prompt: `Question ${i}: a shop sells ${3 + i} pens at ${2 * i + 1} dollars each. How much in total?`,
  reference: "",
}));
// No EOS stop in a random model is likely, but the token count is reported either way.
const sampling = { temperature: 1, topK: 0, topP: 1, maxNewTokens: NEW_TOKENS, stop: [], seed: SEED };
const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];

// in-process: the engine and generate() the rollout's worker runs, with the rollout's seeds
const model = openModelDir(modelDir);
const tokenizer = await loadTokenizer(modelDir);
// the rollout's defaults (DTYPE, ENGINE), as the service below runs with
const backend = await openDecodeBackend(model, {
  dtype: DEFAULT_DECODE_DTYPE,
  engine: DEFAULT_DECODE_ENGINE,
  threads: THREADS,
});
const ids = prompts.map((p) => tokenizer.encode(p.prompt));
const inProcess: number[] = [];
let inProcessTokens = 0;
for (let c = 0; c < CALLS + 1; c++) {
  const t0 = performance.now();
  const out = await generate(backend, tokenizer, ids, {
    ...sampling,
    n: N,
    eosTokenIds: model.eosTokenIds,
    seeds: prompts.map((p) => promptSeed(SEED, c, p.id)),
    batchSize: PROMPTS * N,
  });
  if (c > 0) {
    inProcess.push((performance.now() - t0) / 1000); // call 0 warms the session
    inProcessTokens = out.flat().reduce((a, x) => a + x.tokenIds.length, 0);
  }
}
model.checkpoint.close();

const h = new Harness();
try {
  const svc = await h.service("rollout", {
    withNats: true,
    env: { MODEL_DIR: modelDir, THREADS: String(THREADS), MAX_BATCH_ROWS: String(PROMPTS * N) },
    readyTimeoutMs: 60_000,
  });
  const client = h.client(rollout.RolloutServiceService, svc.address);
  const wall: number[] = [];
  const engine: number[] = [];
  let tokens = 0;
  for (let c = 0; c < CALLS + 1; c++) {
    const t0 = performance.now();
    const res = await client.generate(
      {
        prompts,
        numCompletions: N,
        sampling,
        adapterVersion: "",
        chat: false,
        enableThinking: false,
        runId: "bench",
        step: c,
        callTag: "bench",
      },
      { timeoutMs: 600_000 },
    );
    if (c > 0) {
      wall.push((performance.now() - t0) / 1000);
      engine.push(res.engineSeconds);
      tokens = res.generatedTokens;
    }
  }
  const w = median(wall);
  const e = median(engine);
  const ip = median(inProcess);
  console.log(
    `rollout Generate, small model, ${PROMPTS} prompts × ${N} = ${PROMPTS * N} rows × ${NEW_TOKENS} new tokens, float32, ${THREADS} threads, median of ${CALLS}`,
  );
  console.log(`  in-process generate():  ${(ip * 1000).toFixed(0)} ms (${inProcessTokens} tokens)`);
  console.log(`  gRPC Generate wall:     ${(w * 1000).toFixed(0)} ms (${tokens} tokens)`);
  console.log(`  engine_seconds:         ${(e * 1000).toFixed(0)} ms`);
  console.log(`  overhead vs in-process: ${(((w - ip) / ip) * 100).toFixed(1)}% (target ≤ 5%)`);
  console.log(`  overhead vs engine_seconds: ${(((w - e) / e) * 100).toFixed(1)}%`);
} finally {
  await h.close();
  rmSync(tmp, { recursive: true, force: true });
}
