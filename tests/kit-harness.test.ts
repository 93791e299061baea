// The harness itself: a real nats-server with a temp store, a real service process (the kit's
// test-only RewardService) that can be killed and restarted on its port, and cleanup.
import assert from "node:assert/strict";
import { existsSync } from "node:fs";
import { after, describe, test } from "node:test";
import { connectBus, findNatsServer } from "@temper/kit";
import { checkHealth, type GrpcError, Harness, repoRoot, Status } from "./src/index.ts";

const fixture = `${repoRoot}/packages/kit/test/fixture-main.ts`;

describe("Harness", { skip: !findNatsServer() && "nats-server not installed" }, () => {
  const h = new Harness();
  after(() => h.close());

  test("nats-server runs with JetStream in a temp store", async () => {
    const nats = await h.nats();
    assert.ok(existsSync(nats.storeDir));
    const bus = await connectBus({
      url: nats.url,
      name: "harness-test",
      streams: [{ name: "T", subjects: ["t.>"] }],
    });
    const ack = await bus.publish("t.x", new Uint8Array([1]), { msgId: "x1" });
    assert.equal(ack.seq, 1);
    await bus.drain();
  });

  test("a service process is SERVING, callable, killable and restartable on the same port", async () => {
    const svc = await h.service("kit-fixture", { entry: fixture, withNats: true });
    assert.equal(await checkHealth(svc.address), "SERVING");
    const client = h.rewardClient(svc.address);
    assert.equal((await client.info({})).name, "kit-fixture");
    assert.match(svc.output(), /"msg":"connected to NATS"/);

    const { port, pid } = svc;
    await svc.kill();
    await assert.rejects(checkHealth(svc.address), (e: GrpcError) => e.code === Status.UNAVAILABLE);

    await svc.restart();
    assert.equal(svc.port, port);
    assert.notEqual(svc.pid, pid);
    assert.equal(await checkHealth(svc.address), "SERVING");
    assert.equal((await client.info({}, { attempts: 5 })).name, "kit-fixture");
  });

  test("close() stops every process and removes the NATS store", async () => {
    const nats = await h.nats();
    const svc = await h.service("kit-fixture", { entry: fixture });
    await h.close();
    assert.deepEqual(await svc.exited, { code: 0, signal: null });
    assert.equal(existsSync(nats.storeDir), false);
  });
});
