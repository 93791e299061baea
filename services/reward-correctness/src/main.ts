// reward-correctness: the "correctness" reward source over gRPC (temper.reward.v1.RewardService).
import { serveRewardSource } from "@temper/reward-server";
import { correctnessSource } from "@temper/rewards";
import { declaration } from "./declaration.ts";

await serveRewardSource({ source: correctnessSource, ...declaration });
