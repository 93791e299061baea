import assert from "node:assert/strict";
import { after, before, describe, test } from "node:test";
import type { orchestrator } from "@temper/proto";
import { type Fixture, makeFixture } from "./fixture.ts";
import { resolveExperiment } from "./load.ts";
import { completeRunSpec } from "./run-spec.ts";

const ADAPTIVE = `name: adaptive
model: model
data: { train: data/train.jsonl, eval: data/eval.jsonl }
steps: 7
seed: 5
sampling: { temperature: 0.7, max_new_tokens: 16 }
reward:
  structure: adaptive
  adaptive: { time: { shape: linear, alpha_start: 0.1, alpha_end: 0.9 } }
optimizer: { learning_rate: 1.0e-4 }
`;

let fx: Fixture;
before(() => {
  fx = makeFixture(10);
});
after(() => fx.cleanup());

const adaptiveTime = (spec: orchestrator.RunSpec) => {
  const s = spec.reward?.structure?.kind;
  assert.equal(s?.$case, "adaptive");
  assert.equal(s.value.schedule?.$case, "time");
  return s.value.schedule.value;
};

describe("completeRunSpec: the derived fields of a RunSpec, filled in one place", () => {
  test("an experiment's spec is already complete: completing it changes only the ids", () => {
    const { spec } = resolveExperiment(ADAPTIVE, "exp.yaml", fx.dir);
    assert.equal(adaptiveTime(spec).totalSteps, 7);
    assert.equal(spec.training?.temperature, 0.7);
    assert.equal(spec.training?.seed, 5);
    const done = completeRunSpec(spec, { runId: "r1", modelHash: "abc" });
    assert.deepEqual(
      {
        ...done,
        runId: "",
        reward: { ...done.reward!, runId: "" },
        training: { ...done.training!, model: spec.training!.model },
      },
      spec,
    );
    assert.equal(done.runId, "r1");
    assert.equal(done.reward?.runId, "r1");
    assert.equal(done.training?.model, "abc");
  });

  test("a raw spec (grpcurl) gets what the experiment loader would have written", () => {
    const { spec } = resolveExperiment(ADAPTIVE, "exp.yaml", fx.dir);
    const raw = structuredClone(spec);
    adaptiveTime(raw).totalSteps = 0;
    raw.training!.temperature = 0;
    raw.training!.seed = 0;
    const before = structuredClone(raw);
    const done = completeRunSpec(raw, { runId: "" });
    assert.deepEqual(done, spec);
    assert.deepEqual(raw, before, "the argument is left alone");
  });

  test("a time schedule that names its own length keeps it", () => {
    const { spec } = resolveExperiment(
      ADAPTIVE.replace("alpha_end: 0.9 }", "alpha_end: 0.9, total_steps: 3 }"),
      "exp.yaml",
      fx.dir,
    );
    assert.equal(adaptiveTime(completeRunSpec(spec, { runId: "x" })).totalSteps, 3);
  });
});
