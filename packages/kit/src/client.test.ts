// The promise client against a real server: UNAVAILABLE retried up to the attempt limit and
// within the deadline, DEADLINE_EXCEEDED never retried, traceparent carried into the server span.
import assert from "node:assert/strict";
import { after, before, beforeEach, describe, test } from "node:test";
import { setTimeout as sleep } from "node:timers/promises";
import { status } from "@grpc/grpc-js";
import { context, SpanKind, trace } from "@opentelemetry/api";
import { InMemorySpanExporter, SimpleSpanProcessor } from "@opentelemetry/sdk-trace-base";
import { descriptorSetPath, reward } from "@temper/proto";
import { createClient } from "./client.ts";
import { GrpcError } from "./errors.ts";
import { createLogger } from "./logger.ts";
import { type ServerHandle, service, startServer } from "./server.ts";
import { startTelemetry } from "./telemetry.ts";

const logger = createLogger({ name: "kit-test", level: "silent" });
const spans = new InMemorySpanExporter();
const telemetry = startTelemetry({
  serviceName: "kit-test",
  spanProcessors: [new SimpleSpanProcessor(spans)],
});

describe("createClient", () => {
  let server: ServerHandle;
  let calls = 0;
  let failFirst = 0;
  let delayMs = 0;
  let seenTraceIds: string[] = [];
  let client: ReturnType<typeof createClient<typeof reward.RewardServiceService>>;

  before(async () => {
    server = await startServer({
      name: "kit-test",
      version: "0.0.1",
      port: 0,
      descriptorSet: descriptorSetPath,
      logger,
      services: [
        service(reward.RewardServiceService, {
          score: () => ({ results: [] }),
          async info(_req, ctx) {
            calls += 1;
            seenTraceIds.push(ctx.traceId);
            if (calls <= failFirst) throw new GrpcError(status.UNAVAILABLE, "warming up");
            if (delayMs) await sleep(delayMs, undefined, { signal: ctx.signal }).catch(() => {});
            return { name: "n", version: "v", components: [] };
          },
        }),
      ],
    });
    client = createClient(reward.RewardServiceService, server.address, { defaults: { backoffMs: 5 } });
  });
  beforeEach(() => {
    calls = 0;
    failFirst = 0;
    delayMs = 0;
    seenTraceIds = [];
    spans.reset();
  });
  after(async () => {
    client.$close();
    await server.shutdown(1000);
    await telemetry.shutdown();
  });

  test("UNAVAILABLE is retried until an attempt succeeds", async () => {
    failFirst = 2;
    const res = await client.info({}, { attempts: 3, timeoutMs: 5000 });
    assert.equal(res.name, "n");
    assert.equal(calls, 3);
  });

  test("retries stop at the attempt limit with the last UNAVAILABLE", async () => {
    failFirst = 10;
    await assert.rejects(
      client.info({}, { attempts: 3, timeoutMs: 5000 }),
      (e: GrpcError) => e.code === status.UNAVAILABLE,
    );
    assert.equal(calls, 3);
  });

  test("no retry when the backoff would pass the deadline", async () => {
    failFirst = 10;
    await assert.rejects(
      client.info({}, { attempts: 5, backoffMs: 1000, timeoutMs: 300 }),
      (e: GrpcError) => e.code === status.UNAVAILABLE,
    );
    assert.equal(calls, 1);
  });

  test("DEADLINE_EXCEEDED is never retried", async () => {
    delayMs = 500;
    const t0 = Date.now();
    await assert.rejects(
      client.info({}, { attempts: 3, timeoutMs: 100 }),
      (e: GrpcError) => e.code === status.DEADLINE_EXCEEDED,
    );
    assert.equal(calls, 1);
    assert.ok(Date.now() - t0 < 450, "returned at the deadline, not after the handler");
  });

  test("the caller's trace continues in the server span and every attempt", async () => {
    failFirst = 1;
    const tracer = trace.getTracer("caller");
    const root = tracer.startSpan("caller-root");
    await context.with(trace.setSpan(context.active(), root), () => client.info({}, { timeoutMs: 5000 }));
    root.end();
    const traceId = root.spanContext().traceId;
    assert.deepEqual(seenTraceIds, [traceId, traceId]);
    // Spans of earlier tests' slow calls may end meanwhile: keep this trace's server spans.
    const serverSpans = spans
      .getFinishedSpans()
      .filter((s) => s.kind === SpanKind.SERVER && s.spanContext().traceId === traceId);
    assert.equal(serverSpans.length, 2);
    for (const s of serverSpans) {
      assert.equal(s.name, "temper.reward.v1.RewardService/Info");
      assert.equal(s.attributes["rpc.method"], "Info");
    }
    assert.deepEqual(
      serverSpans.map((s) => s.attributes["rpc.grpc.status_code"]),
      [status.UNAVAILABLE, status.OK],
    );
  });

  test("aborting the signal cancels the call", async () => {
    delayMs = 2000;
    const abort = new AbortController();
    setTimeout(() => abort.abort(), 50);
    await assert.rejects(
      client.info({}, { signal: abort.signal, timeoutMs: 5000 }),
      (e: GrpcError) => e.code === status.CANCELLED,
    );
  });
});
