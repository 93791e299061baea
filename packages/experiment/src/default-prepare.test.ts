// The default experiment's cache: data, base model and warm start are reused only when they were
// made by the same setting.
import assert from "node:assert/strict";
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { test } from "node:test";
import { invalidateStaleCache } from "./default-prepare.ts";
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
