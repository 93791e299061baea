// The learner as a real process against a real nats-server, with a tiny model on disk.
import assert from "node:assert/strict";
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { after, before, describe, it } from "node:test";
import { status } from "@grpc/grpc-js";
import {
  checkHealth,
  connectBus,
  createClient,
  GrpcError,
  type PromiseClient,
  TEMPER_STREAM,
} from "@temper/kit";
import { events, learner } from "@temper/proto";
import {
  ADAPTER_BUCKET,
  ADAPTER_CONFIG_METADATA,
  decodeAdapterObject,
  initLoraAdapter,
  LORA_MODULES,
  type LoraAdapter,
  loadAdapter,
  loraTensorName,
  type Qwen3Config,
  Qwen3Trainer,
  readConfig,
  type TrainSequence,
  trainActivationBytes,
} from "@temper/qwen3";
import { tinyModelDir } from "../../../packages/qwen3/src/testing/train.ts";
import { startNats, startService, type TestNats, type TestService } from "../../../tests/src/processes.ts";

type Client = PromiseClient<typeof learner.LearnerServiceService>;

const tmp = mkdtempSync(join(tmpdir(), "temper-learner-"));
const modelDir = tinyModelDir(tmp);
const model: Qwen3Config = readConfig(modelDir);
let nats: TestNats;
const procs: TestService[] = [];
const clients: Client[] = [];

before(async () => {
  nats = await startNats();
});
after(async () => {
  for (const c of clients) c.$close();
  await Promise.all(procs.map((p) => p.stop().catch(() => p.kill())));
  await nats?.stop();
  rmSync(tmp, { recursive: true, force: true });
});

async function learnerProcess(name: string, env: Record<string, string> = {}) {
  const svc = await startService("learner", {
    nats,
    env: {
      MODEL_DIR: modelDir,
      CHECKPOINT_DIR: join(tmp, name, "ckpt"),
      EXPORT_DIR: join(tmp, name, "export"),
      THREADS: "1",
      ...env,
    },
  });
  procs.push(svc);
  const client = createClient(learner.LearnerServiceService, svc.address, {
    defaults: { timeoutMs: 120_000 },
  });
  clients.push(client);
  return { svc, client, ckpt: join(tmp, name, "ckpt"), exportDir: join(tmp, name, "export") };
}

/** A fresh client (a restarted process gets a new one: the old channel may sit in reconnect backoff). */
function newClient(svc: TestService): Client {
  const client = createClient(learner.LearnerServiceService, svc.address, {
    defaults: { timeoutMs: 120_000 },
  });
  clients.push(client);
  return client;
}

/** Retries UNAVAILABLE (a just-restarted process's first connection), as the orchestrator does. */
async function retrying<T>(fn: () => Promise<T>): Promise<T> {
  for (let attempt = 0; ; attempt++) {
    try {
      return await fn();
    } catch (err) {
      if (!(err instanceof GrpcError) || err.code !== status.UNAVAILABLE || attempt >= 20) throw err;
      await new Promise((r) => setTimeout(r, 250));
    }
  }
}

/** Deterministic pseudo-random numbers in [0, 1). */
function rand(seed: number) {
  let s = seed >>> 0 || 1;
  return () => {
    s ^= s << 13;
    s >>>= 0;
    s ^= s >>> 17;
    s ^= s << 5;
    s >>>= 0;
    return s / 2 ** 32;
  };
}

/** B sequences of T tokens; prompt of 4 tokens; old logprobs near the tiny model's (≈ −ln 320). */
function batch(seed: number, B: number, T: number): learner.TrainingSequence[] {
  const r = rand(seed);
  return Array.from({ length: B }, () => ({
    inputIds: Array.from({ length: T }, () => Math.floor(r() * 256)),
    completionMask: Array.from({ length: T }, (_, t) => (t >= 4 ? 1 : 0)),
    advantage: r() * 2 - 1,
    oldLogprobs: Array.from({ length: T }, (_, t) => (t === 0 ? 0 : -5.77 + 0.2 * (r() - 0.5))),
    refLogprobs: [],
  }));
}

/** Makes the loss non-finite: ratio exp(lp − old) overflows and a negative advantage keeps it. */
function nonFinite(seqs: learner.TrainingSequence[]): learner.TrainingSequence[] {
  return seqs.map((s) => ({
    ...s,
    advantage: -1,
    oldLogprobs: s.oldLogprobs.map((_, t) => (t === 0 ? 0 : -1e300)),
  }));
}

const toTrain = (s: learner.TrainingSequence): TrainSequence => ({
  inputIds: s.inputIds,
  completionMask: s.completionMask,
  advantage: s.advantage,
  oldLogprobs: s.oldLogprobs,
});

async function rejects(p: Promise<unknown>, code: status, pattern: RegExp) {
  await assert.rejects(p, (err: unknown) => {
    assert.ok(err instanceof GrpcError, String(err));
    assert.equal(err.code, code, `${status[err.code]}: ${err.message}`);
    assert.match(err.message, pattern);
    return true;
  });
}

const weightsOf = (dir: string) => readFileSync(join(dir, "adapter_model.safetensors"));

function flat(a: LoraAdapter): Float64Array {
  return Float64Array.from(a.pairs.flatMap((p) => [...p.a, ...p.b]));
}
function relDiff(got: Float64Array, want: Float64Array, from: Float64Array): number {
  let num = 0;
  let den = 0;
  for (let i = 0; i < want.length; i++) {
    num += (got[i] - want[i]) ** 2;
    den += (want[i] - from[i]) ** 2;
  }
  return Math.sqrt(num / den);
}

const RANK = 4;
const CONFIG: learner.RunConfig = {
  model: "",
  lora: { rank: RANK, alpha: 8, targetModules: [], useRslora: false },
  optimizer: {
    learningRate: 0.02,
    weightDecay: 0.01,
    maxGradNorm: 0.05,
    schedule: learner.LrSchedule.LR_SCHEDULE_COSINE,
    warmupSteps: 1,
    totalSteps: 4,
    minLrRatio: 0.1,
    beta2: 0.99,
  },
  loss: {
    type: learner.LossType.LOSS_TYPE_GRPO,
    aggregation: learner.LossAggregation.LOSS_AGGREGATION_TOKEN,
  },
  microBatchSize: 2,
  miniBatches: 2,
  iterations: 1,
  temperature: 0.9,
  seed: 7,
};

/** An independent float64 AdamW + clipping + warm-up/cosine schedule over the flat adapter. */
function referenceSteps(
  p0: LoraAdapter,
  gradsPerUpdate: Map<string, Float64Array>[],
): LoraAdapter<Float64Array> {
  const o = CONFIG.optimizer!;
  const names = p0.pairs.flatMap((p) => [
    loraTensorName(p.layer, p.module, "A"),
    loraTensorName(p.layer, p.module, "B"),
  ]);
  const params = new Map<string, Float64Array>();
  p0.pairs.forEach((p) => {
    params.set(loraTensorName(p.layer, p.module, "A"), Float64Array.from(p.a));
    params.set(loraTensorName(p.layer, p.module, "B"), Float64Array.from(p.b));
  });
  const m = new Map(names.map((n) => [n, new Float64Array(params.get(n)!.length)]));
  const v = new Map(names.map((n) => [n, new Float64Array(params.get(n)!.length)]));
  gradsPerUpdate.forEach((g, k) => {
    const t = k + 1;
    const pos = k;
    const lr =
      pos < o.warmupSteps
        ? (o.learningRate * pos) / o.warmupSteps
        : o.learningRate *
          (o.minLrRatio! +
            (1 - o.minLrRatio!) *
              0.5 *
              (1 + Math.cos(Math.PI * Math.min(1, (pos - o.warmupSteps) / (o.totalSteps - o.warmupSteps)))));
    let sq = 0;
    for (const n of names) for (const x of g.get(n)!) sq += x * x;
    const norm = Math.sqrt(sq);
    const c = norm > o.maxGradNorm! ? o.maxGradNorm! / (norm + 1e-6) : 1;
    for (const n of names) {
      const p = params.get(n)!;
      const gi = g.get(n)!;
      const mm = m.get(n)!;
      const vv = v.get(n)!;
      for (let i = 0; i < p.length; i++) {
        const gg = gi[i] * c;
        p[i] -= lr * o.weightDecay! * p[i];
        mm[i] = 0.9 * mm[i] + 0.1 * gg;
        vv[i] = o.beta2! * vv[i] + (1 - o.beta2!) * gg * gg;
        p[i] -= (lr * (mm[i] / (1 - 0.9 ** t))) / (Math.sqrt(vv[i] / (1 - o.beta2! ** t)) + 1e-8);
      }
    }
  });
  return {
    config: p0.config,
    pairs: p0.pairs.map((p) => ({
      ...p,
      a: params.get(loraTensorName(p.layer, p.module, "A"))!,
      b: params.get(loraTensorName(p.layer, p.module, "B"))!,
    })),
  };
}

describe("learner service", { timeout: 600_000 }, () => {
  let f64: Awaited<ReturnType<typeof learnerProcess>>;
  before(async () => {
    // room for the largest Train below (the "long" run's 16 × 192 micro-batches), not for the
    // 2048-token sequence that checks the budget
    f64 = await learnerProcess("f64", {
      DTYPE: "float64",
      MAX_TRAIN_BYTES: String(Math.round(2 * trainActivationBytes(model, 16, 192, 8, RANK))),
    });
  });

  it("one step (M = 2 mini-batches) equals two float64 reference AdamW updates (1e-9); float32 within 1e-3", async (t) => {
    const seqs = batch(1, 4, 10);
    const created = await f64.client.createRun({ runId: "ref", config: CONFIG });
    assert.equal(created.created, true);
    assert.equal(created.adapterVersion, "");
    assert.deepEqual(created.config?.lora?.targetModules, [...LORA_MODULES]);
    const res = await f64.client.train({ runId: "ref", step: 0, sequences: seqs });
    assert.equal(res.skipped, false, res.skipReason);
    assert.equal(res.adapterVersion, "ref-0");
    assert.equal(res.objectName, "ref/ref-0");
    assert.equal(res.metrics?.updates, 2);
    assert.ok(res.engineSeconds > 0);

    // the reference: gradients of each mini-batch from Qwen3Trainer (float64) at the current params
    const lora = { rank: RANK, alpha: 8, useRslora: false, targetModules: [...LORA_MODULES] };
    const trainer = await Qwen3Trainer.load(modelDir, {
      mode: "lora",
      lora,
      loss: { kind: "grpo" },
      dtype: "float64",
      threads: 1,
    });
    const a32 = initLoraAdapter(model, lora, { seed: 7 });
    const p0: LoraAdapter<Float64Array> = {
      config: a32.config,
      pairs: a32.pairs.map((p) => ({ ...p, a: Float64Array.from(p.a), b: Float64Array.from(p.b) })),
    };
    const opts = { temperature: 0.9, microBatchSize: 2 };
    const g1 = await trainer.step(seqs.slice(0, 2).map(toTrain), p0, opts);
    const p1 = referenceSteps(p0, [g1.grads as Map<string, Float64Array>]);
    const g2 = await trainer.step(seqs.slice(2).map(toTrain), p1, opts);
    const p2 = referenceSteps(p0, [
      g1.grads as Map<string, Float64Array>,
      g2.grads as Map<string, Float64Array>,
    ]);
    // logprob_diff: mean |lp − old| over the first mini-batch's completion tokens
    let d = 0;
    let n = 0;
    seqs.slice(0, 2).forEach((s, b) => {
      s.completionMask.forEach((mk, t) => {
        if (mk) {
          d += Math.abs(g1.logprobs[b][t] - s.oldLogprobs[t]);
          n++;
        }
      });
    });
    assert.ok(Math.abs(res.metrics!.logprobDiff - d / n) < 1e-9);
    assert.ok(
      Math.abs(
        res.metrics!.gradNorm -
          0.5 *
            (Math.hypot(...[...g1.grads.values()].flatMap((x) => [...x])) +
              Math.hypot(...[...g2.grads.values()].flatMap((x) => [...x]))),
      ) < 1e-9,
    );
    await trainer.release();

    const got = loadAdapter(join(f64.ckpt, "ref", "step-0"), model, "float64");
    const rel = relDiff(flat(got), flat(p2), flat(p0));
    assert.ok(rel < 1e-9, `float64 relative difference ${rel}`);

    // float32 learner, same run: the update differs only by float32 rounding in the graph
    const f32 = await learnerProcess("f32", { DTYPE: "float32" });
    await f32.client.createRun({ runId: "ref", config: CONFIG });
    await f32.client.train({ runId: "ref", step: 0, sequences: seqs });
    const got32 = loadAdapter(join(f32.ckpt, "ref", "step-0"), model, "float64");
    const rel32 = relDiff(flat(got32), flat(p2), flat(p0));
    assert.ok(rel32 < 1e-3, `float32 relative difference ${rel32}`);
    t.diagnostic(
      `‖learner − reference‖ / ‖reference update‖: float64 ${rel.toExponential(2)}, float32 ${rel32.toExponential(2)}`,
    );
    await f32.svc.stop();
  });

  it("exactly-once: replay, different request, gap, non-finite and empty batches", async () => {
    const c = f64.client;
    await c.createRun({ runId: "once", config: CONFIG });
    const b0 = batch(2, 4, 8);
    const first = await c.train({ runId: "once", step: 0, sequences: b0 });
    const stateBefore = await c.getState({ runId: "once" });
    const bytesBefore = weightsOf(join(f64.ckpt, "once", "step-0"));
    const again = await c.train({ runId: "once", step: 0, sequences: b0 });
    assert.equal(again.replayed, true);
    assert.deepEqual({ ...again, replayed: false, engineSeconds: 0 }, { ...first, engineSeconds: 0 });
    assert.deepEqual(await c.getState({ runId: "once" }), stateBefore);
    assert.deepEqual(weightsOf(join(f64.ckpt, "once", "step-0")), bytesBefore);
    await rejects(
      c.train({ runId: "once", step: 0, sequences: batch(3, 4, 8) }),
      status.FAILED_PRECONDITION,
      /different request/,
    );
    await rejects(
      c.train({ runId: "once", step: 3, sequences: b0 }),
      status.FAILED_PRECONDITION,
      /expected step is 1/,
    );
    await rejects(c.train({ runId: "nobody", step: 0, sequences: b0 }), status.NOT_FOUND, /nobody/);

    const bad = await c.train({ runId: "once", step: 1, sequences: nonFinite(batch(4, 4, 8)) });
    assert.equal(bad.skipped, true);
    assert.match(bad.skipReason, /non-finite/);
    assert.equal(bad.adapterVersion, "once-0");
    assert.deepEqual(weightsOf(join(f64.ckpt, "once", "step-1")), bytesBefore);
    const st = await c.getState({ runId: "once" });
    assert.equal(st.lastStep, 1);
    assert.equal(st.nextStep, 2);
    assert.equal(st.updates, 2);
    const empty = await c.train({ runId: "once", step: 2, sequences: [] });
    assert.equal(empty.skipped, true);
    assert.match(empty.skipReason, /no sequences/);
  });

  it("bad input to every RPC gets a status naming the field, and the service stays up", async () => {
    const c = f64.client;
    await rejects(c.createRun({ runId: "bad id!", config: CONFIG }), status.INVALID_ARGUMENT, /^run_id:/);
    await rejects(c.createRun({ runId: "x".repeat(65), config: CONFIG }), status.INVALID_ARGUMENT, /run_id/);
    await rejects(
      c.createRun({
        runId: "b",
        config: { ...CONFIG, optimizer: { ...CONFIG.optimizer!, learningRate: 0 } },
      }),
      status.INVALID_ARGUMENT,
      /config\.optimizer\.learning_rate/,
    );
    await rejects(
      c.createRun({
        runId: "b",
        config: { ...CONFIG, lora: { ...CONFIG.lora!, targetModules: ["q_proj", "x_proj"] } },
      }),
      status.INVALID_ARGUMENT,
      /config\.lora\.target_modules\[1\]/,
    );
    await rejects(
      c.createRun({ runId: "b", config: { ...CONFIG, model: "/elsewhere" } }),
      status.INVALID_ARGUMENT,
      /config\.model/,
    );
    await rejects(
      c.createRun({ runId: "b", config: { ...CONFIG, optimizer: { ...CONFIG.optimizer!, totalSteps: 0 } } }),
      status.INVALID_ARGUMENT,
      /config\.optimizer\.total_steps/,
    );
    // identical config (model given by path): no-op; different: names the first differing field
    const same = await c.createRun({ runId: "ref", config: { ...CONFIG, model: modelDir } });
    assert.equal(same.created, false);
    assert.equal(same.adapterVersion, "ref-0");
    await rejects(
      c.createRun({
        runId: "ref",
        config: { ...CONFIG, optimizer: { ...CONFIG.optimizer!, learningRate: 0.5 } },
      }),
      status.FAILED_PRECONDITION,
      /config\.optimizer\.learning_rate/,
    );
    const b = batch(5, 3, 6);
    const withSeq = (i: number, patch: Partial<learner.TrainingSequence>) =>
      b.map((s, k) => (k === i ? { ...s, ...patch } : s));
    const st = await c.getState({ runId: "ref" });
    const step = st.nextStep;
    await rejects(
      c.train({ runId: "ref", step, sequences: withSeq(2, { oldLogprobs: [1, 2] }) }),
      status.INVALID_ARGUMENT,
      /^sequences\[2\]\.old_logprobs:/,
    );
    await rejects(
      c.train({ runId: "ref", step, sequences: withSeq(1, { advantage: Number.NaN }) }),
      status.INVALID_ARGUMENT,
      /^sequences\[1\]\.advantage:/,
    );
    await rejects(
      c.train({
        runId: "ref",
        step,
        sequences: withSeq(0, {
          oldLogprobs: b[0].oldLogprobs.map((x, t) => (t === 3 ? Number.POSITIVE_INFINITY : x)),
        }),
      }),
      status.INVALID_ARGUMENT,
      /^sequences\[0\]\.old_logprobs: entry 3/,
    );
    await rejects(
      c.train({
        runId: "ref",
        step,
        sequences: withSeq(1, { inputIds: b[1].inputIds.map((x, t) => (t === 2 ? 99999 : x)) }),
      }),
      status.INVALID_ARGUMENT,
      /^sequences\[1\]\.input_ids:.*vocabulary/,
    );
    await rejects(
      c.train({ runId: "ref", step, sequences: withSeq(1, { refLogprobs: b[1].oldLogprobs }) }),
      status.INVALID_ARGUMENT,
      /^sequences\[0\]\.ref_logprobs:/,
    );
    await rejects(
      c.train({
        runId: "ref",
        step,
        sequences: withSeq(2, { completionMask: b[2].completionMask.map(() => 2) }),
      }),
      status.INVALID_ARGUMENT,
      /^sequences\[2\]\.completion_mask:/,
    );
    // one token past what the model can position (the tiny preset's 2048, under MAX_SEQUENCE_TOKENS)
    const positions = model.maxPositionEmbeddings;
    const long = Array.from({ length: positions + 1 }, (_, t) => 1 + (t % 200));
    await rejects(
      c.train({
        runId: "ref",
        step,
        sequences: withSeq(0, {
          inputIds: long,
          completionMask: long.map((_, t) => (t >= 4 ? 1 : 0)),
          oldLogprobs: long.map(() => -5),
        }),
      }),
      status.INVALID_ARGUMENT,
      new RegExp(
        `^sequences\\[0\\]\\.input_ids: ${positions + 1} tokens, more than the model's max_position_embeddings ${positions}`,
      ),
    );
    // as many tokens as the model positions, over the memory budget: refused before it starts
    const most = Array.from({ length: positions }, (_, t) => 1 + (t % 200));
    await rejects(
      c.train({
        runId: "ref",
        step,
        sequences: withSeq(0, {
          inputIds: most,
          completionMask: most.map((_, t) => (t >= 4 ? 1 : 0)),
          oldLogprobs: most.map(() => -5),
        }),
      }),
      status.RESOURCE_EXHAUSTED,
      new RegExp(
        `^sequences: a micro-batch of \\d+ × ${positions} tokens needs about [\\d.]+ GiB to train, over the [\\d.]+ GiB budget \\(MAX_TRAIN_BYTES\\)`,
      ),
    );
    await rejects(c.train({ runId: "no such", step: 0, sequences: b }), status.INVALID_ARGUMENT, /^run_id:/);
    await rejects(c.getState({ runId: "ghost" }), status.NOT_FOUND, /ghost/);
    await rejects(c.getState({ runId: "" }), status.INVALID_ARGUMENT, /run_id/);
    await rejects(
      c.saveCheckpoint({ runId: "ref", directory: "../outside" }),
      status.INVALID_ARGUMENT,
      /^directory:.*EXPORT_DIR/,
    );
    await rejects(
      c.saveCheckpoint({ runId: "ref", directory: "/tmp/abs" }),
      status.INVALID_ARGUMENT,
      /^directory:/,
    );
    await rejects(c.saveCheckpoint({ runId: "ghost", directory: "x" }), status.NOT_FOUND, /ghost/);
    assert.equal((await c.getState({ runId: "ref" })).nextStep, step, "nothing was applied");
    // SaveCheckpoint: a PEFT directory equal to the newest checkpoint's adapter
    const saved = await c.saveCheckpoint({ runId: "ref", directory: "exports/ref-latest" });
    assert.equal(saved.directory, join(f64.exportDir, "exports", "ref-latest"));
    assert.deepEqual(weightsOf(saved.directory), weightsOf(join(f64.ckpt, "ref", "step-0")));
    assert.ok(loadAdapter(saved.directory, model, "float64").pairs.length > 0);
    // PEFT would look a relative base model up on the Hub
    const savedConfig = JSON.parse(readFileSync(join(saved.directory, "adapter_config.json"), "utf8"));
    assert.equal(savedConfig.base_model_name_or_path, resolve(modelDir));
    assert.equal(await checkHealth(f64.svc.address, "", 1000), "SERVING");
  });

  it("health answers SERVING within 1 s while a Train of ≥ 10 s runs", async () => {
    const c = f64.client;
    await c.createRun({
      runId: "long",
      config: { ...CONFIG, miniBatches: 1, iterations: 12, microBatchSize: 16 },
    });
    const started = Date.now();
    const train = c.train({ runId: "long", step: 0, sequences: batch(6, 64, 192) });
    let checks = 0;
    let done = false;
    void train.finally(() => {
      done = true;
    });
    while (!done) {
      const t0 = Date.now();
      assert.equal(await checkHealth(f64.svc.address, "", 1000), "SERVING");
      assert.ok(Date.now() - t0 < 1000);
      checks++;
      await new Promise((r) => setTimeout(r, 250));
    }
    const res = await train;
    const wall = (Date.now() - started) / 1000;
    assert.ok(wall >= 10, `the Train took only ${wall} s`);
    assert.ok(checks >= 10);
    assert.equal(res.skipped, false);
  });

  it("SIGKILL between steps and mid-Train: after 5 steps (one skipped) the adapter is bitwise a never-killed learner's; object store and events agree", async () => {
    const cfg = { ...CONFIG, optimizer: { ...CONFIG.optimizer!, warmupSteps: 0 } };
    const steps = [
      batch(10, 4, 8),
      batch(11, 4, 8),
      nonFinite(batch(12, 4, 8)),
      batch(13, 96, 128),
      batch(14, 4, 8),
    ];
    // never killed: the float64 learner
    await f64.client.createRun({ runId: "steady", config: cfg });
    for (let s = 0; s < 5; s++) await f64.client.train({ runId: "steady", step: s, sequences: steps[s] });

    const k = await learnerProcess("crash", { DTYPE: "float64" });
    await k.client.createRun({ runId: "crashy", config: cfg });
    await k.client.train({ runId: "crashy", step: 0, sequences: steps[0] });
    await k.client.train({ runId: "crashy", step: 1, sequences: steps[1] });
    await k.svc.kill(); // between steps
    await k.svc.restart();
    k.client = newClient(k.svc);
    const skipped = await retrying(() => k.client.train({ runId: "crashy", step: 2, sequences: steps[2] }));
    assert.equal(skipped.skipped, true);
    // mid-Train: kill while step 3 runs, then retry it (applies, or replays if it had finished)
    const inFlight = k.client.train({ runId: "crashy", step: 3, sequences: steps[3] }).catch((e) => e);
    await new Promise((r) => setTimeout(r, 300));
    await k.svc.kill();
    assert.ok((await inFlight) instanceof Error, "step 3 finished before the kill; make its batch bigger");
    await k.svc.restart();
    k.client = newClient(k.svc);
    assert.equal((await retrying(() => k.client.getState({ runId: "crashy" }))).nextStep, 3);
    await k.client.train({ runId: "crashy", step: 3, sequences: steps[3] });
    const last = await k.client.train({ runId: "crashy", step: 4, sequences: steps[4] });
    assert.equal(last.adapterVersion, "crashy-4");
    assert.deepEqual(
      weightsOf(join(k.ckpt, "crashy", "step-4")),
      weightsOf(join(f64.ckpt, "steady", "step-4")),
    );
    // a restart with nothing in flight re-publishes idempotently and replays the last step
    await k.svc.kill();
    await k.svc.restart();
    k.client = newClient(k.svc);
    const replay = await retrying(() => k.client.train({ runId: "crashy", step: 4, sequences: steps[4] }));
    assert.equal(replay.replayed, true);
    assert.equal(replay.adapterVersion, "crashy-4");

    // the object store holds the checkpoint's adapter; only the last KEEP_ADAPTER_VERSIONS versions
    const bus = await connectBus({ url: nats.url, name: "learner-test" });
    try {
      const store = await bus.objectStore(ADAPTER_BUCKET);
      const info = await store.info("steady/steady-4");
      assert.ok(info);
      const object = {
        weights: (await store.getBlob("steady/steady-4"))!,
        config: info.metadata![ADAPTER_CONFIG_METADATA],
      };
      const decoded = decodeAdapterObject(object, model, "float64");
      const checkpoint = loadAdapter(join(f64.ckpt, "steady", "step-4"), model, "float64");
      assert.deepEqual(flat(decoded), flat(checkpoint));
      assert.deepEqual(Buffer.from(object.weights), weightsOf(join(f64.ckpt, "steady", "step-4")));
      const names = (await store.list())
        .map((o) => o.name)
        .filter((n) => n.startsWith("steady/"))
        .sort();
      assert.deepEqual(names, ["steady/steady-1", "steady/steady-3", "steady/steady-4"]);

      // policy.updated events, one per step, with Nats-Msg-Id <run>.<step>.policy.updated
      // a durable consumer with one filter subject (Debian's nats-server predates filter_subjects)
      await bus.jsm.consumers.add(TEMPER_STREAM.name, {
        durable_name: "policy-check",
        filter_subject: "temper.crashy.policy.updated",
        ack_policy: "explicit" as never, // AckPolicy.Explicit
      });
      const consumer = await bus.js.consumers.get(TEMPER_STREAM.name, "policy-check");
      const seen: { id: string; ev: events.PolicyUpdated }[] = [];
      const iter = await consumer.fetch({ max_messages: 20, expires: 2000 });
      for await (const m of iter)
        seen.push({ id: m.headers?.get("Nats-Msg-Id") ?? "", ev: events.PolicyUpdated.decode(m.data) });
      assert.deepEqual(
        seen.map((s) => s.id),
        [0, 1, 2, 3, 4].map((s) => `crashy.${s}.policy.updated`),
      );
      assert.equal(seen[2].ev.skipped, true);
      assert.equal(seen[2].ev.adapterVersion, "crashy-1");
      assert.equal(seen[4].ev.objectName, "crashy/crashy-4");
    } finally {
      await bus.drain();
    }
  });
});
