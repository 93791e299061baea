// Traces leave the process over OTLP http/protobuf only when OTEL_EXPORTER_OTLP_ENDPOINT is set:
// a real service process exports its RPC spans to a local HTTP receiver and flushes on SIGTERM.
import assert from "node:assert/strict";
import { createServer, type IncomingMessage } from "node:http";
import type { AddressInfo } from "node:net";
import { describe, test } from "node:test";
import { fileURLToPath } from "node:url";
import { reward } from "@temper/proto";
import { createClient } from "./client.ts";
import { startServiceProcess } from "./service-process.ts";

const entry = fileURLToPath(new URL("../test/fixture-main.ts", import.meta.url));

async function withReceiver(
  fn: (url: string, posts: { path: string; type: string; body: Buffer }[]) => Promise<void>,
) {
  const posts: { path: string; type: string; body: Buffer }[] = [];
  const server = createServer((req: IncomingMessage, res) => {
    const chunks: Buffer[] = [];
    req.on("data", (c) => chunks.push(c));
    req.on("end", () => {
      posts.push({
        path: req.url ?? "",
        type: String(req.headers["content-type"]),
        body: Buffer.concat(chunks),
      });
      res.writeHead(200, { "content-type": "application/x-protobuf" }).end();
    });
  });
  await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
  try {
    await fn(`http://127.0.0.1:${(server.address() as AddressInfo).port}`, posts);
  } finally {
    server.close();
  }
}

describe("OTLP export", () => {
  for (const exporting of [true, false]) {
    test(
      exporting ? "with the endpoint set, RPC spans are exported" : "without it, nothing is sent",
      async () => {
        await withReceiver(async (url, posts) => {
          const svc = await startServiceProcess({
            name: "fixture",
            entry,
            env: exporting ? { OTEL_EXPORTER_OTLP_ENDPOINT: url } : { OTEL_EXPORTER_OTLP_ENDPOINT: "" },
          });
          const client = createClient(reward.RewardServiceService, svc.address);
          try {
            await client.info({}, { timeoutMs: 5000 });
          } finally {
            client.$close();
          }
          assert.deepEqual(await svc.stop(), { code: 0, signal: null });
          if (!exporting) {
            assert.equal(posts.length, 0);
            return;
          }
          const body = Buffer.concat(posts.map((p) => p.body)).toString("latin1");
          assert.ok(posts.length >= 1);
          assert.equal(posts[0].path, "/v1/traces");
          assert.equal(posts[0].type, "application/x-protobuf");
          assert.ok(body.includes("kit-fixture"), "service.name in the resource");
          assert.ok(body.includes("temper.reward.v1.RewardService/Info"), "the RPC's span");
        });
      },
    );
  }
});
