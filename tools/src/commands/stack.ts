// `temper stack`: nats-server with JetStream plus every implemented service on loopback, each
// SERVING before the endpoints are printed; a supervisor restarts a service that dies; stays up
// until Ctrl-C / SIGTERM and stops everything it started. `--check` starts, verifies health, stops
// and exits 0.
import { join, resolve } from "node:path";
import { NATS_DEFAULT_PORT, ROOT, SERVICES, startStack } from "@temper/stack";
import { CliError, numberFlag, parseFlags } from "../cli.ts";
import { resolveModelFlag } from "../model-flag.ts";

const USAGE = `usage: temper stack [--check] [--secure] [--rollout-workers N] [--replicas SOURCE=N,...] [--data-dir DIR] [--model DIR] [--nats-port N] [--port-offset N] [--max-restarts N]

Starts nats-server (JetStream) and every implemented service on 127.0.0.1, waits until each
reports SERVING, prints the endpoints and runs until Ctrl-C. A service that dies is restarted
(after 1, 2, 4, 8, 16 s; it gives up after --max-restarts in a row and stops the stack).

  --check          start, verify health, stop, exit 0
  --secure         TLS with mutual TLS on every gRPC hop, a credential for mutating RPCs, NATS
                   users with per-service permissions; certificates, tokens and NATS passwords
                   are made once under DATA_DIR/secrets (docs/operations.md, Security); default: plaintext
  --rollout-workers N  rollout processes (default 1); the orchestrator shards each step over
                   all of them (ROLLOUT_ADDR lists them); worker k ≥ 2 is rollout-k on port
                   15070 + 1000·(k−1)
  --replicas SOURCE=N,...  processes of a reward source (correctness, perplexity, reasoning,
                   consistency; default 1 each) behind one endpoint: the scheduler balances
                   calls over them (round_robin over an ip:port list); replica k ≥ 2 is
                   reward-SOURCE-k on the source's port + 1000·(k−1)
  --max-restarts N restarts in a row before giving up on a service (default 5)
  --data-dir DIR   JetStream store, service logs, checkpoints (default .temper/stack in the repo)
  --model DIR      base model of rollout and learner (Hugging Face layout); default: a small
                   model made once under the data dir (models/small)
  --nats-port N    NATS client port (default ${NATS_DEFAULT_PORT})
  --port-offset N  added to every default port, NATS included (to run beside another stack)

default ports: ${SERVICES.map((s) => `${s.name} ${s.port}`).join(", ")}, nats ${NATS_DEFAULT_PORT}`;

export async function run(rawArgv: string[]): Promise<void> {
  const argv = await resolveModelFlag(rawArgv);
  const { values } = parseFlags(argv, {
    check: { type: "boolean" },
    secure: { type: "boolean" },
    "data-dir": { type: "string" },
    "nats-port": { type: "string" },
    "port-offset": { type: "string" },
    "max-restarts": { type: "string" },
    model: { type: "string" },
    "rollout-workers": { type: "string" },
    replicas: { type: "string" },
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
  const maxRestarts = numberFlag("max-restarts", values["max-restarts"], 5)!;
  if (!Number.isInteger(maxRestarts) || maxRestarts < 0 || maxRestarts > 1000)
    throw new CliError(`--max-restarts: expected an integer in [0, 1000], got ${maxRestarts}`);
  const replicas = parseReplicas(values.replicas);
  const workers = numberFlag("rollout-workers", values["rollout-workers"], 1)!;
  if (!Number.isInteger(workers) || workers < 1 || workers > 16)
    throw new CliError(`--rollout-workers: expected an integer in [1, 16], got ${workers}`);
  replicas.rollout = workers;
  const dataDir = resolve(values["data-dir"] ?? join(ROOT, ".temper", "stack"));
  const say = (line: string) => process.stdout.write(`temper stack: ${line}\n`);
  const stack = await startStack({
    dataDir,
    natsPort,
    portOffset: offset,
    model: values.model,
    maxRestarts,
    replicas,
    onEvent: say,
    secure: values.secure,
  });

  const specs = stack.services;
  const width = Math.max(4, ...stack.instances.map((i) => i.name.length));
  const lines = [
    `${"nats".padEnd(width)}  ${stack.natsUrl}  (JetStream store ${join(dataDir, "nats")})`,
    ...stack.instances.map((i) => `${i.name.padEnd(width)}  ${stack.address(i.name)}`),
  ];
  for (const s of specs)
    if (stack.endpoint(s.name).includes(","))
      lines.push(`${s.name} endpoint (balanced over its replicas): ${stack.endpoint(s.name)}`);
  const missing = SERVICES.filter((s) => !specs.includes(s)).map((s) => s.name);
  process.stdout.write(
    `temper stack: ${specs.length} service(s) SERVING${stack.instances.length > specs.length ? ` in ${stack.instances.length} processes` : ""}\n${lines.map((l) => `  ${l}`).join("\n")}\n`,
  );
  if (missing.length) process.stdout.write(`  not implemented yet: ${missing.join(", ")}\n`);
  if (stack.modelDir) process.stdout.write(`  model: ${stack.modelDir}\n`);
  process.stdout.write(`  logs: ${join(dataDir, "logs")}\n`);
  if (stack.security) {
    const env = Object.entries(stack.security.env).map(([k, v]) => `${k}=${v}`);
    const s = stack.security.secrets;
    process.stdout.write(
      `  secure: mutual TLS, credentials on mutating RPCs, NATS users (secrets in ${s.dir})\n` +
        `  the CLI as operator: export ${env.join(" ")}\n` +
        `  grpcurl: grpcurl -cacert ${s.ca} -cert ${s.operator.cert} -key ${s.operator.key} -H "authorization: Bearer $(cat ${s.operator.token})" ${stack.address("scheduler")} list\n`,
    );
  }

  if (values.check) {
    const problems = await stack.stop();
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
      say(`${why}, stopping`);
      void stack.stop().then((problems) => {
        for (const p of problems) process.stderr.write(`temper stack: ${p}\n`);
        if (problems.length) process.exitCode = 1;
        done();
      });
    };
    process.once("SIGINT", () => stop("SIGINT"));
    process.once("SIGTERM", () => stop("SIGTERM"));
    void stack.failed.then((name) => {
      process.exitCode = 1;
      stop(`${name} keeps failing`);
    });
  });
}

/** `--replicas correctness=2,reasoning=3`: reward source → processes. */
export function parseReplicas(raw: string | undefined): Record<string, number> {
  const out: Record<string, number> = {};
  if (raw === undefined) return out;
  for (const part of raw.split(",")) {
    const m = /^\s*(?:reward-)?([a-z]+)\s*=\s*(\d+)\s*$/.exec(part);
    if (!m)
      throw new CliError(`--replicas: expected SOURCE=N (e.g. correctness=2), got ${JSON.stringify(part)}`);
    const service = `reward-${m[1]}`;
    if (!SERVICES.some((s) => s.name === service))
      throw new CliError(
        `--replicas: ${m[1]} is not a reward source (correctness, perplexity, reasoning, consistency); rollout workers: --rollout-workers`,
      );
    const n = Number(m[2]);
    if (n < 1 || n > 16) throw new CliError(`--replicas ${m[1]}: expected an integer in [1, 16], got ${n}`);
    out[service] = n;
  }
  return out;
}
