// Several workers give the results of one (issue #15): a short GRPO run through a stack with two
// rollout workers and two replicas of the correctness source behind one endpoint, against the same
// run through one worker and one replica. Per precision, one stack runs both: `temper stack`'s
// replicas serve the run of its orchestrator (ROLLOUT_ADDR lists both workers, the scheduler's
// correctness endpoint lists both replicas), and a second orchestrator, ROLLOUT_ADDR the first
// worker only, runs the same spec with the correctness source set to the first replica. In float64
// the token ids of every step match and the logprobs agree within 1e-9; in float32 the logprobs
// agree within 1e-4 (up to the first differing token of a completion) and the test prints the
// share of differing tokens.
import assert from "node:assert/strict";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { createClient, findNatsServer, type PromiseClient } from "@temper/kit";
import { orchestrator, rollout, scheduler } from "@temper/proto";
import { launchService, startStack } from "@temper/stack";
import { additionProblems, freeStackOffset, testRunSpec, tinyPolicyModel } from "./src/index.ts";

// Three steps, three Score calls through the scheduler's balanced client: grpc-js's round_robin sends
// every call to the first replica until the second is READY, and its new picker then starts again at
// the first, so the second replica is certain a call only from the third on (two steps failed in CI).
const STEPS = 3;
type Orchestrator = PromiseClient<typeof orchestrator.OrchestratorServiceService>;

interface Comparison {
  tokens: number;
  differing: number;
  /** Largest |Δ logprob| over positions whose tokens (and every token before) match. */
  maxLogprobDiff: number;
  maxRewardDiff: number;
}

interface StepFiles {
  rollout: rollout.GenerateResponse;
  scored: scheduler.ScoreResponse;
}

/**
 * Runs `spec` to the end on `client`; returns each step's stored rollout, read as the step's
 * metrics arrive (a run keeps the files of its latest step only: step N's go when step N+1 has
 * trained, a whole Generate, Score and Train after the event), and its scores, which the scheduler
 * replays for the same groups.
 */
async function runToEnd(
  client: Orchestrator,
  schedulerClient: PromiseClient<typeof scheduler.SchedulerServiceService>,
  spec: orchestrator.RunSpec,
): Promise<StepFiles[]> {
  const { run } = await client.startRun({ spec });
  const dir = run!.directory;
  const rollouts: rollout.GenerateResponse[] = [];
  let final = orchestrator.RunStatus.RUN_STATUS_UNSPECIFIED;
  let error = "";
  for await (const ev of client.watchRun({ runId: run!.runId, fromStep: 0 }, { timeoutMs: 600_000 })) {
    if (ev.event?.$case === "metrics") {
      const step = ev.event.value.step;
      const file = (name: string) => readFileSync(join(dir, "steps", String(step), name));
      rollouts[step] = rollout.GenerateResponse.decode(file("rollout.bin"));
    }
    final = ev.status;
    error = ev.error;
  }
  assert.equal(final, orchestrator.RunStatus.RUN_STATUS_SUCCEEDED, error);
  assert.equal(rollouts.filter(Boolean).length, STEPS);
  const steps: StepFiles[] = [];
  for (const [step, r] of rollouts.entries()) {
    const scored = await schedulerClient.score({ runId: run!.runId, step, groups: r.groups });
    assert.ok(scored.replayed, `step ${step}: the scheduler replays the scores it stored`);
    steps.push({ rollout: r, scored });
  }
  return steps;
}

function compareRuns(one: StepFiles[], many: StepFiles[]): Comparison {
  const out: Comparison = { tokens: 0, differing: 0, maxLogprobDiff: 0, maxRewardDiff: 0 };
  for (let step = 0; step < STEPS; step++) {
    const [a, b] = [one[step].rollout, many[step].rollout];
    assert.deepEqual(
      b.groups.map((g) => g.id),
      a.groups.map((g) => g.id),
      `step ${step}: the same prompts`,
    );
    for (const [gi, ga] of a.groups.entries()) {
      const gb = b.groups[gi];
      assert.equal(gb.completions.length, ga.completions.length);
      for (const [ci, ca] of ga.completions.entries()) {
        const cb = gb.completions[ci];
        assert.equal(cb.id, ca.id);
        const n = Math.max(ca.tokenIds.length, cb.tokenIds.length);
        out.tokens += n;
        let same = true;
        for (let i = 0; i < n; i++) {
          if (ca.tokenIds[i] !== cb.tokenIds[i]) {
            out.differing++;
            same = false;
          } else if (same)
            out.maxLogprobDiff = Math.max(out.maxLogprobDiff, Math.abs(ca.logprobs[i] - cb.logprobs[i]));
        }
      }
    }
    const [sa, sb] = [one[step].scored, many[step].scored];
    assert.deepEqual(
      sb.items.map((i) => i.completionId),
      sa.items.map((i) => i.completionId),
    );
    for (const [i, item] of sa.items.entries())
      out.maxRewardDiff = Math.max(out.maxRewardDiff, Math.abs(item.reward - sb.items[i].reward));
  }
  return out;
}

/** Calls of `method` in an instance's log (access lines: LOG_LEVEL debug). */
function callsIn(dataDir: string, instance: string, method: string): number {
  const log = readFileSync(join(dataDir, "logs", `${instance}.log`), "utf8");
  return log.split("\n").filter((l) => l.includes('"msg":"rpc"') && l.includes(method)).length;
}

describe("two rollout workers and two correctness replicas give one worker's results", {
  skip: !findNatsServer() && "nats-server not installed",
}, () => {
  const root = mkdtempSync(join(tmpdir(), "temper-multi-worker-"));
  const modelDir = join(root, "model");

  before(() => {
    tinyPolicyModel(modelDir);
    writeFileSync(join(root, "train.jsonl"), additionProblems(12, 1));
  });
  after(() => rmSync(root, { recursive: true, force: true }));

  for (const dtype of ["float64", "float32"] as const) {
    it(`${dtype}: the same tokens and logprobs, steps sharded over both workers, scores over both replicas`, {
      timeout: 600_000,
    }, async () => {
      const started = performance.now();
      const offset = await freeStackOffset();
      const natsPort = 4222 + offset;
      const debug = { LOG_LEVEL: "debug" };
      const dataDir = join(root, `stack-${dtype}`);
      const stack = await startStack({
        dataDir,
        natsPort,
        portOffset: offset,
        model: modelDir,
        replicas: { rollout: 2, "reward-correctness": 2 },
        env: {
          rollout: { DTYPE: dtype, ...debug },
          learner: { DTYPE: dtype },
          "reward-correctness": debug,
        },
      });
      const single = await launchService({
        name: "orchestrator-single",
        service: "orchestrator",
        env: {
          HOST: "127.0.0.1",
          PORT: "0",
          NATS_URL: stack.natsUrl,
          ROLLOUT_ADDR: stack.address("rollout"),
          SCHEDULER_ADDR: stack.address("scheduler"),
          LEARNER_ADDR: stack.address("learner"),
          REWARD_CORRECTNESS_ADDR: stack.address("reward-correctness"),
          RUNS_DIR: join(root, `runs-single-${dtype}`),
          INSTANCE_ID: `single-${dtype}`,
        },
      });
      const clients = [stack.address("orchestrator"), single.address].map((a) =>
        createClient(orchestrator.OrchestratorServiceService, a, { defaults: { timeoutMs: 60_000 } }),
      );
      const schedulerClient = createClient(scheduler.SchedulerServiceService, stack.address("scheduler"), {
        defaults: { timeoutMs: 60_000 },
      });
      try {
        // what the stack hands its clients: both workers, both replicas as one endpoint
        const replicas = stack.endpoint("reward-correctness");
        assert.deepEqual(replicas.split(","), [
          stack.address("reward-correctness"),
          stack.address("reward-correctness-2"),
        ]);
        assert.equal(stack.endpoint("rollout"), `${stack.address("rollout")},${stack.address("rollout-2")}`);

        const spec = (name: string, correctness?: string) => {
          const s = testRunSpec(
            { model: modelDir, trainData: join(root, "train.jsonl"), name },
            { steps: STEPS, promptsPerStep: 4, completionsPerPrompt: 4 },
          );
          if (correctness) s.reward!.sources = { correctness };
          return s;
        };
        const [many, one] = await Promise.all([
          runToEnd(clients[0], schedulerClient, spec("many")),
          runToEnd(clients[1], schedulerClient, spec("one", stack.address("reward-correctness"))),
        ]);

        // the runs went where they were meant to go
        const provenance = (steps: StepFiles[]) =>
          steps[0].scored.provenance.find((p) => p.source === "correctness")!.endpoint;
        assert.equal(provenance(many), replicas);
        assert.equal(provenance(one), stack.address("reward-correctness"));
        // rollout-2 and reward-correctness-2 serve the two-worker run only: every step reached both
        assert.ok(callsIn(dataDir, "rollout-2", "/Generate") >= STEPS, "rollout-2 generated each step");
        assert.ok(callsIn(dataDir, "rollout", "/Generate") >= 2 * STEPS);
        const scored2 = callsIn(dataDir, "reward-correctness-2", "RewardService/Score");
        assert.ok(scored2 >= 1, "the second correctness replica scored");

        const c = compareRuns(one, many);
        const rate = c.differing / c.tokens;
        process.stdout.write(
          `# ${dtype}: ${c.tokens} tokens over ${STEPS} steps, ${c.differing} differ (${(100 * rate).toFixed(2)} %), max |Δ logprob| ${c.maxLogprobDiff.toExponential(2)}, max |Δ reward| ${c.maxRewardDiff.toExponential(2)}; correctness-2 took ${scored2} Score call(s); ${((performance.now() - started) / 1000).toFixed(1)} s\n`,
        );
        assert.ok(c.tokens > 0);
        if (dtype === "float64") {
          assert.equal(c.differing, 0, "float64: every token id matches");
          assert.ok(c.maxLogprobDiff <= 1e-9, `float64 logprobs differ by ${c.maxLogprobDiff}`);
          assert.ok(c.maxRewardDiff <= 1e-9, `float64 rewards differ by ${c.maxRewardDiff}`);
        } else {
          assert.ok(c.maxLogprobDiff <= 1e-4, `float32 logprobs differ by ${c.maxLogprobDiff}`);
        }
      } finally {
        for (const c of clients) c.$close();
        schedulerClient.$close();
        await single.stop("SIGTERM", 20_000);
        await stack.stop();
      }
    });
  }
});
