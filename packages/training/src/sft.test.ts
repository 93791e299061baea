// runSft on the tiny preset with the byte tokenizer: the loss falls, one update equals AdamW applied
// by hand to Qwen3Trainer's float64 gradients, an interrupted run resumed from its saved state ends
// bitwise where an uninterrupted one does, and the written directory keeps the input's layout.
import assert from "node:assert/strict";
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, describe, it } from "node:test";
import { extractAnswer, plainPrompt, referenceValue, sftTarget, synthesizeSets } from "@temper/gsm8k";
import {
  generate,
  initModel,
  KvCacheBackend,
  loadTokenizer,
  loadWeights,
  openModelDir,
  presetConfig,
  Qwen3KvEngine,
  Qwen3Trainer,
  readWeightMap,
  referenceForward,
  referenceSftLoss,
  tokenizerIds,
} from "@temper/qwen3";
import {
  epochPermutation,
  nearerCheck,
  partialDir,
  runSft,
  SFT_DEV_FILE,
  SFT_EVAL_FILE,
  type SftOptions,
  type SftStepInfo,
  sftBatchIndices,
  sftSequence,
  solvedNeeded,
} from "./index.ts";

const root = mkdtempSync(join(tmpdir(), "temper-sft-"));
after(() => rmSync(root, { recursive: true, force: true }));

function tinyModel(name: string, dtype: "f32" | "bf16" = "f32", shards = 1): string {
  const dir = join(root, name);
  initModel({
    config: presetConfig("tiny", tokenizerIds("bytes")),
    tokenizer: "bytes",
    out: dir,
    seed: 4,
    dtype,
    shards,
  });
  return dir;
}

const model = tinyModel("tiny");
const data = synthesizeSets({
  sft: 8,
  train: 0,
  eval: 4,
  dev: 3,
  seed: 3,
  steps: { min: 1, max: 1 },
  maxOperand: 9,
});

describe("sft sampler", () => {
  it("epochs are seeded permutations: every example once per epoch, batches across epoch ends", () => {
    const n = 5;
    const seen = Array.from({ length: 12 }, (_, s) => sftBatchIndices(n, 2, 9, s)).flat();
    for (let e = 0; e < 4; e++) assert.deepEqual([...seen.slice(e * n, e * n + n)].sort(), [0, 1, 2, 3, 4]);
    assert.deepEqual(seen.slice(0, n), epochPermutation(n, 9, 0));
    assert.notDeepEqual(epochPermutation(n, 9, 0), epochPermutation(n, 9, 1));
    assert.deepEqual(sftBatchIndices(n, 3, 9, 7), sftBatchIndices(n, 3, 9, 7));
  });
});

describe("sft sequences", () => {
  it("prompt then sftTarget + EOS; the loss on the completion, or with promptLoss on every token but the first", () => {
    const tok = { encode: (text: string) => [...Buffer.from(text)] };
    const e = { question: "Q?", answer: "1+1 = <<1+1=2>>2\n#### 2" };
    const s = sftSequence(tok, e, "", 258);
    const prompt = [...Buffer.from("Question: Q?\nAnswer:")];
    const completion = [...Buffer.from(" 1+1 = 2\n#### 2"), 258];
    assert.deepEqual(s.inputIds, [...prompt, ...completion]);
    assert.deepEqual(s.completionMask, [...prompt.map(() => 0), ...completion.map(() => 1)]);
    const all = sftSequence(tok, e, "", 258, true);
    assert.deepEqual(
      all.completionMask,
      s.inputIds.map((_, t) => (t === 0 ? 0 : 1)),
    );
  });
});

describe("runSft (tiny, bytes tokenizer)", () => {
  it("a few steps lower the loss", async (t) => {
    const losses: number[] = [];
    await runSft(
      {
        modelDir: model,
        train: data.sft,
        out: join(root, "loss-out"),
        steps: 12,
        batchSize: 4,
        learningRate: 1e-2,
        schedule: "constant",
        instruction: "",
        threads: 1,
        saveEvery: 0,
      },
      { onStep: (i) => losses.push(i.loss) },
    );
    // steps 1–2 and 11–12 each cover the 8 examples once
    const first = (losses[0] + losses[1]) / 2;
    const last = (losses[10] + losses[11]) / 2;
    t.diagnostic(`loss ${first.toFixed(4)} → ${last.toFixed(4)}`);
    assert.ok(last < 0.8 * first, `loss ${first} → ${last}`);
  });

  it("one update equals AdamW on Qwen3Trainer's float64 gradients (clipped, weight decay) within 1e-9", async (t) => {
    const opts: SftOptions = {
      modelDir: model,
      train: data.sft,
      out: join(root, "ref-out"),
      steps: 1,
      batchSize: 3,
      microBatchSize: 2,
      learningRate: 1e-2,
      schedule: "constant",
      maxGradNorm: 0.5,
      weightDecay: 0.1,
      instruction: "",
      seed: 5,
      dtype: "float64",
      threads: 1,
      saveEvery: 0,
    };
    const result = await runSft(opts);

    const m = openModelDir(model);
    const w = readWeightMap(m.config, m.checkpoint, "float64") as Map<string, Float64Array>;
    m.checkpoint.close();
    const tok = await loadTokenizer(model);
    const eos = m.eosTokenIds[0];
    const batch = sftBatchIndices(8, 3, 5, 0).map((i) => {
      const e = data.sft[i];
      const p = tok.encode(plainPrompt(e.question, ""));
      const c = [...tok.encode(sftTarget(e.answer)), eos];
      return { inputIds: [...p, ...c], completionMask: [...p.map(() => 0), ...c.map(() => 1)] };
    });
    const trainer = await Qwen3Trainer.load(model, {
      mode: "full",
      loss: { kind: "sft", aggregation: "token" },
      dtype: "float64",
      threads: 1,
    });
    const { grads } = await trainer.step(batch, w);
    await trainer.release();
    let sq = 0;
    for (const g of grads.values()) for (const x of g) sq += x * x;
    const norm = Math.sqrt(sq);
    assert.ok(norm > 0.5, `the clip is exercised (norm ${norm})`);
    const c = 0.5 / (norm + 1e-6);
    const [lr, b1, b2, eps, wd] = [1e-2, 0.9, 0.999, 1e-8, 0.1];
    let maxDiff = 0;
    let moved = 0;
    for (const [name, p0] of w) {
      const g = grads.get(name)!;
      const got = result.params.get(name)!;
      for (let i = 0; i < p0.length; i++) {
        const gi = g[i] * c;
        let p = p0[i] - lr * wd * p0[i];
        const mhat = ((1 - b1) * gi) / (1 - b1);
        const vhat = ((1 - b2) * gi * gi) / (1 - b2);
        p -= (lr * mhat) / (Math.sqrt(vhat) + eps);
        maxDiff = Math.max(maxDiff, Math.abs(got[i] - p));
        moved = Math.max(moved, Math.abs(got[i] - p0[i]));
      }
    }
    t.diagnostic(
      `max |sft − reference| = ${maxDiff.toExponential(2)}, largest move ${moved.toExponential(2)}`,
    );
    assert.ok(moved > 1e-3, "the weights moved");
    assert.ok(maxDiff <= 1e-9, `max |sft − reference| = ${maxDiff}`);
  });

  it("an interrupted run resumed from its saved state ends bitwise where an uninterrupted one does (float64)", async () => {
    const base = (out: string): SftOptions => ({
      modelDir: model,
      train: data.sft,
      eval: data.eval,
      out,
      steps: 4,
      batchSize: 3,
      microBatchSize: 2,
      learningRate: 5e-3,
      schedule: "cosine",
      warmupSteps: 1,
      minLrRatio: 0.1,
      evalEvery: 2,
      maxNewTokens: 8,
      instruction: "",
      seed: 1,
      dtype: "float64",
      threads: 1,
      dev: data.dev,
      devEvery: 1,
    });
    const whole = await runSft(base(join(root, "whole")));

    const cut = join(root, "cut");
    const stop = (i: SftStepInfo) => {
      if (i.step === 3) throw new Error("simulated crash");
    };
    await assert.rejects(runSft(base(cut), { onStep: stop }), /simulated crash/);
    assert.ok(!existsSync(cut));
    assert.deepEqual(readdirSync(partialDir(cut)), ["step-2"]);
    // without --resume an unfinished run is refused
    await assert.rejects(runSft(base(cut)), /unfinished run/);
    const logs: string[] = [];
    const resumed = await runSft({ ...base(cut), resume: true }, { onLog: (m) => logs.push(m) });
    assert.equal(resumed.startStep, 2);
    assert.match(logs.join("\n"), /resuming from .*step-2/);
    assert.ok(!existsSync(partialDir(cut)), "the partial state is removed at the end");
    for (const [name, a] of whole.params) {
      const b = resumed.params.get(name)!;
      for (let i = 0; i < a.length; i++)
        assert.ok(Object.is(a[i], b[i]), `${name}[${i}]: ${a[i]} vs ${b[i]}`);
    }
    assert.ok(
      readFileSync(join(cut, "model.safetensors")).equals(readFileSync(join(whole.out, "model.safetensors"))),
    );
    assert.equal(
      readFileSync(join(cut, SFT_DEV_FILE), "utf8"),
      readFileSync(join(whole.out, SFT_DEV_FILE), "utf8"),
    );
    assert.equal(resumed.devChecks.length, 3, "the dev checks before the cut are kept");
    const evals = readFileSync(join(cut, SFT_EVAL_FILE), "utf8");
    assert.equal(evals, readFileSync(join(whole.out, SFT_EVAL_FILE), "utf8"));
    assert.deepEqual(
      evals
        .trim()
        .split("\n")
        .map((l) => Object.keys(JSON.parse(l)).join(",")),
      ["step,accuracy,stderr,n", "step,accuracy,stderr,n"],
    );
    // the finished directory is not overwritten
    await assert.rejects(runSft(base(cut)), /already exists/);
  });

  it("a target dev loss ends the run at the first check at or below it, with the model of that step", async () => {
    const base = (out: string): SftOptions => ({
      modelDir: model,
      train: data.sft,
      eval: data.eval,
      dev: data.dev,
      devEvery: 1,
      out,
      steps: 8,
      batchSize: 4,
      learningRate: 1e-2,
      schedule: "constant",
      maxNewTokens: 4,
      instruction: "",
      threads: 1,
      saveEvery: 0,
    });
    const whole = await runSft(base(join(root, "dev-whole")));
    assert.equal(whole.endStep, 8);
    assert.deepEqual(
      whole.devChecks.map((d) => d.step),
      [1, 2, 3, 4, 5, 6, 7],
    );
    // the target: the loss of the fourth check; the run must end at the first check at or below it
    const target = whole.devChecks[3].loss;
    const expected = whole.devChecks.find((d) => d.loss <= target)!.step;
    const logged: number[] = [];
    const stopped = await runSft(
      { ...base(join(root, "dev-stopped")), targetDevLoss: target },
      { onDevCheck: (d) => logged.push(d.step) },
    );
    assert.equal(stopped.endStep, expected);
    assert.deepEqual(stopped.devChecks, whole.devChecks.slice(0, expected));
    assert.deepEqual(
      logged,
      stopped.devChecks.map((d) => d.step),
    );
    const lines = (f: string) =>
      readFileSync(join(stopped.out, f), "utf8")
        .trim()
        .split("\n")
        .map((l) => JSON.parse(l));
    assert.deepEqual(lines(SFT_DEV_FILE), stopped.devChecks);
    assert.equal(lines(SFT_EVAL_FILE).at(-1).step, expected);
    assert.equal(JSON.parse(readFileSync(join(stopped.out, "sft_args.json"), "utf8")).end_step, expected);

    // independently: the float64 reference forward of the written model scores the dev set at the
    // target's loss, and the next step's model would not
    const m = openModelDir(stopped.out);
    const weights = loadWeights(m.config, m.checkpoint, "float64");
    m.checkpoint.close();
    const tok = await loadTokenizer(stopped.out);
    const seqs = data.dev.map((e) => sftSequence(tok, e, "", m.eosTokenIds[0]));
    // the reference's entry t − 1 is token t's logprob; the mask is indexed by token
    const lp = seqs.map((s) => [0, ...referenceForward(m.config, weights, [s.inputIds]).logprobs[0]]);
    const loss = referenceSftLoss({ logprobs: lp, completionMask: seqs.map((s) => s.completionMask) });
    const next = whole.devChecks[expected]?.loss ?? Number.NaN;
    assert.ok(
      Math.abs(loss - stopped.devChecks.at(-1)!.loss) < 1e-5,
      `${loss} vs ${stopped.devChecks.at(-1)!.loss}`,
    );
    assert.ok(Math.abs(loss - next) > 1e-3, `the next step's loss ${next} is too close to tell apart`);

    assert.equal(stopped.metTarget, true);
    assert.equal(whole.metTarget, false);

    // maxSteps: past `steps` the run goes on at the schedule's floor until the target (unmet here)
    const lrs: number[] = [];
    const longer = await runSft(
      {
        ...base(join(root, "dev-longer")),
        steps: 4,
        schedule: "cosine",
        minLrRatio: 0.1,
        targetDevLoss: 1e-9,
        maxSteps: 6,
      },
      { onStep: (i) => lrs.push(i.learningRate) },
    );
    assert.equal(longer.endStep, 6);
    assert.equal(longer.metTarget, false);
    assert.equal(lrs.length, 6);
    assert.ok(lrs[1] > 1e-3 + 1e-12, "the cosine is above its floor early on");
    for (const lr of lrs.slice(4)) assert.ok(Math.abs(lr - 1e-3) < 1e-15, `past the schedule: ${lr}`);
    await assert.rejects(
      runSft({ ...base(join(root, "dev-cap")), maxSteps: 9 }),
      /max steps \(9\) beyond steps \(8\) needs a target/,
    );
    await assert.rejects(
      runSft({ ...base(join(root, "dev-none")), dev: [], targetDevLoss: 1 }),
      /a target dev loss needs dev examples/,
    );
    await assert.rejects(
      runSft({ ...base(join(root, "dev-bad")), targetDevLoss: -1 }),
      /target dev loss must be/,
    );
  });

  it("a target dev accuracy ends the run at the first check whose greedy dev accuracy meets it", async () => {
    // four examples to memorise, the dev set the same four: accuracy climbs from 0 within a few checks
    const four = data.sft.slice(0, 4);
    const opts: SftOptions = {
      modelDir: model,
      train: four,
      dev: four,
      devEvery: 5,
      devFrom: 10,
      targetDevAccuracy: 0.3,
      out: join(root, "acc-whole"),
      steps: 60,
      batchSize: 4,
      learningRate: 1e-2,
      schedule: "constant",
      maxNewTokens: 32,
      instruction: "",
      threads: 1,
      saveEvery: 0,
    };
    // one batch of four: every check generates the whole dev set
    const whole = await runSft(opts);
    assert.equal(whole.metTarget, true);
    const steps = whole.devChecks.map((d) => d.step);
    assert.deepEqual(
      steps,
      Array.from({ length: steps.length }, (_, i) => 10 + 5 * i),
      "checks every 5 steps from step 10",
    );
    assert.ok(steps.length >= 2, `met at the first check (${steps}): the test shows nothing`);
    const accs = whole.devChecks.map((d) => d.accuracy!);
    assert.ok(accs.at(-1)! >= 0.3, `the last check meets the target: ${accs}`);
    for (const a of accs.slice(0, -1)) assert.ok(a < 0.3, `no earlier check does: ${accs}`);
    for (const d of whole.devChecks) assert.equal(d.n, 4);
    // the run's weights: the last check's, or the one before when its accuracy is nearer 0.3
    const [short, reached] = whole.devChecks.slice(-2);
    const nearer = 0.3 - short.accuracy! < reached.accuracy! - 0.3 ? short : reached;
    assert.equal(whole.endStep, nearer.step);
    assert.equal(nearer, short, `the check before is nearer here (${accs}): the test exercises that pick`);

    // independently: greedy generation from the written model solves that share of the dev set
    const solvedBy = async (dir: string) => {
      const engine = await Qwen3KvEngine.load(dir, { threads: 1 });
      const tok = await loadTokenizer(dir);
      const m = openModelDir(dir);
      m.checkpoint.close();
      const out = await generate(
        new KvCacheBackend(engine),
        tok,
        four.map((e) => tok.encode(plainPrompt(e.question, ""))),
        { temperature: 0, maxNewTokens: 32, eosTokenIds: m.eosTokenIds },
      );
      await engine.release();
      return out.map(
        ([c], i) =>
          extractAnswer(c.text, { finishReason: c.finishReason }).value === referenceValue(four[i].answer),
      );
    };
    const solved = await solvedBy(whole.out);
    assert.equal(solved.filter(Boolean).length / four.length, nearer.accuracy);

    // killed after the check that fell short was saved, resumed: the stop still sees its weights
    const cutOpts = { ...opts, out: join(root, "acc-cut"), saveEvery: 5 };
    const crash = (i: SftStepInfo) => {
      if (i.step === short.step + 1) throw new Error("simulated crash");
    };
    await assert.rejects(runSft(cutOpts, { onStep: crash }), /simulated crash/);
    const resumed = await runSft({ ...cutOpts, resume: true });
    assert.equal(resumed.startStep, short.step);
    assert.equal(resumed.endStep, whole.endStep);
    assert.ok(
      readFileSync(join(resumed.out, "model.safetensors")).equals(
        readFileSync(join(whole.out, "model.safetensors")),
      ),
    );

    // batches of one: a check stops generating once the rest cannot change its outcome (2 solved of
    // 4 meet 0.3; 3 unsolved cannot), and the run is the same run
    const early = await runSft({ ...opts, out: join(root, "acc-early"), evalBatchSize: 1 });
    assert.equal(early.endStep, whole.endStep);
    assert.ok(
      readFileSync(join(early.out, "model.safetensors")).equals(
        readFileSync(join(whole.out, "model.safetensors")),
      ),
    );
    assert.equal(early.devChecks.length, whole.devChecks.length);
    early.devChecks.forEach((d, i) => {
      const full = whole.devChecks[i];
      assert.equal(d.step, full.step);
      assert.equal(d.loss, full.loss);
      const solvedSeen = Math.round(d.accuracy! * d.n!);
      const settled = solvedSeen >= 2 || d.n! - solvedSeen >= 3;
      assert.ok(settled && d.n! <= 4, `step ${d.step}: ${solvedSeen} of ${d.n} settle nothing`);
      assert.equal(solvedSeen >= 2, full.accuracy! >= 0.3, `step ${d.step}: the whole set's outcome`);
    });
    // the two checks the stop chose between are measured on the whole set
    assert.deepEqual(early.devChecks.slice(-2), whole.devChecks.slice(-2));
    assert.ok(
      early.devChecks.some((d) => d.n! < 4),
      "some check stopped early",
    );

    await assert.rejects(runSft({ ...opts, out: join(root, "acc-bad"), targetDevAccuracy: 1.5 }), /\(0, 1\]/);
    await assert.rejects(
      runSft({ ...opts, out: join(root, "acc-both"), targetDevLoss: 0.1 }),
      /a target dev loss or a target dev accuracy, not both/,
    );
    await assert.rejects(
      runSft({ ...opts, out: join(root, "acc-none"), dev: [] }),
      /a target dev accuracy needs dev examples/,
    );
  });

  it("nearerCheck: the check nearer the target, the one that reached it on a tie", () => {
    assert.equal(nearerCheck(0.7, 0.9, 0.75), "below");
    assert.equal(nearerCheck(0.6, 0.8, 0.75), "reached");
    assert.equal(nearerCheck(0.5, 1, 0.75), "reached");
    assert.equal(nearerCheck(null, 1, 0.75), "reached");
  });

  it("solvedNeeded: the fewest solved problems whose share reaches the target", () => {
    assert.equal(solvedNeeded(0.785, 1000), 785);
    assert.equal(solvedNeeded(0.5, 4), 2);
    assert.equal(solvedNeeded(0.3, 10), 3); // 0.3 × 10 rounds above 3 in floating point
    assert.equal(solvedNeeded(1, 7), 7);
    assert.equal(solvedNeeded(0.51, 4), 3);
    for (let n = 1; n <= 50; n++)
      for (const t of [0.1, 0.25, 0.333, 0.7, 0.785, 0.99]) {
        const c = solvedNeeded(t, n);
        assert.ok(c / n >= t && (c === 0 || (c - 1) / n < t), `${t} of ${n}: ${c}`);
      }
  });

  it("the written directory keeps the input's layout (bf16, two shards) and loads and generates", async () => {
    const src = tinyModel("tiny-bf16", "bf16", 2);
    const out = join(root, "bf16-out");
    await runSft({
      modelDir: src,
      train: data.sft,
      out,
      steps: 2,
      batchSize: 2,
      learningRate: 1e-2,
      schedule: "constant",
      threads: 1,
    });
    const inFiles = readdirSync(src).sort();
    const outFiles = readdirSync(out).filter((f) => !f.startsWith("sft_"));
    assert.deepEqual(outFiles.sort(), inFiles);
    const a = openModelDir(src);
    const b = openModelDir(out);
    try {
      let changed = 0;
      for (const [name, info] of a.checkpoint.tensors) {
        const o = b.checkpoint.info(name);
        assert.equal(o.dtype, "BF16");
        assert.deepEqual(o.shape, info.shape);
        if (!a.checkpoint.readBytes(name).equals(b.checkpoint.readBytes(name))) changed++;
      }
      assert.ok(changed > 10, `${changed} tensors changed`);
    } finally {
      a.checkpoint.close();
      b.checkpoint.close();
    }
    const engine = await Qwen3KvEngine.load(out, { threads: 1 });
    const tok = await loadTokenizer(out);
    const [[c]] = await generate(new KvCacheBackend(engine), tok, [tok.encode("Question: 2+2?\nAnswer:")], {
      temperature: 0,
      maxNewTokens: 4,
    });
    await engine.release();
    assert.equal(c.tokenIds.length, 4);
  });
});
