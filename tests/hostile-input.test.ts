// Hostile input at every service of a running stack. A 100 kB string in every string field of every
// request message, the fields found from the descriptor set and set one at a time in an otherwise
// valid request: each call ends within PROMPT_MS (5 s) with a status message of at most 1 kB (never INTERNAL),
// and a valid call on the same channel right after it succeeds. A FIFO as a data file, an export
// path through a symbolic link or too long to name: refused at once, with the field.
//
// Why the second call: a status message of more than ~72 kB cannot be sent as a gRPC trailer by
// Node's HTTP/2 stack. The call then never ends, and the connection it travelled on stops serving
// every later call until their deadlines: one StartRun with a 100,000-character target_modules (the
// learner echoed it) stalled the orchestrator's channel to the learner, and so every run, for 30 s.
import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import {
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  rmSync,
  symlinkSync,
  writeFileSync,
} from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import {
  clone,
  create,
  createFileRegistry,
  type DescField,
  type DescMessage,
  fromBinary,
  fromJson,
  type JsonValue,
  type Message,
  ScalarType,
  toBinary,
} from "@bufbuild/protobuf";
import { FileDescriptorSetSchema } from "@bufbuild/protobuf/wkt";
import { Client, credentials, type ServiceError } from "@grpc/grpc-js";
import { findNatsServer, STATUS_MESSAGE_LIMIT } from "@temper/kit";
import { descriptorSetPath, orchestrator } from "@temper/proto";
import type { Stack } from "@temper/stack";
import { additionProblems, startTestStack, testRunSpec, tinyPolicyModel } from "./src/index.ts";

const LONG = "x".repeat(100_000);
// Far above a loaded CI machine's slowest honest answer, far below the stall it guards against (a
// stalled call ends only at its deadline; the FIFO read never).
const PROMPT_MS = 5000;
const RUN = "fuzz";

/**
 * A valid request for each method (proto JSON), into which one long string goes: an empty request
 * would be refused for another field before the long one is looked at.
 */
function validRequests(modelDir: string, trainData: string): Record<string, JsonValue> {
  const spec = orchestrator.RunSpec.toJSON(
    testRunSpec({ model: modelDir, trainData }, { steps: 1, promptsPerStep: 1, completionsPerPrompt: 2 }),
  ) as { [k: string]: JsonValue };
  const group = {
    id: "g",
    prompt: "1+1=?",
    reference: "#### 2",
    completions: [{ id: "c", text: "2 #### 2" }],
  };
  const reward = { ...(spec.reward as { [k: string]: JsonValue }), runId: RUN };
  return {
    "RewardService/Score": { groups: [group] },
    "RewardService/Info": {},
    "SchedulerService/Configure": { config: reward },
    "SchedulerService/Score": { runId: RUN, step: "0", groups: [group] },
    "SchedulerService/GetState": { runId: RUN },
    "RolloutService/Generate": {
      prompts: [{ id: "p", prompt: "1+1=?", reference: "2" }],
      numCompletions: 1,
      sampling: { temperature: 1, maxNewTokens: 2 },
    },
    "RolloutService/GetModelInfo": {},
    "LearnerService/CreateRun": { runId: RUN, config: spec.training },
    "LearnerService/Train": { runId: RUN, step: "0" },
    "LearnerService/GetState": { runId: RUN },
    "LearnerService/SaveCheckpoint": { runId: RUN, directory: "out" },
    "OrchestratorService/StartRun": { spec },
    "OrchestratorService/GetRun": { runId: RUN },
    "OrchestratorService/WatchRun": { runId: RUN },
    "OrchestratorService/StopRun": { runId: RUN },
    "OrchestratorService/ResumeRun": { runId: RUN },
    "OrchestratorService/ListRuns": {},
  };
}

/** Which stack service serves each proto service. */
const SERVERS: Record<string, string[]> = {
  "temper.reward.v1.RewardService": [
    "reward-correctness",
    "reward-perplexity",
    "reward-reasoning",
    "reward-consistency",
  ],
  "temper.scheduler.v1.SchedulerService": ["scheduler"],
  "temper.rollout.v1.RolloutService": ["rollout"],
  "temper.learner.v1.LearnerService": ["learner"],
  "temper.orchestrator.v1.OrchestratorService": ["orchestrator"],
};

/** The paths (field chains) from a message to each of its string fields, nested, in lists and maps. */
function stringPaths(desc: DescMessage, depth = 0): DescField[][] {
  const out: DescField[][] = [];
  if (depth > 4) return out;
  for (const f of desc.fields) {
    const isString =
      (f.fieldKind === "scalar" || (f.fieldKind === "list" && f.listKind === "scalar")) &&
      f.scalar === ScalarType.STRING;
    if (isString || f.fieldKind === "map") out.push([f]);
    else if (f.fieldKind === "message" || (f.fieldKind === "list" && f.listKind === "message"))
      for (const sub of stringPaths(f.message, depth + 1)) out.push([f, ...sub]);
  }
  return out;
}

type Fields = Record<string, unknown>;

/** A copy of `base` with the string at `path` (the first list element, a map key) set to LONG. */
function withLong(desc: DescMessage, base: Message, path: DescField[]): Message {
  const root = clone(desc, base);
  let cur = root as unknown as Fields;
  path.forEach((f, i) => {
    const last = i === path.length - 1;
    const slot = (value: () => unknown): unknown => {
      // read or make the field's value, honouring oneofs
      if (f.oneof) {
        const o = cur[f.oneof.localName] as { case?: string; value?: unknown };
        if (o.case !== f.localName) cur[f.oneof.localName] = { case: f.localName, value: value() };
        return (cur[f.oneof.localName] as { value: unknown }).value;
      }
      if (cur[f.localName] === undefined) cur[f.localName] = value();
      return cur[f.localName];
    };
    if (f.fieldKind === "map") {
      const map = cur[f.localName] as Fields;
      map[LONG] = f.mapKind === "message" ? create(f.message) : f.scalar === ScalarType.STRING ? LONG : 0;
    } else if (f.fieldKind === "list") {
      const list = cur[f.localName] as unknown[];
      if (last) list.splice(0, 1, LONG);
      else {
        if (list.length === 0 && f.listKind === "message") list.push(create(f.message));
        cur = list[0] as Fields;
      }
    } else if (last) {
      if (f.oneof) cur[f.oneof.localName] = { case: f.localName, value: LONG };
      else cur[f.localName] = LONG;
    } else if (f.fieldKind === "message") cur = slot(() => create(f.message)) as Fields;
  });
  return root;
}

interface Outcome {
  code: number;
  details: string;
}

/** One call with raw bytes: its status (OK or the error's), unary or server-streaming. */
function rawCall(
  client: Client,
  path: string,
  body: Buffer,
  streaming: boolean,
  timeoutMs: number,
): Promise<Outcome> {
  const deadline = Date.now() + timeoutMs;
  const id = (b: Buffer) => b;
  return new Promise((resolve) => {
    if (!streaming) {
      client.makeUnaryRequest(path, id, id, body, { deadline }, (err) =>
        resolve({ code: err?.code ?? 0, details: err?.details ?? "" }),
      );
      return;
    }
    const call = client.makeServerStreamRequest(path, id, id, body, { deadline });
    call.on("data", () => call.cancel()); // a watch that starts is an accepted call: stop it
    call.on("error", (err: ServiceError) => resolve({ code: err.code, details: err.details }));
    call.on("end", () => resolve({ code: 0, details: "" }));
  });
}

describe("hostile input at every service", {
  skip: !findNatsServer() && "nats-server not installed",
}, () => {
  const root = mkdtempSync(join(tmpdir(), "temper-long-strings-"));
  let stack: Stack;
  const modelDir = join(root, "model");
  const registry = createFileRegistry(fromBinary(FileDescriptorSetSchema, readFileSync(descriptorSetPath)));

  before(async () => {
    writeFileSync(join(root, "train.jsonl"), additionProblems(8, 1));
    stack = await startTestStack({
      dataDir: join(root, "stack"),
      model: tinyPolicyModel(modelDir),
    });
  });

  after(async () => {
    await stack?.stop();
    rmSync(root, { recursive: true, force: true });
  });

  /** A unary call of `method` on `server` with the proto-JSON request `json`. */
  async function call(
    serviceName: string,
    server: string,
    method: string,
    json: JsonValue,
    timeoutMs: number,
  ) {
    const service = registry.getService(serviceName)!;
    const desc = service.methods.find((m) => m.name === method)!;
    const client = new Client(stack.address(server), credentials.createInsecure());
    try {
      const body = Buffer.from(toBinary(desc.input, fromJson(desc.input, json)));
      return await rawCall(client, `/${serviceName}/${method}`, body, false, timeoutMs);
    } finally {
      client.close();
    }
  }

  it("gets a short status within 5 s from every RPC, and the channel serves the next call", {
    timeout: 600_000,
  }, async () => {
    const healthBody = Buffer.alloc(0); // HealthCheckRequest{service: ""}: the whole server
    const valid = validRequests(modelDir, join(root, "train.jsonl"));
    // the run the per-run methods name
    const scheduler = "temper.scheduler.v1.SchedulerService";
    const learner = "temper.learner.v1.LearnerService";
    const created = [
      await call(scheduler, "scheduler", "Configure", valid["SchedulerService/Configure"], 30_000),
      await call(learner, "learner", "CreateRun", valid["LearnerService/CreateRun"], 30_000),
    ];
    assert.deepEqual(created, [
      { code: 0, details: "" },
      { code: 0, details: "" },
    ]);
    let calls = 0;
    const problems: string[] = [];
    for (const [serviceName, servers] of Object.entries(SERVERS)) {
      const service = registry.getService(serviceName);
      assert.ok(service, `${serviceName} is not in the descriptor set`);
      for (const server of servers) {
        const client = new Client(stack.address(server), credentials.createInsecure());
        try {
          const check = () =>
            rawCall(client, "/grpc.health.v1.Health/Check", healthBody, false, 5000).then((o) => o.code);
          assert.equal(await check(), 0, `${server}: health before`);
          for (const method of service.methods) {
            const key = `${serviceName.split(".").pop()}/${method.name}`;
            const json = valid[key];
            assert.ok(json !== undefined, `no valid request for ${key}`);
            const base = fromJson(method.input, json);
            const path = `/${serviceName}/${method.name}`;
            const streaming = method.methodKind === "server_streaming";
            for (const fields of stringPaths(method.input)) {
              const body = Buffer.from(toBinary(method.input, withLong(method.input, base, fields)));
              const got = await rawCall(client, path, body, streaming, PROMPT_MS);
              calls++;
              const where = `${server} ${method.name} ${fields.map((f) => f.name).join(".")}`;
              if (process.env.SHOW) console.log(where, got.code, got.details.slice(0, 120));
              if (got.code === 4) problems.push(`${where}: no status within ${PROMPT_MS} ms`);
              if (got.code === 13 || got.code === 2) problems.push(`${where}: ${got.details}`);
              if (Buffer.byteLength(got.details) > STATUS_MESSAGE_LIMIT)
                problems.push(`${where}: a ${Buffer.byteLength(got.details)}-byte message`);
              if ((await check()) !== 0) problems.push(`${where}: the next call on the channel failed`);
            }
          }
        } finally {
          client.close();
        }
      }
    }
    assert.ok(calls > 60, `only ${calls} calls made: the descriptor walk found too few fields`);
    assert.deepEqual(problems, []);
  });

  it("a FIFO as train_data is refused within 5 s, and the orchestrator answers meanwhile", async () => {
    const fifo = join(root, "train.fifo");
    execFileSync("mkfifo", [fifo]);
    const spec = orchestrator.RunSpec.toJSON(
      testRunSpec({ model: modelDir, trainData: fifo }, { steps: 1, promptsPerStep: 1 }),
    ) as JsonValue;
    const got = await call(
      "temper.orchestrator.v1.OrchestratorService",
      "orchestrator",
      "StartRun",
      { spec },
      PROMPT_MS,
    );
    assert.equal(got.code, 3, got.details);
    assert.match(got.details, /spec\.train_data: .*train\.fifo: not a regular file/);
    const listed = await call(
      "temper.orchestrator.v1.OrchestratorService",
      "orchestrator",
      "ListRuns",
      {},
      PROMPT_MS,
    );
    assert.equal(listed.code, 0, listed.details);
  });

  it("SaveCheckpoint refuses an export path through a symbolic link, and one too long to name", async () => {
    const outside = mkdtempSync(join(tmpdir(), "temper-outside-"));
    try {
      const exports = join(root, "stack", "exports");
      mkdirSync(exports, { recursive: true });
      symlinkSync(outside, join(exports, "link"));
      const save = (directory: string) =>
        call(
          "temper.learner.v1.LearnerService",
          "learner",
          "SaveCheckpoint",
          { runId: RUN, directory },
          5000,
        );
      const through = await save("link/out");
      assert.equal(through.code, 3, through.details);
      assert.match(through.details, /directory: "link" is a symbolic link/);
      const itself = await save("link");
      assert.equal(itself.code, 3, itself.details);
      assert.deepEqual(readdirSync(outside), [], "nothing was written through the link");
      const long = await save("d".repeat(300));
      assert.equal(long.code, 3, long.details);
      assert.match(long.details, /components of at most 255 bytes/);
    } finally {
      rmSync(outside, { recursive: true, force: true });
    }
  });
});
