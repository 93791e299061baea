// Full-parameter training graph on the tiny model in float64: 16 random elements of every weight
// tensor plus one random directional derivative over all of them, against central finite
// differences of the loss-only graph; micro-batches against one batch.
import assert from "node:assert/strict";
import { rmSync } from "node:fs";
import { dirname } from "node:path";
import { after, describe, it } from "node:test";
import { makeRng } from "@temper/onnx";
import type { TrainLossConfig } from "../graph/train-graph.ts";
import { openModelDir } from "../model/model-dir.ts";
import { referenceGrpoLoss, referenceSftLoss } from "../reference/loss-reference.ts";
import { centralDifference, grpoBatch, placeholderBatch, TRAIN_IDS, tinyModelDir } from "../testing/train.ts";
import type { LossAggregation } from "./loss.ts";
import { Qwen3Trainer, readWeightMap } from "./train.ts";

const dir = tinyModelDir();
after(() => rmSync(dirname(dir), { recursive: true, force: true }));
const model = openModelDir(dir);
const config = model.config;
const weights = readWeightMap(config, model.checkpoint, "float64") as Map<string, Float64Array>;
model.checkpoint.close();
const usedTokens = [...new Set(TRAIN_IDS.flat())];

const CASES: TrainLossConfig[] = [
  { kind: "grpo", aggregation: "token", beta: 0.04, epsLow: 0.2, epsHigh: 0.28 },
  { kind: "sft", aggregation: "sequence" },
];

describe("full-parameter training graph against finite differences (float64)", () => {
  for (const [n, loss] of CASES.entries()) {
    it(`${loss.kind} ${loss.aggregation}${loss.beta ? ` β=${loss.beta}` : ""}: 16 elements per tensor + a random direction`, async () => {
      const trainer = await Qwen3Trainer.load(dir, {
        mode: "full",
        loss,
        dtype: "float64",
        evaluate: true,
        threads: 1,
      });
      try {
        assert.deepEqual(
          trainer.trainable.map((t) => t.name),
          [...weights.keys()],
        );
        const batch = grpoBatch((await trainer.evaluate(placeholderBatch(), weights)).logprobs);
        const step = await trainer.step(batch, weights);
        const ref = {
          logprobs: step.logprobs,
          oldLogprobs: batch.map((s) => s.oldLogprobs!),
          refLogprobs: batch.map((s) => s.refLogprobs!),
          completionMask: batch.map((s) => s.completionMask),
          advantages: batch.map((s) => s.advantage!),
        };
        const agg = loss.aggregation as LossAggregation;
        const want =
          loss.kind === "grpo"
            ? referenceGrpoLoss(ref, { ...loss, aggregation: agg }).loss
            : referenceSftLoss(ref, agg);
        assert.ok(Math.abs(step.loss - want) < 1e-12, `loss ${step.loss} vs ${want}`);

        const rng = makeRng(100 + n);
        for (const [name, data] of weights) {
          const g = step.grads.get(name)!;
          assert.equal(g.length, data.length, name);
          const [rows, cols] = trainer.trainable.find((t) => t.name === name)!.shape;
          let maxDiff = 0;
          let maxFd = 0;
          for (let k = 0; k < 16; k++) {
            // embedding rows of tokens outside the batch get no gradient: sample the used ones
            const i =
              name === "model.embed_tokens.weight"
                ? usedTokens[Math.floor(rng.uniform() * usedTokens.length)] * cols +
                  Math.floor(rng.uniform() * cols)
                : Math.floor(rng.uniform() * data.length);
            const x0 = data[i];
            const fd = await centralDifference(
              trainer,
              batch,
              weights,
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
          assert.ok(
            maxFd > 1e-7,
            `${name} [${rows}${cols ? `, ${cols}` : ""}]: sampled gradient is not zero`,
          );
          assert.ok(
            maxDiff / maxFd < 1e-6,
            `${name}: ‖g − g_fd‖∞/‖g_fd‖∞ = ${(maxDiff / maxFd).toExponential(2)}`,
          );
        }

        // one random direction v over every tensor at once: ⟨g, v⟩ against (L(θ + hv) − L(θ − hv)) / 2h
        const saved = new Map([...weights].map(([k, v]) => [k, Float64Array.from(v)]));
        const direction = new Map(
          [...weights].map(([k, v]) => [k, Float64Array.from(v, () => rng.normal())]),
        );
        // a unit vector, so that the step h is small along it too (‖h·v‖ = h)
        const norm = Math.sqrt(
          [...direction.values()].reduce((s, v) => s + v.reduce((a, x) => a + x * x, 0), 0),
        );
        for (const v of direction.values()) for (let i = 0; i < v.length; i++) v[i] /= norm;
        let analytic = 0;
        for (const [name, v] of direction) {
          const g = step.grads.get(name)!;
          for (let i = 0; i < v.length; i++) analytic += g[i] * v[i];
        }
        const fd = await centralDifference(
          trainer,
          batch,
          weights,
          (h) => {
            for (const [name, data] of weights) {
              const x0 = saved.get(name)!;
              const v = direction.get(name)!;
              for (let i = 0; i < data.length; i++) data[i] = x0[i] + h * v[i];
            }
          },
          () => {
            for (const [name, data] of weights) data.set(saved.get(name)!);
          },
        );
        assert.ok(Math.abs(fd) > 1e-8, "the directional derivative is not zero");
        assert.ok(
          Math.abs(analytic - fd) / Math.abs(fd) < 1e-6,
          `⟨g, v⟩ = ${analytic}, finite difference ${fd}`,
        );
      } finally {
        await trainer.release();
      }
    });
  }

  it("micro-batched full-parameter gradients equal the one-batch gradients", async () => {
    const loss: TrainLossConfig = { kind: "grpo", aggregation: "sequence", beta: 0.1 };
    const trainer = await Qwen3Trainer.load(dir, { mode: "full", loss, dtype: "float64", threads: 1 });
    try {
      const placeholder = await trainer.step(placeholderBatch(), weights);
      const batch = grpoBatch(placeholder.logprobs);
      const whole = await trainer.step(batch, weights);
      const parts = await trainer.step(batch, weights, { microBatchSize: 2, padding: "right" });
      assert.ok(Math.abs(parts.loss - whole.loss) < 1e-12);
      for (const [name, g] of whole.grads) {
        const got = parts.grads.get(name)!;
        const scale = Math.max(...g.map(Math.abs));
        assert.ok(scale > 0, `${name} is not zero`);
        for (let i = 0; i < g.length; i++)
          assert.ok(Math.abs(got[i] - g[i]) <= 1e-10 * scale, `${name}[${i}] ${got[i]} vs ${g[i]}`);
      }
    } finally {
      await trainer.release();
    }
  });
});
