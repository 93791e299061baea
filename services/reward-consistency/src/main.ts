// reward-consistency: the "consistency" reward source over gRPC (temper.reward.v1.RewardService).
import { serveRewardSource } from "@temper/reward-server";
import { consistencySource } from "@temper/rewards";
import { declaration } from "./declaration.ts";

await serveRewardSource({ source: consistencySource, ...declaration });
