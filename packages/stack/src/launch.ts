// The one way a service process is started, by `temper stack`'s supervisor and by the tests alike:
// `node --import tsx services/<name>/src/main.ts` from the repository root, ready once it is SERVING.
import { existsSync } from "node:fs";
import { join, resolve } from "node:path";
import { type ClientSecurity, type ServiceProcess, startServiceProcess } from "@temper/kit";

/** The repository root (packages/stack/src/../../..). */
export const ROOT = resolve(import.meta.dirname, "..", "..", "..");

/** services/<name>/src/main.ts under the repository root. */
export function serviceEntry(name: string): string {
  return join(ROOT, "services", name, "src", "main.ts");
}

export interface LaunchOptions {
  /** The process's name in logs and errors: a service, a replica (`rollout-2`), or a test's own name. */
  name: string;
  /** The service whose main.ts runs (default `name`). */
  service?: string;
  /** Another entry file instead (e.g. a test-only service). */
  entry?: string;
  env: Record<string, string>;
  /** What the readiness check connects with (a secure stack's operator client). */
  security?: ClientSecurity;
  onLine?: (line: string) => void;
  readyTimeoutMs?: number;
}

/** Starts a service process and resolves once its health check reports SERVING. */
export function launchService(o: LaunchOptions): Promise<ServiceProcess> {
  const entry = o.entry ?? serviceEntry(o.service ?? o.name);
  if (!existsSync(entry)) throw new Error(`service "${o.name}" has no ${entry}`);
  return startServiceProcess({
    name: o.name,
    entry,
    cwd: ROOT,
    env: o.env,
    security: o.security,
    onLine: o.onLine,
    readyTimeoutMs: o.readyTimeoutMs,
  });
}
