// reward-perplexity: the "perplexity" reward source over gRPC (temper.reward.v1.RewardService).
import { serveRewardSource } from "@temper/reward-server";
import { perplexitySource } from "@temper/rewards";

await serveRewardSource({ source: perplexitySource, name: "reward-perplexity", defaultPort: 50052 });
