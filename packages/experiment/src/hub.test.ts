// Hub references in experiment files: answered from the Hub cache when loading; pullHubRefs pulls
// what is missing first; a problem names the file, line and field.
import assert from "node:assert/strict";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, test } from "node:test";
import { gsm8kRepoFiles, LocalHub, tinyModelFiles } from "@temper/hub/testing";
import { loadComparison, pullHubRefs } from "./index.ts";

let hub: LocalHub;
let modelCommit: string;
let dataCommit: string;
const dir = mkdtempSync(join(tmpdir(), "temper-experiment-hub-"));
const saved = { ...process.env };

before(async () => {
  hub = await LocalHub.start();
  modelCommit = hub.commit("model", "temper-test/tiny", tinyModelFiles());
  dataCommit = hub.commit("dataset", "openai/gsm8k", gsm8kRepoFiles(6, 3));
  Object.assign(process.env, { HF_HOME: join(dir, "hf"), HF_ENDPOINT: hub.url, HF_HUB_OFFLINE: "" });
  delete process.env.HF_HUB_CACHE;
});
after(async () => {
  process.env = saved;
  await hub.close();
  rmSync(dir, { recursive: true, force: true });
});

const experiment = (model: string, train: string) => `name: h
model: ${model}
data:
  train: ${train}
  eval: hf://datasets/openai/gsm8k/main/test-00000-of-00001.parquet
steps: 1
prompts_per_step: 2
reward: { structure: hard }
optimizer: { learning_rate: 1.0e-3 }
`;

test("a model id and hf:// data: a cache miss names the line, pullHubRefs fills it, then they resolve", async () => {
  const file = join(dir, "exp.yaml");
  writeFileSync(
    file,
    experiment("temper-test/tiny", "hf://datasets/openai/gsm8k/main/train-00000-of-00001.parquet"),
  );
  assert.throws(
    () => loadComparison(file),
    /exp\.yaml:2: model: temper-test\/tiny is not in the Hub cache .*temper model pull temper-test\/tiny/,
  );
  await pullHubRefs(file);
  const [run] = loadComparison(file).runs;
  const hf = join(dir, "hf");
  assert.equal(run.resolved.model, join(hf, "hub", "models--temper-test--tiny", "snapshots", modelCommit));
  assert.equal(
    run.spec.trainData,
    join(hf, "temper", "datasets--openai--gsm8k", dataCommit, "main", "train-00000-of-00001.jsonl"),
  );
  assert.equal(
    run.spec.evalData,
    join(hf, "temper", "datasets--openai--gsm8k", dataCommit, "main", "test-00000-of-00001.jsonl"),
  );
});

test("Hub problems are the field's error, with its line", async () => {
  const file = join(dir, "bad.yaml");
  writeFileSync(
    file,
    experiment("temper-test/nowhere", "hf://datasets/openai/gsm8k/main/train-00000-of-00001.parquet"),
  );
  await assert.rejects(pullHubRefs(file), /bad\.yaml:2: model: model temper-test\/nowhere not found on http/);
  writeFileSync(file, experiment("temper-test/tiny", "hf://datasets/openai/gsm8k@v2/main/train.parquet"));
  await assert.rejects(
    pullHubRefs(file),
    /bad\.yaml:4: data\.train: dataset openai\/gsm8k@v2: revision "v2" not found/,
  );
  // offline, and a remote orchestrator's files: the value is kept as written
  const [run] = loadComparison(file, { checkFiles: false }).runs;
  assert.equal(run.spec.trainData, "hf://datasets/openai/gsm8k@v2/main/train.parquet");
});
