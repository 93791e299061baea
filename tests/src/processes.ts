// Real processes for cross-service tests: a nats-server with JetStream on a free port and a temp
// store, and service processes (`node --import tsx services/<name>/src/main.ts`) that can be
// stopped, killed and restarted on the same port.
import { existsSync, mkdtempSync, rmSync } from "node:fs";
import { createServer } from "node:net";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import {
  type NatsServerHandle,
  type ServiceProcess,
  startNatsServer,
  startServiceProcess,
} from "@temper/kit";

/** The repository root (tests/src/../..). */
export const repoRoot = resolve(import.meta.dirname, "..", "..");

/** A port that was free a moment ago on 127.0.0.1. */
export function freePort(): Promise<number> {
  return new Promise((done, fail) => {
    const server = createServer();
    server.once("error", fail);
    server.listen(0, "127.0.0.1", () => {
      const address = server.address();
      const port = typeof address === "object" && address ? address.port : 0;
      server.close(() => done(port));
    });
  });
}

export interface TestNats {
  readonly url: string;
  readonly port: number;
  readonly storeDir: string;
  /** Recent server log lines. */
  output(): string;
  /** Stops the server and deletes its store. */
  stop(): Promise<void>;
}

/** nats-server -js on a free port with a fresh temp store (removed by stop()). */
export async function startNats(): Promise<TestNats> {
  const storeDir = mkdtempSync(join(tmpdir(), "temper-nats-"));
  let server: NatsServerHandle;
  try {
    server = await startNatsServer({ storeDir, port: 0 });
  } catch (err) {
    rmSync(storeDir, { recursive: true, force: true });
    throw err;
  }
  return {
    url: server.url,
    port: server.port,
    storeDir,
    output: () => server.output(),
    async stop() {
      await server.stop();
      rmSync(storeDir, { recursive: true, force: true });
    },
  };
}

export interface StartServiceOptions {
  /** Extra environment for the process (PORT defaults to a free port chosen by the service). */
  env?: Record<string, string>;
  /** Sets NATS_URL. */
  nats?: TestNats | string;
  readyTimeoutMs?: number;
  /** Entry file instead of services/<name>/src/main.ts (e.g. a test-only service). */
  entry?: string;
}

export function serviceEntry(name: string): string {
  return join(repoRoot, "services", name, "src", "main.ts");
}

/** A running service; restart() brings it back on the same port. */
export class TestService {
  private constructor(
    readonly name: string,
    private readonly options: StartServiceOptions,
    private current: ServiceProcess,
  ) {}

  static async start(name: string, options: StartServiceOptions = {}): Promise<TestService> {
    return new TestService(name, options, await TestService.spawn(name, options, options.env ?? {}));
  }

  private static spawn(name: string, options: StartServiceOptions, env: Record<string, string>) {
    const entry = options.entry ?? serviceEntry(name);
    if (!existsSync(entry)) throw new Error(`service "${name}" has no ${entry}`);
    const natsUrl = typeof options.nats === "string" ? options.nats : options.nats?.url;
    return startServiceProcess({
      name,
      entry,
      cwd: repoRoot,
      env: { LOG_LEVEL: "info", ...(natsUrl ? { NATS_URL: natsUrl } : {}), ...env },
      readyTimeoutMs: options.readyTimeoutMs ?? 30_000,
    });
  }

  get pid(): number {
    return this.current.pid;
  }
  get port(): number {
    return this.current.port;
  }
  /** "127.0.0.1:<port>". */
  get address(): string {
    return this.current.address;
  }
  /** Recent stdout/stderr lines (pino JSON). */
  output(): string {
    return this.current.output();
  }
  get exited(): ServiceProcess["exited"] {
    return this.current.exited;
  }

  /** SIGTERM (graceful) and wait for the exit. */
  stop(signal: NodeJS.Signals = "SIGTERM") {
    return this.current.stop(signal);
  }

  /** SIGKILL, no cleanup: simulates a crash. */
  async kill(): Promise<void> {
    this.current.kill();
    await this.current.exited;
  }

  /** Stops it if still running, then starts it again on the same port (env overrides merged). */
  async restart(env: Record<string, string> = {}): Promise<void> {
    const port = this.current.port;
    await this.current.stop();
    this.current = await TestService.spawn(this.name, this.options, {
      ...this.options.env,
      ...env,
      PORT: String(port),
    });
  }
}

export function startService(name: string, options?: StartServiceOptions): Promise<TestService> {
  return TestService.start(name, options);
}
