// The one launcher: a real service process from services/<name>/src/main.ts, SERVING on the port it
// chose, stopped cleanly; and a service with no entry file refused with its path.
import assert from "node:assert/strict";
import { createServer } from "node:net";
import { test } from "node:test";
import { checkHealth } from "@temper/kit";
import { launchService, serviceEntry } from "./launch.ts";
import { freePort, portFree } from "./ports.ts";

test("a service started by launchService serves until stopped", { timeout: 120_000 }, async () => {
  const svc = await launchService({
    name: "correctness-under-test",
    service: "reward-correctness",
    env: { HOST: "127.0.0.1", PORT: "0", LOG_LEVEL: "info" },
  });
  try {
    assert.equal(svc.address, `127.0.0.1:${svc.port}`);
    assert.equal(await checkHealth(svc.address), "SERVING");
  } finally {
    const { code } = await svc.stop("SIGTERM");
    assert.equal(code, 0);
  }
  assert.ok(await portFree(svc.port), "its port is free again");
});

test("a service without services/<name>/src/main.ts is refused, naming the path", () => {
  assert.throws(
    () => launchService({ name: "no-such-service", env: {} }),
    (e: Error) => e.message === `service "no-such-service" has no ${serviceEntry("no-such-service")}`,
  );
});

test("portFree tells a held port from a free one", async () => {
  const port = await freePort();
  assert.ok(await portFree(port));
  const held = createServer();
  await new Promise<void>((r) => held.listen(port, "127.0.0.1", r));
  try {
    assert.equal(await portFree(port), false);
  } finally {
    held.close();
  }
});
