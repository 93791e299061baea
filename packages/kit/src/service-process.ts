// Running a service as a child process (`node --import tsx <main.ts>`) and waiting until its
// grpc.health.v1 reports SERVING; used by `temper stack` and the test harness.
import { type ChildProcess, spawn } from "node:child_process";
import { setTimeout as sleep } from "node:timers/promises";
import { Client } from "@grpc/grpc-js";
import { callUnary } from "./client.ts";
import { HealthDefinition, type ServingStatus } from "./health.ts";
import { type ClientSecurity, channelCredentials, defaultClientSecurity } from "./security.ts";

export interface ServiceProcessOptions {
  name: string;
  /** Path of the entry file (services/<name>/src/main.ts). */
  entry: string;
  cwd?: string;
  /** Added to the parent's environment. PORT=0 (or unset port) makes the child pick one. */
  env?: Record<string, string>;
  readyTimeoutMs?: number;
  /** Sees every output line (e.g. to forward logs). */
  onLine?: (line: string, stream: "stdout" | "stderr") => void;
  /** How to reach it for the health check (TLS); default the process's client security. */
  security?: ClientSecurity;
}

export interface ServiceProcess {
  readonly name: string;
  readonly pid: number;
  readonly port: number;
  /** "127.0.0.1:<port>". */
  readonly address: string;
  /** The last lines of stdout and stderr. */
  output(): string;
  /** Resolves with the exit code (null when killed by a signal) once the process is gone. */
  readonly exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
  /** Sends `signal` (default SIGTERM) and waits; SIGKILL after timeoutMs (default 15 s). */
  stop(
    signal?: NodeJS.Signals,
    timeoutMs?: number,
  ): Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
  kill(): void;
}

/** Health status of `service` ("" = whole server); throws GrpcError when unreachable or unknown. */
export async function checkHealth(
  address: string,
  service = "",
  timeoutMs = 1000,
  security: ClientSecurity = defaultClientSecurity(),
): Promise<ServingStatus> {
  const client = new Client(address, channelCredentials(security));
  try {
    const res = await callUnary(client, HealthDefinition.check, { service }, { timeoutMs, attempts: 1 });
    return res.status;
  } finally {
    client.close();
  }
}

/** Polls health until SERVING; throws with the last status or error after timeoutMs. */
export async function waitForServing(
  address: string,
  options: { service?: string; timeoutMs?: number; security?: ClientSecurity } = {},
): Promise<void> {
  const until = Date.now() + (options.timeoutMs ?? 10_000);
  let last = "no answer";
  while (Date.now() < until) {
    try {
      const s = await checkHealth(address, options.service ?? "", 1000, options.security);
      if (s === "SERVING") return;
      last = s;
    } catch (err) {
      last = (err as Error).message;
    }
    await sleep(100);
  }
  throw new Error(`${address} not SERVING after ${options.timeoutMs ?? 10_000} ms (last: ${last})`);
}

// The loader as a file URL, so the child resolves it regardless of its working directory.
const tsxLoader = import.meta.resolve("tsx");

function exitedPromise(child: ChildProcess) {
  return new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) =>
    child.once("exit", (code, signal) => resolve({ code, signal })),
  );
}

/**
 * Starts the service and resolves once it is SERVING. The port comes from the "listening" log
 * line the kit's server writes, so PORT=0 works without races.
 */
export async function startServiceProcess(options: ServiceProcessOptions): Promise<ServiceProcess> {
  const timeoutMs = options.readyTimeoutMs ?? 30_000;
  const child = spawn(process.execPath, ["--import", tsxLoader, options.entry], {
    cwd: options.cwd,
    env: { ...process.env, PORT: "0", ...options.env },
    stdio: ["ignore", "pipe", "pipe"],
  });
  const exited = exitedPromise(child);
  const lines: string[] = [];
  let onPort: ((port: number) => void) | undefined;
  const feed = (stream: "stdout" | "stderr") => {
    let partial = "";
    return (chunk: Buffer) => {
      const parts = (partial + chunk.toString()).split("\n");
      partial = parts.pop() ?? "";
      for (const line of parts) {
        lines.push(line);
        if (lines.length > 300) lines.shift();
        options.onLine?.(line, stream);
        if (onPort && line.includes('"listening"')) {
          try {
            const rec = JSON.parse(line) as { msg?: string; port?: number };
            if (rec.msg === "listening" && typeof rec.port === "number") onPort(rec.port);
          } catch {}
        }
      }
    };
  };
  child.stdout?.on("data", feed("stdout"));
  child.stderr?.on("data", feed("stderr"));
  const tail = () => lines.slice(-8).join("\n");

  const port = await new Promise<number>((resolve, reject) => {
    const timer = setTimeout(() => {
      child.kill("SIGKILL");
      reject(new Error(`${options.name}: no "listening" line after ${timeoutMs} ms\n${tail()}`));
    }, timeoutMs);
    onPort = (p) => {
      clearTimeout(timer);
      onPort = undefined;
      resolve(p);
    };
    void exited.then(({ code, signal }) => {
      clearTimeout(timer);
      reject(new Error(`${options.name} exited (${signal ?? `code ${code}`}) before listening\n${tail()}`));
    });
  });
  const address = `127.0.0.1:${port}`;
  try {
    await Promise.race([
      waitForServing(address, { timeoutMs, security: options.security }),
      exited.then(({ code, signal }) => {
        throw new Error(`${options.name} exited (${signal ?? `code ${code}`}) before SERVING\n${tail()}`);
      }),
    ]);
  } catch (err) {
    child.kill("SIGKILL");
    throw err;
  }
  return {
    name: options.name,
    pid: child.pid ?? 0,
    port,
    address,
    output: () => lines.join("\n"),
    exited,
    async stop(signal = "SIGTERM", killAfterMs = 15_000) {
      if (child.exitCode === null && child.signalCode === null) {
        child.kill(signal);
        const timer = setTimeout(() => child.kill("SIGKILL"), killAfterMs);
        const r = await exited;
        clearTimeout(timer);
        return r;
      }
      return exited;
    },
    kill: () => {
      child.kill("SIGKILL");
    },
  };
}
