import assert from "node:assert/strict";
import { test } from "node:test";
import { reward, type scheduler } from "@temper/proto";
import { blendedEvent } from "./events.ts";

const OK = reward.ComponentStatus.COMPONENT_STATUS_OK;
const ABSENT = reward.ComponentStatus.COMPONENT_STATUS_ABSENT;

test("reward.blended carries per-component batch statistics", () => {
  const item = (reward_: number, ppl: number | undefined): scheduler.ItemResult => ({
    completionId: "c",
    groupId: "g",
    reward: reward_,
    alphaUsed: 0.5,
    advantage: 0,
    missing: [],
    components: {
      "correctness.correctness_hard": { value: reward_ > 0.5 ? 1 : 0, status: OK, detail: "" },
      "perplexity.perplexity":
        ppl === undefined ? { status: ABSENT, detail: "" } : { value: ppl, status: OK, detail: "" },
    },
  });
  const res: scheduler.ScoreResponse = {
    runId: "r",
    step: 3,
    items: [item(1, 0.2), item(0, 0.6), item(0.75, undefined)],
    groups: [{ groupId: "g", zeroSignal: false, fallbackApplied: false, meanReward: 0, stdReward: 0 }],
    provenance: [],
    alpha: 0.4,
    replayed: false,
  };
  const e = blendedEvent(res, 0.25, ["reasoning.reasoning"]);
  assert.equal(e.step, 3);
  assert.equal(e.completions, 3);
  assert.equal(e.zeroSignalFraction, 0.25);
  assert.deepEqual(e.missing, ["reasoning.reasoning"]);
  assert.ok(Math.abs(e.meanReward - 1.75 / 3) < 1e-15);
  const ppl = e.components["perplexity.perplexity"];
  assert.deepEqual([ppl.present, ppl.absent, ppl.error, ppl.min, ppl.max], [2, 1, 0, 0.2, 0.6]);
  assert.ok(Math.abs(ppl.mean - 0.4) < 1e-15);
  assert.ok(Math.abs(ppl.std - Math.sqrt(0.08)) < 1e-15); // sample std of 0.2, 0.6
  assert.equal(e.components["correctness.correctness_hard"].mean, 2 / 3);
});
