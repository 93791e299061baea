// `temper stack --replicas` / `--rollout-workers` and the stack's own checks on replicas: one-line
// errors naming the flag or the service, before anything starts.
import assert from "node:assert/strict";
import { test } from "node:test";
import { replica, SERVICES, startStack } from "@temper/stack";
import { CliError } from "./cli.ts";
import { parseReplicas } from "./commands/stack.ts";

test("--replicas SOURCE=N: reward sources by short or full name", () => {
  assert.deepEqual(parseReplicas("correctness=2, reward-reasoning=3"), {
    "reward-correctness": 2,
    "reward-reasoning": 3,
  });
  assert.deepEqual(parseReplicas(undefined), {});
  for (const [raw, message] of [
    ["correctness", /--replicas: expected SOURCE=N \(e\.g\. correctness=2\), got "correctness"/],
    ["learner=2", /--replicas: learner is not a reward source .*rollout workers: --rollout-workers/],
    ["correctness=0", /--replicas correctness: expected an integer in \[1, 16\], got 0/],
    ["correctness=17", /--replicas correctness: expected an integer in \[1, 16\], got 17/],
  ] as const)
    assert.throws(
      () => parseReplicas(raw),
      (e: Error) => e instanceof CliError && message.test(e.message),
      raw,
    );
});

test("replica k of a service: <name>-<k+1> on the port + 1000·k", () => {
  const rollout = SERVICES.find((s) => s.name === "rollout")!;
  assert.deepEqual(replica(rollout, 0, 0), { name: "rollout", port: 15070 });
  assert.deepEqual(replica(rollout, 1, 100), { name: "rollout-2", port: 16170 });
});

test("the stack refuses replicas of a service that owns state, or ports past 65535, before starting", async () => {
  const base = { dataDir: "/nonexistent-temper-stack", natsPort: 1, portOffset: 0 };
  await assert.rejects(
    startStack({ ...base, replicas: { learner: 2 } }),
    /replicas of learner: only rollout, reward-correctness, .* run as several processes \(learner, scheduler and orchestrator own state\)/,
  );
  await assert.rejects(
    startStack({ ...base, portOffset: 50_000, replicas: { rollout: 2 } }),
    /rollout-2 would listen on port 66070: use a lower --port-offset/,
  );
});
