// Throughput of the reward plane over gRPC on loopback: reward-correctness alone and the scheduler
// with all four sources, batches of 64 groups × 8 completions; then p50/p99 latency of a one-group
// call through the scheduler. Prints figures; asserts nothing.
// With --metrics every service also exports metrics (METRICS_PORT): run it with and without, in
// turn, to see what metrics cost.
//   node --import tsx tools/bench/reward-services.ts [--seconds 5] [--metrics]
import { parseArgs } from "node:util";
import { common, scheduler } from "@temper/proto";
import { freePort, Harness } from "../../tests/src/index.ts";

const { values } = parseArgs({
  options: { seconds: { type: "string", default: "5" }, metrics: { type: "boolean", default: false } },
});
/** METRICS_PORT for one service, where --metrics asks for it. */
const metricsEnv = async (): Promise<Record<string, string>> =>
  values.metrics ? { METRICS_PORT: String(await freePort()) } : {};
const seconds = Number(values.seconds);

function completionText(k: number, y: number, right: boolean): string {
  const x = right ? y : y + 1 + (k % 5);
  return [
    `Let's think step by step.`,
    `She buys ${k + 2} boxes with ${y - k - 2} pens each: ${k + 2} * ${y - k - 2} = ${(k + 2) * (y - k - 2)}.`,
    `Then she gives away ${(k + 2) * (y - k - 2) - x} pens, leaving ${x}.`,
    `The answer is ${x}.`,
  ].join("\n");
}

function makeBatch(groups: number, perGroup: number, seed: number): common.Group[] {
  return Array.from({ length: groups }, (_, g) => {
    const y = 20 + ((g * 7 + seed) % 50);
    return {
      id: `g${g}`,
      prompt: `Question ${g}`,
      reference: `Some working <<4*5=20>>\n#### ${y}`,
      promptTokenIds: [],
      completions: Array.from({ length: perGroup }, (_, k) => ({
        id: `g${g}c${k}`,
        text: completionText(k, y, (k + g + seed) % 3 !== 0),
        tokenIds: Array.from({ length: 60 }, (_, t) => 100 + t),
        logprobs: Array.from({ length: 60 }, (_, t) => -0.05 - 0.01 * (t % 7)),
        finishReason: common.FinishReason.FINISH_REASON_STOP,
      })),
    };
  });
}

/** `call(worker, i)`: the i-th call overall, made by one of 4 concurrent workers. */
async function throughput(
  label: string,
  call: (worker: number, i: number) => Promise<unknown>,
  perCall: number,
): Promise<void> {
  for (let i = 0; i < 3; i++) await call(0, 1_000_000 + i); // warm-up
  const concurrency = 4; // keeps both cores busy while responses travel
  let calls = 0;
  const start = performance.now();
  const deadline = start + seconds * 1000;
  await Promise.all(
    Array.from({ length: concurrency }, async (_, worker) => {
      while (performance.now() < deadline) await call(worker, calls++);
    }),
  );
  const elapsed = (performance.now() - start) / 1000;
  console.log(
    `${label.padEnd(46)} ${((calls * perCall) / elapsed).toFixed(0).padStart(8)} completions/s  (${calls} calls, ${elapsed.toFixed(1)} s)`,
  );
}

const h = new Harness();
try {
  const nats = await h.nats();
  const names = ["correctness", "perplexity", "reasoning", "consistency"];
  const env: Record<string, string> = {};
  for (const n of names)
    env[`REWARD_${n.toUpperCase()}_ADDR`] = (
      await h.service(`reward-${n}`, { env: await metricsEnv() })
    ).address;
  const sched = await h.service("scheduler", { nats, env: { ...env, ...(await metricsEnv()) } });
  const batch = makeBatch(64, 8, 0);
  const correctness = h.rewardClient(env.REWARD_CORRECTNESS_ADDR);
  const client = h.schedulerClient(sched.address);

  console.log(
    `reward plane on loopback, batches of 64 groups × 8 completions, ${seconds} s per figure, metrics ${values.metrics ? "on" : "off"}`,
  );
  await throughput("reward-correctness Score", () => correctness.score({ groups: batch }), 512);
  const configure = (runId: string) =>
    client.configure({
      config: {
        runId,
        structure: { kind: { $case: "hybrid", value: { alpha: 0.5 } } },
        sources: {},
        advantageScale: scheduler.AdvantageScale.ADVANTAGE_SCALE_GROUP,
        failurePolicy: scheduler.FailurePolicy.FAILURE_POLICY_SKIP,
        control: 0,
        controlSeed: 0,
        sourceTimeoutMs: 30_000,
      },
    });
  for (const run of ["bench", "bench-0", "bench-1", "bench-2", "bench-3"]) await configure(run);
  // Steps of one run are scored one at a time (the state moves step by step) ...
  await throughput(
    "scheduler Score, 1 run (4 sources, hybrid)",
    (_, i) => client.score({ runId: "bench", step: i, groups: batch }),
    512,
  );
  // ... while separate runs proceed side by side.
  await throughput(
    "scheduler Score, 4 runs side by side",
    (w, i) => client.score({ runId: `bench-${w}`, step: i, groups: batch }),
    512,
  );

  const one = makeBatch(1, 8, 1);
  const latencies: number[] = [];
  for (let i = 0; i < 400; i++) {
    const t = performance.now();
    await client.score({ runId: "bench", step: 100_000 + i, groups: one });
    latencies.push(performance.now() - t);
  }
  latencies.sort((a, b) => a - b);
  const q = (p: number) =>
    latencies[Math.min(latencies.length - 1, Math.floor(p * latencies.length))].toFixed(2);
  console.log(`scheduler Score, one group of 8 (400 calls):      p50 ${q(0.5)} ms   p99 ${q(0.99)} ms`);
} finally {
  await h.close();
}
