import assert from "node:assert/strict";
import { test } from "node:test";
import { common, reward } from "@temper/proto";
import { correctnessSource, perplexitySource } from "@temper/rewards";
import { componentFromProto, componentToProto, groupsFromProto } from "./convert.ts";
import { rewardServiceImplementation } from "./serve.ts";

const limits = { maxGroups: 4, maxGroupSize: 4, maxTextLength: 100, rejectEmptyText: true };

test("an OK value survives the round trip; ABSENT and ERROR carry no value", () => {
  for (const c of [
    { status: "ok", value: 0, detail: "" },
    { status: "ok", value: 0.75, detail: "" },
    { status: "absent", value: null, detail: "no logprobs" },
    { status: "error", value: null, detail: "boom" },
  ] as const) {
    const p = componentToProto(c);
    assert.equal(p.value === undefined, c.value === null);
    // A zero score is encoded as a value on the wire, not as proto3's default.
    const bytes = reward.ComponentValue.encode(p).finish();
    assert.deepEqual(componentFromProto(reward.ComponentValue.decode(bytes)), c);
  }
  // A value that claims OK without a number is an error, never a silent 0.
  assert.equal(
    componentFromProto({ status: reward.ComponentStatus.COMPONENT_STATUS_OK, detail: "" }).status,
    "error",
  );
});

test("finish reasons map onto the extraction's", () => {
  const [g] = groupsFromProto([
    {
      id: "g",
      prompt: "",
      reference: "3",
      promptTokenIds: [],
      completions: [
        {
          id: "a",
          text: "3",
          tokenIds: [],
          logprobs: [],
          finishReason: common.FinishReason.FINISH_REASON_LENGTH,
        },
        {
          id: "b",
          text: "3",
          tokenIds: [],
          logprobs: [],
          finishReason: common.FinishReason.FINISH_REASON_STOP,
        },
        { id: "c", text: "3", tokenIds: [], logprobs: [], finishReason: 0 },
      ],
    },
  ]);
  assert.deepEqual(
    g.completions.map((c) => c.finishReason),
    ["length", "stop", "unspecified"],
  );
});

test("the implementation names the offending field and applies the limits", () => {
  const impl = rewardServiceImplementation(correctnessSource, limits);
  const group = (text: string) => ({
    id: "g",
    prompt: "",
    reference: "#### 7",
    promptTokenIds: [],
    completions: [{ id: "c", text, tokenIds: [], logprobs: [], finishReason: 1 }],
  });
  assert.throws(
    () => impl.score({ groups: [group("x".repeat(101))] }),
    /groups\[0\]\.completions\[0\]\.text/,
  );
  assert.throws(() => impl.score({ groups: [group("")] }), /groups\[0\]\.completions\[0\]\.text/);
  assert.throws(() => impl.score({ groups: Array(5).fill(group("7")) }), /groups/);
  const res = impl.score({ groups: [group("The answer is 7.")] });
  assert.equal(res.results[0].components.correctness_hard.value, 1);
  assert.equal(res.results[0].details?.matchedRule, "answer_is");
  assert.deepEqual(impl.info(), {
    name: "correctness",
    version: correctnessSource.version,
    components: [...correctnessSource.components],
  });
});

test("perplexity without logprobs is ABSENT on the wire", () => {
  const impl = rewardServiceImplementation(perplexitySource, limits);
  const res = impl.score({
    groups: [
      {
        id: "g",
        prompt: "",
        reference: "1",
        promptTokenIds: [],
        completions: [{ id: "c", text: "1", tokenIds: [], logprobs: [], finishReason: 1 }],
      },
    ],
  });
  assert.equal(res.results[0].components.perplexity.status, reward.ComponentStatus.COMPONENT_STATUS_ABSENT);
  assert.equal(res.results[0].components.perplexity.value, undefined);
});
