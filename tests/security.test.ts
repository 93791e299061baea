// A secure stack (`temper stack --secure`): every gRPC hop on mutual TLS, credentials on mutating
// RPCs, NATS users with per-service permissions. A caller without credentials is turned away at
// each layer; the services still run a GRPO step end to end with their own identities.
import assert from "node:assert/strict";
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { setTimeout as sleep } from "node:timers/promises";
import { Client } from "@grpc/grpc-js";
import { jetstreamManager } from "@nats-io/jetstream";
import { Kvm } from "@nats-io/kv";
import { Objm } from "@nats-io/obj";
import { connect } from "@nats-io/transport-node";
import {
  type ClientSecurity,
  channelCredentials,
  checkHealth,
  createClient,
  findNatsServer,
  GrpcError,
  type ServiceDefinition,
} from "@temper/kit";
import { learner, orchestrator, rollout, scheduler } from "@temper/proto";
import type { Stack } from "@temper/stack";
import { additionProblems, Status, startTestStack, testRunSpec, tinyPolicyModel } from "./src/index.ts";

/** One application RPC per service that any authenticated caller may make (a read). */
const READS: Record<string, string> = {
  "reward-correctness": "/temper.reward.v1.RewardService/Info",
  "reward-perplexity": "/temper.reward.v1.RewardService/Info",
  "reward-reasoning": "/temper.reward.v1.RewardService/Info",
  "reward-consistency": "/temper.reward.v1.RewardService/Info",
  scheduler: "/temper.scheduler.v1.SchedulerService/GetState",
  rollout: "/temper.rollout.v1.RolloutService/GetModelInfo",
  learner: "/temper.learner.v1.LearnerService/GetState",
  orchestrator: "/temper.orchestrator.v1.OrchestratorService/ListRuns",
};

/** The status of a call with an empty request (credentials are checked before the request is read). */
async function rawStatus(address: string, path: string, security: ClientSecurity): Promise<Status> {
  const client = new Client(address, channelCredentials(security));
  try {
    return await new Promise<Status>((resolve) =>
      client.makeUnaryRequest(
        path,
        (b: Buffer) => b,
        (b: Buffer) => b,
        Buffer.alloc(0),
        { deadline: Date.now() + 5000 },
        (err) => resolve(err ? GrpcError.from(err).code : Status.OK),
      ),
    );
  } finally {
    client.close();
  }
}

async function statusOf(p: Promise<unknown>): Promise<Status> {
  try {
    await p;
    return Status.OK;
  } catch (err) {
    return GrpcError.from(err).code;
  }
}

describe("a secure stack", { skip: !findNatsServer() && "nats-server not installed" }, () => {
  const root = mkdtempSync(join(tmpdir(), "temper-secure-"));
  const modelDir = join(root, "model");
  let stack: Stack;
  let dir: string;
  const closers: { $close(): void }[] = [];
  const file = (name: string) => readFileSync(join(dir, name));
  /** mutual TLS as `name` (a certificate the stack's CA signed), optionally with a bearer token. */
  const as = (name: string, token?: string): ClientSecurity => ({
    tls: { ca: file("ca.crt"), cert: file(`${name}.crt`), key: file(`${name}.key`) },
    token,
  });
  const client = <D extends ServiceDefinition>(definition: D, service: string, security: ClientSecurity) => {
    const c = createClient(definition, stack.address(service), {
      security,
      defaults: { timeoutMs: 30_000, attempts: 1 },
    });
    closers.push(c);
    return c;
  };
  const runConfig = (runId: string, sources: Record<string, string> = {}, sourceTimeoutMs = 0) => ({
    config: {
      runId,
      structure: { kind: { $case: "hard" as const, value: {} } },
      sources,
      advantageScale: 0,
      failurePolicy: 0,
      control: 0,
      controlSeed: 0,
      sourceTimeoutMs,
    },
  });

  before(async () => {
    tinyPolicyModel(modelDir);
    writeFileSync(join(root, "train.jsonl"), additionProblems(8, 1));
    stack = await startTestStack({
      dataDir: join(root, "stack"),
      model: modelDir,
      secure: true,
    });
    dir = stack.security!.secrets.dir;
  });
  after(async () => {
    for (const c of closers) c.$close();
    await stack?.stop();
    rmSync(root, { recursive: true, force: true });
  });

  it("TLS: a plaintext caller reaches no service", async () => {
    for (const s of stack.services)
      await assert.rejects(checkHealth(stack.address(s.name), "", 3000, {}), (e: GrpcError) => {
        assert.equal(e.code, Status.UNAVAILABLE, s.name);
        return true;
      });
  });

  it("mutual TLS: a caller without a client certificate is UNAUTHENTICATED at every service", async () => {
    const noCert: ClientSecurity = { tls: { ca: file("ca.crt") } };
    for (const s of stack.services) {
      assert.equal(
        await rawStatus(stack.address(s.name), READS[s.name], noCert),
        Status.UNAUTHENTICATED,
        s.name,
      );
      // the operator's certificate gets past the transport (the empty request may then be refused)
      assert.notEqual(
        await rawStatus(stack.address(s.name), READS[s.name], as("operator")),
        Status.UNAUTHENTICATED,
      );
      // probes need no certificate
      assert.equal(await checkHealth(stack.address(s.name), "", 3000, noCert), "SERVING", s.name);
    }
  });

  it("credentials: mutating RPCs need an allowed identity or a valid token", async () => {
    // a certificate the CA signed, but not one allowed to change anything
    const stranger = as("reward-correctness");
    const sched = client(scheduler.SchedulerServiceService, "scheduler", stranger);
    await assert.rejects(sched.configure(runConfig("sec-a")), (e: GrpcError) => {
      assert.equal(e.code, Status.PERMISSION_DENIED);
      assert.match(e.message, /client certificate "reward-correctness" is not allowed/);
      return true;
    });
    assert.equal(
      (await sched.getState({ runId: "nope" }).catch((e) => e)).code,
      Status.NOT_FOUND,
      "reads pass",
    );
    const learn = client(learner.LearnerServiceService, "learner", stranger);
    assert.equal(await statusOf(learn.createRun({ runId: "sec-a" })), Status.PERMISSION_DENIED);
    const orch = client(orchestrator.OrchestratorServiceService, "orchestrator", stranger);
    assert.equal(await statusOf(orch.stopRun({ runId: "sec-a" })), Status.PERMISSION_DENIED);
    assert.equal(await statusOf(orch.startRun({})), Status.PERMISSION_DENIED);
    // a bad token is UNAUTHENTICATED; the operator's token lets the same certificate through
    const badToken = client(
      scheduler.SchedulerServiceService,
      "scheduler",
      as("reward-correctness", "x".repeat(43)),
    );
    assert.equal(await statusOf(badToken.configure(runConfig("sec-a"))), Status.UNAUTHENTICATED);
    const token = readFileSync(stack.security!.secrets.operator.token, "utf8").trim();
    const withToken = client(scheduler.SchedulerServiceService, "scheduler", as("reward-correctness", token));
    assert.ok((await withToken.configure(runConfig("sec-a"))).version > 0);
    // the operator's identity alone (no token) is allowed too
    const operator = client(scheduler.SchedulerServiceService, "scheduler", as("operator"));
    assert.ok((await operator.configure(runConfig("sec-b"))).version > 0);
  });

  it("Generate needs a credential, and one identity gets one call at a time (the orchestrator more)", {
    timeout: 120_000,
  }, async () => {
    const request = (n: number, tokens: number): rollout.GenerateRequest => ({
      prompts: Array.from({ length: n }, (_, i) => ({ id: `p${i}`, prompt: `${i}+1=?`, reference: "" })),
      numCompletions: 8,
      sampling: { temperature: 1, topK: 0, topP: 1, maxNewTokens: tokens, stop: [], seed: 1 },
      adapterVersion: "",
      chat: false,
      enableThinking: false,
      runId: "",
      step: 0,
      callTag: "",
    });
    const stranger = client(rollout.RolloutServiceService, "rollout", as("reward-correctness"));
    assert.equal(await statusOf(stranger.generate(request(1, 2))), Status.PERMISSION_DENIED);
    const operator = client(rollout.RolloutServiceService, "rollout", as("operator"));
    // a long call in flight; the same identity's second call is refused at once, not queued
    const abort = new AbortController();
    const long = statusOf(operator.generate(request(64, 256), { signal: abort.signal, timeoutMs: 60_000 }));
    await sleep(300);
    await assert.rejects(operator.generate(request(1, 2)), (e: GrpcError) => {
      assert.equal(e.code, Status.RESOURCE_EXHAUSTED);
      assert.match(
        e.message,
        /"operator" has 1 Generate call queued or running, at most 1 \(MAX_CALLS_PER_CALLER/,
      );
      return true;
    });
    abort.abort();
    assert.equal(await long, Status.CANCELLED);
    // once it has ended, the operator may call again
    for (let i = 0; ; i++) {
      const code = await statusOf(operator.generate(request(1, 2)));
      if (code === Status.OK) break;
      assert.ok(i < 50 && code === Status.RESOURCE_EXHAUSTED, `status ${Status[code]}`);
      await sleep(100);
    }
  });

  it("Configure: a stale version and an endpoint outside the allow-list fail", async () => {
    const operator = client(scheduler.SchedulerServiceService, "scheduler", stack.security!.client);
    const v1 = (await operator.configure(runConfig("sec-occ"))).version;
    // one user reconfigures with the version it read ...
    const v2 = (await operator.configure({ ...runConfig("sec-occ", {}, 2000), expectedVersion: v1 })).version;
    assert.ok(v2 > v1);
    // ... and another's write based on the same (now stale) version fails
    await assert.rejects(
      operator.configure({ ...runConfig("sec-occ", {}, 3000), expectedVersion: v1 }),
      (e: GrpcError) => e.code === Status.FAILED_PRECONDITION && /is at config version/.test(e.message),
    );
    await assert.rejects(
      operator.configure({ ...runConfig("sec-allow", { perplexity: "10.0.0.7:15052" }) }),
      (e: GrpcError) =>
        e.code === Status.INVALID_ARGUMENT &&
        e.message ===
          'config.sources["perplexity"]: endpoint "10.0.0.7:15052" is not admitted by SOURCE_ENDPOINT_ALLOW = loopback',
    );
  });

  it("NATS: no anonymous connection; only each bucket's owner writes it", async () => {
    await assert.rejects(connect({ servers: stack.natsUrl, reconnect: false }), /Authorization Violation/i);
    const password = (user: string) => readFileSync(join(dir, "nats", `${user}.password`), "utf8").trim();
    const rollout = await connect({ servers: stack.natsUrl, user: "rollout", pass: password("rollout") });
    const sched = await connect({ servers: stack.natsUrl, user: "scheduler", pass: password("scheduler") });
    try {
      const kv = await new Kvm(rollout).open("temper_scheduler");
      await assert.rejects(kv.put("sec-a.config", "forged"), /permission/i);
      // reads are allowed: the run configured above is there
      assert.equal((await kv.get("sec-a.config"))?.operation, "PUT");
      await assert.rejects(new Kvm(rollout).create("rogue_bucket"), /permission/i);
      const adapters = await new Objm(rollout).open("temper_adapters");
      await assert.rejects(adapters.putBlob({ name: "sec-a/forged" }, new Uint8Array(8)), /permission/i);
      // the owner writes its own bucket
      const own = await new Kvm(sched).open("temper_scheduler");
      assert.ok((await own.put("probe.security-test", "1")) > 0);
      // the events stream: only its owner (the orchestrator) may change it
      const jsm = await jetstreamManager(sched);
      const before = await jsm.streams.info("TEMPER");
      await assert.rejects(jsm.streams.update("TEMPER", { ...before.config, max_msgs: 1 }), /permission/i);
      const after = await jsm.streams.info("TEMPER");
      assert.equal(after.config.max_msgs, before.config.max_msgs);
      assert.ok(after.state.messages >= before.state.messages, "events were dropped");
      // a reward source uses no NATS and has no user
      assert.ok(!existsSync(join(dir, "nats", "reward-reasoning.password")));
      assert.doesNotMatch(readFileSync(join(dir, "nats", "nats.conf"), "utf8"), /"user": "reward-/);
      await assert.rejects(
        connect({
          servers: stack.natsUrl,
          user: "reward-reasoning",
          pass: password("scheduler"),
          reconnect: false,
        }),
        /Authorization Violation/i,
      );
    } finally {
      await rollout.close();
      await sched.close();
    }
  });

  it("a GRPO step runs end to end over mutual TLS with each service's own identity", {
    timeout: 120_000,
  }, async () => {
    const orch = client(orchestrator.OrchestratorServiceService, "orchestrator", stack.security!.client);
    const spec = testRunSpec(
      { model: modelDir, trainData: join(root, "train.jsonl"), name: "secure" },
      {
        steps: 2,
        promptsPerStep: 2,
        completionsPerPrompt: 2,
        sampling: { temperature: 1, topK: 0, topP: 1, maxNewTokens: 6, stop: [], seed: 0 },
      },
    );
    const runId = (await orch.startRun({ spec })).run!.runId;
    let final = orchestrator.RunStatus.RUN_STATUS_UNSPECIFIED;
    let error = "";
    for await (const ev of orch.watchRun({ runId, fromStep: 0 }, { timeoutMs: 110_000 })) {
      final = ev.status;
      error = ev.error;
    }
    assert.equal(final, orchestrator.RunStatus.RUN_STATUS_SUCCEEDED, error);
    const run = (await orch.getRun({ runId })).run!;
    assert.equal(run.stepsDone, 2);
  });
});
