// A check each reward service's own tests run on its real process: Info names the source and its
// components, and Score answers one result per completion with every component present.
import assert from "node:assert/strict";
import { createClient, startServiceProcess } from "@temper/kit";
import { common, reward } from "@temper/proto";
import type { RewardSource } from "@temper/rewards";

export async function checkRewardServiceProcess(entry: string, source: RewardSource): Promise<void> {
  const proc = await startServiceProcess({
    name: source.name,
    entry,
    env: { PORT: "0" },
    readyTimeoutMs: 30_000,
  });
  const client = createClient(reward.RewardServiceService, proc.address, { defaults: { timeoutMs: 10_000 } });
  try {
    const info = await client.info({});
    assert.equal(info.name, source.name);
    assert.deepEqual(info.components, [...source.components]);
    const stop = common.FinishReason.FINISH_REASON_STOP;
    const res = await client.score({
      groups: [
        {
          id: "g",
          prompt: "What is 6 * 7?",
          reference: "#### 42",
          promptTokenIds: [],
          completions: [
            {
              id: "a",
              text: "6 * 7 = 42\nThe answer is 42.",
              tokenIds: [1, 2, 3],
              logprobs: [-0.1, -0.2, -0.3],
              finishReason: stop,
            },
            {
              id: "b",
              text: "6 * 7 = 41\nThe answer is 41.",
              tokenIds: [],
              logprobs: [],
              finishReason: stop,
            },
          ],
        },
      ],
    });
    assert.deepEqual(
      res.results.map((r) => r.completionId),
      ["a", "b"],
    );
    for (const r of res.results)
      assert.deepEqual(Object.keys(r.components).sort(), [...source.components].sort());
    // Bad input is a status, and the process keeps serving.
    await assert.rejects(client.score({ groups: [] }), /INVALID_ARGUMENT|groups/);
    assert.equal((await client.info({})).name, source.name);
  } finally {
    client.$close();
    await proc.stop();
  }
}
