// `temper stack --check` end to end: nats-server plus every implemented service start, report
// SERVING, and stop cleanly; every port is free again afterwards.
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { existsSync, mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { test } from "node:test";
import { findNatsServer } from "@temper/kit";
import { initModel, presetConfig, tokenizerIds } from "@temper/qwen3";
import { freeStackOffset, portFree } from "@temper/stack";
import { checkHealth, repoRoot, serviceEntry, startTestStack } from "./src/index.ts";

const DEFAULT_PORTS: Record<string, number> = {
  "reward-correctness": 15051,
  "reward-perplexity": 15052,
  "reward-reasoning": 15053,
  "reward-consistency": 15054,
  scheduler: 15060,
  rollout: 15070,
  learner: 15080,
  orchestrator: 15090,
  nats: 4222,
};

test("temper stack --check starts everything, verifies health and stops cleanly", {
  skip: !findNatsServer() && "nats-server not installed",
  timeout: 120_000,
}, async () => {
  const offset = await freeStackOffset();
  const dataDir = mkdtempSync(join(tmpdir(), "temper-stack-"));
  try {
    const child = spawn(
      process.execPath,
      [
        join(repoRoot, "tools", "bin", "temper.mjs"),
        "stack",
        "--check",
        "--port-offset",
        String(offset),
        "--data-dir",
        dataDir,
      ],
      { cwd: repoRoot, stdio: ["ignore", "pipe", "pipe"] },
    );
    let stdout = "";
    let stderr = "";
    child.stdout.on("data", (d) => {
      stdout += d;
    });
    child.stderr.on("data", (d) => {
      stderr += d;
    });
    const code = await new Promise<number | null>((done) => child.once("exit", done));
    assert.equal(code, 0, `stack --check failed:\n${stdout}\n${stderr}`);

    const implemented = Object.keys(DEFAULT_PORTS).filter((n) => n !== "nats" && existsSync(serviceEntry(n)));
    assert.match(stdout, new RegExp(`${implemented.length} service\\(s\\) SERVING`));
    assert.match(stdout, new RegExp(`nats +nats://127\\.0\\.0\\.1:${DEFAULT_PORTS.nats + offset}`));
    for (const name of implemented)
      assert.match(stdout, new RegExp(`${name} +127\\.0\\.0\\.1:${DEFAULT_PORTS[name] + offset}\\b`));
    assert.match(stdout, /check passed, everything stopped/);
    assert.ok(existsSync(join(dataDir, "nats")), "JetStream store in the data dir");

    // Nothing the stack started is left listening.
    for (const port of Object.values(DEFAULT_PORTS))
      assert.ok(await portFree(port + offset), `port ${port + offset} freed`);
  } finally {
    rmSync(dataDir, { recursive: true, force: true });
  }
});

test("temper stack rejects a bad flag with one line and exit 2", async () => {
  const child = spawn(
    process.execPath,
    [join(repoRoot, "tools", "bin", "temper.mjs"), "stack", "--port-offset", "x"],
    {
      cwd: repoRoot,
      stdio: ["ignore", "pipe", "pipe"],
    },
  );
  let stderr = "";
  child.stderr.on("data", (d) => {
    stderr += d;
  });
  const code = await new Promise<number | null>((done) => child.once("exit", done));
  assert.equal(code, 2);
  assert.equal(stderr, 'temper: --port-offset: expected a number, got "x"\n');
});

test("the stack's supervisor restarts a killed service while the others keep serving", {
  skip: !findNatsServer() && "nats-server not installed",
  timeout: 180_000,
}, async () => {
  const dataDir = mkdtempSync(join(tmpdir(), "temper-supervisor-"));
  const events: string[] = [];
  const stack = await startTestStack({
    dataDir,
    model: tinyModel(dataDir),
    maxRestarts: 1,
    onEvent: (line) => events.push(line),
  });
  try {
    const victim = stack.process("reward-reasoning")!;
    victim.kill(); // SIGKILL
    await victim.exited;
    // everything else answers while it is down
    for (const s of stack.services.filter((x) => x.name !== "reward-reasoning"))
      assert.equal(await checkHealth(stack.address(s.name), "", 2000), "SERVING", s.name);
    const until = Date.now() + 60_000;
    while (
      stack.table().find((r) => r.name === "reward-reasoning")!.state !== "serving" &&
      Date.now() < until
    )
      await new Promise((r) => setTimeout(r, 200));
    const row = stack.table().find((r) => r.name === "reward-reasoning")!;
    assert.equal(row.state, "serving", events.join("; "));
    assert.equal(row.restarts, 1);
    assert.notEqual(stack.process("reward-reasoning")!.pid, victim.pid);
    assert.equal(await checkHealth(stack.address("reward-reasoning"), "", 2000), "SERVING");
    assert.ok(
      events.some((e) => /reward-reasoning exited .*restart 1\/1/.test(e)),
      events.join("; "),
    );

    // past the limit the supervisor gives up and says which service failed
    stack.process("reward-reasoning")!.kill();
    assert.equal(await stack.failed, "reward-reasoning");
    assert.equal(stack.table().find((r) => r.name === "reward-reasoning")!.state, "failed");
  } finally {
    await stack.stop();
    rmSync(dataDir, { recursive: true, force: true });
  }
});

function tinyModel(dir: string): string {
  const out = join(dir, "model");
  initModel({
    config: presetConfig("tiny", tokenizerIds("bytes")),
    tokenizer: "bytes",
    out,
    seed: 1,
    dtype: "f32",
  });
  return out;
}
