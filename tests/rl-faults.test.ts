// A run survives the SIGKILL of any one service. Five runs of one spec each lose a different
// process at a chosen moment — the learner while its Train is in progress, rollout while its
// Generate is, the scheduler while its Score is, the orchestrator mid-step and once its Score is
// done (the scheduler replays it) — and the stack's supervisor restarts it. Every run must end with
// exactly its spec's steps, one metrics line per step, and a final adapter bitwise equal to an
// uninterrupted run's.
import assert from "node:assert/strict";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { setTimeout as sleep } from "node:timers/promises";
import { type Bus, findNatsServer } from "@temper/kit";
import { orchestrator } from "@temper/proto";
import type { Stack } from "@temper/stack";
import {
  FAULT_STEPS,
  type FaultStack,
  faultSpec,
  finalAdapter,
  metricsSteps,
  onEvent,
  startFaultStack,
  waitForEnd,
} from "./src/run-faults.ts";

describe("an RL run survives the SIGKILL of any one service", {
  skip: !findNatsServer() && "nats-server not installed",
}, () => {
  const root = mkdtempSync(join(tmpdir(), "temper-rl-faults-"));
  let f: FaultStack;
  let stack: Stack;
  let bus: Bus;
  let client: FaultStack["client"];
  let modelDir: string;
  let supervisor: string[];

  before(async () => {
    // a restarted orchestrator must find its runs again quickly; retries wait out restarts
    f = await startFaultStack(root, "rl-faults-test", { orchestrator: { RETRY_WAIT_MS: "60000" } });
    ({ stack, bus, client, modelDir, supervisor } = f);
  });

  after(async () => {
    await f?.close();
    rmSync(root, { recursive: true, force: true });
  });

  it("kills learner, rollout, scheduler and orchestrator (twice) in five runs; each ends like the uninterrupted one", {
    timeout: 900_000,
  }, async () => {
    const reference = (await client.startRun({ spec: faultSpec(root, modelDir, "reference") })).run!;
    const ref = await waitForEnd(client, reference.runId);
    assert.equal(ref.status, orchestrator.RunStatus.RUN_STATUS_SUCCEEDED, ref.error);
    const refAdapter = await finalAdapter(bus, ref);

    // [service, the event whose arrival puts it mid-call, step, delay]
    const faults: [string, string, number, number][] = [
      ["learner", "reward.blended", 1, 30], // Score done: the orchestrator's Train is starting
      ["rollout", "policy.updated", 0, 30], // step 0 trained: step 1's Generate is starting
      ["scheduler", "rollout.completed", 1, 0], // step 1 generated: its Score is starting
      ["orchestrator", "metrics.step", 0, 150], // mid step 1
      // step 1 scored: the resumed step sends the same groups, and the scheduler replays its scores
      ["orchestrator", "reward.blended", 1, 0],
    ];
    for (const [service, subject, step, delay] of faults) {
      let runId: string | undefined;
      const trap = onEvent(
        bus,
        () => runId,
        subject,
        step,
        delay,
        () => stack.process(service)?.kill(),
      );
      const restartsBefore = stack.table().find((r) => r.name === service)!.restarts;
      runId = (await client.startRun({ spec: faultSpec(root, modelDir, `kill-${service}`) })).run!.runId;
      const run = await waitForEnd(client, runId);
      trap.stop();
      assert.ok(trap.fired, `${service}: the trap never fired`);
      assert.equal(run.status, orchestrator.RunStatus.RUN_STATUS_SUCCEEDED, `${service}: ${run.error}`);
      assert.ok(
        stack.table().find((r) => r.name === service)!.restarts > restartsBefore,
        `${service} was not restarted: ${supervisor.join("; ")}`,
      );
      assert.equal(run.stepsDone, FAULT_STEPS);
      assert.deepEqual(metricsSteps(run), [0, 1, 2], `${service}: one metrics line per step`);
      assert.deepEqual(
        await finalAdapter(bus, run),
        refAdapter,
        `${service}: the final adapter differs from the uninterrupted run's`,
      );
      // let the restarted service settle before the next fault
      await sleep(500);
    }
  });
});
