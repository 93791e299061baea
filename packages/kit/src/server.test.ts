// A real in-process server with the fixture RewardService: health, calls, errors, and that
// malformed or oversized requests get a gRPC status while the server keeps serving.
import assert from "node:assert/strict";
import { after, before, describe, test } from "node:test";
import { Client, credentials, status } from "@grpc/grpc-js";
import { common, descriptorSetPath, reward } from "@temper/proto";
import { fixtureRewardService } from "../test/reward-fixture.ts";
import { createClient } from "./client.ts";
import { GrpcError } from "./errors.ts";
import { createLogger } from "./logger.ts";
import { type ServerHandle, service, startServer } from "./server.ts";
import { checkHealth } from "./service-process.ts";
import { startTelemetry } from "./telemetry.ts";

const logger = createLogger({ name: "kit-test", level: "silent" });
const LIMIT = 64 * 1024;

function group(id: string, prompt: string, texts: string[]): common.Group {
  return {
    id,
    prompt,
    reference: "4",
    promptTokenIds: [],
    completions: texts.map((text, i) => ({
      id: `${id}-${i}`,
      text,
      tokenIds: [],
      logprobs: [],
      finishReason: common.FinishReason.FINISH_REASON_STOP,
    })),
  };
}

async function rawCall(address: string, path: string, body: Buffer): Promise<GrpcError> {
  const client = new Client(address, credentials.createInsecure(), { "grpc.max_send_message_length": -1 });
  try {
    return await new Promise<GrpcError>((resolve, reject) =>
      client.makeUnaryRequest(
        path,
        (b: Buffer) => b,
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

describe("startServer", () => {
  let server: ServerHandle;
  let client: ReturnType<typeof createClient<typeof reward.RewardServiceService>>;

  before(async () => {
    startTelemetry({ serviceName: "kit-test" });
    server = await startServer({
      name: "kit-test",
      version: "0.0.1",
      port: 0,
      services: [service(reward.RewardServiceService, fixtureRewardService)],
      descriptorSet: descriptorSetPath,
      limits: { maxReceiveMessageBytes: LIMIT, maxSendMessageBytes: LIMIT },
      logger,
    });
    client = createClient(reward.RewardServiceService, server.address);
  });
  after(async () => {
    client.$close();
    await server.shutdown(1000);
  });

  test("health is SERVING overall and per service, NOT_FOUND for unknown names", async () => {
    assert.equal(await checkHealth(server.address, ""), "SERVING");
    assert.equal(await checkHealth(server.address, "temper.reward.v1.RewardService"), "SERVING");
    await assert.rejects(
      checkHealth(server.address, "no.such.Service"),
      (e: GrpcError) => e.code === status.NOT_FOUND,
    );
  });

  test("unary calls return the implementation's answer", async () => {
    const info = await client.info({}, { timeoutMs: 2000 });
    assert.deepEqual(info, { name: "kit-fixture", version: "0.0.1", components: ["length"] });
    const res = await client.score({ groups: [group("g", "p", ["abcd", ""])] }, { timeoutMs: 2000 });
    assert.deepEqual(
      res.results.map((r) => [r.completionId, r.components.length.value]),
      [
        ["g-0", 0.04],
        ["g-1", 0],
      ],
    );
  });

  test("validation errors are INVALID_ARGUMENT naming the field path", async () => {
    const big = "x".repeat(262145);
    const groups = [group("a", "p", ["ok"]), group("b", "p", ["ok", big])];
    // The oversized text would also exceed the message limit; use a server without one.
    const roomy = await startServer({
      name: "kit-test-roomy",
      version: "0.0.1",
      port: 0,
      services: [service(reward.RewardServiceService, fixtureRewardService)],
      descriptorSet: descriptorSetPath,
      logger,
    });
    const c = createClient(reward.RewardServiceService, roomy.address);
    try {
      await assert.rejects(c.score({ groups }, { timeoutMs: 5000 }), (e: GrpcError) => {
        assert.equal(e.code, status.INVALID_ARGUMENT);
        assert.equal(e.message, "groups[1].completions[1].text: exceeds 262144 bytes");
        return true;
      });
    } finally {
      c.$close();
      await roomy.shutdown(1000);
    }
  });

  test("an unexpected exception is INTERNAL with a trace id, and the server stays up", async () => {
    await assert.rejects(
      client.score({ groups: [group("g", "throw", ["x"])] }, { timeoutMs: 2000 }),
      (e: GrpcError) => {
        assert.equal(e.code, status.INTERNAL);
        assert.match(e.message, /^internal error \(trace [0-9a-f]{32}\)$/);
        assert.doesNotMatch(e.message, /trace 0{32}/);
        return true;
      },
    );
    assert.equal((await client.info({})).name, "kit-fixture");
  });

  test("malformed request bytes get INVALID_ARGUMENT and the server keeps serving", async () => {
    // Field 1 with wire type 7 (no such wire type), then an unterminated varint.
    const garbage = Buffer.from([0x0f, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff]);
    const err = await rawCall(server.address, "/temper.reward.v1.RewardService/Score", garbage);
    assert.equal(err.code, status.INVALID_ARGUMENT);
    assert.match(err.message, /^request: not a valid protobuf message/);
    assert.equal(await checkHealth(server.address), "SERVING");
    assert.equal((await client.info({})).name, "kit-fixture");
  });

  test("a request over the message limit gets RESOURCE_EXHAUSTED and the server keeps serving", async () => {
    const body = Buffer.from(
      reward.ScoreRequest.encode({ groups: [group("g", "p", ["y".repeat(LIMIT)])] }).finish(),
    );
    assert.ok(body.length > LIMIT);
    const err = await rawCall(server.address, "/temper.reward.v1.RewardService/Score", body);
    assert.equal(err.code, status.RESOURCE_EXHAUSTED);
    assert.equal(await checkHealth(server.address), "SERVING");
    const res = await client.score({ groups: [group("g", "p", ["z"])] });
    assert.equal(res.results.length, 1);
  });

  test("a response over the message limit is RESOURCE_EXHAUSTED with a message, not a transport failure", async () => {
    // 3000 completions: a ~30 kB request whose ~100 kB of results exceed the 64 KiB send limit
    const many = group(
      "g",
      "p",
      Array.from({ length: 3000 }, () => ""),
    );
    const body = Buffer.from(reward.ScoreRequest.encode({ groups: [many] }).finish());
    assert.ok(body.length < LIMIT);
    const err = await rawCall(server.address, "/temper.reward.v1.RewardService/Score", body);
    assert.equal(err.code, status.RESOURCE_EXHAUSTED);
    assert.match(err.message, new RegExp(`^response: \\d+ bytes, more than the ${LIMIT}-byte message limit`));
    const res = await client.score({ groups: [group("g", "p", ["z"])] });
    assert.equal(res.results.length, 1);
  });

  test("an unknown method is UNIMPLEMENTED", async () => {
    const err = await rawCall(server.address, "/temper.reward.v1.RewardService/Nope", Buffer.alloc(0));
    assert.equal(err.code, status.UNIMPLEMENTED);
  });
});

describe("startServer checks its inputs", () => {
  test("a service missing from the descriptor set is refused by name", async () => {
    const fake = { ping: { ...reward.RewardServiceService.info, path: "/x.v1.Ghost/Ping" } };
    await assert.rejects(
      startServer({
        name: "t",
        version: "0",
        port: 0,
        services: [{ definition: fake, implementation: { ping: () => ({}) } } as never],
        descriptorSet: descriptorSetPath,
        logger,
      }),
      /service x\.v1\.Ghost is not in the descriptor set/,
    );
  });

  test("a missing handler is refused by method name", async () => {
    await assert.rejects(
      startServer({
        name: "t",
        version: "0",
        port: 0,
        services: [
          { definition: reward.RewardServiceService, implementation: { info: () => ({}) } } as never,
        ],
        descriptorSet: descriptorSetPath,
        logger,
      }),
      /no handler for method "score"/,
    );
  });
});
