// reward-perplexity's deployment declaration (ServiceDeclaration): main.ts runs from it and the
// deployment checks read it.
import type { ServiceDeclaration } from "@temper/kit";
import { reward } from "@temper/proto";
import { perplexityConfig } from "./service.ts";

export const declaration = {
  name: "reward-perplexity",
  defaultPort: 15052,
  api: reward.RewardServiceService,
  config: perplexityConfig,
} satisfies ServiceDeclaration<typeof perplexityConfig>;
