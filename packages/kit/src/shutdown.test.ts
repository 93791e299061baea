// Graceful SIGTERM on a real service process: health turns NOT_SERVING, a call in flight
// completes, new calls are refused, the process exits 0; past the grace period calls are cancelled.
import assert from "node:assert/strict";
import { describe, test } from "node:test";
import { setTimeout as sleep } from "node:timers/promises";
import { fileURLToPath } from "node:url";
import { Client, credentials, status } from "@grpc/grpc-js";
import { common, reward } from "@temper/proto";
import { callServerStream, createClient } from "./client.ts";
import type { GrpcError } from "./errors.ts";
import { HealthDefinition } from "./health.ts";
import { startServiceProcess } from "./service-process.ts";

const entry = fileURLToPath(new URL("../test/fixture-main.ts", import.meta.url));

const slowRequest = (ms: number) => ({
  groups: [
    {
      id: "g",
      prompt: `sleep:${ms}`,
      reference: "1",
      promptTokenIds: [],
      completions: [
        {
          id: "c",
          text: "done",
          tokenIds: [],
          logprobs: [],
          finishReason: common.FinishReason.FINISH_REASON_STOP,
        },
      ],
    },
  ],
});

describe("SIGTERM", () => {
  test("finishes the call in flight, refuses new ones, reports NOT_SERVING, exits 0", async () => {
    const svc = await startServiceProcess({ name: "fixture", entry, env: { SHUTDOWN_GRACE_MS: "5000" } });
    const client = createClient(reward.RewardServiceService, svc.address);
    const watcher = new Client(svc.address, credentials.createInsecure());
    try {
      const seen: string[] = [];
      const watching = (async () => {
        for await (const s of callServerStream(watcher, HealthDefinition.watch, { service: "" }))
          seen.push(s.status);
      })();
      const inFlight = client.score(slowRequest(1500), { timeoutMs: 10_000 });
      await sleep(400);
      process.kill(svc.pid, "SIGTERM");
      await sleep(200);
      const fresh = createClient(reward.RewardServiceService, svc.address);
      await assert.rejects(
        fresh.info({}, { attempts: 1, timeoutMs: 2000 }),
        (e: GrpcError) => e.code === status.UNAVAILABLE,
      );
      fresh.$close();

      const res = await inFlight;
      assert.deepEqual(
        res.results.map((r) => r.completionId),
        ["c"],
      );
      const exit = await svc.exited;
      assert.deepEqual(exit, { code: 0, signal: null });
      await watching;
      assert.deepEqual(seen, ["SERVING", "NOT_SERVING"]);
      assert.match(svc.output(), /"msg":"server closed"/);
      assert.match(svc.output(), /"code":0,"msg":"stopped"/);
    } finally {
      client.$close();
      watcher.close();
      svc.kill();
    }
  });

  test("cancels calls still running when the grace period ends, then exits 0", async () => {
    const svc = await startServiceProcess({ name: "fixture", entry, env: { SHUTDOWN_GRACE_MS: "300" } });
    const client = createClient(reward.RewardServiceService, svc.address);
    try {
      const inFlight = client.score(slowRequest(20_000), { timeoutMs: 30_000, attempts: 1 });
      await sleep(300);
      const t0 = Date.now();
      process.kill(svc.pid, "SIGTERM");
      await assert.rejects(
        inFlight,
        (e: GrpcError) => e.code === status.CANCELLED || e.code === status.UNAVAILABLE,
      );
      assert.deepEqual(await svc.exited, { code: 0, signal: null });
      assert.ok(Date.now() - t0 < 5000, "exited soon after the grace period");
      assert.match(svc.output(), /grace period over/);
    } finally {
      client.$close();
      svc.kill();
    }
  });
});
