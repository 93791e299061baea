// What the fault tests share: the spec they run, waiting for a run's end through restarts, a trap
// that acts when a run's event arrives, and what a run left behind (its final adapter, its metrics
// lines, the events it published) to compare with an uninterrupted run.
import assert from "node:assert/strict";
import { readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import { DeliverPolicy } from "@nats-io/jetstream";
import { type Bus, connectBus, createClient, type PromiseClient, TEMPER_STREAM } from "@temper/kit";
import { orchestrator, scheduler } from "@temper/proto";
import { ADAPTER_BUCKET } from "@temper/qwen3";
import type { Stack } from "@temper/stack";
import { additionProblems, testRunSpec, tinyPolicyModel } from "./run-spec.ts";
import { startTestStack } from "./stack-ports.ts";

export const FAULT_STEPS = 3;

export interface FaultStack {
  stack: Stack;
  bus: Bus;
  client: PromiseClient<typeof orchestrator.OrchestratorServiceService>;
  /** The supervisor's lines (restarts). */
  supervisor: string[];
  modelDir: string;
  close(): Promise<void>;
}

/** A tiny model, 16 training problems and a stack under `root`, with a bus and an orchestrator client. */
export async function startFaultStack(
  root: string,
  name: string,
  env: Record<string, Record<string, string>>,
): Promise<FaultStack> {
  const modelDir = join(root, "model");
  tinyPolicyModel(modelDir);
  writeFileSync(join(root, "train.jsonl"), additionProblems(16, 1));
  const supervisor: string[] = [];
  const stack = await startTestStack({
    dataDir: join(root, "stack"),
    model: modelDir,
    onEvent: (line) => supervisor.push(line),
    env,
  });
  const bus = await connectBus({ url: stack.natsUrl, name });
  const client = createClient(orchestrator.OrchestratorServiceService, stack.address("orchestrator"), {
    defaults: { timeoutMs: 30_000 },
  });
  return {
    stack,
    bus,
    client,
    supervisor,
    modelDir,
    async close() {
      client.$close();
      await bus.drain();
      await stack.stop();
    },
  };
}

/** A short run whose learner Train is long enough to be caught in progress. */
export function faultSpec(root: string, modelDir: string, name: string): orchestrator.RunSpec {
  return testRunSpec(
    {
      model: modelDir,
      trainData: join(root, "train.jsonl"),
      name,
      failurePolicy: scheduler.FailurePolicy.FAILURE_POLICY_FAIL,
      // many micro-batches make the learner's Train long enough to be caught in progress
      microBatchSize: 1,
    },
    {
      steps: FAULT_STEPS,
      seed: 9,
      sampling: { temperature: 1, topK: 0, topP: 1, maxNewTokens: 12, stop: [], seed: 0 },
    },
  );
}

/** Polls GetRun (the orchestrator itself may be restarting) until the run ends. */
export async function waitForEnd(
  client: PromiseClient<typeof orchestrator.OrchestratorServiceService>,
  runId: string,
  ms = 240_000,
): Promise<orchestrator.Run> {
  const until = Date.now() + ms;
  while (Date.now() < until) {
    try {
      const { run } = await client.getRun({ runId }, { timeoutMs: 5000, attempts: 1 });
      if (run && run.status >= orchestrator.RunStatus.RUN_STATUS_SUCCEEDED) return run;
    } catch {
      // orchestrator (or NATS) down: the supervisor is bringing it back
    }
    await sleep(300);
  }
  throw new Error(`run ${runId} did not end within ${ms} ms`);
}

/**
 * Calls `act` once the event `temper.<run>.<subject>` of `step` arrives, after `delayMs`. The run id
 * is read when events arrive: it is known only once StartRun has answered.
 */
export function onEvent(
  bus: Bus,
  runIdOf: () => string | undefined,
  subject: string,
  step: number,
  delayMs: number,
  act: () => void,
) {
  let done = false;
  const sub = bus.nc.subscribe("temper.*.>", {
    callback: (_err, msg) => {
      const id = runIdOf();
      if (done || !id || msg.subject !== `temper.${id}.${subject}`) return;
      const msgId = msg.headers?.get("Nats-Msg-Id") ?? "";
      if (!msgId.startsWith(`${id}.${step}.`)) return;
      done = true;
      setTimeout(act, delayMs);
    },
  });
  return {
    get fired() {
      return done;
    },
    stop: () => sub.unsubscribe(),
  };
}

export async function finalAdapter(bus: Bus, run: orchestrator.Run): Promise<Buffer> {
  const version = run.latest!.policyVersion;
  const store = await bus.objectStore(ADAPTER_BUCKET);
  const bytes = await store.getBlob(`${run.runId}/${version}`);
  assert.ok(bytes, `no adapter ${run.runId}/${version}`);
  return Buffer.from(bytes);
}

export function metricsSteps(run: orchestrator.Run): number[] {
  return readFileSync(join(run.directory, "metrics.jsonl"), "utf8")
    .trim()
    .split("\n")
    .map((l) => JSON.parse(l).step as number);
}

/**
 * The events stored for a run, as "<subject tail> <msgId tail>" with the run id taken out, sorted:
 * two runs of one spec must publish the same list.
 */
export async function runEvents(bus: Bus, runId: string): Promise<string[]> {
  const consumer = await bus.js.consumers.get(TEMPER_STREAM.name, {
    filter_subjects: `temper.${runId}.>`, // one subject: Debian's nats-server (2.9) has no list
    deliver_policy: DeliverPolicy.All,
  });
  const out: string[] = [];
  const pending = (await consumer.info()).num_pending;
  if (pending > 0) {
    const msgs = await consumer.fetch({ max_messages: pending, expires: 5000 });
    for await (const m of msgs) {
      const id = m.headers?.get("Nats-Msg-Id") ?? "";
      out.push(`${m.subject.slice(`temper.${runId}.`.length)} ${id.slice(runId.length + 1)}`);
      if (out.length === pending) break;
    }
  }
  return out.sort();
}
