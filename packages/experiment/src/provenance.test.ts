import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { test } from "node:test";
import { modelContentHash } from "@temper/qwen3/model";
import { makeFixture } from "./fixture.ts";
import { fileSha256, provenance, resolveExperiment } from "./index.ts";

test("provenance: commit, model content hash, data hashes", async () => {
  const fx = makeFixture(10);
  try {
    fx.write("model/model.safetensors", "not really weights");
    const { spec } = resolveExperiment(
      `name: p
model: model
data: { train: data/train.jsonl, eval: data/eval.jsonl }
steps: 1
reward: { structure: hard }
optimizer: { learning_rate: 1.0e-4 }
`,
      "p.yaml",
      fx.dir,
    );
    const p = await provenance(spec);
    assert.match(p.commit, /^[0-9a-f]{40}$/); // this package sits in a git checkout
    assert.equal(typeof p.dirty, "boolean");
    assert.equal(p.model_hash, await modelContentHash(join(fx.dir, "model")));
    const sha = (rel: string) =>
      createHash("sha256")
        .update(readFileSync(join(fx.dir, rel)))
        .digest("hex");
    assert.deepEqual(p.data_hashes, { train: sha("data/train.jsonl"), eval: sha("data/eval.jsonl") });
    assert.equal(await fileSha256(join(fx.dir, "data/eval.jsonl")), sha("data/eval.jsonl"));
    // Outside a repository the commit is unknown.
    const outside = await provenance(spec, { repoDir: fx.dir });
    assert.equal(outside.commit, "unknown");
  } finally {
    fx.cleanup();
  }
});
