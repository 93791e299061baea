// The reward plane as processes: nats-server, the four reward sources and the scheduler. Checks the
// failure policy when sources die, idempotent steps, an exact resume after a scheduler restart,
// provenance, the reward.blended event, and INVALID_ARGUMENT for bad input.
import assert from "node:assert/strict";
import { execFile } from "node:child_process";
import { mkdtempSync, readFileSync, writeFileSync } from "node:fs";
import { createServer, type Socket } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, test } from "node:test";
import { setTimeout as sleep } from "node:timers/promises";
import { promisify } from "node:util";
import { BinaryWriter } from "@bufbuild/protobuf/wire";
import { Client, credentials } from "@grpc/grpc-js";
import { AckPolicy, jetstream, jetstreamManager } from "@nats-io/jetstream";
import { Kvm } from "@nats-io/kv";
import { connect } from "@nats-io/transport-node";
import {
  createLogger,
  GrpcError as KitGrpcError,
  type ServerHandle,
  service,
  startServer,
} from "@temper/kit";
import { common, descriptorSetPath, events, reward, scheduler } from "@temper/proto";
import { DEFAULT_WEIGHTS } from "@temper/rewards";
import { freePort, type GrpcError, Harness, repoRoot, Status, type TestService } from "./src/index.ts";

const SOURCES = ["correctness", "perplexity", "reasoning", "consistency"] as const;
const STOP = common.FinishReason.FINISH_REASON_STOP;

function completion(id: string, text: string, logprobs: number[] = []): common.Completion {
  return { id, text, tokenIds: [], logprobs, finishReason: STOP };
}

/** Group k: reference 10 + k, completions right or wrong with some arithmetic. */
function batch(step: number, groups = 3): common.Group[] {
  return Array.from({ length: groups }, (_, k) => {
    const y = 10 + k;
    return {
      id: `s${step}g${k}`,
      prompt: `What is ${y - 3} + 3?`,
      reference: `${y - 3} + 3 = <<${y - 3}+3=${y}>>${y}\n#### ${y}`,
      promptTokenIds: [],
      completions: [
        completion(`s${step}g${k}c0`, `${y - 3} + 3 = ${y}.\nThe answer is ${y}.`, [-0.1, -0.3, -0.2]),
        completion(`s${step}g${k}c1`, `${y - 3} + 3 = ${y + 1}.\nThe answer is ${y + 1}.`, [-1.2, -0.9]),
        completion(
          `s${step}g${k}c2`,
          (step + k) % 2 ? `#### ${y}` : `First ${y - 3} + 3 = ${y}.\nSo ${y}.\n**Answer: ${y}**`,
        ),
        completion(`s${step}g${k}c3`, `I think it is ${y * 2}.`),
      ],
    };
  });
}

function runConfig(
  runId: string,
  structure: scheduler.Structure,
  policy = scheduler.FailurePolicy.FAILURE_POLICY_SKIP,
) {
  return {
    config: {
      runId,
      structure,
      sources: {},
      advantageScale: scheduler.AdvantageScale.ADVANTAGE_SCALE_GROUP,
      failurePolicy: policy,
      control: 0,
      controlSeed: 0,
      sourceTimeoutMs: 3000,
    },
  };
}

const hybrid: scheduler.Structure = { kind: { $case: "hybrid", value: { alpha: 0.5 } } };
const progress: scheduler.Structure = {
  kind: {
    $case: "adaptive",
    value: { schedule: { $case: "progress", value: { alphaMin: 0.1, alphaMax: 0.9, targetAccuracy: 0.8 } } },
  },
};

async function rejects(p: Promise<unknown>, code: Status, field: string | RegExp): Promise<void> {
  await assert.rejects(p, (err: GrpcError) => {
    assert.equal(err.code, code, `status ${err.code} (${err.message})`);
    if (typeof field === "string") assert.ok(err.message.includes(field), `"${err.message}" names ${field}`);
    else assert.match(err.message, field);
    return true;
  });
}

/**
 * A stand-in perplexity source in this process: a group whose prompt is "slow:<ms>" is answered
 * after that wait, "flaky:<ms>" waits and then gets UNAVAILABLE the first time (its group id) is
 * seen, "fail" gets UNAVAILABLE; every completion scores perplexity 0.5.
 */
const flaked = new Set<string>();
function startFakeSource(): Promise<ServerHandle> {
  return startServer({
    name: "fake-perplexity",
    version: "0.0.1",
    port: 0,
    logger: createLogger({ name: "fake-perplexity", level: "silent" }),
    descriptorSet: descriptorSetPath,
    services: [
      service(reward.RewardServiceService, {
        async score(req, ctx) {
          for (const g of req.groups) {
            const m = /^(slow|flaky):(\d+)$/.exec(g.prompt);
            if (m) await sleep(Number(m[2]), undefined, { signal: ctx.signal });
            if (g.prompt === "fail") throw new KitGrpcError(Status.UNAVAILABLE, "fake source down");
            if (m?.[1] === "flaky" && !flaked.has(g.id)) {
              flaked.add(g.id);
              throw new KitGrpcError(Status.UNAVAILABLE, "fake source hiccup");
            }
          }
          return {
            results: req.groups.flatMap((g) =>
              g.completions.map((c) => ({
                completionId: c.id,
                groupId: g.id,
                components: {
                  perplexity: { value: 0.5, status: reward.ComponentStatus.COMPONENT_STATUS_OK, detail: "" },
                },
              })),
            ),
          };
        },
        info: () => ({ name: "perplexity", version: "fake", components: ["perplexity"] }),
      }),
    ],
  });
}

describe("reward plane", () => {
  const h = new Harness();
  const sources: Record<string, TestService> = {};
  let sched: TestService;
  let client: ReturnType<Harness["schedulerClient"]>;
  let fake: ServerHandle;

  before(async () => {
    fake = await startFakeSource();
    const nats = await h.nats();
    await Promise.all(
      SOURCES.map(async (s) => {
        sources[s] = await h.service(`reward-${s}`);
      }),
    );
    const env: Record<string, string> = {};
    for (const s of SOURCES) env[`REWARD_${s.toUpperCase()}_ADDR`] = sources[s].address;
    sched = await h.service("scheduler", { nats, env });
    client = h.schedulerClient(sched.address);
  });
  after(async () => {
    await h.close();
    await fake?.shutdown(100);
  });

  test("every source answers Info with its contract's components", async () => {
    const expected: Record<string, string[]> = {
      correctness: ["correctness_hard", "correctness_soft", "format"],
      perplexity: ["perplexity"],
      reasoning: ["reasoning", "arithmetic_validity", "structure", "non_repetition", "length"],
      consistency: ["consistency", "self_consistency", "internal"],
    };
    for (const s of SOURCES) {
      const info = await h.rewardClient(sources[s].address).info({});
      assert.equal(info.name, s);
      assert.ok(info.version.length > 0);
      assert.deepEqual([...info.components].sort(), [...expected[s]].sort());
    }
  });

  test("a hybrid step blends hard and continuous rewards with group advantages and provenance", async () => {
    await client.configure(runConfig("hyb", hybrid));
    const res = await client.score({ runId: "hyb", step: 0, groups: batch(0) });
    assert.equal(res.items.length, 12);
    assert.equal(res.alpha, 0.5);
    assert.deepEqual(
      res.provenance.map((p) => [p.source, p.name, p.endpoint]),
      SOURCES.map((s) => [s, s, sources[s].address]),
    );
    for (const item of res.items) {
      const v = (k: string) => item.components[k]?.value;
      const present = Object.entries(DEFAULT_WEIGHTS).filter(([name]) => {
        const src = name === "correctness_soft" ? "correctness" : name;
        return item.components[`${src}.${name}`]?.status === reward.ComponentStatus.COMPONENT_STATUS_OK;
      });
      const cont =
        present.reduce(
          (s, [name, w]) => s + w * v(`${name === "correctness_soft" ? "correctness" : name}.${name}`)!,
          0,
        ) / present.reduce((s, [, w]) => s + w, 0);
      assert.ok(Math.abs(item.reward - (0.5 * v("correctness.correctness_hard")! + 0.5 * cont)) < 1e-12);
      assert.deepEqual(item.missing, []);
    }
    // Advantages: per group, zero mean, sample std ≈ 1 (std + 1e-4 in the denominator).
    for (const g of res.groups) {
      const items = res.items.filter((i) => i.groupId === g.groupId);
      const sum = items.reduce((s, i) => s + i.advantage, 0);
      assert.ok(Math.abs(sum) < 1e-9);
      assert.equal(g.zeroSignal, false);
    }
    assert.equal(res.items[0].details?.extractedAnswer, "10");
  });

  test("control permute: hard's rewards shuffled across the step, reproducibly; advantages from the shuffle", async () => {
    const hard: scheduler.Structure = { kind: { $case: "hard", value: {} } };
    const permuted = (runId: string, seed: number) => {
      const r = runConfig(runId, hard);
      return {
        config: { ...r.config, control: scheduler.RewardControl.REWARD_CONTROL_PERMUTE, controlSeed: seed },
      };
    };
    await client.configure(runConfig("plain-hard", hard));
    await client.configure(permuted("perm-a", 5));
    await client.configure(permuted("perm-b", 5));
    const plain = await client.score({ runId: "plain-hard", step: 0, groups: batch(0) });
    const a = await client.score({ runId: "perm-a", step: 0, groups: batch(0) });
    const b = await client.score({ runId: "perm-b", step: 0, groups: batch(0) });
    const rewards = (r: typeof plain) => r.items.map((i) => i.reward);
    const sorted = (xs: number[]) => [...xs].sort((x, y) => x - y);
    assert.deepEqual(sorted(rewards(a)), sorted(rewards(plain)), "the same rewards");
    assert.deepEqual(rewards(a), rewards(b), "the same seed and step shuffle alike");
    assert.notDeepEqual(rewards(a), rewards(plain), "the shuffle moved rewards");
    // each item keeps its own correctness; its reward no longer follows it
    for (const [i, item] of a.items.entries())
      assert.deepEqual(
        item.components["correctness.correctness_hard"],
        plain.items[i].components["correctness.correctness_hard"],
      );
    for (const g of a.groups) {
      const items = a.items.filter((i) => i.groupId === g.groupId);
      assert.ok(Math.abs(items.reduce((s, i) => s + i.advantage, 0)) < 1e-9);
      assert.ok(Math.abs(g.meanReward - items.reduce((s, i) => s + i.reward, 0) / items.length) < 1e-12);
    }
    assert.equal(
      (await client.getState({ runId: "perm-a" })).config?.control,
      scheduler.RewardControl.REWARD_CONTROL_PERMUTE,
    );
  });

  test("repeating a step returns the same result and changes no state", async () => {
    const before = await client.getState({ runId: "hyb" });
    const first = await client.score({ runId: "hyb", step: 1, groups: batch(1) });
    const mid = await client.getState({ runId: "hyb" });
    const again = await client.score({ runId: "hyb", step: 1, groups: batch(1) });
    const afterState = await client.getState({ runId: "hyb" });
    assert.equal(first.replayed, false);
    assert.equal(again.replayed, true);
    assert.deepEqual({ ...again, replayed: false }, first);
    assert.equal(mid.state!.stepsScored, before.state!.stepsScored + 1);
    assert.deepEqual(afterState, mid);
  });

  test("each Score publishes one reward.blended event with a de-duplicating message id", async () => {
    const nats = await h.nats();
    const nc = await connect({ servers: nats.url });
    try {
      const js = jetstream(nc);
      // A durable consumer with one filter subject: Debian's nats-server predates filter_subjects.
      await (await jetstreamManager(nc)).consumers.add("TEMPER", {
        durable_name: "blended-check",
        filter_subject: "temper.hyb.reward.blended",
        ack_policy: AckPolicy.Explicit,
      });
      const consumer = await js.consumers.get("TEMPER", "blended-check");
      const seen: events.RewardBlended[] = [];
      const ids: string[] = [];
      const messages = await consumer.fetch({ max_messages: 10, expires: 2000 });
      for await (const m of messages) {
        seen.push(events.RewardBlended.decode(m.data));
        ids.push(m.headers?.get("Nats-Msg-Id") ?? "");
        m.ack();
      }
      // Steps 0 and 1 of run "hyb"; the repeated step 1 did not publish again.
      assert.deepEqual(ids, ["hyb.0.reward.blended", "hyb.1.reward.blended"]);
      assert.equal(seen[0].completions, 12);
      assert.ok(seen[0].components["correctness.correctness_hard"].present === 12);
      assert.equal(seen[0].provenance.length, 4);
    } finally {
      await nc.close();
    }
  });

  test("groups of one get advantage 0 and zero_signal", async () => {
    await client.configure(runConfig("single", hybrid));
    const res = await client.score({
      runId: "single",
      step: 0,
      groups: [
        {
          id: "g",
          prompt: "",
          reference: "5",
          promptTokenIds: [],
          completions: [completion("c", "The answer is 5.")],
        },
      ],
    });
    assert.equal(res.items[0].advantage, 0);
    assert.equal(res.groups[0].zeroSignal, true);
  });

  test("bad input gets INVALID_ARGUMENT naming the field", async () => {
    await client.configure(runConfig("bad", hybrid));
    const g = batch(0, 1);
    const withText = (text: string) => [{ ...g[0], completions: [completion("x", text)] }];
    await rejects(client.score({ runId: "bad", step: 0, groups: [] }), Status.INVALID_ARGUMENT, "groups");
    await rejects(
      client.score({ runId: "bad", step: 0, groups: withText("") }),
      Status.INVALID_ARGUMENT,
      "groups[0].completions[0].text",
    );
    await rejects(
      client.score({ runId: "bad", step: 0, groups: withText("7".repeat(1 << 20)) }),
      Status.INVALID_ARGUMENT,
      "groups[0].completions[0].text",
    );
    await rejects(client.score({ runId: "no/slash", step: 0, groups: g }), Status.INVALID_ARGUMENT, "run_id");
    await rejects(client.configure(runConfig("bad", {})), Status.INVALID_ARGUMENT, "config.structure");
    await rejects(
      client.configure(
        runConfig("bad", { kind: { $case: "continuous", value: { weights: { reasoning: -1 } } } }),
      ),
      Status.INVALID_ARGUMENT,
      'weights["reasoning"]',
    );
    await rejects(
      client.configure(
        runConfig("bad", { kind: { $case: "continuous", value: { weights: { reasoning: 0 } } } }),
      ),
      Status.INVALID_ARGUMENT,
      "config.structure.continuous.weights",
    );
    await rejects(
      client.configure(runConfig("bad", { kind: { $case: "hybrid", value: { alpha: 1.5 } } })),
      Status.INVALID_ARGUMENT,
      "config.structure.hybrid.alpha",
    );
    await rejects(client.configure(runConfig("a.b", hybrid)), Status.INVALID_ARGUMENT, "config.run_id");
    await rejects(
      client.score({ runId: "never", step: 0, groups: g }),
      Status.FAILED_PRECONDITION,
      "Configure",
    );
    // Still serving.
    assert.equal((await client.score({ runId: "bad", step: 0, groups: g })).items.length, 4);
  });

  test("a scheduler restarted mid-run in progress mode continues exactly as an unrestarted run", async () => {
    await client.configure(runConfig("prog-a", progress));
    await client.configure(runConfig("prog-b", progress));
    const a: scheduler.ScoreResponse[] = [];
    const b: scheduler.ScoreResponse[] = [];
    for (let step = 0; step < 3; step++) {
      a.push(await client.score({ runId: "prog-a", step, groups: batch(step) }));
      b.push(await client.score({ runId: "prog-b", step, groups: batch(step) }));
    }
    await sched.restart();
    // prog-b is scored first after the restart: both runs' state comes from KV.
    for (let step = 3; step < 6; step++) {
      b.push(await client.score({ runId: "prog-b", step, groups: batch(step) }));
      a.push(await client.score({ runId: "prog-a", step, groups: batch(step) }));
    }
    const alphas = a.map((r) => r.alpha);
    assert.deepEqual(
      alphas,
      b.map((r) => r.alpha),
    );
    assert.ok(new Set(alphas).size > 1, `α moves with accuracy: ${alphas}`);
    for (let i = 0; i < 6; i++) {
      assert.deepEqual(
        a[i].items.map((x) => [x.reward, x.alphaUsed, x.advantage]),
        b[i].items.map((x) => [x.reward, x.alphaUsed, x.advantage]),
      );
    }
    const state = await client.getState({ runId: "prog-a" });
    assert.equal(state.state!.stepsScored, 6);
    assert.equal(state.state!.lastStep, 5);
  });

  test("a dead continuous source is skipped (listed as missing) or fails the call, per run", async () => {
    await client.configure(runConfig("skip", hybrid));
    await client.configure(runConfig("strict", hybrid, scheduler.FailurePolicy.FAILURE_POLICY_FAIL));
    await sources.reasoning.kill();
    try {
      const res = await client.score({ runId: "skip", step: 0, groups: batch(0) });
      for (const item of res.items) {
        assert.ok(item.missing.includes("reasoning.reasoning"), item.missing.join(","));
        assert.equal(item.components["reasoning.reasoning"], undefined);
        // Renormalised over the present weighted components.
        const c = (k: string) => item.components[k];
        const parts: [number, reward.ComponentValue | undefined][] = [
          [0.4, c("correctness.correctness_soft")],
          [0.2, c("consistency.consistency")],
          [0.15, c("perplexity.perplexity")],
        ];
        const ok = parts.filter(([, v]) => v?.status === reward.ComponentStatus.COMPONENT_STATUS_OK);
        const cont = ok.reduce((s, [w, v]) => s + w * v!.value!, 0) / ok.reduce((s, [w]) => s + w, 0);
        const hard = c("correctness.correctness_hard")!.value!;
        assert.ok(Math.abs(item.reward - (0.5 * hard + 0.5 * cont)) < 1e-12);
      }
      await rejects(
        client.score({ runId: "strict", step: 0, groups: batch(0) }),
        Status.UNAVAILABLE,
        "reasoning",
      );
      // The stack keeps serving the other runs.
      assert.equal((await client.score({ runId: "skip", step: 1, groups: batch(1) })).items.length, 12);
    } finally {
      await sources.reasoning.restart();
    }
    const healed = await client.score({ runId: "skip", step: 2, groups: batch(2) });
    assert.deepEqual(healed.items[0].missing, []);
  });

  test("a dead correctness source fails the call with UNAVAILABLE", async () => {
    await client.configure(runConfig("needs-hard", hybrid));
    await sources.correctness.kill();
    try {
      await rejects(
        client.score({ runId: "needs-hard", step: 0, groups: batch(0) }),
        Status.UNAVAILABLE,
        "correctness",
      );
    } finally {
      await sources.correctness.restart();
    }
    const ok = await client.score({ runId: "needs-hard", step: 0, groups: batch(0) });
    assert.equal(ok.replayed, false);
  });

  test("swapping a source's endpoint shows in provenance", async () => {
    const second = await h.service("reward-perplexity");
    await client.configure({
      config: { ...runConfig("swap", hybrid).config, sources: { perplexity: second.address } },
    });
    const res = await client.score({ runId: "swap", step: 0, groups: batch(0) });
    const p = res.provenance.find((x) => x.source === "perplexity")!;
    assert.equal(p.endpoint, second.address);
  });

  test("temper score --scheduler gives the in-process rewards", async () => {
    const dir = mkdtempSync(join(tmpdir(), "temper-score-"));
    const lines = readFileSync(join(repoRoot, "tests/data/labelled-completions.jsonl"), "utf8")
      .trim()
      .split("\n")
      .slice(0, 48)
      .map((l) => JSON.parse(l))
      .map((l) => ({ ...l, group: l.reference }));
    const data = join(dir, "in.jsonl");
    writeFileSync(data, lines.map((l) => JSON.stringify(l)).join("\n"));
    const cli = join(repoRoot, "tools/bin/temper.mjs");
    const score = async (...extra: string[]) => {
      const { stdout } = await promisify(execFile)(process.execPath, [
        cli,
        "score",
        "--data",
        data,
        "--structure",
        "hybrid",
        "--alpha",
        "0.3",
        ...extra,
      ]);
      return stdout
        .trim()
        .split("\n")
        .map((l) => JSON.parse(l).rewards);
    };
    const local = await score();
    const remote = await score("--scheduler", sched.address, "--run", "cli-check");
    assert.equal(remote.length, local.length);
    for (let i = 0; i < local.length; i++) {
      assert.ok(Math.abs(remote[i].reward - local[i].reward) < 1e-12, `line ${i}`);
      assert.ok(Math.abs(remote[i].advantage - local[i].advantage) < 1e-9, `line ${i}`);
      assert.equal(remote[i].extracted, local[i].extracted);
    }
  });
  // ---- Faults (issue 13): results that cannot be stored or sent, replays that must match, abandoned
  // calls, one run's failing source call, validation gaps.

  test("a step larger than NATS's max payload is stored in parts and replays", async () => {
    // 192 groups × 8 completions of 40 checked equations with random numbers: the stored step (its
    // response, gzipped) is over 1 MiB, NATS's default max payload.
    let seed = 12345;
    const rand = () => {
      seed = (seed * 1103515245 + 12345) % 2147483648;
      return seed % 1_000_000;
    };
    const groups: common.Group[] = Array.from({ length: 192 }, (_, k) => ({
      id: `big${k}`,
      prompt: "",
      reference: String(k),
      promptTokenIds: [],
      completions: Array.from({ length: 8 }, (_, j) => {
        const lines = Array.from({ length: 40 }, () => {
          const a = rand();
          const b = rand();
          return `${a} + ${b} = ${a + b}.`;
        });
        return completion(`big${k}c${j}`, `${lines.join("\n")}\n#### ${k + (j % 2)}`, [-0.1 * (j + 1)]);
      }),
    }));
    await client.configure({ config: { ...runConfig("big", hybrid).config, sourceTimeoutMs: 60_000 } });
    const first = await client.score({ runId: "big", step: 0, groups }, { timeoutMs: 60_000 });
    assert.equal(first.items.length, 1536);
    assert.deepEqual(first.items[0].missing, []);
    const again = await client.score({ runId: "big", step: 0, groups }, { timeoutMs: 60_000 });
    assert.equal(again.replayed, true);
    assert.deepEqual({ ...again, replayed: false }, first);
    // It really went through the parts path.
    const nc = await connect({ servers: (await h.nats()).url });
    try {
      const kv = await new Kvm(nc).open("temper_scheduler");
      assert.equal((await kv.get("big.step.0.part.0"))?.operation, "PUT");
    } finally {
      await nc.close();
    }
  });

  test("a response over GRPC_MAX_MESSAGE_BYTES is refused with RESOURCE_EXHAUSTED and never stored", async () => {
    const groups = batch(0);
    await client.configure(runConfig("size-probe", hybrid));
    const size = scheduler.ScoreResponse.encode(
      await client.score({ runId: "size-probe", step: 0, groups }),
    ).finish().length;
    const env: Record<string, string> = { GRPC_MAX_MESSAGE_BYTES: String(size - 16) };
    for (const s of SOURCES) env[`REWARD_${s.toUpperCase()}_ADDR`] = sources[s].address;
    const small = await h.service("scheduler", { nats: await h.nats(), env });
    const c = h.schedulerClient(small.address);
    await c.configure(runConfig("too-big", hybrid));
    for (let attempt = 0; attempt < 2; attempt++) {
      await rejects(
        c.score({ runId: "too-big", step: 0, groups }),
        Status.RESOURCE_EXHAUSTED,
        "GRPC_MAX_MESSAGE_BYTES",
      );
    }
    const state = await c.getState({ runId: "too-big" });
    assert.equal(state.state!.stepsScored, 0);
    await small.stop();
  });

  test("a repeated step must match the stored request and config version", async () => {
    await client.configure(runConfig("rep", hybrid));
    const first = await client.score({ runId: "rep", step: 0, groups: batch(0) });
    await rejects(
      client.score({ runId: "rep", step: 0, groups: batch(1) }),
      Status.FAILED_PRECONDITION,
      /step 0 was already scored with a different request/,
    );
    // The identical config again is a no-op: same KV revision, and the step still replays.
    const nc = await connect({ servers: (await h.nats()).url });
    try {
      const kv = await new Kvm(nc).open("temper_scheduler");
      const before = (await kv.get("rep.config"))!.revision;
      await client.configure(runConfig("rep", hybrid));
      assert.equal((await kv.get("rep.config"))!.revision, before);
    } finally {
      await nc.close();
    }
    assert.equal((await client.score({ runId: "rep", step: 0, groups: batch(0) })).replayed, true);
    const { configVersion } = await client.getState({ runId: "rep" });
    await client.configure({
      ...runConfig("rep", { kind: { $case: "continuous", value: { weights: {} } } }),
      expectedVersion: configVersion,
    });
    await rejects(
      client.score({ runId: "rep", step: 0, groups: batch(0) }),
      Status.FAILED_PRECONDITION,
      /scored under config version \d+; the run has been reconfigured/,
    );
    const next = await client.score({ runId: "rep", step: 1, groups: batch(0) });
    assert.equal(next.alpha, 0);
    assert.notDeepEqual(
      next.items.map((i) => i.reward),
      first.items.map((i) => i.reward),
    );
  });

  test("temper score --scheduler: a fresh run per call, and --run refuses a reconfigured replay", async () => {
    const dir = mkdtempSync(join(tmpdir(), "temper-score-run-"));
    const data = join(dir, "in.jsonl");
    writeFileSync(
      data,
      [0, 1, 2, 3]
        .map((i) =>
          JSON.stringify({
            question: "q",
            reference: "4",
            group: "g",
            completion: `2+2 = ${3 + (i % 2)}. #### ${3 + (i % 2)}`,
          }),
        )
        .join("\n"),
    );
    const cli = (...args: string[]) =>
      promisify(execFile)(process.execPath, [
        join(repoRoot, "tools/bin/temper.mjs"),
        "score",
        "--data",
        data,
        "--scheduler",
        sched.address,
        ...args,
      ]).then(
        (r) =>
          r.stdout
            .trim()
            .split("\n")
            .map((l) => JSON.parse(l).rewards),
        (e: { code: number; stderr: string }) => ({ code: e.code, stderr: e.stderr }),
      );
    const [fresh, hybridRun] = await Promise.all([
      cli("--structure", "continuous"),
      cli("--structure", "hybrid", "--alpha", "0.5", "--run", "cli-rep"),
    ]);
    assert.ok(Array.isArray(fresh) && Array.isArray(hybridRun));
    assert.deepEqual(
      fresh.map((r: { alpha_used: number }) => r.alpha_used),
      [0, 0, 0, 0],
    );
    assert.deepEqual(
      hybridRun.map((r: { alpha_used: number }) => r.alpha_used),
      [0.5, 0.5, 0.5, 0.5],
    );
    const reused = (await cli("--structure", "continuous", "--run", "cli-rep")) as {
      code: number;
      stderr: string;
    };
    assert.equal(reused.code, 2);
    // the run exists with another configuration: Configure refuses to overwrite it unasked
    assert.match(
      reused.stderr,
      /expected_version: run "cli-rep" exists with a different configuration .* to reconfigure it/,
    );
  });

  test("a result computed after the caller's deadline is not stored; a retry scores it afresh", async () => {
    await client.configure({
      config: {
        ...runConfig("gone", hybrid).config,
        sources: { perplexity: fake.address },
        sourceTimeoutMs: 5000,
      },
    });
    const groups = [{ ...batch(0, 1)[0], prompt: "slow:700" }];
    await rejects(
      client.score({ runId: "gone", step: 0, groups }, { timeoutMs: 250, attempts: 1 }),
      Status.DEADLINE_EXCEEDED,
      /./,
    );
    await new Promise((r) => setTimeout(r, 400)); // the scheduler finishes its (degraded) step meanwhile
    const retry = await client.score({ runId: "gone", step: 0, groups });
    assert.equal(retry.replayed, false);
    assert.deepEqual(retry.items[0].missing, []);
    assert.equal(retry.items[0].components["perplexity.perplexity"]?.value, 0.5);
  });

  test("one run's failing call to a source leaves another run's calls to it alone", async () => {
    const cfg = (runId: string) => ({
      config: { ...runConfig(runId, hybrid).config, sources: { perplexity: fake.address } },
    });
    await client.configure(cfg("chan-a"));
    await client.configure(cfg("chan-b"));
    // chan-b's call is in flight (and will be retried once) while chan-a's call to the same endpoint
    // fails: chan-b must still get its answer, on its first channel or a new one.
    const slow = client.score({
      runId: "chan-b",
      step: 0,
      groups: [{ ...batch(0, 1)[0], id: "flaky-b", prompt: "flaky:800" }],
    });
    await new Promise((r) => setTimeout(r, 300));
    const failing = await client.score({
      runId: "chan-a",
      step: 0,
      groups: [{ ...batch(0, 1)[0], prompt: "fail" }],
    });
    assert.ok(failing.items[0].missing.includes("perplexity.perplexity"));
    const res = await slow;
    assert.deepEqual(res.items[0].missing, []);
    assert.equal(res.items[0].components["perplexity.perplexity"]?.value, 0.5);
  });

  test("Configure of an existing run needs its current version; the identical config is a no-op", async () => {
    const first = await client.configure(runConfig("occ", hybrid));
    assert.ok(first.version > 0);
    // the same configuration again, with or without a version: nothing changes
    assert.equal((await client.configure(runConfig("occ", hybrid))).version, first.version);
    assert.equal(
      (await client.configure({ ...runConfig("occ", hybrid), expectedVersion: 1 })).version,
      first.version,
    );
    const continuous = runConfig("occ", { kind: { $case: "continuous", value: { weights: {} } } });
    await rejects(
      client.configure(continuous),
      Status.FAILED_PRECONDITION,
      /^expected_version: run "occ" exists with a different configuration/,
    );
    // user A and user B both read version v; A reconfigures; B's write with v is stale and fails
    const a = await client.configure({ ...continuous, expectedVersion: first.version });
    assert.ok(a.version > first.version);
    await rejects(
      client.configure({ ...runConfig("occ", progress), expectedVersion: first.version }),
      Status.FAILED_PRECONDITION,
      new RegExp(
        `^expected_version: run "occ" is at config version ${a.version}, not ${first.version}: it was reconfigured`,
      ),
    );
    assert.equal((await client.getState({ runId: "occ" })).configVersion, a.version);
    await rejects(
      client.configure({ ...runConfig("occ-new", hybrid), expectedVersion: 5 }),
      Status.FAILED_PRECONDITION,
      /^expected_version: run "occ-new" does not exist/,
    );
  });

  test("a source endpoint outside the allow-list fails Configure, naming the rule", async () => {
    for (const endpoint of ["10.20.30.40:22", "metadata.internal:80", "127.1:15051"])
      await rejects(
        client.configure({
          config: { ...runConfig("allow", hybrid).config, sources: { reasoning: endpoint } },
        }),
        Status.INVALID_ARGUMENT,
        `config.sources["reasoning"]: endpoint "${endpoint}" is not admitted by SOURCE_ENDPOINT_ALLOW (unset: loopback and the REWARD_*_ADDR endpoints) = loopback, `,
      );
  });

  test("a failing source reads the same whether its port is closed, silent or not gRPC", async () => {
    const closed = await freePort();
    const held: Socket[] = [];
    const silent = createServer((sock) => held.push(sock)); // accepts, never answers (a filtered port times out)
    const http = createServer((sock) => sock.end("HTTP/1.1 400 Bad Request\r\n\r\n"));
    const listen = (srv: ReturnType<typeof createServer>) =>
      new Promise<number>((r) =>
        srv.listen(0, "127.0.0.1", () => r((srv.address() as { port: number }).port)),
      );
    const ports = [closed, await listen(silent), await listen(http)];
    try {
      const messages: string[] = [];
      for (const [i, port] of ports.entries()) {
        const runId = `probe-${i}`;
        await client.configure({
          config: {
            ...runConfig(runId, hybrid, scheduler.FailurePolicy.FAILURE_POLICY_FAIL).config,
            sources: { perplexity: `127.0.0.1:${port}` },
            sourceTimeoutMs: 400,
          },
        });
        await assert.rejects(client.score({ runId, step: 0, groups: batch(0, 1) }), (e: GrpcError) => {
          assert.equal(e.code, Status.UNAVAILABLE);
          messages.push(e.message.replace(`127.0.0.1:${port}`, "ENDPOINT"));
          return true;
        });
      }
      assert.deepEqual(new Set(messages).size, 1, messages.join("\n"));
      assert.match(messages[0], /^source perplexity \(ENDPOINT\) failed: no usable answer/);
      assert.doesNotMatch(messages[0], /ECONNREFUSED|refused|deadline|protocol|RST|reset/i);
    } finally {
      for (const sock of held) sock.destroy();
      silent.close();
      http.close();
    }
  });

  test("validation gaps: overflowing params, completion ids, enums, ports, uint64 above 2^53", async () => {
    await client.configure(runConfig("val", hybrid));
    const g = batch(0, 1)[0];
    const withCompletions = (cs: common.Completion[]) => [{ ...g, completions: cs }];
    await rejects(
      client.score({ runId: "val", step: 0, groups: withCompletions([completion("", "#### 10")]) }),
      Status.INVALID_ARGUMENT,
      "groups[0].completions[0].id",
    );
    await rejects(
      client.score({ runId: "val", step: 0, groups: [g, { ...g, id: "other" }] }),
      Status.INVALID_ARGUMENT,
      "groups[1].completions[0].id: duplicate",
    );
    await rejects(
      client.score({
        runId: "val",
        step: 0,
        groups: withCompletions([{ ...completion("x", "#### 10"), finishReason: 9 as common.FinishReason }]),
      }),
      Status.INVALID_ARGUMENT,
      "groups[0].completions[0].finish_reason",
    );
    await rejects(
      h.rewardClient(sources.correctness.address).score({
        groups: withCompletions([{ ...completion("x", "#### 10"), finishReason: 9 as common.FinishReason }]),
      }),
      Status.INVALID_ARGUMENT,
      "groups[0].completions[0].finish_reason",
    );
    for (const port of ["0", "65536"])
      await rejects(
        client.configure({
          config: { ...runConfig("val", hybrid).config, sources: { reasoning: `127.0.0.1:${port}` } },
        }),
        Status.INVALID_ARGUMENT,
        'config.sources["reasoning"]: port must be in [1, 65535]',
      );
    await rejects(
      client.configure(
        runConfig("val", {
          kind: { $case: "continuous", value: { weights: { reasoning: 1e308, perplexity: 1e308 } } },
        }),
      ),
      Status.INVALID_ARGUMENT,
      'config.structure.continuous.weights["reasoning"]',
    );
    await rejects(
      client.configure({
        config: { ...runConfig("val", hybrid).config, params: { perplexityTau: 1e-320, perplexityMode: 0 } },
      }),
      Status.INVALID_ARGUMENT,
      "config.params.perplexity_tau",
    );
    // step = 2^53 + 1 on the wire: the generated decoder cannot hold it; the status names the field.
    const w = new BinaryWriter();
    w.uint32(10).string("val");
    w.uint32(16).uint64(2n ** 53n + 1n);
    const raw = new Client(sched.address, credentials.createInsecure());
    try {
      const err = await new Promise<GrpcError>((resolve, reject) =>
        raw.makeUnaryRequest(
          "/temper.scheduler.v1.SchedulerService/Score",
          (b: Uint8Array) => Buffer.from(b),
          (b: Buffer) => b,
          w.finish(),
          { deadline: Date.now() + 5000 },
          (e) => (e ? resolve(e as unknown as GrpcError) : reject(new Error("expected an error"))),
        ),
      );
      assert.equal(err.code, Status.INVALID_ARGUMENT);
      assert.match((err as unknown as { details: string }).details, /^step: 9007199254740993 is beyond/);
    } finally {
      raw.close();
    }
  });
});
