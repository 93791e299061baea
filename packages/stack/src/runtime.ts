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
import { join, resolve } from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import {
  type ClientSecurity,
  findNatsServer,
  type NatsServerHandle,
  type ServiceProcess,
  securityConfigSchema,
  startNatsServer,
} from "@temper/kit";
import { initModel, presetConfig, tokenizerIds } from "@temper/qwen3";
import { StackError } from "./errors.ts";
import { launchService, ROOT } from "./launch.ts";
import { ephemeralPortRange, portFree } from "./ports.ts";
import { ensureSecrets, operatorEnv, type Secrets, secureServiceEnv } from "./secrets.ts";
import {
  implementedServices,
  REPLICABLE,
  replica,
  SERVICES,
  type ServiceSpec,
  stackEnv,
} from "./services.ts";

/** One process of the stack: a service, or one of its replicas. */
export interface Instance {
  name: string;
  spec: ServiceSpec;
  port: number;
}

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
   * Instances of a service (default 1): rollout and the reward sources only (docs/operations.md, Scaling).
   * Replica k ≥ 1 is named `<service>-<k+1>` on the service's port + 1000·k; the orchestrator
   * shards each step over every rollout, and the scheduler (and the orchestrator's evaluation)
   * balance calls over a source's replicas, given to them as one endpoint, an ip:port list.
   */
  replicas?: Record<string, number>;
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
  /** The instance: the service's name, or `<service>-<k>` for its k-th replica. */
  name: string;
  service: string;
  address: string;
  restarts: number;
  state: "serving" | "restarting" | "failed";
}

export interface Stack {
  natsUrl: string;
  /** Present on a secure stack. */
  security?: StackSecurity;
  /** Port of every instance (a service's name is its first instance). */
  ports: Record<string, number>;
  modelDir: string | undefined;
  services: ServiceSpec[];
  /** Every instance, in start order. */
  instances: Instance[];
  /** host:port of an instance (a service's name: its first instance). */
  address(name: string): string;
  /** What a client of a service is given: its address, or an ip:port list of its replicas. */
  endpoint(service: string): string;
  /** The services and what the supervisor did to them. */
  table(): ServiceRow[];
  /** The running process of a service (tests kill it to see the supervisor restart it). */
  process(name: string): ServiceProcess | undefined;
  /** The running nats-server (supervised too: killed, it is started again on its port). */
  nats(): NatsServerHandle | undefined;
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
      throw new StackError(`--model ${flag}: no config.json there (expected a Hugging Face model directory)`);
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

/** nats-server from PATH; as root with apt-get, installs Debian's package; else a StackError. */
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
    throw new StackError("apt-get could not install nats-server; install it and retry");
  }
  throw new StackError(
    "nats-server not found: install it (Debian/Ubuntu: sudo apt-get install nats-server) or set NATS_SERVER_BIN",
  );
}

export async function startStack(o: StackOptions): Promise<Stack> {
  const say = o.onEvent ?? (() => {});
  const specs = implementedServices();
  for (const [name, n] of Object.entries(o.replicas ?? {})) {
    if (!SERVICES.some((s) => s.name === name))
      throw new StackError(
        `replicas of ${name}: no such service (${SERVICES.map((s) => s.name).join(", ")})`,
      );
    if (n !== 1 && !REPLICABLE.has(name))
      throw new StackError(
        `replicas of ${name}: only ${[...REPLICABLE].join(", ")} run as several processes (learner, scheduler and orchestrator own state)`,
      );
    if (!Number.isInteger(n) || n < 1 || n > 16)
      throw new StackError(`replicas of ${name}: expected an integer in [1, 16], got ${n}`);
  }
  const instances: Instance[] = specs.flatMap((spec) =>
    Array.from({ length: o.replicas?.[spec.name] ?? 1 }, (_, k) => ({
      ...replica(spec, k, o.portOffset),
      spec,
    })),
  );
  const tooHigh = instances.find((i) => i.port > 65535);
  if (tooHigh)
    throw new StackError(`${tooHigh.name} would listen on port ${tooHigh.port}: use a lower --port-offset`);
  const ports: Record<string, number> = Object.fromEntries(
    SERVICES.map((s) => [s.name, replica(s, 0, o.portOffset).port]),
  );
  for (const i of instances) ports[i.name] = i.port;
  const endpoints: Record<string, string> = Object.fromEntries(
    SERVICES.map((s) => [
      s.name,
      instances
        .filter((i) => i.spec === s)
        .map((i) => `127.0.0.1:${i.port}`)
        .join(",") || `127.0.0.1:${ports[s.name]}`,
    ]),
  );
  for (const [name, port] of [
    ["nats", o.natsPort] as const,
    ...instances.map((i) => [i.name, i.port] as const),
  ])
    if (!(await portFree(port)))
      throw new StackError(`port ${port} (${name}) is in use: stop what holds it, or pass --port-offset`);
  const ephemeral = ephemeralPortRange();
  const exposed = instances.filter((i) => ephemeral && i.port >= ephemeral[0] && i.port <= ephemeral[1]);
  if (exposed.length)
    say(
      `warning: ${exposed.map((i) => `${i.name} (${i.port})`).join(", ")} in this machine's ephemeral port range ${ephemeral!.join("–")}: an outgoing connection may hold such a port while its service restarts`,
    );
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
    instances.map((i) => [
      i.name,
      { name: i.name, service: i.spec.name, address: `127.0.0.1:${i.port}`, restarts: 0, state: "serving" },
    ]),
  );
  const logs: WriteStream[] = [];
  let nats: NatsServerHandle | undefined;
  let stopping = false;
  let reportFailure: (name: string) => void = () => {};
  const failed = new Promise<string>((r) => {
    reportFailure = r;
  });

  const launch = async (inst: Instance, log: WriteStream, natsUrl: string): Promise<ServiceProcess> => {
    const spec = inst.spec;
    const svc = await launchService({
      name: inst.name,
      service: spec.name,
      env: {
        ...stackEnv(inst.port, endpoints, natsUrl),
        ...(security ? secureServiceEnv(security.secrets.dir, spec.name) : PLAINTEXT_ENV),
        ...serviceEnv(spec.name, modelDir, o.dataDir),
        ...o.env?.[spec.name],
      },
      security: security?.client ?? {},
      onLine: (line) => log.write(`${line}\n`),
      // loading (and hashing) a model takes long for a real checkpoint or on a busy machine
      readyTimeoutMs: MODEL_SERVICES.has(spec.name) ? 600_000 : 60_000,
    });
    running.set(inst.name, svc);
    void svc.exited.then(({ code, signal }) => supervise(inst, log, natsUrl, signal ?? `code ${code}`));
    return svc;
  };

  // A service that dies is started again after 1, 2, 4 … 16 s; a service that stayed up a minute
  // has its count reset. Past maxRestarts in a row the stack reports it failed.
  const upSince = new Map<string, number>();
  const supervise = async (inst: Instance, log: WriteStream, natsUrl: string, how: string) => {
    if (stopping) return;
    const row = rows.get(inst.name)!;
    if (Date.now() - (upSince.get(inst.name) ?? 0) > 60_000) row.restarts = 0;
    if (row.restarts >= maxRestarts) {
      row.state = "failed";
      say(`${inst.name} exited (${how}) ${row.restarts} times in a row; not restarting it`);
      reportFailure(inst.name);
      return;
    }
    row.restarts++;
    row.state = "restarting";
    const delay = Math.min(16_000, 1000 * 2 ** (row.restarts - 1));
    say(`${inst.name} exited (${how}); restart ${row.restarts}/${maxRestarts} in ${delay / 1000} s`);
    await sleep(delay);
    if (stopping) return;
    try {
      await launch(inst, log, natsUrl);
      upSince.set(inst.name, Date.now());
      row.state = "serving";
      say(`${inst.name} restarted and SERVING`);
    } catch (err) {
      say(`${inst.name} did not come back: ${(err as Error).message.split("\n")[0]}`);
      void supervise(inst, log, natsUrl, "failed to start");
    }
  };

  const stop = async (): Promise<string[]> => {
    stopping = true;
    const problems: string[] = [];
    // Reverse registry order: callers stop before the services they call.
    const order = (name: string) => SERVICES.findIndex((s) => s.name === rows.get(name)?.service);
    for (const svc of [...running.values()].sort((a, b) => order(b.name) - order(a.name))) {
      const { code, signal } = await svc.stop("SIGTERM", 20_000);
      if (code !== 0 && rows.get(svc.name)?.state === "serving")
        problems.push(`${svc.name} exited with ${signal ?? `code ${code}`}`);
    }
    await nats?.stop();
    for (const l of logs) l.end();
    return problems;
  };

  // nats-server is supervised like a service: restarted on the same port and store, the services'
  // clients reconnect by themselves (connectBus), and a run waits the outage out.
  const startNats = (port: number) =>
    startNatsServer({
      binary: natsBinary,
      port,
      storeDir: join(o.dataDir, "nats"),
      configFile: security?.secrets.natsConfig,
    });
  const superviseNats = (handle: NatsServerHandle) => {
    void handle.exited.then(async ({ code, signal }) => {
      if (stopping || nats !== handle) return;
      say(`nats exited (${signal ?? `code ${code}`}); restarting it`);
      for (let attempt = 1; !stopping; attempt++) {
        await sleep(Math.min(8000, 500 * 2 ** (attempt - 1)));
        if (stopping) return;
        try {
          nats = await startNats(handle.port);
          say("nats restarted");
          superviseNats(nats);
          return;
        } catch (err) {
          say(`nats did not come back: ${(err as Error).message.split("\n")[0]}`);
        }
      }
    });
  };

  try {
    nats = await startNats(o.natsPort);
    superviseNats(nats);
    const natsUrl = nats.url;
    const results = await Promise.allSettled(
      instances.map(async (inst) => {
        const log = createWriteStream(join(o.dataDir, "logs", `${inst.name}.log`), { flags: "a" });
        logs.push(log);
        await launch(inst, log, natsUrl);
        upSince.set(inst.name, Date.now());
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
    instances,
    address: (name) => `127.0.0.1:${ports[name]}`,
    endpoint: (service) => endpoints[service],
    table: () => [...rows.values()].map((r) => ({ ...r })),
    process: (name) => running.get(name),
    nats: () => nats,
    failed,
    stop,
  };
}
