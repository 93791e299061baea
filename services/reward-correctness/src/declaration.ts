// reward-correctness's deployment declaration (ServiceDeclaration): main.ts runs from it and the
// deployment checks read it.
import { rewardSourceDeclaration } from "@temper/reward-server";

export const declaration = rewardSourceDeclaration("reward-correctness", 15051);
