// From a fresh Hub cache to a run, the way a user starts: `temper model pull` of a model by id and
// `temper run` of an experiment naming that model by id and its data by hf:// URL, with HF_ENDPOINT
// at a local Hub (@temper/hub/testing) serving a tiny model (temper model init) and a tiny GSM8K
// parquet. Then offline (HF_HUB_OFFLINE=1): the cache alone answers.
import assert from "node:assert/strict";
import { execFile } from "node:child_process";
import { mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, test } from "node:test";
import { promisify } from "node:util";
import { gsm8kRepoFiles, LocalHub, tinyModelFiles } from "@temper/hub/testing";
import { findNatsServer } from "@temper/kit";
import { freeStackOffset, repoRoot } from "./src/index.ts";

const run = promisify(execFile);
const bin = join(repoRoot, "tools", "bin", "temper.mjs");
let hub: LocalHub;
let modelCommit: string;
let dataCommit: string;
const dir = mkdtempSync(join(tmpdir(), "temper-hub-run-"));

before(async () => {
  hub = await LocalHub.start();
  modelCommit = hub.commit("model", "temper-test/tiny", tinyModelFiles());
  dataCommit = hub.commit("dataset", "openai/gsm8k", gsm8kRepoFiles(8, 4));
});
after(async () => {
  await hub.close();
  rmSync(dir, { recursive: true, force: true });
});

function temper(args: string[], env: Record<string, string> = {}) {
  return run(process.execPath, [bin, ...args], {
    cwd: dir,
    env: { ...process.env, HF_HOME: join(dir, "hf"), HF_ENDPOINT: hub.url, HF_HUB_OFFLINE: "", ...env },
    timeout: 240_000,
    maxBuffer: 1 << 24,
  });
}

test("temper model pull, then temper run of an experiment naming the model by id and its data by hf://", {
  skip: !findNatsServer() && "nats-server not installed",
  timeout: 300_000,
}, async () => {
  const pulled = await temper(["model", "pull", "temper-test/tiny"]);
  const snapshot = join(dir, "hf", "hub", "models--temper-test--tiny", "snapshots", modelCommit);
  assert.equal(pulled.stdout, `${snapshot}\n`);
  assert.match(pulled.stderr, /pull temper-test\/tiny: .* \(100%\)/); // plain progress lines off a TTY
  assert.ok(!/Downloading/.test(pulled.stdout + pulled.stderr));

  const data = `hf://datasets/openai/gsm8k@${dataCommit}/main`;
  writeFileSync(
    join(dir, "exp.yaml"),
    `name: hub
model: temper-test/tiny
data:
  train: ${data}/train-00000-of-00001.parquet
  eval: ${data}/test-00000-of-00001.parquet
steps: 1
prompts_per_step: 2
completions_per_prompt: 2
sampling: { max_new_tokens: 4 }
reward: { structure: hard }
optimizer: { learning_rate: 1.0e-3 }
eval: { every: 1, size: 2, baseline: false }
`,
  );
  const offset = String(await freeStackOffset());
  const stack = ["--data-dir", join(dir, "stack"), "--port-offset", offset, "--no-report"];
  const served = hub.bytesServed;
  await temper(["run", "exp.yaml", ...stack]);
  assert.ok(hub.bytesServed > served, "the data was pulled on first use");
  const runs = readdirSync(join(dir, "stack", "runs"));
  assert.equal(runs.length, 1);
  const spec = readFileSync(join(dir, "stack", "runs", runs[0], "spec.yaml"), "utf8");
  assert.match(spec, new RegExp(`model: ${snapshot}`));
  assert.match(
    spec,
    new RegExp(
      `model_source: \\{ hub: temper-test/tiny, commit: ${modelCommit} \\}|hub: temper-test/tiny\\n\\s+commit: ${modelCommit}`,
    ),
  );
  assert.match(spec, /model_hash: [0-9a-f]{64}/);
  assert.match(
    spec,
    new RegExp(
      `data_source:\\s+hub: openai/gsm8k\\s+commit: ${dataCommit}\\s+file: main/train-00000-of-00001.jsonl`,
    ),
  );
  const metrics = readFileSync(join(dir, "stack", "runs", runs[0], "metrics.jsonl"), "utf8");
  assert.equal(metrics.trim().split("\n").length, 1, "one step ran");

  // offline, the cache alone answers the same ids (no request to the Hub)
  const before = hub.requests.length;
  const offline = await temper(["model", "pull", "temper-test/tiny"], { HF_HUB_OFFLINE: "1" });
  assert.equal(offline.stdout, `${snapshot}\n`);
  const gsm8k = await temper(["data", "pull", "gsm8k", "--revision", dataCommit], { HF_HUB_OFFLINE: "1" });
  assert.match(gsm8k.stdout, /^test: .*datasets--openai--gsm8k.*\(4 problems/m);
  assert.match(gsm8k.stdout, /^train: .*\(8 problems/m);
  assert.equal(hub.requests.length, before);
});
