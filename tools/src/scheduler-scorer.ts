// `temper score --scheduler HOST:PORT`: the same BatchScorer as the in-process one, answered by a
// running scheduler (and so by whatever reward services it routes to).
import { createClient, isGrpcError } from "@temper/kit";
import { scheduler } from "@temper/proto";
import { componentFromProto, structureToProto } from "@temper/reward-server";
import { componentStats, type PipelineResult } from "@temper/rewards";
import type { BatchScorer, ScoreBatchRequest } from "./batch-scorer.ts";
import { CliError } from "./cli.ts";

const SCALES = {
  group: scheduler.AdvantageScale.ADVANTAGE_SCALE_GROUP,
  batch: scheduler.AdvantageScale.ADVANTAGE_SCALE_BATCH,
  none: scheduler.AdvantageScale.ADVANTAGE_SCALE_NONE,
} as const;

/** "correctness.correctness_soft" → "correctness_soft": the in-process names (unique across sources). */
const plain = (key: string) => key.slice(key.indexOf(".") + 1);

export function schedulerScorer(address: string, runId: string): BatchScorer {
  return {
    async score(req: ScoreBatchRequest): Promise<PipelineResult> {
      const client = createClient(scheduler.SchedulerServiceService, address, {
        defaults: { timeoutMs: 60_000 },
      });
      try {
        await client.configure({
          config: {
            runId,
            structure: structureToProto(req.structure),
            sources: {},
            advantageScale: SCALES[req.advantageScale],
            failurePolicy: scheduler.FailurePolicy.FAILURE_POLICY_SKIP,
            control: 0,
            controlSeed: 0,
            sourceTimeoutMs: 0,
            params: {
              perplexityTau: req.params.perplexityTau,
              minTokens: req.params.minTokens,
              maxTokens: req.params.maxTokens,
              perplexityMode: 0,
            },
          },
        });
        const res = await client.score({
          runId,
          step: req.step,
          // Groups are numbered by position, as in-process, so repeated ids never merge two groups.
          groups: req.groups.map((g, k) => ({
            id: String(k),
            prompt: g.prompt ?? "",
            reference: g.reference,
            promptTokenIds: [],
            completions: g.completions.map((c, j) => ({
              id: c.id || String(j),
              text: c.text,
              tokenIds: [...(c.tokenIds ?? [])],
              logprobs: [...(c.logprobs ?? [])],
              finishReason: c.finishReason === "length" ? 2 : c.finishReason === "stop" ? 1 : 0,
            })),
          })),
        });
        const items = res.items.map((item) => {
          const components = Object.fromEntries(
            Object.entries(item.components).map(([k, v]) => [plain(k), componentFromProto(v)]),
          );
          for (const m of item.missing)
            components[plain(m)] = { status: "error", value: null, detail: "source failed" };
          return {
            completionId: item.completionId,
            groupId: item.groupId,
            reward: item.reward,
            alphaUsed: item.alphaUsed,
            advantage: item.advantage,
            components,
            details: {
              extractedAnswer: item.details?.extractedAnswer ?? "",
              matchedRule: (item.details?.matchedRule ??
                "") as PipelineResult["items"][number]["details"]["matchedRule"],
              equations: [],
            },
          };
        });
        const hard = items.map((i) => i.components.correctness_hard?.value ?? 0);
        return {
          items,
          groups: res.groups.map((g) => ({
            groupId: g.groupId,
            size: items.filter((i) => i.groupId === g.groupId).length,
            zeroSignal: g.zeroSignal,
            fallbackApplied: g.fallbackApplied,
            meanReward: g.meanReward,
            stdReward: g.stdReward,
          })),
          alpha: res.alpha,
          state: req.state,
          batchAccuracy: hard.reduce((a, b) => a + b, 0) / Math.max(1, hard.length),
          zeroSignalFraction: res.groups.filter((g) => g.zeroSignal).length / Math.max(1, res.groups.length),
          componentStats: componentStats(
            items.map((i) => Object.fromEntries(Object.entries(i.components).map(([k, v]) => [k, v.value]))),
          ),
        };
      } catch (err) {
        if (isGrpcError(err)) throw new CliError(`scheduler ${address}: ${(err as Error).message}`);
        throw err;
      } finally {
        client.$close();
      }
    },
  };
}
