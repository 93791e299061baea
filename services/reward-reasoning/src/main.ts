// reward-reasoning: the "reasoning" reward source over gRPC (temper.reward.v1.RewardService).
import { serveRewardSource } from "@temper/reward-server";
import { reasoningSource } from "@temper/rewards";
import { declaration } from "./declaration.ts";

await serveRewardSource({ source: reasoningSource, ...declaration });
