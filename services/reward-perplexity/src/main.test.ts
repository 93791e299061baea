import { test } from "node:test";
import { checkRewardServiceProcess } from "@temper/reward-server/testing";
import { perplexitySource } from "@temper/rewards";

test("the reward-perplexity process serves Info and Score", () =>
  checkRewardServiceProcess(new URL("./main.ts", import.meta.url).pathname, perplexitySource));
