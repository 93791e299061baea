// Service metrics: a real reward-correctness process with METRICS_PORT serves Prometheus text at
// /metrics: every RPC it answered, counted in `rpc.server.call.duration` by method and status (OTel
// RPC conventions, seconds), and the process's own event-loop delay, heap and RSS. Without
// METRICS_PORT nothing listens.
import assert from "node:assert/strict";
import { tmpdir } from "node:os";
import { after, describe, test } from "node:test";
import type { common } from "@temper/proto";
import { freePort, type GrpcError, Harness, repoRoot, Status } from "./src/index.ts";

/** The samples of one metric family: labels (as a sorted "k=v,…" string) → value. */
function samples(text: string, name: string): Map<string, number> {
  const out = new Map<string, number>();
  for (const line of text.split("\n")) {
    const m = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})? ([-+0-9.eE]+|NaN|[+-]Inf)/.exec(line);
    if (!m || m[1] !== name) continue;
    const labels = [...(m[2] ?? "").matchAll(/([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"/g)]
      .map(([, k, v]) => `${k}=${v}`)
      .sort()
      .join(",");
    out.set(labels, Number(m[3]));
  }
  return out;
}

describe("service metrics", () => {
  const h = new Harness();
  after(() => h.close());

  test("METRICS_PORT: /metrics counts each RPC by method and status, and the runtime's health", async () => {
    const port = await freePort();
    const svc = await h.service("reward-correctness", { env: { METRICS_PORT: String(port) } });
    const client = h.rewardClient(svc.address);
    const group = {
      id: "g",
      prompt: "1+1?",
      reference: "2",
      promptTokenIds: [],
      completions: [{ id: "c", text: "#### 2", tokenIds: [], logprobs: [], finishReason: 0 }],
    };
    for (let i = 0; i < 3; i++) await client.score({ groups: [group] });
    await assert.rejects(
      client.score(
        {
          groups: [
            { ...group, completions: [{ ...group.completions[0], finishReason: 99 as common.FinishReason }] },
          ],
        },
        { attempts: 1 },
      ),
      (e: GrpcError) => e.code === Status.INVALID_ARGUMENT,
    );
    const text = await (await fetch(`http://127.0.0.1:${port}/metrics`)).text();
    const counts = samples(text, "rpc_server_call_duration_count");
    const score = "temper.reward.v1.RewardService/Score";
    const byStatus = (status: string) =>
      [...counts].filter(
        ([k]) => k.includes(`rpc_method=${score},`) && k.includes(`rpc_response_status_code=${status},`),
      );
    assert.deepEqual(
      byStatus("OK").map(([, v]) => v),
      [3],
      text.slice(0, 3000),
    );
    assert.deepEqual(
      byStatus("INVALID_ARGUMENT").map(([, v]) => v),
      [1],
    );
    const sums = samples(text, "rpc_server_call_duration_sum");
    const okSum = [...sums].find(
      ([k]) => k.includes(`rpc_method=${score},`) && k.includes("status_code=OK,"),
    )?.[1];
    assert.ok(okSum !== undefined && okSum > 0 && okSum < 30, `duration sum ${okSum} s`);
    for (const name of ["nodejs_eventloop_delay_p99", "v8js_memory_heap_used", "process_memory_usage"]) {
      const [value] = [...samples(text, name).values()];
      assert.ok(value !== undefined && value >= 0, `${name} in\n${text.slice(0, 1500)}`);
    }
    const rss = [...samples(text, "process_memory_usage").values()][0];
    assert.ok(rss > 10 * 2 ** 20, `rss ${rss}`);
    // nothing secret or local in a label: no path, no address
    for (const local of [repoRoot, tmpdir(), "127.0.0.1"])
      assert.ok(!text.includes(local), `${local} in a label`);
  });

  test("without METRICS_PORT the service listens on its gRPC port only", async () => {
    const port = await freePort();
    await h.service("reward-correctness", {});
    await assert.rejects(fetch(`http://127.0.0.1:${port}/metrics`));
  });
});
