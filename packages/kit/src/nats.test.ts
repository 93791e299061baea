// The JetStream helper against a real nats-server: de-duplication by Nats-Msg-Id, trace context in
// headers, the 1 MiB limit, KV and object store round trips, drain.
import assert from "node:assert/strict";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, test } from "node:test";
import { context, trace } from "@opentelemetry/api";
import { type Bus, connectBus, MAX_EVENT_BYTES, TEMPER_STREAM, traceContextOf } from "./nats.ts";
import { findNatsServer, type NatsServerHandle, startNatsServer } from "./nats-server.ts";
import { startTelemetry } from "./telemetry.ts";

const binary = findNatsServer();

describe("connectBus", { skip: binary ? false : "nats-server not installed" }, () => {
  let nats: NatsServerHandle;
  let bus: Bus;
  const storeDir = mkdtempSync(join(tmpdir(), "kit-nats-"));

  before(async () => {
    startTelemetry({ serviceName: "kit-test" });
    nats = await startNatsServer({ storeDir });
    bus = await connectBus({ url: nats.url, name: "kit-test", streams: [TEMPER_STREAM] });
  });
  after(async () => {
    await bus?.drain();
    await nats?.stop();
    rmSync(storeDir, { recursive: true, force: true });
  });

  test("replicas reach the server: 3 on a single, unclustered server is refused", async () => {
    await assert.rejects(
      connectBus({
        url: nats.url,
        name: "kit-test-r3",
        replicas: 3,
        streams: [{ name: "R3", subjects: ["r3.>"] }],
      }),
      /replicas > 1 not supported in non-clustered mode/,
    );
    const r3 = await connectBus({ url: nats.url, name: "kit-test-r3", replicas: 3 });
    try {
      await assert.rejects(r3.kv("r3_kv"), /replicas > 1 not supported in non-clustered mode/);
      await assert.rejects(r3.objectStore("r3_obj"), /replicas > 1 not supported in non-clustered mode/);
    } finally {
      await r3.drain();
    }
  });

  test("a repeated Nats-Msg-Id is stored once", async () => {
    const data = new TextEncoder().encode("step 1");
    const first = await bus.publish("temper.r1.reward.blended", data, { msgId: "r1.1.reward.blended" });
    const again = await bus.publish("temper.r1.reward.blended", data, { msgId: "r1.1.reward.blended" });
    const other = await bus.publish("temper.r1.reward.blended", data, { msgId: "r1.2.reward.blended" });
    assert.equal(first.stream, "TEMPER");
    assert.equal(first.duplicate, false);
    assert.equal(again.duplicate, true);
    assert.equal(again.seq, first.seq);
    assert.equal(other.seq, first.seq + 1);
    const info = await bus.jsm.streams.info("TEMPER");
    assert.equal(info.state.messages, 2);
  });

  test("headers carry the Nats-Msg-Id and the publisher's traceparent", async () => {
    const span = trace.getTracer("t").startSpan("publisher");
    const { seq } = await context.with(trace.setSpan(context.active(), span), () =>
      bus.publish("temper.r2.metrics.step", new Uint8Array([1, 2, 3]), {
        msgId: "r2.1.metrics.step",
        headers: { a: "b" },
      }),
    );
    span.end();
    const msg = await bus.jsm.streams.getMessage("TEMPER", { seq });
    assert.ok(msg);
    assert.deepEqual([...msg.data], [1, 2, 3]);
    assert.equal(msg.header.get("Nats-Msg-Id"), "r2.1.metrics.step");
    assert.equal(msg.header.get("a"), "b");
    const sc = span.spanContext();
    assert.equal(msg.header.get("traceparent"), `00-${sc.traceId}-${sc.spanId}-01`);
    const continued = trace.getSpan(traceContextOf(msg.header))?.spanContext();
    assert.equal(continued?.traceId, sc.traceId);
  });

  test("payloads over the event limit are refused with a clear error; msgId is required", async () => {
    await assert.rejects(
      bus.publish("temper.r3.policy.updated", new Uint8Array(MAX_EVENT_BYTES), {
        msgId: "r3.1.policy.updated",
      }),
      /temper\.r3\.policy\.updated: payload of 1048576 bytes exceeds the \d+-byte event limit .*object store/,
    );
    await assert.rejects(
      bus.publish("temper.r3.x", new Uint8Array(1), { msgId: "" }),
      /msgId \(Nats-Msg-Id\) is required/,
    );
  });

  test("KV put/get with revisions", async () => {
    const kv = await bus.kv("temper-test-state");
    const r1 = await kv.put("run.r1", new TextEncoder().encode('{"step":1}'));
    const r2 = await kv.put("run.r1", new TextEncoder().encode('{"step":2}'));
    assert.ok(r2 > r1);
    const e = await kv.get("run.r1");
    assert.equal(new TextDecoder().decode(e?.value), '{"step":2}');
    assert.equal(e?.revision, r2);
    assert.equal(await kv.get("run.none"), null);
  });

  test("object store round-trips a payload larger than the event limit", async () => {
    const store = await bus.objectStore("temper-test-adapters");
    const big = new Uint8Array(3 * 1024 * 1024);
    for (let i = 0; i < big.length; i++) big[i] = (i * 31) & 0xff;
    const info = await store.putBlob({ name: "r1/v3/adapter_model.safetensors" }, big);
    assert.equal(info.size, big.length);
    const back = await store.getBlob("r1/v3/adapter_model.safetensors");
    assert.ok(back);
    assert.equal(Buffer.compare(Buffer.from(back), Buffer.from(big)), 0);
    assert.equal(await store.getBlob("missing"), null);
  });

  test("a server that is not there gives one clear error", async () => {
    await assert.rejects(
      connectBus({ url: "nats://127.0.0.1:1", name: "t", timeoutMs: 1000 }),
      /cannot connect to NATS at nats:\/\/127\.0\.0\.1:1/,
    );
  });
});
