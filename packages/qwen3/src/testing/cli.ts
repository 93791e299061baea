// Test helper: runs the real `temper` CLI from the repository root, as a user would.
import { spawnSync } from "node:child_process";
import { fileURLToPath } from "node:url";

export const repoRoot = fileURLToPath(new URL("../../../..", import.meta.url));

export interface CliResult {
  code: number | null;
  stdout: string;
  stderr: string;
}

/** `temper <args...>` in a child process; never throws on a non-zero exit. */
export function runTemper(...args: string[]): CliResult {
  return runTemperWith({}, ...args);
}

/** runTemper with these variables added to the environment. */
export function runTemperWith(env: Record<string, string>, ...args: string[]): CliResult {
  const r = spawnSync(process.execPath, ["tools/bin/temper.mjs", ...args], {
    cwd: repoRoot,
    encoding: "utf8",
    env: { ...process.env, ...env },
  });
  return { code: r.status, stdout: r.stdout, stderr: r.stderr };
}
