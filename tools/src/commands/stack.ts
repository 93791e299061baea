// `temper stack`: nats-server with JetStream plus every implemented service on loopback, each
// SERVING before the endpoints are printed; stays up until Ctrl-C / SIGTERM and stops everything
// it started. `--check` starts, verifies health, stops and exits 0.
import { spawnSync } from "node:child_process";
import { createWriteStream, existsSync, mkdirSync, renameSync, rmSync, type WriteStream } from "node:fs";
import { createServer } from "node:net";
import { join, resolve } from "node:path";
import {
  findNatsServer,
  type NatsServerHandle,
  type ServiceProcess,
  startNatsServer,
  startServiceProcess,
} from "@temper/kit";
import { initModel, presetConfig, tokenizerIds } from "@temper/qwen3";
import { CliError, numberFlag, parseFlags } from "../cli.ts";
import { implementedServices, NATS_DEFAULT_PORT, SERVICES, serviceEntry, stackEnv } from "../services.ts";

const ROOT = resolve(import.meta.dirname, "..", "..", "..");

const USAGE = `usage: temper stack [--check] [--data-dir DIR] [--model DIR] [--nats-port N] [--port-offset N]

Starts nats-server (JetStream) and every implemented service on 127.0.0.1, waits until each
reports SERVING, prints the endpoints and runs until Ctrl-C.

  --check          start, verify health, stop, exit 0
  --data-dir DIR   JetStream store, service logs, checkpoints (default .temper/stack in the repo)
  --model DIR      base model of rollout and learner (Hugging Face layout); default: a small
                   model made once under the data dir (models/small)
  --nats-port N    NATS client port (default ${NATS_DEFAULT_PORT})
  --port-offset N  added to every default port, NATS included (to run beside another stack)

default ports: ${SERVICES.map((s) => `${s.name} ${s.port}`).join(", ")}, nats ${NATS_DEFAULT_PORT}`;

/** Services that load the base model. */
const MODEL_SERVICES = new Set(["rollout", "learner"]);

/**
 * The model rollout and learner serve: --model (checked), else a small model made once under the
 * data dir, so `npm start` needs nothing but the repository.
 */
function stackModel(flag: string | undefined, dataDir: string): string {
  if (flag !== undefined) {
    const dir = resolve(flag);
    if (!existsSync(join(dir, "config.json")))
      throw new CliError(`--model ${flag}: no config.json there (expected a Hugging Face model directory)`);
    return dir;
  }
  const dir = join(dataDir, "models", "small");
  if (!existsSync(join(dir, "config.json"))) {
    process.stdout.write(`temper stack: no --model given, making a small model once in ${dir}\n`);
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

/** What rollout and learner need besides the common variables. */
function modelServiceEnv(
  name: string,
  modelDir: string | undefined,
  dataDir: string,
): Record<string, string> {
  if (!modelDir || !MODEL_SERVICES.has(name)) return {};
  if (name === "learner")
    return {
      MODEL_DIR: modelDir,
      CHECKPOINT_DIR: join(dataDir, "checkpoints"),
      EXPORT_DIR: join(dataDir, "exports"),
    };
  return { MODEL_DIR: modelDir };
}

function portFree(port: number): Promise<boolean> {
  return new Promise((done) => {
    const server = createServer();
    server.once("error", () => done(false));
    server.listen(port, "127.0.0.1", () => server.close(() => done(true)));
  });
}

/** nats-server from PATH; as root with apt-get, installs Debian's package; else a CliError. */
function ensureNatsServer(): string {
  const found = findNatsServer();
  if (found) return found;
  const apt = spawnSync("sh", ["-c", "command -v apt-get"], { encoding: "utf8" });
  if (process.getuid?.() === 0 && apt.status === 0) {
    process.stderr.write(
      "temper stack: nats-server not found, installing Debian's nats-server with apt-get\n",
    );
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

export async function run(argv: string[]): Promise<void> {
  const { values } = parseFlags(argv, {
    check: { type: "boolean" },
    "data-dir": { type: "string" },
    "nats-port": { type: "string" },
    "port-offset": { type: "string" },
    model: { type: "string" },
    help: { type: "boolean", short: "h" },
  });
  if (values.help) {
    process.stdout.write(`${USAGE}\n`);
    return;
  }
  const offset = numberFlag("port-offset", values["port-offset"], 0)!;
  if (!Number.isInteger(offset) || offset < 0 || offset > 10_000)
    throw new CliError(`--port-offset: expected an integer in [0, 10000], got ${offset}`);
  const natsPort = numberFlag("nats-port", values["nats-port"], NATS_DEFAULT_PORT + offset)!;
  if (!Number.isInteger(natsPort) || natsPort < 1 || natsPort > 65535)
    throw new CliError(`--nats-port: expected a port in [1, 65535], got ${natsPort}`);
  const dataDir = resolve(values["data-dir"] ?? join(ROOT, ".temper", "stack"));
  const specs = implementedServices(ROOT);
  const ports = Object.fromEntries(SERVICES.map((s) => [s.name, s.port + offset]));

  for (const [name, port] of [
    ["nats", natsPort] as const,
    ...specs.map((s) => [s.name, ports[s.name]] as const),
  ])
    if (!(await portFree(port)))
      throw new CliError(`port ${port} (${name}) is in use: stop what holds it, or pass --port-offset`);
  const natsBinary = ensureNatsServer();
  mkdirSync(join(dataDir, "logs"), { recursive: true });
  const needsModel = specs.some((s) => MODEL_SERVICES.has(s.name));
  const modelDir = needsModel ? stackModel(values.model, dataDir) : undefined;

  const started: ServiceProcess[] = [];
  const logs: WriteStream[] = [];
  let nats: NatsServerHandle | undefined;
  const stopAll = async (): Promise<string[]> => {
    const problems: string[] = [];
    // Reverse registry order: callers stop before the services they call.
    const order = (name: string) => SERVICES.findIndex((s) => s.name === name);
    for (const svc of [...started].sort((a, b) => order(b.name) - order(a.name))) {
      const { code, signal } = await svc.stop("SIGTERM", 20_000);
      if (code !== 0) problems.push(`${svc.name} exited with ${signal ?? `code ${code}`}`);
    }
    await nats?.stop();
    for (const l of logs) l.end();
    return problems;
  };

  try {
    nats = await startNatsServer({ binary: natsBinary, port: natsPort, storeDir: join(dataDir, "nats") });
    const natsUrl = nats.url;
    const results = await Promise.allSettled(
      specs.map(async (spec) => {
        const log = createWriteStream(join(dataDir, "logs", `${spec.name}.log`), { flags: "a" });
        logs.push(log);
        const svc = await startServiceProcess({
          name: spec.name,
          entry: serviceEntry(ROOT, spec.name),
          cwd: ROOT,
          env: { ...stackEnv(spec, ports, natsUrl), ...modelServiceEnv(spec.name, modelDir, dataDir) },
          onLine: (line) => log.write(`${line}\n`),
        });
        started.push(svc);
        return svc;
      }),
    );
    const failed = results.flatMap((r) => (r.status === "rejected" ? [(r.reason as Error).message] : []));
    if (failed.length) throw new Error(`could not start: ${failed.join("\n")}`);
  } catch (err) {
    await stopAll();
    throw err;
  }

  const width = Math.max(4, ...specs.map((s) => s.name.length));
  const lines = [
    `${"nats".padEnd(width)}  ${nats.url}  (JetStream store ${join(dataDir, "nats")})`,
    ...specs.map((s) => `${s.name.padEnd(width)}  127.0.0.1:${ports[s.name]}`),
  ];
  const missing = SERVICES.filter((s) => !specs.includes(s)).map((s) => s.name);
  process.stdout.write(
    `temper stack: ${specs.length} service(s) SERVING\n${lines.map((l) => `  ${l}`).join("\n")}\n`,
  );
  if (missing.length) process.stdout.write(`  not implemented yet: ${missing.join(", ")}\n`);
  if (modelDir) process.stdout.write(`  model: ${modelDir}\n`);
  process.stdout.write(`  logs: ${join(dataDir, "logs")}\n`);

  if (values.check) {
    const problems = await stopAll();
    if (problems.length) throw new Error(`unclean stop: ${problems.join("; ")}`);
    process.stdout.write("temper stack: check passed, everything stopped\n");
    return;
  }

  process.stdout.write("temper stack: running; Ctrl-C to stop\n");
  await new Promise<void>((done) => {
    let stopping = false;
    const stop = (why: string) => {
      if (stopping) return;
      stopping = true;
      process.stdout.write(`temper stack: ${why}, stopping\n`);
      void stopAll().then((problems) => {
        for (const p of problems) process.stderr.write(`temper stack: ${p}\n`);
        if (problems.length) process.exitCode = 1;
        done();
      });
    };
    process.once("SIGINT", () => stop("SIGINT"));
    process.once("SIGTERM", () => stop("SIGTERM"));
    for (const svc of started)
      void svc.exited.then(({ code, signal }) => {
        if (stopping) return;
        process.stderr.write(`temper stack: ${svc.name} exited unexpectedly (${signal ?? `code ${code}`})\n`);
        process.exitCode = 1;
        stop(`${svc.name} died`);
      });
  });
}
