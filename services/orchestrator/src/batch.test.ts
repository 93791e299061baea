// The training batch and the prompt draws, against hand-built groups.
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { common, type scheduler } from "@temper/proto";
import { rolloutMetrics, trainingBatch } from "./batch.ts";
import { callRanges, drawSteps, shardRanges } from "./prompts.ts";

function group(
  id: string,
  prompt: number[],
  completions: { id: string; ids: number[]; lps: number[] }[],
): common.Group {
  return {
    id,
    prompt: `prompt ${id}`,
    reference: "1",
    promptTokenIds: prompt,
    completions: completions.map((c) => ({
      id: c.id,
      text: "x",
      tokenIds: c.ids,
      logprobs: c.lps,
      finishReason: common.FinishReason.FINISH_REASON_STOP,
    })),
  };
}

function scored(items: [string, string, number][], zero: string[] = []): scheduler.ScoreResponse {
  return {
    runId: "r",
    step: 0,
    items: items.map(([completionId, groupId, advantage]) => ({
      completionId,
      groupId,
      reward: advantage + 1,
      components: {},
      alphaUsed: 1,
      advantage,
      missing: [],
      details: undefined,
    })),
    groups: [...new Set(items.map((i) => i[1]))].map((g) => ({
      groupId: g,
      zeroSignal: zero.includes(g),
      fallbackApplied: false,
      meanReward: 0,
      stdReward: 0,
    })),
    provenance: [],
    alpha: 1,
    replayed: false,
  };
}

describe("trainingBatch", () => {
  const groups = [
    group(
      "g1",
      [5, 6, 7],
      [
        { id: "g1-0", ids: [10, 11], lps: [-0.5, -1.5] },
        { id: "g1-1", ids: [12], lps: [-2] },
      ],
    ),
    group(
      "g2",
      [8],
      [
        { id: "g2-0", ids: [13, 14, 15], lps: [-0.1, -0.2, -0.3] },
        { id: "g2-1", ids: [], lps: [] },
      ],
    ),
  ];
  // the scheduler's items come in any order: advantages are matched by completion id
  const s = scored([
    ["g2-0", "g2", -0.7],
    ["g1-1", "g1", 0.4],
    ["g1-0", "g1", 1.2],
    ["g2-1", "g2", 0.9],
  ]);

  it("input_ids = prompt ++ completion; old_logprobs at the completion's positions; own advantage", () => {
    const b = trainingBatch(groups, s, false);
    assert.deepEqual(
      b.sequences.map((q) => [q.inputIds, q.completionMask, q.oldLogprobs, q.advantage]),
      [
        [[5, 6, 7, 10, 11], [0, 0, 0, 1, 1], [0, 0, 0, -0.5, -1.5], 1.2],
        [[5, 6, 7, 12], [0, 0, 0, 1], [0, 0, 0, -2], 0.4],
        [[8, 13, 14, 15], [0, 1, 1, 1], [0, -0.1, -0.2, -0.3], -0.7],
      ],
    );
    assert.equal(b.droppedGroups, 0);
  });

  it("drops zero-signal groups only when asked", () => {
    const z = scored(
      [
        ["g1-0", "g1", 0],
        ["g1-1", "g1", 0],
        ["g2-0", "g2", 1],
        ["g2-1", "g2", -1],
      ],
      ["g1"],
    );
    assert.equal(trainingBatch(groups, z, false).sequences.length, 3);
    const dropped = trainingBatch(groups, z, true);
    assert.equal(dropped.droppedGroups, 1);
    assert.deepEqual(
      dropped.sequences.map((q) => q.inputIds[0]),
      [8],
    );
  });

  it("a completion the scheduler did not score is an error, not a silent zero", () => {
    assert.throws(
      () => trainingBatch(groups, scored([["g1-0", "g1", 1]]), false),
      /no result for completion g1-1/,
    );
  });

  it("rolloutMetrics: lengths, clipped ratio, zero-signal fraction", () => {
    const m = rolloutMetrics(groups, scored([["g1-0", "g1", 1]], ["g1"]), 3);
    assert.equal(m["completions/max_length"], 3);
    assert.equal(m["completions/mean_length"], 1.5);
    assert.equal(m["completions/clipped_ratio"], 0.25);
    assert.equal(m["tokens/generated"], 6);
    assert.equal(m.zero_signal_fraction, 1);
  });
});

describe("prompt draws", () => {
  it("epochs without replacement, no prompt twice in a step, the same for the same seed", () => {
    const steps = drawSteps(10, 4, 7, 12);
    for (const s of steps) assert.equal(new Set(s).size, 4);
    // every index once per epoch: the first 10 draws of the stream are a permutation
    const flat = steps.flat();
    assert.deepEqual(
      flat.slice(0, 10).sort((a, b) => a - b),
      [0, 1, 2, 3, 4, 5, 6, 7, 8, 9],
    );
    assert.deepEqual(drawSteps(10, 4, 7, 12), steps);
    assert.notDeepEqual(drawSteps(10, 4, 8, 12), steps);
    assert.throws(() => drawSteps(3, 4, 1, 1), /more than the dataset/);
  });

  it("shards are contiguous blocks, a fixed function of the count", () => {
    assert.deepEqual(shardRanges(5, 2), [
      [0, 2],
      [2, 5],
    ]);
    assert.deepEqual(shardRanges(2, 4), [
      [0, 1],
      [1, 2],
    ]);
  });

  it("a shard goes out in calls of at most the limit, in order, covering it once", () => {
    assert.deepEqual(callRanges(3, 13, 4), [
      [3, 7],
      [7, 11],
      [11, 13],
    ]);
    assert.deepEqual(callRanges(0, 4, 4), [[0, 4]]);
    assert.deepEqual(callRanges(5, 5, 4), []);
    assert.throws(() => callRanges(0, 4, 0), /max must be an integer ≥ 1/);
  });
});
