// Locating and running a local nats-server with JetStream (for `temper stack` and the test
// harness). Debian installs it in /usr/sbin, which a non-root PATH often lacks, so the usual sbin
// directories are searched after PATH.
import { type ChildProcess, spawn } from "node:child_process";
import { accessSync, constants, mkdirSync } from "node:fs";
import { delimiter, join } from "node:path";

const EXTRA_DIRS = ["/usr/sbin", "/usr/local/sbin", "/usr/local/bin", "/usr/bin"];

/** Absolute path of nats-server (NATS_SERVER_BIN, then PATH, then the sbin directories), or undefined. */
export function findNatsServer(env: NodeJS.ProcessEnv = process.env): string | undefined {
  if (env.NATS_SERVER_BIN) return env.NATS_SERVER_BIN;
  const dirs = [...(env.PATH ?? "").split(delimiter).filter(Boolean), ...EXTRA_DIRS];
  for (const dir of dirs) {
    const candidate = join(dir, "nats-server");
    try {
      accessSync(candidate, constants.X_OK);
      return candidate;
    } catch {}
  }
  return undefined;
}

export interface NatsServerOptions {
  /** Default: findNatsServer(). */
  binary?: string;
  /** 0 (default) lets nats-server choose a free port; it is read back from its log. */
  port?: number;
  host?: string;
  /** JetStream store directory (created if missing). */
  storeDir: string;
  /** A nats-server configuration file (e.g. users and permissions); the flags above override it. */
  configFile?: string;
  readyTimeoutMs?: number;
}

export interface NatsServerHandle {
  readonly url: string;
  readonly port: number;
  readonly storeDir: string;
  readonly pid: number;
  /** The server's recent log lines. */
  output(): string;
  /** Resolves when the server has exited, whoever stopped it. */
  readonly exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
  /** SIGTERM, then SIGKILL after 5 s; resolves when it has exited. */
  stop(): Promise<void>;
}

function waitExit(child: ChildProcess, killAfterMs: number): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return Promise.resolve();
  return new Promise((resolve) => {
    const timer = setTimeout(() => child.kill("SIGKILL"), killAfterMs);
    child.once("exit", () => {
      clearTimeout(timer);
      resolve();
    });
  });
}

export async function startNatsServer(options: NatsServerOptions): Promise<NatsServerHandle> {
  const binary = options.binary ?? findNatsServer();
  if (!binary)
    throw new Error(
      "nats-server not found (install it: apt-get install nats-server, or set NATS_SERVER_BIN)",
    );
  const host = options.host ?? "127.0.0.1";
  mkdirSync(options.storeDir, { recursive: true });
  // -p -1 is nats-server's "random port".
  const args = [
    ...(options.configFile ? ["-c", options.configFile] : []),
    "-js",
    "-a",
    host,
    "-p",
    String(options.port || -1),
    "-sd",
    options.storeDir,
  ];
  const child = spawn(binary, args, { stdio: ["ignore", "pipe", "pipe"] });
  const lines: string[] = [];
  const remember = (chunk: Buffer) => {
    for (const l of chunk.toString().split("\n")) if (l) lines.push(l);
    if (lines.length > 200) lines.splice(0, lines.length - 200);
  };
  child.stdout?.on("data", remember);
  child.stderr?.on("data", remember);
  const port = await new Promise<number>((resolve, reject) => {
    let found = 0;
    const timer = setTimeout(() => {
      child.kill("SIGKILL");
      reject(
        new Error(
          `nats-server not ready after ${options.readyTimeoutMs ?? 10_000} ms: ${lines.slice(-3).join(" | ")}`,
        ),
      );
    }, options.readyTimeoutMs ?? 10_000);
    const onData = (chunk: Buffer) => {
      const text = chunk.toString();
      const m = /Listening for client connections on .*:(\d+)/.exec(text);
      if (m) found = Number(m[1]);
      if (/Server is ready/.test(text) && found) {
        clearTimeout(timer);
        child.stderr?.off("data", onData);
        resolve(found);
      }
    };
    child.stderr?.on("data", onData);
    child.once("exit", (code, signal) => {
      clearTimeout(timer);
      reject(
        new Error(
          `nats-server exited (${signal ?? code}) before it was ready: ${lines.slice(-3).join(" | ")}`,
        ),
      );
    });
    child.once("error", (err) => {
      clearTimeout(timer);
      reject(new Error(`cannot run ${binary}: ${err.message}`));
    });
  });
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((done) => {
    if (child.exitCode !== null || child.signalCode !== null)
      done({ code: child.exitCode, signal: child.signalCode });
    else child.once("exit", (code, signal) => done({ code, signal }));
  });
  return {
    url: `nats://${host}:${port}`,
    port,
    storeDir: options.storeDir,
    pid: child.pid ?? 0,
    exited,
    output: () => lines.join("\n"),
    async stop() {
      const done = waitExit(child, 5000);
      child.kill("SIGTERM");
      await done;
    },
  };
}
