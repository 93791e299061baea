// Root test command: typecheck and the import-circle check once, then every workspace's own `test`
// script, then one closing line "N passed, N failed" summed from the node test runner's summaries.
import { spawnSync } from "node:child_process";
import { readdirSync, readFileSync } from "node:fs";
import { join } from "node:path";

const root = join(import.meta.dirname, "..");
const only = process.argv.slice(2);
let passed = 0;
let failed = 0;
const failures = [];

function step(label, cmd, args, cwd) {
  process.stdout.write(`\n=== ${label}\n`);
  const r = spawnSync(cmd, args, {
    cwd,
    encoding: "utf8",
    stdio: ["ignore", "pipe", "pipe"],
    maxBuffer: 1 << 28,
  });
  process.stdout.write(r.stdout);
  process.stderr.write(r.stderr);
  return r;
}

if (only.length === 0) {
  for (const [label, cmd, args] of [
    ["typecheck", "npx", ["tsc", "-p", "tsconfig.json"]],
    ["import circles", "node", ["scripts/check-circles.mjs"]],
  ]) {
    const r = step(label, cmd, args, root);
    if (r.status === 0) passed += 1;
    else {
      failed += 1;
      failures.push(label);
    }
  }
}

const rootPkg = JSON.parse(readFileSync(join(root, "package.json"), "utf8"));
const dirs = rootPkg.workspaces.flatMap((w) =>
  w.endsWith("/*") ? readdirSync(join(root, w.slice(0, -2))).map((d) => `${w.slice(0, -2)}/${d}`) : [w],
);
for (const dir of dirs.sort()) {
  let pkg;
  try {
    pkg = JSON.parse(readFileSync(join(root, dir, "package.json"), "utf8"));
  } catch {
    continue;
  }
  if (!pkg.scripts?.test) continue;
  if (only.length && !only.some((o) => dir.includes(o))) continue;
  const r = step(`${pkg.name} (${dir})`, "npm", ["test", "--silent"], join(root, dir));
  const out = r.stdout + r.stderr;
  const p = [...out.matchAll(/^(?:ℹ|#) pass (\d+)$/gm)].reduce((s, m) => s + Number(m[1]), 0);
  const f = [...out.matchAll(/^(?:ℹ|#) fail (\d+)$/gm)].reduce((s, m) => s + Number(m[1]), 0);
  passed += p;
  failed += f;
  if (r.status !== 0 && f === 0) {
    failed += 1; // the runner itself failed (no test file, crash): count it
    failures.push(`${pkg.name}: exit ${r.status}`);
  } else if (f > 0) failures.push(`${pkg.name}: ${f} failed`);
}

if (failures.length) process.stdout.write(`\nfailures:\n  ${failures.join("\n  ")}\n`);
process.stdout.write(`\n${passed} passed, ${failed} failed\n`);
process.exitCode = failed > 0 ? 1 : 0;
