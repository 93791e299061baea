// scheduler: the reward router (temper.scheduler.v1.SchedulerService). State lives in JetStream KV.
import { runService, service } from "@temper/kit";
import { descriptorSetPath } from "@temper/proto";
import { declaration } from "./declaration.ts";
import { ALLOW_VARIABLE, EndpointPolicy } from "./endpoint-policy.ts";
import { Scheduler } from "./scheduler.ts";
import { SourcePool } from "./sources.ts";
import { RunStore, STATE_BUCKET } from "./store.ts";

let pool: SourcePool | undefined;
await runService({
  ...declaration,
  version: "0.1.0",
  descriptorSet: descriptorSetPath,
  services: async ({ config: c, bus, logger }) => {
    const sources = {
      correctness: c.REWARD_CORRECTNESS_ADDR,
      perplexity: c.REWARD_PERPLEXITY_ADDR,
      reasoning: c.REWARD_REASONING_ADDR,
      consistency: c.REWARD_CONSISTENCY_ADDR,
    };
    const policy = c.SOURCE_ENDPOINT_ALLOW
      ? new EndpointPolicy(c.SOURCE_ENDPOINT_ALLOW)
      : new EndpointPolicy(
          ["loopback", ...Object.values(sources)].join(","),
          `${ALLOW_VARIABLE} (unset: loopback and the REWARD_*_ADDR endpoints)`,
        );
    // The defaults are endpoints too: a list that refuses one of them is a configuration mistake.
    for (const [name, endpoint] of Object.entries(sources)) {
      const problem = policy.problem(endpoint);
      if (problem) {
        process.stderr.write(
          `scheduler: invalid configuration: REWARD_${name.toUpperCase()}_ADDR=${JSON.stringify(endpoint)}: ${problem}\n`,
        );
        process.exit(2);
      }
    }
    logger.info({ allow: policy.description }, "source endpoints admitted");
    const store = new RunStore(await bus!.kv(STATE_BUCKET, { history: 1 }), bus!.nc.info?.max_payload);
    pool = new SourcePool(c.GRPC_MAX_MESSAGE_BYTES);
    const router = new Scheduler(
      store,
      pool,
      bus,
      { sources, sourceTimeoutMs: c.SOURCE_TIMEOUT_MS, policy },
      {
        maxGroups: c.MAX_GROUPS,
        maxGroupSize: c.MAX_GROUP_SIZE,
        maxTextLength: c.MAX_TEXT_CHARS,
        rejectEmptyText: !c.ALLOW_EMPTY_TEXT,
        maxResponseBytes: c.GRPC_MAX_MESSAGE_BYTES,
      },
      logger,
    );
    return [
      // Configure and Score change state (Score stores the step and moves the schedule); with
      // credentials configured, both need one. GetState is a read.
      service(
        declaration.api,
        {
          configure: (req) => {
            bus!.assertConnected("the scheduler's store");
            return router.configure(req);
          },
          score: (req, ctx) => {
            bus!.assertConnected("the scheduler's store");
            return router.score(req, ctx);
          },
          getState: (req) => {
            bus!.assertConnected("the scheduler's store");
            return router.getState(req);
          },
        },
        { mutating: ["configure", "score"] },
      ),
    ];
  },
  onShutdown: [{ name: "source clients", run: () => pool?.close() }],
});
