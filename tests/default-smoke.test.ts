// `temper default --smoke`: the default experiment's whole path (synthetic data, base model, SFT
// warm start, a local stack, the four structures, the report, the summary table) on a tiny model.
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { existsSync, mkdtempSync, readdirSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { test } from "node:test";
import { findNatsServer } from "@temper/kit";
import { freeStackOffset, repoRoot } from "./src/index.ts";

test("temper default --smoke runs the four structures and writes the report", {
  skip: !findNatsServer() && "nats-server not installed",
  timeout: 600_000,
}, async () => {
  const dir = mkdtempSync(join(tmpdir(), "temper-smoke-"));
  try {
    const offset = await freeStackOffset();
    const r = spawnSync(
      process.execPath,
      [
        join(repoRoot, "tools", "bin", "temper.mjs"),
        "default",
        "--smoke",
        "--data-dir",
        dir,
        "--port-offset",
        String(offset),
      ],
      { cwd: repoRoot, encoding: "utf8", timeout: 580_000 },
    );
    assert.equal(r.status, 0, `${r.stdout}\n${r.stderr}`);
    for (const v of ["hard", "continuous", "hybrid", "adaptive"])
      assert.match(r.stdout, new RegExp(`^${v} `, "m"));
    assert.match(r.stdout, /^report: .*report\.html$/m);
    assert.ok(existsSync(join(dir, "report.html")));
    assert.equal(readdirSync(join(dir, "stack", "runs")).length, 4);
    console.log(r.stdout.trim());
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
