import assert from "node:assert/strict";
import { test } from "node:test";
import { type reward, scheduler } from "@temper/proto";
import { resolveRunConfig } from "./settings.ts";

const defaults = {
  sources: {
    correctness: "127.0.0.1:1",
    perplexity: "127.0.0.1:2",
    reasoning: "127.0.0.1:3",
    consistency: "127.0.0.1:4",
  },
  sourceTimeoutMs: 5000,
};
const base: scheduler.RunConfig = {
  runId: "r1",
  structure: { kind: { $case: "hybrid", value: { alpha: 0.25 } } },
  sources: {},
  advantageScale: 0,
  failurePolicy: 0,
  control: 0,
  controlSeed: 0,
  sourceTimeoutMs: 0,
};

test("defaults fill the unset fields and a run overrides a source", () => {
  const s = resolveRunConfig({ ...base, sources: { perplexity: "other-host:9000" } }, defaults);
  assert.equal(s.advantageScale, "group");
  assert.equal(s.failurePolicy, "skip");
  assert.equal(s.sourceTimeoutMs, 5000);
  assert.equal(s.sources.perplexity, "other-host:9000");
  assert.equal(s.sources.correctness, "127.0.0.1:1");
  assert.deepEqual(s.structure, {
    kind: "hybrid",
    alpha: 0.25,
    weights: s.structure.kind === "hybrid" ? s.structure.weights : {},
  });
  assert.equal(s.config.advantageScale, scheduler.AdvantageScale.ADVANTAGE_SCALE_GROUP);
  assert.equal(s.config.failurePolicy, scheduler.FailurePolicy.FAILURE_POLICY_SKIP);
});

test("replicas of a source: a list of ip:port is one endpoint, kept as written", () => {
  const s = resolveRunConfig({ ...base, sources: { correctness: "127.0.0.1:1,127.0.0.1:11" } }, defaults);
  assert.equal(s.sources.correctness, "127.0.0.1:1,127.0.0.1:11");
});

test("an endpoint is stored as parsed: spaces around it or its entries are dropped", () => {
  const s = resolveRunConfig(
    { ...base, sources: { perplexity: " 127.0.0.1:57051 ", correctness: "127.0.0.1:1 , 127.0.0.1:11" } },
    defaults,
  );
  assert.equal(s.sources.perplexity, "127.0.0.1:57051");
  assert.equal(s.sources.correctness, "127.0.0.1:1,127.0.0.1:11");
  assert.equal(s.config.sources.perplexity, "127.0.0.1:57051");
});

test("an adaptive time schedule maps every shape", () => {
  for (const [shape, name] of [
    [scheduler.ScheduleShape.SCHEDULE_SHAPE_COSINE, "cosine"],
    [scheduler.ScheduleShape.SCHEDULE_SHAPE_SIGMOID, "sigmoid"],
    [scheduler.ScheduleShape.SCHEDULE_SHAPE_UNSPECIFIED, "linear"],
  ] as const) {
    const s = resolveRunConfig(
      {
        ...base,
        structure: {
          kind: {
            $case: "adaptive",
            value: { schedule: { $case: "time", value: { shape, totalSteps: 10, milestones: [] } } },
          },
        },
      },
      defaults,
    );
    assert.ok(s.structure.kind === "adaptive" && s.structure.schedule.kind === "time");
    assert.equal(s.structure.schedule.shape, name);
    assert.equal(s.structure.fallback, true);
  }
});

test("bad configurations name their field", () => {
  const cases: [Partial<scheduler.RunConfig>, RegExp][] = [
    [{ runId: "" }, /config\.run_id/],
    [{ runId: "has space" }, /config\.run_id/],
    [{ structure: undefined }, /config\.structure/],
    [
      { structure: { kind: { $case: "hybrid", value: { alpha: -0.1 } } } },
      /config\.structure\.hybrid\.alpha/,
    ],
    [{ sources: { judge: "127.0.0.1:5" } }, /config\.sources\["judge"\]/],
    [{ sources: { reasoning: "not an endpoint" } }, /config\.sources\["reasoning"\]/],
    [{ advantageScale: 42 as scheduler.AdvantageScale }, /config\.advantage_scale/],
    [{ failurePolicy: 42 as scheduler.FailurePolicy }, /config\.failure_policy/],
    [{ params: { perplexityTau: 0, perplexityMode: 0 } }, /config\.params\.perplexity_tau/],
    [{ params: { perplexityTau: 1e-320, perplexityMode: 0 } }, /config\.params\.perplexity_tau: .*overflow/],
    [
      { params: { perplexityMode: 9 as reward.PerplexityMode } },
      /config\.params\.perplexity_mode: unknown value 9/,
    ],
    [
      { sources: { reasoning: "127.0.0.1:0" } },
      /config\.sources\["reasoning"\]: port must be in \[1, 65535\]/,
    ],
    [
      { sources: { reasoning: "127.0.0.1:70000" } },
      /config\.sources\["reasoning"\]: port must be in \[1, 65535\]/,
    ],
    [
      { sources: { reasoning: "127.0.0.1:3,reasoning-2:3" } },
      /config\.sources\["reasoning"\]: a list of servers takes IP addresses \(reasoning-2:3 is a name\)/,
    ],
    [
      {
        structure: {
          kind: { $case: "continuous", value: { weights: { reasoning: 1e308, perplexity: 1e308 } } },
        },
      },
      /config\.structure\.continuous\.weights\["reasoning"\]: .*overflow/,
    ],
    [
      {
        structure: {
          kind: {
            $case: "adaptive",
            value: {
              schedule: {
                $case: "time",
                value: { shape: 99 as scheduler.ScheduleShape, totalSteps: 5, milestones: [] },
              },
            },
          },
        },
      },
      /config\.structure\.adaptive\.time\.shape/,
    ],
  ];
  for (const [patch, field] of cases) {
    assert.throws(
      () => resolveRunConfig({ ...base, ...patch }, defaults),
      (err: Error) => {
        assert.match(err.message, field);
        assert.equal((err as Error & { code: number }).code, 3); // INVALID_ARGUMENT
        return true;
      },
    );
  }
});

test("control: none unless REWARD_CONTROL_PERMUTE, which carries its seed; an unknown value names the field", () => {
  assert.equal(resolveRunConfig(base, defaults).control, undefined);
  const p = resolveRunConfig(
    { ...base, control: scheduler.RewardControl.REWARD_CONTROL_PERMUTE, controlSeed: 42 },
    defaults,
  );
  assert.deepEqual(p.control, { kind: "permute", seed: 42 });
  assert.equal(p.config.control, scheduler.RewardControl.REWARD_CONTROL_PERMUTE);
  assert.throws(
    () => resolveRunConfig({ ...base, control: 9 as scheduler.RewardControl }, defaults),
    /^GrpcError: config\.control: unknown value 9/,
  );
});
