// GSM8K from a Hub dataset's parquet files into Temper's jsonl, beside the cache, not in it.
import assert from "node:assert/strict";
import { mkdtempSync, readdirSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, test } from "node:test";
import { hubEnv } from "./env.ts";
import { hubJsonl, parquetToJsonl, pullGsm8k } from "./gsm8k.ts";
import { parseHfUrl } from "./ids.ts";
import { gsm8kParquet, gsm8kRepoFiles, gsm8kRows, LocalHub } from "./testing/index.ts";

let hub: LocalHub;
let commit: string;
const root = mkdtempSync(join(tmpdir(), "temper-hub-gsm8k-"));
before(async () => {
  hub = await LocalHub.start();
  commit = hub.commit("dataset", "openai/gsm8k", gsm8kRepoFiles(12, 4));
});
after(async () => {
  await hub.close();
  rmSync(root, { recursive: true, force: true });
});

test("parquet rows (hyparquet-writer's file, read by hyparquet) become GSM8K jsonl, unicode intact", async () => {
  const rows = [...gsm8kRows(2), { question: "Zoë has 3 €…", answer: "3\n#### 3" }];
  const { text, rows: n } = await parquetToJsonl(gsm8kParquet(rows), "x.parquet");
  assert.equal(n, 3);
  assert.deepEqual(
    text
      .trimEnd()
      .split("\n")
      .map((l) => JSON.parse(l)),
    rows,
  );
  await assert.rejects(
    parquetToJsonl(new TextEncoder().encode("not parquet"), "bad.parquet"),
    /^HubError: bad\.parquet: not a GSM8K parquet file/,
  );
});

test("temper data pull gsm8k: main's train and test, converted beside the cache", async () => {
  const home = join(root, "home");
  const env = hubEnv({ HF_HOME: home, HF_ENDPOINT: hub.url });
  const r = await pullGsm8k("main", { env });
  assert.equal(r.commit, commit);
  assert.deepEqual(
    r.splits.map((s) => [s.split, s.rows]),
    [
      ["test", 4],
      ["train", 12],
    ],
  );
  for (const s of r.splits) {
    assert.ok(s.jsonl.startsWith(join(home, "temper", "datasets--openai--gsm8k", commit)), s.jsonl);
    assert.ok(!s.jsonl.startsWith(env.cacheDir), "derived files stay out of the Hub cache");
  }
  const snapshot = join(env.cacheDir, "datasets--openai--gsm8k", "snapshots", commit);
  assert.deepEqual(readdirSync(join(snapshot, "main")).sort(), [
    "test-00000-of-00001.parquet",
    "train-00000-of-00001.parquet",
  ]);
  const train = readFileSync(r.splits[1].jsonl, "utf8")
    .trimEnd()
    .split("\n")
    .map((l) => JSON.parse(l));
  assert.deepEqual(train, gsm8kRows(12));
  // offline, the same files
  const again = await pullGsm8k("main", { env: { ...env, offline: true } });
  assert.deepEqual(again.splits, r.splits);
});

test("an hf:// URL names one file at a revision", async () => {
  const env = hubEnv({ HF_HOME: join(root, "home2"), HF_ENDPOINT: hub.url });
  const url = `hf://datasets/openai/gsm8k@${commit}/main/test-00000-of-00001.parquet`;
  const jsonl = await hubJsonl(parseHfUrl(url), { env });
  assert.equal(readFileSync(jsonl, "utf8").split("\n").filter(Boolean).length, 4);
  await assert.rejects(
    hubJsonl(parseHfUrl("hf://datasets/openai/gsm8k/main/nope.parquet"), { env }),
    /dataset openai\/gsm8k: file main\/nope\.parquet not found/,
  );
});
