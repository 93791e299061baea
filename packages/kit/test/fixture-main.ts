// A real service process for the kit's tests: runService with the fixture RewardService.
import { descriptorSetPath, reward } from "@temper/proto";
import { env, runService, service } from "../src/index.ts";
import { fixtureRewardService } from "./reward-fixture.ts";

await runService({
  name: "kit-fixture",
  version: "0.0.1",
  defaultPort: 0,
  descriptorSet: descriptorSetPath,
  config: {
    FIXTURE_GREETING: env.string({ default: "hello", doc: "Unused; shows a service-specific variable." }),
  },
  nats: process.env.NATS_URL ? true : undefined,
  services: () => [service(reward.RewardServiceService, fixtureRewardService)],
});
