// reward-reasoning: the "reasoning" reward source over gRPC (temper.reward.v1.RewardService).
import { serveRewardSource } from "@temper/reward-server";
import { reasoningSource } from "@temper/rewards";

await serveRewardSource({ source: reasoningSource, name: "reward-reasoning", defaultPort: 50053 });
