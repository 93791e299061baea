// The rollout service as real processes: a nats-server on a free port and rollout processes over a
// tiny model (byte tokenizer). Determinism (repeat, restart, concurrency, batch size, processes,
// prompt order, step, run id), logprobs and adapters against the `temper` CLI, adapters from the
// object store, bad input, backpressure, cancellation and health while the engine is busy.
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { setTimeout as sleep } from "node:timers/promises";
import { type Bus, connectBus, type PromiseClient } from "@temper/kit";
import { events, rollout } from "@temper/proto";
import {
  ADAPTER_BUCKET,
  ADAPTER_CONFIG_METADATA,
  adapterObjectName,
  encodeAdapterObject,
  initLoraAdapter,
  type LoraAdapter,
  presetConfig,
  type Qwen3Config,
  readConfig,
  saveAdapter,
  tokenizerIds,
} from "@temper/qwen3";
import { runTemper } from "../../../packages/qwen3/src/testing/cli.ts";
import { tinyModelDir } from "../../../packages/qwen3/src/testing/train.ts";
import {
  checkHealth,
  GrpcError,
  Harness,
  Status,
  serviceEntry,
  type TestService,
} from "../../../tests/src/index.ts";
import { promptSeed } from "./seed.ts";

const root = mkdtempSync(join(tmpdir(), "rollout-test-"));
const h = new Harness();
after(async () => {
  await h.close();
  rmSync(root, { recursive: true, force: true });
});

type Client = PromiseClient<typeof rollout.RolloutServiceService>;

interface ReqOptions extends Partial<Omit<rollout.GenerateRequest, "sampling">> {
  sampling?: Partial<rollout.SamplingParams>;
}

function request(o: ReqOptions = {}): rollout.GenerateRequest {
  const { sampling, ...rest } = o;
  return {
    prompts: [
      { id: "q1", prompt: "What is 7+5?", reference: "12" },
      { id: "q2", prompt: "Hi", reference: "" },
      { id: "q3", prompt: "Compute 12*3.", reference: "36" },
    ],
    numCompletions: 3,
    adapterVersion: "",
    chat: false,
    enableThinking: false,
    runId: "",
    step: 3,
    callTag: "",
    ...rest,
    sampling: { temperature: 1, topK: 50, topP: 0.95, maxNewTokens: 20, stop: [], seed: 7, ...sampling },
  };
}

const ids = (r: rollout.GenerateResponse) => r.groups.map((g) => g.completions.map((c) => c.tokenIds));
const byId = (r: rollout.GenerateResponse) => new Map(r.groups.map((g) => [g.id, g]));

async function rejects(p: Promise<unknown>, code: Status, pattern?: RegExp): Promise<GrpcError> {
  try {
    await p;
  } catch (err) {
    assert.ok(err instanceof GrpcError, `not a GrpcError: ${err}`);
    assert.equal(err.codeName, Status[code], err.message);
    if (pattern) assert.match(err.message, pattern);
    return err;
  }
  assert.fail(`expected ${Status[code]}`);
}

const LORA_1 = {
  rank: 4,
  alpha: 8,
  useRslora: false,
  targetModules: ["q_proj", "v_proj", "down_proj"] as const,
};
const LORA_2 = { rank: 2, alpha: 4, useRslora: false, targetModules: ["o_proj", "up_proj"] as const };

describe("rollout service", () => {
  let dir: string;
  let config: Qwen3Config;
  let a64: TestService; // float64, MAX_BATCH_ROWS 1
  let b64: TestService; // float64, MAX_BATCH_ROWS 64
  let c32: TestService; // float32, MAX_BATCH_ROWS 1, small queue and limits, ADAPTER_CACHE 1
  let A: Client;
  let B: Client;
  let C: Client;
  let bus: Bus;

  before(async () => {
    dir = tinyModelDir(root);
    config = readConfig(dir);
    const nats = await h.nats();
    bus = await connectBus({ url: nats.url, name: "rollout-test" });
    const common = { MODEL_DIR: dir, THREADS: "1", PORT: "0" };
    // a shared 2-core machine may take a while to start three processes at once
    const readyTimeoutMs = 90_000;
    [a64, b64, c32] = await Promise.all([
      h.service("rollout", {
        nats,
        readyTimeoutMs,
        env: { ...common, DTYPE: "float64", MAX_BATCH_ROWS: "1" },
      }),
      h.service("rollout", {
        nats,
        readyTimeoutMs,
        env: { ...common, DTYPE: "float64", MAX_BATCH_ROWS: "64" },
      }),
      h.service("rollout", {
        nats,
        readyTimeoutMs,
        env: {
          ...common,
          DTYPE: "float32",
          MAX_BATCH_ROWS: "1",
          QUEUE_DEPTH: "2",
          ADAPTER_CACHE: "1",
          MAX_NEW_TOKENS: "600",
          MAX_PROMPT_TOKENS: "64",
          MAX_PROMPTS: "64",
          MAX_COMPLETIONS: "64",
        },
      }),
    ]);
    A = h.client(rollout.RolloutServiceService, a64.address);
    B = h.client(rollout.RolloutServiceService, b64.address);
    C = h.client(rollout.RolloutServiceService, c32.address);
  });
  after(() => bus?.drain());

  it("GetModelInfo: model, hash, vocab, EOS ids, dtype and limits", async () => {
    const [ia, ib, ic] = await Promise.all([A.getModelInfo({}), B.getModelInfo({}), C.getModelInfo({})]);
    assert.equal(ia.model, dir);
    assert.match(ia.contentHash, /^[0-9a-f]{64}$/);
    assert.equal(ib.contentHash, ia.contentHash);
    assert.equal(ia.vocabSize, config.vocabSize);
    assert.equal(ia.numHiddenLayers, config.numHiddenLayers);
    assert.ok(ia.eosTokenIds.length > 0);
    assert.equal(ia.dtype, "float64");
    assert.equal(ic.dtype, "float32");
    assert.equal(ic.executionProvider, "cpu");
    assert.deepEqual(
      [ic.maxPrompts, ic.maxCompletions, ic.maxNewTokens, ic.maxPromptTokens],
      [64, 64, 600, 64],
    );
    assert.deepEqual(ia.adapterVersions, []);
  });

  describe("seeded, call-independent generation (float64)", () => {
    let first: rollout.GenerateResponse;
    before(async () => {
      first = await A.generate(request());
    });

    it("returns one group per prompt with ids, prompt token ids and aligned logprobs", () => {
      assert.deepEqual(
        first.groups.map((g) => g.id),
        ["q1", "q2", "q3"],
      );
      let tokens = 0;
      for (const g of first.groups) {
        assert.ok(g.promptTokenIds.length > 0);
        assert.deepEqual(
          g.completions.map((c) => c.id),
          [0, 1, 2].map((j) => `${g.id}-${j}`),
        );
        for (const c of g.completions) {
          assert.equal(c.logprobs.length, c.tokenIds.length);
          assert.ok(c.tokenIds.length >= 1 && c.tokenIds.length <= 20);
          assert.ok(c.finishReason === 1 || c.finishReason === 2);
          tokens += c.tokenIds.length;
        }
      }
      assert.equal(first.generatedTokens, tokens);
      assert.ok(first.engineSeconds > 0);
      assert.equal(first.groups[0].reference, "12");
    });

    it("same request → bitwise-identical groups, also while other calls run concurrently", async () => {
      const [, again, , again2] = await Promise.all([
        A.generate(request({ sampling: { seed: 99 } })),
        A.generate(request()),
        A.generate(request({ step: 4, numCompletions: 5 })),
        A.generate(request()),
      ]);
      assert.deepStrictEqual(again.groups, first.groups);
      assert.deepStrictEqual(again2.groups, first.groups);
    });

    it("token ids identical across MAX_BATCH_ROWS 1 and 64 and across two processes", async () => {
      const other = await B.generate(request());
      assert.deepStrictEqual(ids(other), ids(first));
      for (const [g, group] of other.groups.entries())
        for (const [j, c] of group.completions.entries())
          for (const [t, lp] of c.logprobs.entries())
            assert.ok(Math.abs(lp - first.groups[g].completions[j].logprobs[t]) < 1e-9);
    });

    it("KV_CACHE_BYTES: a call larger than the budget runs in waves with one batch's tokens; a row that cannot fit is RESOURCE_EXHAUSTED", async () => {
      // the KV cache of one row: (longest prompt + max_new_tokens) positions × layers × K and V ×
      // key/value heads × head width × 8 bytes (float64)
      const positions = Math.max(...first.groups.map((g) => g.promptTokenIds.length)) + 20;
      const perRow = positions * config.numHiddenLayers * 2 * config.numKeyValueHeads * config.headDim * 8;
      await b64.restart({ KV_CACHE_BYTES: String(Math.floor(2.5 * perRow)), LOG_LEVEL: "debug" });
      try {
        const waves = await B.generate(request());
        assert.deepStrictEqual(ids(waves), ids(first));
        const batches = b64
          .output()
          .split("\n")
          .filter((l) => l.includes('"msg":"engine batches"'))
          .map((l) => JSON.parse(l));
        assert.equal(batches.length, 1);
        assert.deepEqual(
          [batches[0].rows, batches[0].rows_per_wave, batches[0].waves, batches[0].kv_bytes_per_row],
          [9, 2, 5, perRow],
        );
        await b64.restart({ KV_CACHE_BYTES: String(perRow - 1) });
        await rejects(
          B.generate(request()),
          Status.RESOURCE_EXHAUSTED,
          /^sampling\.max_new_tokens: one row of \d+ positions .* over KV_CACHE_BYTES .*raise KV_CACHE_BYTES$/,
        );
      } finally {
        await b64.restart({ KV_CACHE_BYTES: "", LOG_LEVEL: "info" });
      }
    });

    it("a prompt's completions do not change when prompts are added or reordered", async () => {
      const base = request();
      const shuffled = request({
        prompts: [{ id: "extra", prompt: "Another question", reference: "" }, ...[...base.prompts].reverse()],
      });
      const [onA, onB] = await Promise.all([A.generate(shuffled), B.generate(shuffled)]);
      const want = byId(first);
      for (const res of [onA, onB]) {
        for (const g of res.groups) {
          if (g.id === "extra") continue;
          assert.deepStrictEqual(
            g.completions.map((c) => c.tokenIds),
            want.get(g.id)!.completions.map((c) => c.tokenIds),
          );
        }
      }
      // same process, same batch size: bitwise
      for (const g of onA.groups) if (g.id !== "extra") assert.deepStrictEqual(g, want.get(g.id));
    });

    it("changes with the step, not with the run id", async () => {
      const [nextStep, otherRun] = await Promise.all([
        A.generate(request({ step: 4 })),
        A.generate(request({ runId: "another-run", callTag: "eval" })),
      ]);
      assert.notDeepStrictEqual(ids(nextStep), ids(first));
      assert.deepStrictEqual(otherRun.groups, first.groups);
      assert.notEqual(promptSeed(7, 3, "q1"), promptSeed(7, 4, "q1"));
    });

    it("publishes temper.<run>.rollout.completed with a call-tagged Nats-Msg-Id", async () => {
      const res = await A.generate(request({ runId: "evrun", step: 5, callTag: "train.shard-0" }));
      const msg = await bus.jsm.streams.getMessage("TEMPER", {
        last_by_subj: "temper.evrun.rollout.completed",
      });
      assert.ok(msg);
      assert.equal(msg.header.get("Nats-Msg-Id"), "evrun.5.rollout.completed.train.shard-0");
      const ev = events.RolloutCompleted.decode(msg.data);
      assert.equal(ev.runId, "evrun");
      assert.equal(ev.step, 5);
      assert.equal(ev.callTag, "train.shard-0");
      assert.equal(ev.groups, 3);
      assert.equal(ev.completions, 9);
      assert.equal(ev.generatedTokens, res.generatedTokens);
      assert.equal(ev.engineSeconds, res.engineSeconds);
      assert.ok(ev.seconds >= ev.engineSeconds);
    });

    it("same request → same groups after a restart", async () => {
      await a64.restart();
      A = h.client(rollout.RolloutServiceService, a64.address);
      assert.deepStrictEqual((await A.generate(request())).groups, first.groups);
    });
  });

  it("logprobs equal `temper model logprobs` on prompt + completion at the sampling temperature (float32)", async () => {
    const res = await C.generate(
      request({
        prompts: [{ id: "p", prompt: "What is 7+5?", reference: "" }],
        numCompletions: 1,
        sampling: { temperature: 0.7, topK: 20, maxNewTokens: 16 },
      }),
    );
    const g = res.groups[0];
    const c = g.completions[0];
    const all = [...g.promptTokenIds, ...c.tokenIds];
    const r = runTemper(
      "model",
      "logprobs",
      "--model",
      dir,
      "--ids",
      all.join(","),
      "--temperature",
      "0.7",
      "--json",
      "--dtype",
      "float32",
    );
    assert.equal(r.code, 0, r.stderr);
    const want = (JSON.parse(r.stdout).logprobs as number[]).slice(g.promptTokenIds.length - 1);
    assert.equal(want.length, c.logprobs.length);
    for (const [t, lp] of c.logprobs.entries())
      assert.ok(Math.abs(lp - want[t]) < 1e-4, `token ${t}: ${lp} vs ${want[t]}`);
  });

  it("`temper model generate` with its defaults decodes as this rollout: same tokens, same logprobs to the bit", async () => {
    const prompt = "Compute 12*3.";
    const res = await C.generate(
      request({
        prompts: [{ id: "p", prompt, reference: "" }],
        numCompletions: 1,
        sampling: { temperature: 0, topK: 0, topP: 0.95, maxNewTokens: 24 },
      }),
    );
    const [group] = res.groups;
    const r = runTemper(
      "model",
      "generate",
      ...["--model", dir, "--prompt", prompt, "--json"],
      ...["--temperature", "0", "--top-k", "0", "--top-p", "0.95", "--max-new-tokens", "24"],
    );
    assert.equal(r.code, 0, r.stderr);
    const out = JSON.parse(r.stdout);
    assert.deepEqual([out.engine, out.dtype], ["fast", "float32"]);
    assert.deepEqual(out.prompt_token_ids, group.promptTokenIds);
    const [cli] = out.completions as { token_ids: number[]; logprobs: number[] }[];
    assert.deepEqual(cli.token_ids, group.completions[0].tokenIds);
    // One engine gives the same logits to the bit; another float32 engine differs in the last bits.
    assert.deepEqual(cli.logprobs, group.completions[0].logprobs);
  });

  describe("adapters by version from the object store", () => {
    const PROMPT = "What is 7+5?";
    const greedy = (adapterVersion = "", runId = adapterVersion ? "run-a" : "") =>
      request({
        prompts: [{ id: "g", prompt: PROMPT, reference: "" }],
        numCompletions: 1,
        chat: true,
        adapterVersion,
        runId,
        sampling: { temperature: 0, topK: 0, maxNewTokens: 16 },
      });
    const tokensOf = (r: rollout.GenerateResponse) => r.groups[0].completions[0].tokenIds;
    let adapters: LoraAdapter[];

    before(async () => {
      adapters = [
        initLoraAdapter(
          config,
          { ...LORA_1, targetModules: [...LORA_1.targetModules] },
          { seed: 1, initB: "random" },
        ),
        initLoraAdapter(
          config,
          { ...LORA_2, targetModules: [...LORA_2.targetModules] },
          { seed: 2, initB: "random" },
        ),
      ];
      const store = await bus.objectStore(ADAPTER_BUCKET);
      for (const [i, adapter] of adapters.entries()) {
        const obj = encodeAdapterObject(adapter, { baseModel: dir });
        await store.putBlob(
          {
            name: adapterObjectName("run-a", `v${i + 1}`),
            metadata: { [ADAPTER_CONFIG_METADATA]: obj.config },
          },
          obj.weights,
        );
        saveAdapter(join(root, `peft-v${i + 1}`), adapter, { baseModel: dir });
      }
      // an adapter for another model shape: a layout this rollout cannot serve
      const wrong = presetConfig("tiny", tokenizerIds("bytes"));
      const alien = initLoraAdapter(
        { ...wrong, hiddenSize: 32, headDim: 16 },
        { ...LORA_1, targetModules: [...LORA_1.targetModules] },
        { seed: 3, initB: "random" },
      );
      const obj = encodeAdapterObject(alien, { baseModel: null });
      await store.putBlob(
        { name: adapterObjectName("run-a", "alien"), metadata: { [ADAPTER_CONFIG_METADATA]: obj.config } },
        obj.weights,
      );
    });

    it("greedy completions equal `temper model generate --adapter` and differ from the base model", async () => {
      const base = tokensOf(await C.generate(greedy()));
      for (const v of [1, 2]) {
        const got = tokensOf(await C.generate(greedy(`v${v}`)));
        assert.notDeepStrictEqual(got, base, `adapter v${v} gives the base model's output`);
        const r = runTemper(
          "model",
          "generate",
          "--model",
          dir,
          "--adapter",
          join(root, `peft-v${v}`),
          "--prompt",
          PROMPT,
          "--chat",
          "--no-thinking",
          "--temperature",
          "0",
          "--max-new-tokens",
          "16",
          "--json",
        );
        assert.equal(r.code, 0, r.stderr);
        assert.deepStrictEqual(got, JSON.parse(r.stdout).completions[0].token_ids);
      }
    });

    it("interleaved calls with different adapters each get their own output (LRU of one)", async () => {
      const solo = await Promise.all(["", "v1", "v2"].map(async (v) => (await C.generate(greedy(v))).groups));
      const order = ["v1", "v2", "", "v1", "v2", "v2", "v1"];
      // the queue holds 2, so send in waves of 3
      for (let i = 0; i < order.length; i += 3) {
        const wave = order.slice(i, i + 3);
        const out = await Promise.all(wave.map((v) => C.generate(greedy(v))));
        wave.forEach((v, k) => {
          assert.deepStrictEqual(out[k].groups, solo[["", "v1", "v2"].indexOf(v)]);
          assert.equal(out[k].adapterVersion, v);
        });
      }
      const info = await C.getModelInfo({});
      assert.equal(info.adapterVersions.length, 1);
    });

    it("unknown version NOT_FOUND; unservable layout FAILED_PRECONDITION; version needs run_id", async () => {
      await rejects(C.generate(greedy("v404")), Status.NOT_FOUND, /adapter_version/);
      await rejects(C.generate(greedy("alien")), Status.FAILED_PRECONDITION, /adapter_version/);
      await rejects(C.generate(greedy("v1", "")), Status.INVALID_ARGUMENT, /^run_id/);
      // the service still serves afterwards
      assert.equal(tokensOf(await C.generate(greedy("v1"))).length > 0, true);
    });
  });

  it("bad input → INVALID_ARGUMENT naming the field", async () => {
    const long = "x".repeat(65);
    const cases: [string, ReqOptions][] = [
      ["prompts", { prompts: [] }],
      ["prompts[1].prompt", { prompts: [request().prompts[0], { id: "e", prompt: "", reference: "" }] }],
      ["prompts[1].id", { prompts: [request().prompts[0], { ...request().prompts[0] }] }],
      ["prompts[0].id", { prompts: [{ id: "", prompt: "x", reference: "" }] }],
      ["prompts[0].prompt", { prompts: [{ id: "x", prompt: long, reference: "" }] }],
      ["num_completions", { numCompletions: 0 }],
      ["num_completions", { numCompletions: 65 }],
      ["sampling.max_new_tokens", { sampling: { maxNewTokens: 601 } }],
      ["sampling.max_new_tokens", { sampling: { maxNewTokens: 0 } }],
      ["sampling.temperature", { sampling: { temperature: -1 } }],
      ["sampling.temperature", { sampling: { temperature: Number.NaN } }],
      ["sampling.temperature", { sampling: { temperature: Number.POSITIVE_INFINITY } }],
      ["sampling.top_p", { sampling: { topP: 0 } }],
      ["sampling.top_p", { sampling: { topP: 1.5 } }],
      ["sampling.stop[0]", { sampling: { stop: [""] } }],
      ["run_id", { runId: "bad run" }],
      ["run_id", { runId: "x".repeat(65) }],
      ["call_tag", { runId: "r", callTag: "a b" }],
      ["adapter_version", { runId: "r", adapterVersion: "a/b" }],
      ["enable_thinking", { enableThinking: true }],
    ];
    for (const [field, o] of cases) {
      const err = await rejects(C.generate(request(o)), Status.INVALID_ARGUMENT);
      assert.ok(err.message.startsWith(`${field}:`), `${JSON.stringify(o)} → ${err.message}`);
    }
    assert.equal((await C.generate(request({ numCompletions: 1 }))).groups.length, 3);
  });

  it("health SERVING within 1 s during a long Generate; full queue RESOURCE_EXHAUSTED; cancel and deadline free the engine", async () => {
    const prompts = Array.from({ length: 64 }, (_, i) => ({
      id: `p${i}`,
      prompt: `Question ${i}`,
      reference: "",
    }));
    // 4096 rows of up to 500 tokens, one row per engine batch: minutes of work unless cancelled.
    const huge = request({ prompts, numCompletions: 64, sampling: { maxNewTokens: 500, topK: 0, topP: 1 } });
    const ac = new AbortController();
    let settled = false;
    const long = C.generate(huge, { signal: ac.signal, attempts: 1 }).finally(() => (settled = true));
    long.catch(() => {});
    await sleep(800);
    const t0 = Date.now();
    assert.equal(await checkHealth(c32.address, "", 1000), "SERVING");
    assert.ok(Date.now() - t0 < 1000);
    assert.equal(settled, false, "the long call finished early");

    const small = request({ numCompletions: 1, sampling: { maxNewTokens: 4 } });
    const queued = [C.generate(small), C.generate(small)];
    await sleep(100);
    await rejects(C.generate(small), Status.RESOURCE_EXHAUSTED, /queue/);
    await sleep(9000 - (Date.now() - t0));
    assert.equal(settled, false, "the long call ran less than 10 s");

    ac.abort();
    await rejects(long, Status.CANCELLED);
    const freed = Date.now();
    await Promise.all(queued);
    assert.ok(Date.now() - freed < 2000, `queued calls took ${Date.now() - freed} ms after the cancel`);

    // a deadline that passes mid-generation stops it within a step, too
    const d0 = Date.now();
    await rejects(C.generate(huge, { timeoutMs: 500, attempts: 1 }), Status.DEADLINE_EXCEEDED);
    const t1 = Date.now();
    await C.generate(small);
    assert.ok(Date.now() - t1 < 1500, `the call after the deadline took ${Date.now() - t1} ms`);
    assert.ok(t1 - d0 < 3000);
  });

  it("float32: across MAX_BATCH_ROWS 1 and 64 logprobs agree within 1e-4 (differing-token rate reported)", async () => {
    const big = request({
      prompts: Array.from({ length: 8 }, (_, i) => ({
        id: `f${i}`,
        prompt: `Sum ${i} and ${2 * i}`,
        reference: "",
      })),
      numCompletions: 8,
      sampling: { maxNewTokens: 32, topK: 0, topP: 1 },
    });
    const rows1 = await C.generate(big);
    await c32.restart({ MAX_BATCH_ROWS: "64" });
    C = h.client(rollout.RolloutServiceService, c32.address);
    const rows64 = await C.generate(big);
    let compared = 0;
    let differing = 0;
    let maxDiff = 0;
    for (const [g, group] of rows1.groups.entries()) {
      for (const [j, c] of group.completions.entries()) {
        const o = rows64.groups[g].completions[j];
        const n = Math.min(c.tokenIds.length, o.tokenIds.length);
        for (let t = 0; t < n; t++) {
          compared++;
          if (c.tokenIds[t] !== o.tokenIds[t]) {
            differing++;
            break; // after a divergence the continuations are unrelated
          }
          maxDiff = Math.max(maxDiff, Math.abs(c.logprobs[t] - o.logprobs[t]));
        }
      }
    }
    console.log(
      `float32 MAX_BATCH_ROWS 1 vs 64: ${differing}/${compared} tokens differ (${((100 * differing) / compared).toFixed(3)} %), max |Δlogprob| ${maxDiff.toExponential(2)}`,
    );
    assert.ok(maxDiff < 1e-4, `max logprob difference ${maxDiff}`);
  });

  it("a bad configuration value exits 2 with one line naming the variable", () => {
    for (const [name, value] of [
      ["DTYPE", "float16"],
      ["MODEL_DIR", join(root, "nowhere")],
    ]) {
      const r = spawnSync(process.execPath, ["--import", "tsx", serviceEntry("rollout")], {
        env: { ...process.env, MODEL_DIR: dir, PORT: "0", [name]: value },
        encoding: "utf8",
        timeout: 30_000,
      });
      assert.equal(r.status, 2, r.stderr);
      const lines = r.stderr.trim().split("\n");
      assert.equal(lines.length, 1, r.stderr);
      assert.match(lines[0], new RegExp(`${name}=`));
    }
  });

  it("a model larger than the memory there is: one line and exit 2 before it loads", () => {
    const r = spawnSync(process.execPath, ["--import", "tsx", serviceEntry("rollout")], {
      env: { ...process.env, MODEL_DIR: dir, PORT: "0", MEMORY_LIMIT: "100000" },
      encoding: "utf8",
      timeout: 30_000,
    });
    assert.equal(r.status, 2, r.stderr);
    assert.match(
      r.stderr,
      /^rollout: the model \(.*, float32\) needs about [\d.]+ MiB, and 97\.7 KiB is available \(MEMORY_LIMIT\): .*MEMORY_CHECK=off tries anyway\n$/,
    );
  });
});
