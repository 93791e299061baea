// Test-only implementation of temper.reward.v1.RewardService used by the kit's own tests:
// a group whose prompt is "sleep:<ms>" makes Score wait (honouring cancellation), "throw" makes
// the handler throw an unexpected error, and every completion text is checked against a limit.
import { setTimeout as sleep } from "node:timers/promises";
import { reward } from "@temper/proto";
import { check, fieldPath, type ServiceImplementation } from "../src/index.ts";

export const FIXTURE_MAX_TEXT_BYTES = 262144;

export const fixtureRewardService: ServiceImplementation<typeof reward.RewardServiceService> = {
  async score(request, ctx) {
    for (const [gi, g] of request.groups.entries())
      for (const [ci, c] of g.completions.entries())
        check.maxBytes(c.text, FIXTURE_MAX_TEXT_BYTES, fieldPath("groups", gi, "completions", ci, "text"));
    for (const g of request.groups) {
      const m = /^sleep:(\d+)$/.exec(g.prompt);
      if (m) await sleep(Number(m[1]), undefined, { signal: ctx.signal });
      if (g.prompt === "throw") throw new Error("fixture failure");
    }
    ctx.logger.info({ groups: request.groups.length }, "scored");
    return {
      results: request.groups.flatMap((g) =>
        g.completions.map((c) => ({
          completionId: c.id,
          groupId: g.id,
          components: {
            length: {
              value: Math.min(1, c.text.length / 100),
              status: reward.ComponentStatus.COMPONENT_STATUS_OK,
              detail: "",
            },
          },
          details: { extractedAnswer: "", matchedRule: "", equations: [] },
        })),
      ),
    };
  },
  info() {
    return { name: "kit-fixture", version: "0.0.1", components: ["length"] };
  },
};
