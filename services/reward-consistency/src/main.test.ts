import { test } from "node:test";
import { checkRewardServiceProcess } from "@temper/reward-server/testing";
import { consistencySource } from "@temper/rewards";

test("the reward-consistency process serves Info and Score", () =>
  checkRewardServiceProcess(new URL("./main.ts", import.meta.url).pathname, consistencySource));
