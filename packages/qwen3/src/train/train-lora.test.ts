// The LoRA training graph on the tiny model in float64: every LoRA gradient element against central
// finite differences of the loss-only graph, losses against the float64 loss oracle, logprobs against
// the reference forward on merged weights, micro-batches and padding sides against one batch.
import assert from "node:assert/strict";
import { rmSync } from "node:fs";
import { dirname } from "node:path";
import { after, describe, it } from "node:test";
import {
  initLoraAdapter,
  LORA_MODULES,
  type LoraAdapter,
  type LoraConfig,
  loraTensorName,
  mergeLora,
} from "../adapter/lora.ts";
import type { TrainLossConfig } from "../graph/train-graph.ts";
import { openModelDir } from "../model/model-dir.ts";
import { loadWeights } from "../model/weights.ts";
import { referenceGrpoLoss, referenceSftLoss } from "../reference/loss-reference.ts";
import { referenceForward } from "../reference/reference.ts";
import {
  centralDifference,
  float64Adapter,
  grpoBatch,
  placeholderBatch,
  TRAIN_IDS,
  tinyModelDir,
} from "../testing/train.ts";
import type { LossAggregation } from "./loss.ts";
import { Qwen3Trainer } from "./train.ts";

const dir = tinyModelDir();
after(() => rmSync(dirname(dir), { recursive: true, force: true }));
const model = openModelDir(dir);
const config = model.config;
const weights = loadWeights(config, model.checkpoint, "float64");
model.checkpoint.close();

async function lossTrainer(lora: LoraConfig, loss: TrainLossConfig) {
  return Qwen3Trainer.load(dir, { mode: "lora", lora, loss, dtype: "float64", evaluate: true, threads: 1 });
}

/** The batch with old/ref built around the adapter's own logprobs (both clip branches active). */
async function batchFor(trainer: Qwen3Trainer, adapter: LoraAdapter) {
  const lp = (await trainer.evaluate(placeholderBatch(), adapter)).logprobs;
  return grpoBatch(lp);
}

interface Case {
  loss: TrainLossConfig;
  lora: LoraConfig;
}

// Every element of every adapter tensor is checked; to keep the suite fast the seven modules are
// covered in full by the first case and split across the others (rank 1–2, ~2.4k elements at most).
const CASES: Case[] = [
  {
    loss: { kind: "grpo", aggregation: "token", beta: 0.04, epsLow: 0.2, epsHigh: 0.2 },
    lora: { rank: 1, alpha: 2, useRslora: false, targetModules: [...LORA_MODULES] },
  },
  {
    loss: { kind: "grpo", aggregation: "sequence", beta: 0.1, epsLow: 0.2, epsHigh: 0.28 },
    lora: { rank: 2, alpha: 3, useRslora: true, targetModules: ["q_proj", "v_proj", "down_proj"] },
  },
  {
    loss: { kind: "sft", aggregation: "token" },
    lora: { rank: 1, alpha: 4, useRslora: false, targetModules: ["k_proj", "o_proj", "up_proj"] },
  },
  {
    loss: { kind: "sft", aggregation: "sequence" },
    lora: { rank: 2, alpha: 2, useRslora: false, targetModules: ["gate_proj", "down_proj"] },
  },
];

describe("LoRA training graph: every gradient element against finite differences (float64)", () => {
  for (const [n, c] of CASES.entries()) {
    const label = `${c.loss.kind} ${c.loss.aggregation}${c.loss.beta ? ` β=${c.loss.beta}` : ""}, r=${c.lora.rank} on ${c.lora.targetModules.join(",")}`;
    it(label, async () => {
      const trainer = await lossTrainer(c.lora, c.loss);
      try {
        const adapter = float64Adapter(initLoraAdapter(config, c.lora, { seed: 10 + n, initB: "random" }));
        const batch = await batchFor(trainer, adapter);
        const step = await trainer.step(batch, adapter);

        // the loss is the float64 oracle's loss of the graph's own logprobs
        const ref = {
          logprobs: step.logprobs,
          oldLogprobs: batch.map((s) => s.oldLogprobs!),
          refLogprobs: batch.map((s) => s.refLogprobs!),
          completionMask: batch.map((s) => s.completionMask),
          advantages: batch.map((s) => s.advantage!),
        };
        const agg = c.loss.aggregation as LossAggregation;
        if (c.loss.kind === "grpo") {
          const want = referenceGrpoLoss(ref, { ...c.loss, aggregation: agg });
          assert.ok(Math.abs(step.loss - want.loss) < 1e-12, `loss ${step.loss} vs ${want.loss}`);
          assert.ok(Math.abs(step.clipFraction! - want.clipFraction) < 1e-12);
          assert.ok(want.clipFraction > 0 && want.clipFraction < 1, "both clip branches are exercised");
          assert.ok(Math.abs(step.kl! - want.kl) < 1e-12 && want.kl > 0, `kl ${step.kl} vs ${want.kl}`);
        } else {
          const want = referenceSftLoss(ref, agg);
          assert.ok(Math.abs(step.loss - want) < 1e-12, `loss ${step.loss} vs ${want}`);
        }
        assert.ok(step.entropy > 0 && step.entropy < Math.log(config.vocabSize) + 1e-9);

        let elements = 0;
        for (const p of adapter.pairs) {
          for (const which of ["A", "B"] as const) {
            const name = loraTensorName(p.layer, p.module, which);
            const data = which === "A" ? p.a : p.b;
            const g = step.grads.get(name);
            assert.ok(g && g.length === data.length, `gradient of ${name}`);
            let maxDiff = 0;
            let maxFd = 0;
            for (let i = 0; i < data.length; i++) {
              const x0 = data[i];
              const fd = await centralDifference(
                trainer,
                batch,
                adapter,
                (h) => {
                  data[i] = x0 + h;
                },
                () => {
                  data[i] = x0;
                },
              );
              maxDiff = Math.max(maxDiff, Math.abs(g[i] - fd));
              maxFd = Math.max(maxFd, Math.abs(fd));
            }
            elements += data.length;
            assert.ok(maxFd > 1e-6, `${name}: the finite-difference gradient is not trivially zero`);
            assert.ok(
              maxDiff / maxFd < 1e-6,
              `${name}: ‖g − g_fd‖∞/‖g_fd‖∞ = ${(maxDiff / maxFd).toExponential(2)}`,
            );
          }
        }
        assert.equal(
          elements,
          [...step.grads.values()].reduce((s, g) => s + g.length, 0),
        );
      } finally {
        await trainer.release();
      }
    });
  }
});

describe("LoRA training graph: logprobs, micro-batches, padding", () => {
  const lora: LoraConfig = { rank: 3, alpha: 6, useRslora: false, targetModules: [...LORA_MODULES] };
  const loss: TrainLossConfig = { kind: "grpo", aggregation: "sequence", beta: 0.05, epsHigh: 0.28 };

  it("logprobs equal the reference forward on merged weights W + (α/r)·B·A, left or right padded", async () => {
    const trainer = await lossTrainer(lora, { kind: "sft" });
    try {
      const adapter = initLoraAdapter(config, lora, { seed: 5, initB: "random" });
      const merged = mergeLora(weights, adapter);
      const base = referenceForward(config, weights, [TRAIN_IDS[0]]).logprobs[0];
      for (const padding of ["left", "right"] as const) {
        const { logprobs } = await trainer.evaluate(placeholderBatch(), adapter, { padding });
        TRAIN_IDS.forEach((ids, b) => {
          const want = referenceForward(config, merged, [ids]).logprobs[0]; // entry t−1 ↔ token t
          assert.equal(logprobs[b].length, ids.length);
          assert.equal(logprobs[b][0], 0);
          for (const [i, w] of want.entries())
            assert.ok(
              Math.abs(logprobs[b][i + 1] - w) < 1e-9,
              `${padding} ${b}/${i + 1}: ${logprobs[b][i + 1]} vs ${w}`,
            );
        });
        assert.ok(
          base.some((v, i) => Math.abs(v - logprobs[0][i + 1]) > 1e-4),
          "the adapter changes the logprobs",
        );
      }
    } finally {
      await trainer.release();
    }
  });

  it("micro-batched gradients and right padding equal the one-batch left-padded result", async () => {
    const trainer = await lossTrainer(lora, loss);
    try {
      const adapter = initLoraAdapter(config, lora, { seed: 6, initB: "random" });
      const batch = await batchFor(trainer, adapter);
      const whole = await trainer.step(batch, adapter);
      for (const options of [
        { microBatchSize: 1 },
        { microBatchSize: 2 },
        { padding: "right" as const },
        { microBatchSize: 2, padding: "right" as const },
      ]) {
        const r = await trainer.step(batch, adapter, options);
        const what = JSON.stringify(options);
        assert.ok(Math.abs(r.loss - whole.loss) < 1e-12, `${what}: loss ${r.loss} vs ${whole.loss}`);
        assert.ok(Math.abs(r.clipFraction! - whole.clipFraction!) < 1e-12, `${what}: clip fraction`);
        assert.ok(Math.abs(r.kl! - whole.kl!) < 1e-12, `${what}: kl`);
        assert.ok(Math.abs(r.entropy - whole.entropy) < 1e-12, `${what}: entropy`);
        for (const [name, g] of whole.grads) {
          const got = r.grads.get(name)!;
          const scale = Math.max(...g.map(Math.abs));
          assert.ok(scale > 0, `${name} is not zero`);
          for (let i = 0; i < g.length; i++)
            assert.ok(
              Math.abs(got[i] - g[i]) <= 1e-10 * scale,
              `${what}: ${name}[${i}] ${got[i]} vs ${g[i]}`,
            );
        }
      }
    } finally {
      await trainer.release();
    }
  });

  it("rejects bad batches with one line naming the sequence and field", async () => {
    const trainer = await lossTrainer(lora, loss);
    try {
      const adapter = initLoraAdapter(config, lora, { seed: 6 });
      const good = placeholderBatch();
      const bad = [
        [{ ...good[1], oldLogprobs: [0, 1] }, /sequence 1: old_logprobs has 2 entries, input_ids has 5/],
        [{ ...good[1], completionMask: [1, 1, 1, 1, 1] }, /sequence 1: completion_mask\[0\] must be 0/],
        [{ ...good[1], refLogprobs: undefined }, /sequence 1: ref_logprobs is required when beta > 0/],
        [
          { ...good[1], inputIds: [1, 2, 99999, 4, 5] },
          /sequence 1: input_ids\[2\] = 99999 is outside vocab_size/,
        ],
        [{ ...good[1], advantage: undefined }, /sequence 1: advantage must be a finite number/],
      ] as const;
      for (const [seq, message] of bad) {
        const batch = [good[0], seq, good[2]];
        await assert.rejects(trainer.step(batch, adapter), (err: Error) => {
          assert.match(err.message, message);
          assert.ok(!err.message.includes("\n"));
          return true;
        });
      }
      const other = initLoraAdapter(config, { ...lora, rank: 2 }, { seed: 1 });
      await assert.rejects(trainer.step(good, other), /does not match the trainer's LoRA config/);
    } finally {
      await trainer.release();
    }
  });
});
