import { test } from "node:test";
import { checkRewardServiceProcess } from "@temper/reward-server/testing";
import { correctnessSource } from "@temper/rewards";

test("the reward-correctness process serves Info and Score", () =>
  checkRewardServiceProcess(new URL("./main.ts", import.meta.url).pathname, correctnessSource));
