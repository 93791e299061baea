// Generate over the rollout servers as resolved now (every pod behind a headless Service): the
// prompts in contiguous shards, one per server, each shard in calls of at most `callLimit` prompts.
import { type Gsm8kExample, plainPrompt } from "@temper/gsm8k";
import type { common, orchestrator, rollout } from "@temper/proto";
import { callRanges, shardRanges } from "./prompts.ts";
import type { RemoteCalls } from "./remote-calls.ts";
import type { RolloutPool } from "./rollout-pool.ts";

/** What the policy is asked: the question alone under the chat template, else the plain prompt. */
export function promptOf(spec: orchestrator.RunSpec, ex: Gsm8kExample): string {
  return spec.chat ? ex.question : plainPrompt(ex.question, spec.instruction);
}

export class Generation {
  constructor(
    private readonly spec: orchestrator.RunSpec,
    private readonly rollouts: RolloutPool,
    private readonly calls: RemoteCalls,
    /** Most prompts in one Generate. */
    private readonly callLimit: number,
  ) {}

  /**
   * `n` completions of each prompt by the policy at `adapterVersion`. Shard k goes to server
   * (k + attempt) mod servers, so a retry moves to the next server.
   */
  async generate(
    prompts: rollout.PromptInput[],
    sampling: rollout.SamplingParams,
    n: number,
    at: { step: number; tag: string; adapterVersion: string },
  ): Promise<rollout.GenerateResponse> {
    const { step, tag, adapterVersion } = at;
    const endpoints = await this.calls.retry(`rollout servers (${tag})`, () => this.rollouts.endpoints());
    const shards = shardRanges(prompts.length, endpoints.length);
    const parts = await Promise.all(
      shards.map(async ([from, to], k) => {
        // a shard's calls one after another, so that each endpoint carries one call at a time
        const calls = callRanges(from, to, this.callLimit);
        const groups: common.Group[] = [];
        let engineSeconds = 0;
        for (const [j, [a, b]] of calls.entries()) {
          const where = [shards.length > 1 ? `shard ${k}` : "", calls.length > 1 ? `part ${j}` : ""].filter(
            Boolean,
          );
          const r = await this.calls.retry(
            `rollout Generate (${[tag, ...where].join(", ")})`,
            (signal, attempt) =>
              endpoints[(k + attempt) % endpoints.length].generate(
                {
                  prompts: prompts.slice(a, b),
                  numCompletions: n,
                  sampling,
                  adapterVersion,
                  chat: this.spec.chat,
                  enableThinking: this.spec.enableThinking,
                  runId: this.spec.runId,
                  step,
                  callTag: [tag, ...where.map((w) => w.replace(" ", "-"))].join("."),
                },
                this.calls.options(signal),
              ),
          );
          groups.push(...r.groups);
          engineSeconds += r.engineSeconds;
        }
        return { groups, engineSeconds };
      }),
    );
    return {
      groups: parts.flatMap((p) => p.groups),
      adapterVersion,
      // shards run side by side: the engine time of the step is the slowest shard's
      engineSeconds: Math.max(0, ...parts.map((p) => p.engineSeconds)),
      generatedTokens: 0,
    };
  }
}
