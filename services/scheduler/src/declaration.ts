// scheduler's deployment declaration (ServiceDeclaration): its name, port, API and variables. main.ts
// runs from it and the deployment checks (tests/deploy-config.test.ts) read it.
import { env, type ServiceDeclaration, type VarSpec } from "@temper/kit";
import { scheduler } from "@temper/proto";
import { DEFAULT_SCORE_LIMITS } from "@temper/rewards";
import { EndpointPolicy } from "./endpoint-policy.ts";
import { endpointProblem } from "./settings.ts";

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
  REWARD_CORRECTNESS_ADDR: endpoint(15051, "correctness"),
  REWARD_PERPLEXITY_ADDR: endpoint(15052, "perplexity"),
  REWARD_REASONING_ADDR: endpoint(15053, "reasoning"),
  REWARD_CONSISTENCY_ADDR: endpoint(15054, "consistency"),
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

export const declaration = {
  name: "scheduler",
  defaultPort: 15060,
  api: scheduler.SchedulerServiceService,
  config,
  nats: true,
} satisfies ServiceDeclaration<typeof config>;
