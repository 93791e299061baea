// reward-consistency: the "consistency" reward source over gRPC (temper.reward.v1.RewardService).
import { serveRewardSource } from "@temper/reward-server";
import { consistencySource } from "@temper/rewards";

await serveRewardSource({ source: consistencySource, name: "reward-consistency", defaultPort: 50054 });
