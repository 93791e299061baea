// Logs and statuses as an operator sees them: one access line per RPC (method, status, duration,
// trace id; OK at debug, a handler's status at info, a bug at error), trace_id and span_id once per
// line, no grpc-js internals in status messages, and a uint64 above 2^53 − 1 named by its field.
import assert from "node:assert/strict";
import { Writable } from "node:stream";
import { after, before, describe, test } from "node:test";
import { BinaryWriter } from "@bufbuild/protobuf/wire";
import { Client, credentials, status } from "@grpc/grpc-js";
import { type common, descriptorSetPath, reward, scheduler } from "@temper/proto";
import { fixtureRewardService } from "../test/reward-fixture.ts";
import { createClient } from "./client.ts";
import { GrpcError } from "./errors.ts";
import { createLogger } from "./logger.ts";
import { type ServerHandle, service, startServer } from "./server.ts";
import { startTelemetry } from "./telemetry.ts";

const lines: string[] = [];
const sink = new Writable({
  write(chunk, _enc, done) {
    for (const l of String(chunk).split("\n")) if (l) lines.push(l);
    done();
  },
});
const logger = createLogger({ name: "kit-test", level: "debug", destination: sink });

function group(prompt: string): common.Group {
  return {
    id: "g",
    prompt,
    reference: "4",
    promptTokenIds: [],
    completions: [{ id: "c", text: "2+2=4", tokenIds: [], logprobs: [], finishReason: 1 }],
  };
}

async function rawCall(address: string, path: string, body: Uint8Array): Promise<GrpcError> {
  const client = new Client(address, credentials.createInsecure());
  try {
    return await new Promise<GrpcError>((resolve, reject) =>
      client.makeUnaryRequest(
        path,
        (b: Uint8Array) => Buffer.from(b),
        (b: Buffer) => b,
        body,
        { deadline: Date.now() + 5000 },
        (err) => (err ? resolve(GrpcError.from(err)) : reject(new Error("expected an error status"))),
      ),
    );
  } finally {
    client.close();
  }
}

const accessLines = (method: string) =>
  lines.map((l) => JSON.parse(l)).filter((l) => l.msg === "rpc" && l.method === method);

describe("access log and plain statuses", () => {
  let server: ServerHandle;
  let client: ReturnType<typeof createClient<typeof reward.RewardServiceService>>;
  const SCORE = "/temper.reward.v1.RewardService/Score";

  before(async () => {
    startTelemetry({ serviceName: "kit-test" });
    const unused = () => {
      throw new Error("not used");
    };
    server = await startServer({
      name: "kit-test",
      version: "0.0.1",
      port: 0,
      services: [
        service(reward.RewardServiceService, fixtureRewardService),
        service(scheduler.SchedulerServiceService, { configure: unused, score: unused, getState: unused }),
      ],
      descriptorSet: descriptorSetPath,
      logger,
    });
    client = createClient(reward.RewardServiceService, server.address);
  });
  after(async () => {
    client.$close();
    await server.shutdown(1000);
  });

  test("one access line per RPC with method, status, duration and one trace id", async () => {
    lines.length = 0;
    await client.score({ groups: [group("")] });
    await assert.rejects(client.score({ groups: [group("throw")] }), (e: GrpcError) => {
      assert.equal(e.code, status.INTERNAL);
      return true;
    });
    const access = accessLines(SCORE);
    assert.equal(access.length, 2, lines.join("\n"));
    assert.deepEqual(
      access.map((l) => [l.level, l.code]),
      [
        ["debug", "OK"],
        ["error", "INTERNAL"],
      ],
    );
    for (const l of access) {
      assert.equal(typeof l.duration_ms, "number");
      assert.match(l.trace_id, /^[0-9a-f]{32}$/);
    }
    assert.match(access[1].err.stack, /fixture failure/);
    // A line written by the handler itself (the fixture's "scored") carries the same trace id, once.
    const scored = lines.find((l) => l.includes('"msg":"scored"'));
    assert.ok(scored);
    for (const l of lines) {
      assert.ok((l.match(/"trace_id"/g) ?? []).length <= 1, `trace_id twice: ${l}`);
      assert.ok((l.match(/"span_id"/g) ?? []).length <= 1, `span_id twice: ${l}`);
    }
    assert.equal(JSON.parse(scored).trace_id, access[0].trace_id);
  });

  test("a uint64 above 2^53 − 1 is INVALID_ARGUMENT naming the field", async () => {
    lines.length = 0;
    const w = new BinaryWriter();
    w.uint32(10).string("r1");
    w.uint32(16).uint64(2n ** 53n + 1n);
    const err = await rawCall(server.address, "/temper.scheduler.v1.SchedulerService/Score", w.finish());
    assert.equal(err.code, status.INVALID_ARGUMENT);
    assert.match(err.message, /^step: 9007199254740993 is beyond 2\^53 − 1/);
    const access = accessLines("/temper.scheduler.v1.SchedulerService/Score");
    assert.deepEqual(
      access.map((l) => [l.level, l.code]),
      [["info", "INVALID_ARGUMENT"]],
    );
  });

  test("client statuses carry no grpc-js internals", async () => {
    const dead = createClient(reward.RewardServiceService, "127.0.0.1:1");
    try {
      await assert.rejects(dead.info({}, { timeoutMs: 2000, attempts: 1 }), (e: GrpcError) => {
        assert.equal(e.code, status.UNAVAILABLE);
        assert.match(e.message, /^cannot connect \(.*ECONNREFUSED/);
        assert.doesNotMatch(e.message, /Last error|\d{4}-\d\d-\d\dT/);
        return true;
      });
    } finally {
      dead.$close();
    }
    await assert.rejects(
      client.score({ groups: [group("sleep:2000")] }, { timeoutMs: 100, attempts: 1 }),
      (e: GrpcError) => {
        assert.equal(e.code, status.DEADLINE_EXCEEDED);
        assert.equal(e.message, "deadline exceeded");
        return true;
      },
    );
  });
});
