// reward-correctness: the "correctness" reward source over gRPC (temper.reward.v1.RewardService).
import { serveRewardSource } from "@temper/reward-server";
import { correctnessSource } from "@temper/rewards";

await serveRewardSource({ source: correctnessSource, name: "reward-correctness", defaultPort: 50051 });
