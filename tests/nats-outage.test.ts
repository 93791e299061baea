// A NATS outage seen from the scheduler: readiness (the service's own health name) goes NOT_SERVING
// while the store is unreachable and SERVING again after, liveness ("") stays SERVING throughout,
// calls that need the store fail UNAVAILABLE at once, and the client reconnects by itself.
import assert from "node:assert/strict";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, test } from "node:test";
import { findNatsServer, type NatsServerHandle, startNatsServer } from "@temper/kit";
import { checkHealth, freePort, type GrpcError, Harness, Status } from "./src/index.ts";

const SCHEDULER = "temper.scheduler.v1.SchedulerService";

async function until(what: string, ok: () => Promise<boolean>, timeoutMs = 15_000): Promise<number> {
  const start = Date.now();
  while (Date.now() - start < timeoutMs) {
    if (await ok().catch(() => false)) return Date.now() - start;
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new Error(`timed out waiting for ${what}`);
}

test("the scheduler rides out a NATS outage", {
  skip: !findNatsServer() && "nats-server not installed",
  timeout: 180_000,
}, async () => {
  const h = new Harness();
  const storeDir = mkdtempSync(join(tmpdir(), "temper-outage-"));
  let nats: NatsServerHandle | undefined;
  after(async () => {
    await h.close();
    await nats?.stop();
    rmSync(storeDir, { recursive: true, force: true });
  });
  const port = await freePort();
  nats = await startNatsServer({ storeDir, port });
  const scheduler = await h.service("scheduler", { nats: nats.url });
  const client = h.schedulerClient(scheduler.address);
  await assert.rejects(client.getState({ runId: "nope" }), (e: GrpcError) => e.code === Status.NOT_FOUND);

  // Down for longer than the NATS client's default reconnect budget would last in attempts.
  await nats.stop();
  nats = undefined;
  await until(
    "readiness NOT_SERVING",
    async () => (await checkHealth(scheduler.address, SCHEDULER)) === "NOT_SERVING",
  );
  assert.equal(await checkHealth(scheduler.address, ""), "SERVING", "liveness stays SERVING");
  const t0 = Date.now();
  await assert.rejects(
    client.getState({ runId: "nope" }, { timeoutMs: 5000, attempts: 1 }),
    (e: GrpcError) => {
      assert.equal(e.code, Status.UNAVAILABLE);
      assert.match(e.message, /unreachable/);
      return true;
    },
  );
  assert.ok(Date.now() - t0 < 1000, `UNAVAILABLE took ${Date.now() - t0} ms`);
  // more than a minute down: the client must still be trying when the server comes back
  await new Promise((r) => setTimeout(r, 65_000));

  nats = await startNatsServer({ storeDir, port });
  await until(
    "readiness SERVING again",
    async () => (await checkHealth(scheduler.address, SCHEDULER)) === "SERVING",
    30_000,
  );
  await assert.rejects(client.getState({ runId: "nope" }), (e: GrpcError) => e.code === Status.NOT_FOUND);
});
