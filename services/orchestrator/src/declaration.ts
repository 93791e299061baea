// orchestrator's deployment declaration (ServiceDeclaration): its name, port, API and variables. main.ts
// runs from it and the deployment checks (tests/deploy-config.test.ts) read it.
import { HF_HUB_CACHE_VAR } from "@temper/hub";
import { env, parseEndpoint, type ServiceDeclaration, type VarSpec } from "@temper/kit";
import { orchestrator } from "@temper/proto";
import { GENERATE_MAX_PROMPTS } from "./prompts.ts";

const endpoints: VarSpec<string[]> = {
  default: ["127.0.0.1:15070"],
  kind: "comma-separated host:port list",
  doc: "rollout endpoints; a step's prompts are sharded over every server they name, in this order: a name is resolved before each Generate and each of its addresses is one server (a headless Service: every ready pod)",
  parse(raw) {
    const list = raw.split(",").map((s) => s.trim());
    for (const e of list) {
      const m = /^(\[[0-9a-fA-F:.]+\]|[A-Za-z0-9._-]+):(\d{1,5})$/.exec(e);
      if (!m || Number(m[2]) < 1 || Number(m[2]) > 65535)
        throw new Error(`${JSON.stringify(e)} is not host:port with a port in [1, 65535]`);
    }
    return list;
  },
};

const config = {
  HF_HUB_CACHE: {
    ...HF_HUB_CACHE_VAR,
    doc: "the Hugging Face Hub cache where hf:// data a client could not resolve is found (filled by `temper data pull`; never downloaded here)",
  },
  ROLLOUT_ADDR: endpoints,
  SCHEDULER_ADDR: env.hostPort({ default: "127.0.0.1:15060", doc: "the scheduler" }),
  LEARNER_ADDR: env.hostPort({ default: "127.0.0.1:15080", doc: "the learner" }),
  REWARD_CORRECTNESS_ADDR: {
    default: "127.0.0.1:15051",
    kind: "host:port, or a comma-separated list of ip:port (replicas)",
    doc: "the correctness source, which scores held-out evaluations; calls are balanced over every address of the name, or over the list",
    parse(raw: string) {
      parseEndpoint(raw);
      return raw.trim();
    },
  } satisfies VarSpec<string>,
  RUNS_DIR: env.string({ default: ".temper/runs", doc: "run directories: <dir>/<run_id>/" }),
  RETRY_WAIT_MS: env.int({
    default: 120_000,
    min: 0,
    max: 86_400_000,
    doc: "how long a call failing with UNAVAILABLE, DEADLINE_EXCEEDED, RESOURCE_EXHAUSTED or ABORTED is retried before the run fails",
  }),
  CALL_TIMEOUT_MS: env.int({
    default: 600_000,
    min: 1000,
    max: 86_400_000,
    doc: "deadline of one Generate, Score or Train attempt",
  }),
  GENERATE_MAX_PROMPTS: env.int({
    default: GENERATE_MAX_PROMPTS,
    min: 1,
    max: 65_536,
    doc: "most prompts in one Generate (and groups in one held-out correctness Score); a larger shard, such as a big held-out set, goes out in several calls. At most the rollout's MAX_PROMPTS",
  }),
  INSTANCE_ID: env.string({
    default: "",
    doc: "this orchestrator's name in run leases (default: host + RUNS_DIR); a restart with the same name resumes its runs at once",
  }),
};

export const declaration = {
  name: "orchestrator",
  defaultPort: 15090,
  api: orchestrator.OrchestratorServiceService,
  config,
  nats: true,
} satisfies ServiceDeclaration<typeof config>;
