// scheduler: the reward router (temper.scheduler.v1.SchedulerService). State lives in JetStream KV.
import { env, runService, service, type VarSpec } from "@temper/kit";
import { descriptorSetPath, scheduler } from "@temper/proto";
import { DEFAULT_SCORE_LIMITS } from "@temper/rewards";
import { ALLOW_VARIABLE, EndpointPolicy } from "./endpoint-policy.ts";
import { Scheduler } from "./scheduler.ts";
import { endpointProblem } from "./settings.ts";
import { SourcePool } from "./sources.ts";
import { RunStore, STATE_BUCKET } from "./store.ts";

const endpoint = (port: number, name: string) => {
  const spec = env.string({
    default: `127.0.0.1:${port}`,
    doc: `default endpoint of the ${name} source (a run may override it)`,
  });
  return {
    ...spec,
    kind: "host:port (port in 1–65535)",
    parse(raw: string): string {
      const problem = endpointProblem(raw);
      if (problem) throw new Error(problem);
      return raw;
    },
  };
};

const config = {
  REWARD_CORRECTNESS_ADDR: endpoint(50051, "correctness"),
  REWARD_PERPLEXITY_ADDR: endpoint(50052, "perplexity"),
  REWARD_REASONING_ADDR: endpoint(50053, "reasoning"),
  REWARD_CONSISTENCY_ADDR: endpoint(50054, "consistency"),
  SOURCE_TIMEOUT_MS: env.int({
    default: 5000,
    min: 1,
    max: 600_000,
    doc: "default deadline of each source call",
  }),
  MAX_GROUPS: env.int({
    default: DEFAULT_SCORE_LIMITS.maxGroups,
    min: 1,
    max: 65_536,
    doc: "most groups in one Score",
  }),
  MAX_GROUP_SIZE: env.int({
    default: DEFAULT_SCORE_LIMITS.maxGroupSize,
    min: 1,
    max: 65_536,
    doc: "most completions in a group",
  }),
  ALLOW_EMPTY_TEXT: env.bool({
    default: false,
    doc: "score an empty completion instead of rejecting the call",
  }),
  SOURCE_ENDPOINT_ALLOW: env.optional({
    doc: "reward-source endpoints a run may name: comma-separated `loopback`, `HOST:PORT`, `HOST:*`, `*:PORT`, `*` (anything); unset: loopback plus the four REWARD_*_ADDR endpoints",
    kind: "comma-separated endpoint rules",
    parse(raw: string) {
      new EndpointPolicy(raw);
      return raw;
    },
  } satisfies VarSpec<string>),
  MAX_TEXT_CHARS: env.int({
    default: DEFAULT_SCORE_LIMITS.maxTextLength,
    min: 1,
    max: 16 * 1024 * 1024,
    doc: "longest completion text, in UTF-16 code units",
  }),
};

let pool: SourcePool | undefined;
await runService({
  name: "scheduler",
  version: "0.1.0",
  defaultPort: 50060,
  descriptorSet: descriptorSetPath,
  config,
  nats: true,
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
        scheduler.SchedulerServiceService,
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
