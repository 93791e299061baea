// PROVIDER: the training graphs' execution provider, checked at start (the trainers load lazily, at a
// run's first Train): one an installation lacks is a configuration error, exit 2, before NATS.
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { test } from "node:test";
import { fileURLToPath } from "node:url";
import { checkProvider } from "@temper/onnx";

const main = fileURLToPath(new URL("./main.ts", import.meta.url));
const start = (env: Record<string, string>) =>
  spawnSync(process.execPath, ["--import", "tsx", main], {
    // nothing listens there: a run that got past the check would fail on NATS, not exit 2
    env: { ...process.env, MODEL_DIR: "/nonexistent", NATS_URL: "nats://127.0.0.1:9", ...env },
    encoding: "utf8",
    timeout: 60_000,
  });

const cudaMissing = (() => {
  try {
    checkProvider("cuda");
    return false;
  } catch {
    return true;
  }
})();

test("PROVIDER=cuda without onnxruntime-node's CUDA libraries: one line naming it, exit 2", {
  skip: !cudaMissing && "CUDA provider installed",
}, () => {
  const r = start({ PROVIDER: "cuda" });
  assert.equal(r.status, 2, r.stderr);
  assert.match(
    r.stderr,
    /^learner: invalid configuration: PROVIDER=cuda: execution provider "cuda" is unavailable/,
  );
  assert.equal(r.stderr.trim().split("\n").length, 1, r.stderr);
});

test("PROVIDER=tpu: not one of cpu, webgpu, cuda, exit 2", () => {
  const r = start({ PROVIDER: "tpu" });
  assert.equal(r.status, 2, r.stderr);
  assert.match(r.stderr, /PROVIDER="tpu": expected one of cpu, webgpu, cuda/);
});
