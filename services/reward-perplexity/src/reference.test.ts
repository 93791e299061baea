// Reference-model mode end to end on real service processes with a tiny model: perplexity equals
// exp(−mean NLL) from `temper model logprobs` on the same tokens (float64 1e-9, float32 1e-4), ABSENT
// without tokens, the mode switch per request and by env, bad input named, the service still up.
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { checkHealth, createClient, isGrpcError, type PromiseClient, Status } from "@temper/kit";
import { common, reward } from "@temper/proto";
import { initModel, presetConfig, tokenizerIds } from "@temper/qwen3";
import { groupsFromProto, paramsFromProto, scoreToProto } from "@temper/reward-server";
import { perplexitySource } from "@temper/rewards";
import { runTemper } from "../../../packages/qwen3/src/testing/cli.ts";
import { serviceEntry, startService, type TestService } from "../../../tests/src/processes.ts";
import { planBatches } from "./reference.ts";

const root = mkdtempSync(join(tmpdir(), "reward-perplexity-ref-"));
const modelDir = join(root, "tiny");
const { LOGPROBS, REFERENCE, UNSPECIFIED } = {
  LOGPROBS: reward.PerplexityMode.PERPLEXITY_MODE_LOGPROBS,
  REFERENCE: reward.PerplexityMode.PERPLEXITY_MODE_REFERENCE,
  UNSPECIFIED: reward.PerplexityMode.PERPLEXITY_MODE_UNSPECIFIED,
};
const STOP = common.FinishReason.FINISH_REASON_STOP;

// Two prompts; completions of different lengths so batches pad (REFERENCE_BATCH_ROWS=2 below).
const PROMPT_A = [1, 40, 41, 42, 7];
const PROMPT_B = [3, 70];
const COMPLETIONS_A = [[99, 12, 50, 51], [33, 200, 45, 46, 47, 48, 49, 10], [5]];
const COMPLETIONS_B = [[9, 9, 120, 121, 122]];
const SUPPLIED = [-0.25, -1.5, -0.75, -0.1]; // logprobs the client sent for completion a0

function completion(id: string, tokenIds: number[], logprobs: number[] = []): common.Completion {
  return { id, text: `#### ${id}`, tokenIds, logprobs, finishReason: STOP };
}

function batchGroups(): common.Group[] {
  return [
    {
      id: "A",
      prompt: "p",
      reference: "#### 1",
      promptTokenIds: PROMPT_A,
      completions: [
        completion("a0", COMPLETIONS_A[0], SUPPLIED),
        completion("a1", COMPLETIONS_A[1]),
        completion("a2", COMPLETIONS_A[2]),
        completion("a3", []), // no tokens → ABSENT
      ],
    },
    {
      id: "B",
      prompt: "p",
      reference: "2",
      promptTokenIds: PROMPT_B,
      completions: [completion("b0", COMPLETIONS_B[0])],
    },
    {
      id: "C",
      prompt: "p",
      reference: "3",
      promptTokenIds: [], // no prompt tokens → ABSENT
      completions: [completion("c0", [4, 5, 6], [-0.5, -0.5, -0.5])],
    },
  ];
}

/** log p(completion token | prefix) from `temper model logprobs` on prompt + completion (float64). */
function cliLogprobs(prompt: number[], comp: number[]): number[] {
  const ids = [...prompt, ...comp].join(",");
  const r = runTemper("model", "logprobs", "--model", modelDir, "--ids", ids, "--json", "--dtype", "float64");
  assert.equal(r.code, 0, r.stderr);
  const lp: number[] = JSON.parse(r.stdout).logprobs;
  return lp.slice(lp.length - comp.length);
}

/** exp(−NLL/τ) with NLL the mean of −logprobs. */
function perplexity(logprobs: number[], tau = 1): number {
  const nll = -logprobs.reduce((a, b) => a + b, 0) / logprobs.length;
  return Math.exp(-nll / tau);
}

type Client = PromiseClient<typeof reward.RewardServiceService>;

function clientOf(svc: TestService): Client {
  return createClient(reward.RewardServiceService, svc.address, { defaults: { timeoutMs: 60_000 } });
}

function score(client: Client, groups: common.Group[], params: Partial<reward.ScoreParams> = {}) {
  return client.score({ groups, params: { perplexityMode: UNSPECIFIED, ...params } });
}

function value(res: reward.ScoreResponse, id: string): reward.ComponentValue {
  const r = res.results.find((x) => x.completionId === id);
  assert.ok(r, `no result for ${id}`);
  return r.components.perplexity;
}

function assertClose(got: reward.ComponentValue, want: number, tol: number, what: string): void {
  assert.equal(got.status, reward.ComponentStatus.COMPONENT_STATUS_OK, `${what}: ${got.detail}`);
  assert.ok(Math.abs((got.value as number) - want) <= tol, `${what}: ${got.value} vs ${want}`);
}

/** What the logprobs mode (perplexitySource in-process) gives for the same request, as decoded off the wire. */
function logprobsMode(groups: common.Group[], params: reward.ScoreParams): reward.CompletionScore[] {
  const results = perplexitySource.score(groupsFromProto(groups), paramsFromProto(params)).map(scoreToProto);
  return reward.ScoreResponse.decode(reward.ScoreResponse.encode({ results }).finish()).results;
}

const ABSENT = reward.ComponentStatus.COMPONENT_STATUS_ABSENT;

describe("reward-perplexity reference mode", () => {
  let cli: Map<string, number[]>;
  let want64: Map<string, number>;
  let f64: TestService;
  let f32: TestService;
  let bare: TestService;
  const clients: Client[] = [];

  before(async () => {
    initModel({
      config: presetConfig("tiny", tokenizerIds("bytes")),
      tokenizer: "bytes",
      out: modelDir,
      seed: 5,
      dtype: "f32",
    });
    const env = {
      PORT: "0",
      REFERENCE_MODEL_DIR: modelDir,
      REFERENCE_THREADS: "1",
      REFERENCE_BATCH_ROWS: "2",
    };
    const readyTimeoutMs = 120_000; // a loaded 2-core machine starts three processes slowly
    const services = Promise.all([
      // default mode: reference (a model is configured)
      startService("reward-perplexity", { env: { ...env, REFERENCE_DTYPE: "float64" }, readyTimeoutMs }),
      // the model is there but the default stays logprobs
      startService("reward-perplexity", {
        env: { ...env, REFERENCE_DTYPE: "float32", PERPLEXITY_MODE: "logprobs" },
        readyTimeoutMs,
      }),
      startService("reward-perplexity", { env: { PORT: "0" }, readyTimeoutMs }),
    ]);
    // the CLI runs while the services start
    const pairs: [string, number[], number[]][] = [
      ...COMPLETIONS_A.map((c, i): [string, number[], number[]] => [`a${i}`, PROMPT_A, c]),
      ["b0", PROMPT_B, COMPLETIONS_B[0]],
    ];
    cli = new Map(pairs.map(([id, p, c]) => [id, cliLogprobs(p, c)]));
    want64 = new Map([...cli].map(([id, lp]) => [id, perplexity(lp)]));
    [f64, f32, bare] = await services;
  });

  after(async () => {
    for (const c of clients) c.$close();
    await Promise.all([f64?.stop(), f32?.stop(), bare?.stop()]);
    rmSync(root, { recursive: true, force: true });
  });

  const connect = (svc: TestService) => {
    const c = clientOf(svc);
    clients.push(c);
    return c;
  };

  it("float64: exp(−mean NLL | prompt) equals temper model logprobs within 1e-9; ABSENT without tokens", async () => {
    const client = connect(f64);
    const info = await client.info({});
    assert.equal(info.name, "perplexity");
    assert.deepEqual(info.components, [...perplexitySource.components]);
    assert.match(info.version, /\+reference\.ref-float64$/);

    const res = await score(client, batchGroups());
    assert.deepEqual(
      res.results.map((r) => r.completionId),
      ["a0", "a1", "a2", "a3", "b0", "c0"],
    );
    for (const [id, want] of want64) assertClose(value(res, id), want, 1e-9, id);
    // the supplied logprobs of a0 are not what reference mode reads
    assert.notEqual(value(res, "a0").value, Math.exp(SUPPLIED.reduce((a, b) => a + b) / SUPPLIED.length));
    for (const id of ["a3", "c0"]) {
      assert.equal(value(res, id).status, ABSENT, id);
      assert.equal(value(res, id).value, undefined);
    }
    assert.match(value(res, "a3").detail, /token_ids/);
    assert.match(value(res, "c0").detail, /prompt_token_ids/);

    // the same request with REFERENCE explicitly, and τ = 0.5
    const tau = await score(client, batchGroups(), { perplexityMode: REFERENCE, perplexityTau: 0.5 });
    assertClose(value(tau, "a1"), perplexity(cli.get("a1")!, 0.5), 1e-9, "a1 τ=0.5");

    // a request whose completions all lack tokens never touches the model
    const none = await score(client, [{ ...batchGroups()[2] }]);
    assert.equal(value(none, "c0").status, ABSENT);
  });

  it("float32: within 1e-4 of temper model logprobs", async () => {
    const client = connect(f32);
    assert.match((await client.info({})).version, /\+logprobs\.ref-float32$/);
    const res = await score(client, batchGroups(), { perplexityMode: REFERENCE });
    for (const [id, want] of want64) assertClose(value(res, id), want, 1e-4, id);
    assert.equal(value(res, "a3").status, ABSENT);
  });

  it("logprobs mode per request and by default behaves exactly as before", async () => {
    const groups = batchGroups();
    for (const [svc, mode] of [
      [f64, LOGPROBS],
      [f32, UNSPECIFIED],
      [f32, LOGPROBS],
      [bare, UNSPECIFIED],
      [bare, LOGPROBS],
    ] as const) {
      const res = await score(connect(svc), groups, { perplexityMode: mode, perplexityTau: 0.7 });
      assert.deepEqual(res.results, logprobsMode(groups, { perplexityMode: mode, perplexityTau: 0.7 }));
    }
    const res = await score(connect(bare), groups);
    assertClose(value(res, "a0"), Math.exp(SUPPLIED.reduce((a, b) => a + b) / SUPPLIED.length), 1e-15, "a0");
    assert.equal(value(res, "a1").status, ABSENT); // no logprobs supplied
    assert.equal((await connect(bare).info({})).version, perplexitySource.version);
  });

  it("reference mode without a model is FAILED_PRECONDITION naming params.perplexity_mode", async () => {
    await assert.rejects(score(connect(bare), batchGroups(), { perplexityMode: REFERENCE }), (err: Error) => {
      assert.ok(isGrpcError(err, Status.FAILED_PRECONDITION), String(err));
      assert.match(err.message, /params\.perplexity_mode/);
      return true;
    });
  });

  it("bad input is INVALID_ARGUMENT naming the field, and the service keeps serving", async () => {
    const client = connect(f64);
    const cases: [(gs: common.Group[]) => void, RegExp][] = [
      [(gs) => (gs[0].completions[1].tokenIds = [1, 2, 999_999]), /groups\[0\]\.completions\[1\]\.token_ids/],
      [(gs) => (gs[1].completions[0].tokenIds = [-1]), /groups\[1\]\.completions\[0\]\.token_ids/],
      [(gs) => (gs[1].promptTokenIds = [3, 320_000]), /groups\[1\]\.prompt_token_ids/],
      [
        (gs) => (gs[0].completions[2].tokenIds = new Array(2048).fill(7)),
        /groups\[0\]\.completions\[2\]\.token_ids: .*max_position_embeddings/,
      ],
    ];
    for (const [mutate, field] of cases) {
      const gs = batchGroups();
      mutate(gs);
      await assert.rejects(score(client, gs), (err: Error) => {
        assert.ok(isGrpcError(err, Status.INVALID_ARGUMENT), String(err));
        assert.match(err.message, field);
        return true;
      });
    }
    await assert.rejects(
      score(client, batchGroups(), { perplexityMode: 7 as reward.PerplexityMode }),
      (err: Error) =>
        isGrpcError(err, Status.INVALID_ARGUMENT) && /params\.perplexity_mode/.test(err.message),
    );
    // logprobs mode keeps its own checks and ignores the vocabulary
    const gs = batchGroups();
    gs[0].completions[1].tokenIds = [999_999];
    await score(client, gs, { perplexityMode: LOGPROBS });

    assert.equal(await checkHealth(f64.address), "SERVING");
    const res = await score(client, batchGroups());
    assertClose(value(res, "b0"), want64.get("b0")!, 1e-9, "b0 after bad input");
  });

  it("runs off the event loop: Info and health answer during a long Score; a deadline cancels it", async () => {
    const client = connect(f64);
    const long: common.Group[] = [
      {
        id: "L",
        prompt: "p",
        reference: "1",
        promptTokenIds: new Array(100).fill(11),
        completions: Array.from({ length: 12 }, (_, j) => completion(`l${j}`, new Array(500).fill(20 + j))),
      },
    ];
    let done = false;
    const started = Date.now();
    const call = score(client, long).then((r) => {
      done = true;
      return r;
    });
    await new Promise((r) => setTimeout(r, 50));
    assert.equal((await client.info({}, { timeoutMs: 2000 })).name, "perplexity");
    assert.equal(await checkHealth(f64.address, "", 2000), "SERVING");
    assert.ok(!done, "Info and health answered only after the long Score");
    const res = await call;
    const fullMs = Date.now() - started;
    assert.equal(res.results.length, 12);
    for (const r of res.results)
      assert.equal(r.components.perplexity.status, reward.ComponentStatus.COMPONENT_STATUS_OK);

    // The same request with a short deadline: the worker stops between engine runs, so the next
    // request does not wait for the abandoned one to finish.
    await assert.rejects(
      client.score({ groups: long, params: { perplexityMode: UNSPECIFIED } }, { timeoutMs: 200 }),
      (err: Error) => isGrpcError(err, Status.DEADLINE_EXCEEDED),
    );
    const t0 = Date.now();
    const small = await score(client, batchGroups());
    const smallMs = Date.now() - t0;
    assertClose(value(small, "b0"), want64.get("b0")!, 1e-9, "b0 after a cancelled call");
    assert.ok(smallMs < fullMs * 0.75, `next request took ${smallMs} ms; the full long one ${fullMs} ms`);
  });

  it("a bad reference configuration exits 2 with one line naming the variable", () => {
    const run = (env: Record<string, string>) =>
      spawnSync(process.execPath, ["--import", "tsx", serviceEntry("reward-perplexity")], {
        env: { ...process.env, PORT: "0", ...env },
        encoding: "utf8",
        timeout: 30_000,
      });
    for (const [env, variable] of [
      [{ PERPLEXITY_MODE: "reference" }, /PERPLEXITY_MODE=reference needs REFERENCE_MODEL_DIR/],
      [{ REFERENCE_MODEL_DIR: join(root, "nowhere") }, /REFERENCE_MODEL_DIR="[^"]*nowhere"/],
      [{ REFERENCE_MODEL_DIR: modelDir, REFERENCE_DTYPE: "float16" }, /REFERENCE_DTYPE="float16"/],
    ] as const) {
      const r = run(env);
      assert.equal(r.status, 2, `${JSON.stringify(env)}: ${r.stderr}`);
      assert.match(r.stderr, variable);
      assert.equal(r.stderr.trim().split("\n").length, 1, r.stderr);
    }
  });
});

describe("planBatches", () => {
  it("bounds rows and padded tokens, longest first, every sequence once", () => {
    const lengths = [5, 30, 7, 7, 100, 2, 31];
    const batches = planBatches(lengths, { maxRows: 2, maxTokens: 64 });
    assert.deepEqual(batches, [[4], [6, 1], [2, 3], [0, 5]]);
    assert.deepEqual(planBatches(lengths, { maxRows: 8, maxTokens: 1000 }), [[4, 6, 1, 2, 3, 0, 5]]);
    for (const b of planBatches(lengths, { maxRows: 3, maxTokens: 40 })) {
      assert.ok(b.length <= 3);
      assert.ok(b.length === 1 || b.length * lengths[b[0]] <= 40);
    }
    assert.deepEqual(planBatches([], { maxRows: 2, maxTokens: 10 }), []);
  });
});
