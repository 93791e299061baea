// The default experiment's cache: data, base model and warm start are reused only when they were
// made by the same setting.
import assert from "node:assert/strict";
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { test } from "node:test";
import { loadGsm8k, synthesizeSets } from "@temper/gsm8k";
import { invalidateStaleCache, prepareDefault } from "./default-prepare.ts";
import { DEFAULT_SMOKE as SMOKE } from "./default-settings.ts";

const PARTS = ["data", "model-base", "model-warm"];

function cacheDir(): string {
  const dir = mkdtempSync(join(tmpdir(), "temper-default-cache-"));
  for (const p of PARTS) {
    mkdirSync(join(dir, p));
    writeFileSync(join(dir, p, "marker"), "x");
  }
  return dir;
}

test("a cache made by the same setting is kept", () => {
  const dir = cacheDir();
  try {
    invalidateStaleCache(dir, SMOKE, PARTS); // no setting.json yet: an old cache, remade
    for (const p of PARTS) assert.ok(!existsSync(join(dir, p)), p);
    for (const p of PARTS) mkdirSync(join(dir, p));
    invalidateStaleCache(dir, SMOKE, PARTS);
    for (const p of PARTS) assert.ok(existsSync(join(dir, p)), p);
    assert.equal(JSON.parse(readFileSync(join(dir, "setting.json"), "utf8")).preset, SMOKE.preset);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test("a cache made by another setting is remade", () => {
  const dir = cacheDir();
  try {
    invalidateStaleCache(dir, SMOKE, PARTS);
    for (const p of PARTS) mkdirSync(join(dir, p));
    const other = { ...SMOKE, sft: { ...SMOKE.sft, steps: SMOKE.sft.steps + 1 } };
    invalidateStaleCache(dir, other, PARTS);
    for (const p of PARTS) assert.ok(!existsSync(join(dir, p)), p);
    assert.equal(JSON.parse(readFileSync(join(dir, "setting.json"), "utf8")).sft.steps, SMOKE.sft.steps + 1);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test("data/dev.jsonl feeds the warm start's stop; rlData: problems the warm start never saw, in the pool's order, made once", {
  timeout: 300_000,
}, async () => {
  const dir = mkdtempSync(join(tmpdir(), "temper-default-rl-"));
  const rlData = { dir: "data-rl", seed: 2, minSteps: 1, maxSteps: 2, pool: 60, take: 40 };
  const setting = { ...SMOKE, rlData };
  try {
    const paths = await prepareDefault(dir, setting, () => {});
    assert.equal(paths.rlData, join(dir, "data-rl"));
    const sft = new Set(loadGsm8k(join(paths.data, "sft.jsonl")).map((ex) => ex.question));

    // the warm start's stop reads data/dev.jsonl, problems no other set has
    const dev = loadGsm8k(join(paths.data, "dev.jsonl"));
    assert.equal(dev.length, SMOKE.synth.dev);
    const held = new Set(loadGsm8k(join(paths.data, "eval.jsonl")).map((ex) => ex.question));
    assert.ok(dev.every((ex) => !sft.has(ex.question) && !held.has(ex.question)));
    const checks = readFileSync(join(paths.warm, "sft_dev.jsonl"), "utf8")
      .trim()
      .split("\n")
      .map((l) => JSON.parse(l));
    assert.deepEqual(
      checks.map((c) => c.step),
      [2],
      "a check every 2 steps from step 2, none at the last step",
    );
    assert.ok(checks[0].accuracy >= 0 && checks[0].accuracy < 1);
    const args = JSON.parse(readFileSync(join(paths.warm, "sft_args.json"), "utf8"));
    assert.equal(args.target_dev_accuracy, 1);
    assert.equal(args.end_step, 4);
    const pool = synthesizeSets({
      sft: 0,
      train: 60,
      eval: 60,
      seed: 2,
      maxOperand: SMOKE.synth.maxOperand,
      maxResult: SMOKE.synth.maxResult,
      steps: { min: 1, max: 2 },
      disjoint: "question",
    });
    for (const [name, rows] of [
      ["train", pool.train],
      ["eval", pool.eval],
    ] as const) {
      const got = loadGsm8k(join(paths.rlData, `${name}.jsonl`));
      assert.equal(got.length, 40);
      assert.ok(
        got.every((ex) => !sft.has(ex.question)),
        `${name}: a question the warm start saw`,
      );
      assert.deepEqual(
        got.map((ex) => ex.question),
        rows
          .filter((ex) => !sft.has(ex.question))
          .slice(0, 40)
          .map((ex) => ex.question),
      );
      assert.ok(
        got.some((ex) => ex.answer.split("<<").length === 3),
        `${name}: no two-step problem`,
      );
    }
    const before = readFileSync(join(paths.rlData, "eval.jsonl"));
    writeFileSync(join(paths.rlData, "marker"), "x");
    await prepareDefault(dir, setting, () => {});
    assert.ok(existsSync(join(paths.rlData, "marker")), "made once");
    assert.deepEqual(readFileSync(join(paths.rlData, "eval.jsonl")), before);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
