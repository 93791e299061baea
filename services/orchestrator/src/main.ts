// orchestrator: runs experiments (temper.orchestrator.v1.OrchestratorService) — the RL loop over
// rollout, scheduler and learner, held-out evaluation through the correctness source, metrics in
// run directories and on NATS, run state in JetStream KV.
import { hostname } from "node:os";
import { resolve } from "node:path";
import { createClient, runService, service } from "@temper/kit";
import { descriptorSetPath, learner, reward, rollout, scheduler } from "@temper/proto";
import { declaration } from "./declaration.ts";
import { Orchestrator } from "./orchestrator.ts";
import { RolloutPool } from "./rollout-pool.ts";
import { RUNS_BUCKET, RunTable } from "./run-store.ts";

let impl: Orchestrator | undefined;
await runService({
  ...declaration,
  version: "0.1.0",
  descriptorSet: descriptorSetPath,
  services: async ({ config: c, bus, logger }) => {
    const runsDir = resolve(c.RUNS_DIR);
    const kv = await bus!.kv(RUNS_BUCKET, { history: 1 });
    const table = new RunTable(kv, c.INSTANCE_ID || `${hostname()}:${runsDir}`);
    const defaults = { defaults: { timeoutMs: 30_000 } };
    const clients = {
      // every server behind each entry (a headless Service: every ready pod), resolved per Generate
      rollouts: new RolloutPool(
        c.ROLLOUT_ADDR,
        (address, authority) =>
          createClient(rollout.RolloutServiceService, address, { ...defaults, authority }),
        { closeAfterMs: c.CALL_TIMEOUT_MS + 60_000 },
      ),
      scheduler: createClient(scheduler.SchedulerServiceService, c.SCHEDULER_ADDR, defaults),
      learner: createClient(learner.LearnerServiceService, c.LEARNER_ADDR, defaults),
      // replicas of the source (a name with several addresses, or a list) share the evaluations
      correctness: createClient(reward.RewardServiceService, c.REWARD_CORRECTNESS_ADDR, {
        ...defaults,
        balance: true,
      }),
    };
    const o = new Orchestrator(
      table,
      clients,
      bus!,
      {
        runsDir,
        retryWaitMs: c.RETRY_WAIT_MS,
        callTimeoutMs: c.CALL_TIMEOUT_MS,
        maxPromptsPerCall: c.GENERATE_MAX_PROMPTS,
      },
      logger,
    );
    impl = o;
    setImmediate(() => o.sweepOrphans());
    // StartRun, StopRun and ResumeRun change state; GetRun, WatchRun and ListRuns read.
    return [
      service(
        declaration.api,
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
