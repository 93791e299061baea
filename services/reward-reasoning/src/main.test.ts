import { test } from "node:test";
import { checkRewardServiceProcess } from "@temper/reward-server/testing";
import { reasoningSource } from "@temper/rewards";

test("the reward-reasoning process serves Info and Score", () =>
  checkRewardServiceProcess(new URL("./main.ts", import.meta.url).pathname, reasoningSource));
