// orchestrator: runs experiments (temper.orchestrator.v1.OrchestratorService) — the RL loop over
// rollout, scheduler and learner, held-out evaluation through the correctness source, metrics in
// run directories and on NATS, run state in JetStream KV.
import { hostname } from "node:os";
import { resolve } from "node:path";
import { createClient, env, runService, service, type VarSpec } from "@temper/kit";
import { descriptorSetPath, learner, orchestrator, reward, rollout, scheduler } from "@temper/proto";
import { Orchestrator } from "./orchestrator.ts";
import { RUNS_BUCKET, RunTable } from "./run-store.ts";

const endpoints: VarSpec<string[]> = {
  default: ["127.0.0.1:50070"],
  kind: "comma-separated host:port list",
  doc: "rollout endpoints; a step's prompts are sharded over them in this order",
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
  ROLLOUT_ADDR: endpoints,
  SCHEDULER_ADDR: env.hostPort({ default: "127.0.0.1:50060", doc: "the scheduler" }),
  LEARNER_ADDR: env.hostPort({ default: "127.0.0.1:50080", doc: "the learner" }),
  REWARD_CORRECTNESS_ADDR: env.hostPort({
    default: "127.0.0.1:50051",
    doc: "the correctness source, which scores held-out evaluations",
  }),
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
  INSTANCE_ID: env.string({
    default: "",
    doc: "this orchestrator's name in run leases (default: host + RUNS_DIR); a restart with the same name resumes its runs at once",
  }),
};

let impl: Orchestrator | undefined;
await runService({
  name: "orchestrator",
  version: "0.1.0",
  defaultPort: 50090,
  descriptorSet: descriptorSetPath,
  config,
  nats: true,
  services: async ({ config: c, bus, logger }) => {
    const runsDir = resolve(c.RUNS_DIR);
    const kv = await bus!.kv(RUNS_BUCKET, { history: 1 });
    const table = new RunTable(kv, c.INSTANCE_ID || `${hostname()}:${runsDir}`);
    const defaults = { defaults: { timeoutMs: 30_000 } };
    const clients = {
      rollouts: c.ROLLOUT_ADDR.map((a) => createClient(rollout.RolloutServiceService, a, defaults)),
      scheduler: createClient(scheduler.SchedulerServiceService, c.SCHEDULER_ADDR, defaults),
      learner: createClient(learner.LearnerServiceService, c.LEARNER_ADDR, defaults),
      correctness: createClient(reward.RewardServiceService, c.REWARD_CORRECTNESS_ADDR, defaults),
    };
    const o = new Orchestrator(
      table,
      clients,
      bus!,
      { runsDir, retryWaitMs: c.RETRY_WAIT_MS, callTimeoutMs: c.CALL_TIMEOUT_MS },
      logger,
    );
    impl = o;
    setImmediate(() => {
      o.resumeOrphans().catch((err) => logger.error({ err }, "cannot list runs to resume"));
    });
    // StartRun, StopRun and ResumeRun change state; GetRun, WatchRun and ListRuns read.
    return [
      service(
        orchestrator.OrchestratorServiceService,
        {
          startRun: (req, ctx) => o.startRun(req, ctx),
          getRun: (req) => o.getRun(req),
          watchRun: (req, ctx) => o.watchRun(req, ctx),
          stopRun: (req) => o.stopRun(req),
          resumeRun: (req) => o.resumeRun(req),
          listRuns: (req) => o.listRuns(req),
        },
        { mutating: ["startRun", "stopRun", "resumeRun"] },
      ),
    ];
  },
  onShutdown: [{ name: "runs", run: () => impl?.close() }],
});
