// A local stack as a value: nats-server with JetStream plus every implemented service on loopback,
// each SERVING before startStack returns, and a supervisor that restarts a service that dies (with
// backoff, at most `maxRestarts` times in a row before it gives up). `temper stack` serves it until
// Ctrl-C; `temper run` / `compare` hold one for a run's duration.
import { spawnSync } from "node:child_process";
import {
  createWriteStream,
  existsSync,
  mkdirSync,
  readFileSync,
  renameSync,
  rmSync,
  type WriteStream,
} from "node:fs";
import { createServer } from "node:net";
import { join, resolve } from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import {
  type ClientSecurity,
  findNatsServer,
  type NatsServerHandle,
  type ServiceProcess,
  securityConfigSchema,
  startNatsServer,
  startServiceProcess,
} from "@temper/kit";
import { initModel, presetConfig, tokenizerIds } from "@temper/qwen3";
import { CliError } from "./cli.ts";
import { ensureSecrets, operatorEnv, type Secrets, secureServiceEnv } from "./secrets.ts";
import { implementedServices, SERVICES, type ServiceSpec, serviceEntry, stackEnv } from "./services.ts";

export const ROOT = resolve(import.meta.dirname, "..", "..");

/** Services that load the base model. */
const MODEL_SERVICES = new Set(["rollout", "learner"]);
/** Services that score completion text: an RL policy may stop at once, so empty text is scored. */
const TEXT_SERVICES = new Set([
  "reward-correctness",
  "reward-perplexity",
  "reward-reasoning",
  "reward-consistency",
  "scheduler",
]);

export interface StackOptions {
  dataDir: string;
  natsPort: number;
  portOffset: number;
  /** The base model; undefined: a small model made once under the data dir. */
  model?: string;
  /** Restarts in a row before the supervisor gives up on a service (default 5). */
  maxRestarts?: number;
  /** Called with one line per supervisor event (restart, give-up). */
  onEvent?: (line: string) => void;
  /** Extra environment for named services. */
  env?: Record<string, Record<string, string>>;
  /**
   * TLS with mutual TLS, credentials for mutating RPCs and NATS users with per-service permissions,
   * from secrets made once under <dataDir>/secrets. Default off: plaintext on loopback.
   */
  secure?: boolean;
}

/** What a secure stack's callers need. */
export interface StackSecurity {
  secrets: Secrets;
  /** The operator's client: CA, certificate (mutual TLS) and token. */
  client: ClientSecurity;
  /** The same as environment variables, for the CLI in another shell. */
  env: Record<string, string>;
}

export interface ServiceRow {
  name: string;
  address: string;
  restarts: number;
  state: "serving" | "restarting" | "failed";
}

export interface Stack {
  natsUrl: string;
  /** Present on a secure stack. */
  security?: StackSecurity;
  ports: Record<string, number>;
  modelDir: string | undefined;
  services: ServiceSpec[];
  address(name: string): string;
  /** The services and what the supervisor did to them. */
  table(): ServiceRow[];
  /** The running process of a service (tests kill it to see the supervisor restart it). */
  process(name: string): ServiceProcess | undefined;
  /** Resolves when a service has failed for good (restart limit reached). */
  failed: Promise<string>;
  /** Stops every service (callers first), then NATS; returns unclean exits. */
  stop(): Promise<string[]>;
}

/**
 * The model rollout and learner serve: `model` (checked), else a small model made once under the
 * data dir, so `npm start` needs nothing but the repository.
 */
export function stackModel(flag: string | undefined, dataDir: string, say: (line: string) => void): string {
  if (flag !== undefined) {
    const dir = resolve(flag);
    if (!existsSync(join(dir, "config.json")))
      throw new CliError(`--model ${flag}: no config.json there (expected a Hugging Face model directory)`);
    return dir;
  }
  const dir = join(dataDir, "models", "small");
  if (!existsSync(join(dir, "config.json"))) {
    say(`no --model given, making a small model once in ${dir}`);
    const tmp = `${dir}.tmp-${process.pid}`;
    rmSync(tmp, { recursive: true, force: true });
    initModel({
      config: presetConfig("small", tokenizerIds("bytes")),
      tokenizer: "bytes",
      out: tmp,
      seed: 0,
      dtype: "f32",
    });
    renameSync(tmp, dir);
  }
  return dir;
}

/** The security variables, all empty: a plaintext stack ignores what the calling shell exported. */
const PLAINTEXT_ENV: Record<string, string> = Object.fromEntries(
  [...Object.keys(securityConfigSchema()), "NATS_USER", "NATS_PASSWORD_FILE", "NATS_TLS_CA"].map((k) => [
    k,
    "",
  ]),
);

/** What a service needs besides the common variables. */
function serviceEnv(name: string, modelDir: string | undefined, dataDir: string): Record<string, string> {
  const out: Record<string, string> = {};
  // Sources a run may name: loopback, so swapping in a service of one's own at runtime works here.
  if (name === "scheduler") out.SOURCE_ENDPOINT_ALLOW = "loopback";
  if (TEXT_SERVICES.has(name)) out.ALLOW_EMPTY_TEXT = "true";
  if (modelDir && MODEL_SERVICES.has(name)) out.MODEL_DIR = modelDir;
  if (name === "learner") {
    out.CHECKPOINT_DIR = join(dataDir, "checkpoints");
    out.EXPORT_DIR = join(dataDir, "exports");
  }
  if (name === "orchestrator") {
    out.RUNS_DIR = join(dataDir, "runs");
    const commit = spawnSync("git", ["rev-parse", "HEAD"], { cwd: ROOT, encoding: "utf8" });
    if (commit.status === 0) out.TEMPER_COMMIT = commit.stdout.trim();
  }
  return out;
}

function portFree(port: number): Promise<boolean> {
  return new Promise((done) => {
    const server = createServer();
    server.once("error", () => done(false));
    server.listen(port, "127.0.0.1", () => server.close(() => done(true)));
  });
}

/** nats-server from PATH; as root with apt-get, installs Debian's package; else a CliError. */
export function ensureNatsServer(): string {
  const found = findNatsServer();
  if (found) return found;
  const apt = spawnSync("sh", ["-c", "command -v apt-get"], { encoding: "utf8" });
  if (process.getuid?.() === 0 && apt.status === 0) {
    process.stderr.write("temper: nats-server not found, installing Debian's nats-server with apt-get\n");
    let r = spawnSync("apt-get", ["install", "-y", "-q", "nats-server"], { stdio: "inherit" });
    if (r.status !== 0) {
      spawnSync("apt-get", ["update", "-q"], { stdio: "inherit" });
      r = spawnSync("apt-get", ["install", "-y", "-q", "nats-server"], { stdio: "inherit" });
    }
    const installed = findNatsServer();
    if (r.status === 0 && installed) return installed;
    throw new CliError("apt-get could not install nats-server; install it and retry");
  }
  throw new CliError(
    "nats-server not found: install it (Debian/Ubuntu: sudo apt-get install nats-server) or set NATS_SERVER_BIN",
  );
}

export async function startStack(o: StackOptions): Promise<Stack> {
  const say = o.onEvent ?? (() => {});
  const specs = implementedServices(ROOT);
  const ports = Object.fromEntries(SERVICES.map((s) => [s.name, s.port + o.portOffset]));
  for (const [name, port] of [
    ["nats", o.natsPort] as const,
    ...specs.map((s) => [s.name, ports[s.name]] as const),
  ])
    if (!(await portFree(port)))
      throw new CliError(`port ${port} (${name}) is in use: stop what holds it, or pass --port-offset`);
  const natsBinary = ensureNatsServer();
  mkdirSync(join(o.dataDir, "logs"), { recursive: true });
  const modelDir = specs.some((s) => MODEL_SERVICES.has(s.name))
    ? stackModel(o.model, o.dataDir, say)
    : undefined;
  const maxRestarts = o.maxRestarts ?? 5;
  let security: StackSecurity | undefined;
  if (o.secure) {
    const secrets = await ensureSecrets({
      dir: join(o.dataDir, "secrets"),
      services: SERVICES.map((s) => s.name),
    });
    if (secrets.outcome === "created")
      say(`made certificates, tokens and NATS users in ${secrets.dir} (${secrets.backend})`);
    const env = operatorEnv(secrets.dir);
    security = {
      secrets,
      env,
      client: {
        tls: {
          ca: readFileSync(env.GRPC_TLS_CA),
          cert: readFileSync(env.GRPC_TLS_CERT),
          key: readFileSync(env.GRPC_TLS_KEY),
        },
        token: readFileSync(env.AUTH_TOKEN_FILE, "utf8").trim(),
      },
    };
  }

  const running = new Map<string, ServiceProcess>();
  const rows = new Map<string, ServiceRow>(
    specs.map((s) => [
      s.name,
      { name: s.name, address: `127.0.0.1:${ports[s.name]}`, restarts: 0, state: "serving" },
    ]),
  );
  const logs: WriteStream[] = [];
  let nats: NatsServerHandle | undefined;
  let stopping = false;
  let reportFailure: (name: string) => void = () => {};
  const failed = new Promise<string>((r) => {
    reportFailure = r;
  });

  const launch = async (spec: ServiceSpec, log: WriteStream, natsUrl: string): Promise<ServiceProcess> => {
    const svc = await startServiceProcess({
      name: spec.name,
      entry: serviceEntry(ROOT, spec.name),
      cwd: ROOT,
      env: {
        ...stackEnv(spec, ports, natsUrl),
        ...(security ? secureServiceEnv(security.secrets.dir, spec.name) : PLAINTEXT_ENV),
        ...serviceEnv(spec.name, modelDir, o.dataDir),
        ...o.env?.[spec.name],
      },
      security: security?.client ?? {},
      onLine: (line) => log.write(`${line}\n`),
      // loading (and hashing) a model takes long for a real checkpoint or on a busy machine
      readyTimeoutMs: MODEL_SERVICES.has(spec.name) ? 600_000 : 60_000,
    });
    running.set(spec.name, svc);
    void svc.exited.then(({ code, signal }) => supervise(spec, log, natsUrl, signal ?? `code ${code}`));
    return svc;
  };

  // A service that dies is started again after 1, 2, 4 … 16 s; a service that stayed up a minute
  // has its count reset. Past maxRestarts in a row the stack reports it failed.
  const upSince = new Map<string, number>();
  const supervise = async (spec: ServiceSpec, log: WriteStream, natsUrl: string, how: string) => {
    if (stopping) return;
    const row = rows.get(spec.name)!;
    if (Date.now() - (upSince.get(spec.name) ?? 0) > 60_000) row.restarts = 0;
    if (row.restarts >= maxRestarts) {
      row.state = "failed";
      say(`${spec.name} exited (${how}) ${row.restarts} times in a row; not restarting it`);
      reportFailure(spec.name);
      return;
    }
    row.restarts++;
    row.state = "restarting";
    const delay = Math.min(16_000, 1000 * 2 ** (row.restarts - 1));
    say(`${spec.name} exited (${how}); restart ${row.restarts}/${maxRestarts} in ${delay / 1000} s`);
    await sleep(delay);
    if (stopping) return;
    try {
      await launch(spec, log, natsUrl);
      upSince.set(spec.name, Date.now());
      row.state = "serving";
      say(`${spec.name} restarted and SERVING`);
    } catch (err) {
      say(`${spec.name} did not come back: ${(err as Error).message.split("\n")[0]}`);
      void supervise(spec, log, natsUrl, "failed to start");
    }
  };

  const stop = async (): Promise<string[]> => {
    stopping = true;
    const problems: string[] = [];
    // Reverse registry order: callers stop before the services they call.
    const order = (name: string) => SERVICES.findIndex((s) => s.name === name);
    for (const svc of [...running.values()].sort((a, b) => order(b.name) - order(a.name))) {
      const { code, signal } = await svc.stop("SIGTERM", 20_000);
      if (code !== 0 && rows.get(svc.name)?.state === "serving")
        problems.push(`${svc.name} exited with ${signal ?? `code ${code}`}`);
    }
    await nats?.stop();
    for (const l of logs) l.end();
    return problems;
  };

  try {
    nats = await startNatsServer({
      binary: natsBinary,
      port: o.natsPort,
      storeDir: join(o.dataDir, "nats"),
      configFile: security?.secrets.natsConfig,
    });
    const natsUrl = nats.url;
    const results = await Promise.allSettled(
      specs.map(async (spec) => {
        const log = createWriteStream(join(o.dataDir, "logs", `${spec.name}.log`), { flags: "a" });
        logs.push(log);
        await launch(spec, log, natsUrl);
        upSince.set(spec.name, Date.now());
      }),
    );
    const bad = results.flatMap((r) => (r.status === "rejected" ? [(r.reason as Error).message] : []));
    if (bad.length) throw new Error(`could not start: ${bad.join("\n")}`);
  } catch (err) {
    await stop();
    throw err;
  }

  return {
    natsUrl: nats.url,
    security,
    ports,
    modelDir,
    services: specs,
    address: (name) => `127.0.0.1:${ports[name]}`,
    table: () => [...rows.values()].map((r) => ({ ...r })),
    process: (name) => running.get(name),
    failed,
    stop,
  };
}
