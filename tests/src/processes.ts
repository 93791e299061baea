// Real processes for cross-service tests: a nats-server with JetStream on a free port and a temp
// store, and service processes (`node --import tsx services/<name>/src/main.ts`) that can be
// stopped, killed and restarted on the same port.
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { type NatsServerHandle, type ServiceProcess, startNatsServer } from "@temper/kit";
import { launchService, ROOT, serviceEntry } from "@temper/stack";

/** The repository root. */
export const repoRoot = ROOT;
export { freePort } from "@temper/stack";
export { serviceEntry };

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
    const natsUrl = typeof options.nats === "string" ? options.nats : options.nats?.url;
    return launchService({
      name,
      entry: options.entry,
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
