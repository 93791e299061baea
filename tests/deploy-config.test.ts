// deploy/compose*.yaml against the services' own declarations (services/*/src/declaration.ts, what
// each main.ts runs from): every service is deployed with the variables it reads and needs, on its
// own port, checked by gRPC health, after the peers it calls. No Docker needed: CI has no engine
// (`docker-compose config -q` in .ci/run checks the files' syntax; this checks their meaning).
import assert from "node:assert/strict";
import { readdirSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { before, describe, test } from "node:test";
import { DescriptorIndex } from "@temper/kit";
import { descriptorSetPath } from "@temper/proto";
import { filesOf, SERVICES } from "@temper/stack";
import { parse } from "yaml";
import { builtinDescriptorFiles } from "../packages/kit/src/builtin-descriptors.ts";
import { EndpointPolicy } from "../services/scheduler/src/endpoint-policy.ts";
import {
  type Declared,
  dashboardPanels,
  envProblems,
  loadDeclarations,
  readmeDeployCommands,
} from "./src/deploy.ts";
import { repoRoot } from "./src/index.ts";

interface ComposeService {
  image?: string;
  environment?: Record<string, string | number | boolean | null>;
  volumes?: string[];
  ports?: string[];
  depends_on?: Record<string, { condition?: string }> | string[];
  healthcheck?: { test?: string[]; disable?: boolean };
  command?: string[] | string;
  deploy?: unknown;
}
interface ComposeFile {
  services: Record<string, ComposeService>;
  volumes?: Record<string, unknown>;
}

function readCompose(file: string): ComposeFile {
  return parse(readFileSync(join(repoRoot, "deploy", file), "utf8"), { merge: true }) as ComposeFile;
}

/** `-f a -f b`: b's keys over a's, maps (environment, depends_on, deploy) merged, lists replaced. */
function overlay(base: ComposeFile, top: ComposeFile): ComposeFile {
  const services: Record<string, ComposeService> = { ...base.services };
  for (const [name, s] of Object.entries(top.services ?? {})) {
    const b = services[name] ?? {};
    services[name] = {
      ...b,
      ...s,
      environment: { ...(b.environment ?? {}), ...(s.environment ?? {}) },
      depends_on: {
        ...(b.depends_on as object),
        ...(s.depends_on as object),
      } as ComposeService["depends_on"],
    };
  }
  return { services, volumes: { ...(base.volumes ?? {}), ...(top.volumes ?? {}) } };
}

const stringEnv = (s: ComposeService) =>
  Object.fromEntries(Object.entries(s.environment ?? {}).map(([k, v]) => [k, v === null ? "" : String(v)]));

function dependsOn(s: ComposeService): Record<string, { condition?: string }> {
  if (Array.isArray(s.depends_on)) return Object.fromEntries(s.depends_on.map((n) => [n, {}]));
  return s.depends_on ?? {};
}

/** Every problem of a compose project against the declarations (empty when it is right). */
function composeProblems(project: ComposeFile, declared: Map<string, Declared>): string[] {
  const problems: string[] = [];
  for (const name of declared.keys())
    if (stringEnv(project.services[name] ?? {}).SERVICE !== name)
      problems.push(`${name}: no compose service ${name} runs it (its peers call it by that name)`);
  // Every container that runs a Temper service (a drop-in replacement may run one under another name).
  for (const [key, s] of Object.entries(project.services)) {
    const env = stringEnv(s);
    if (!env.SERVICE) continue;
    const name = env.SERVICE;
    const d = declared.get(name);
    if (!d) {
      problems.push(`compose service ${key} runs ${name}, which services/ lacks`);
      continue;
    }
    const mounts = (s.volumes ?? []).map((v) => v.split(":")[1]);
    const after = dependsOn(s);
    problems.push(
      ...envProblems(name, d, env, {
        mounts,
        peer(host, port) {
          const peer = project.services[host];
          if (!peer) return `no compose service ${host}`;
          const peerPort = host === "nats" ? "4222" : stringEnv(peer).PORT;
          if (String(port) !== peerPort) return `${host} listens on ${peerPort}, not ${port}`;
          if (after[host]?.condition !== "service_healthy")
            return `${key} does not wait for ${host} (depends_on condition service_healthy)`;
          return undefined;
        },
      }).map((p) => (key === name ? p : `${key} (${p})`)),
    );
    // The scheduler refuses to start when its allow-list rejects one of its own default endpoints.
    if (name === "scheduler" && env.SOURCE_ENDPOINT_ALLOW) {
      const policy = new EndpointPolicy(env.SOURCE_ENDPOINT_ALLOW);
      for (const [k, v] of Object.entries(env))
        if (/^REWARD_.*_ADDR$/.test(k) && policy.problem(v))
          problems.push(`scheduler: ${k}=${v}: ${policy.problem(v)}`);
    }
    const test = s.healthcheck?.test ?? [];
    const expected = ["CMD", "node", "tools/bin/temper.mjs", "health", `127.0.0.1:${env.PORT}`];
    if (s.healthcheck?.disable || JSON.stringify(test) !== JSON.stringify(expected))
      problems.push(`${key}: health check ${JSON.stringify(test)}, expected ${JSON.stringify(expected)}`);
    for (const v of s.volumes ?? []) {
      const volume = v.split(":")[0];
      if (!volume.startsWith(".") && !volume.startsWith("/") && !(volume in (project.volumes ?? {})))
        problems.push(`${key}: volume ${volume} is not declared`);
    }
  }
  // Published host ports: one owner each.
  const owners = new Map<string, string>();
  for (const [key, s] of Object.entries(project.services))
    for (const p of s.ports ?? []) {
      const host = String(p).split(":").slice(0, -1).join(":");
      if (owners.has(host)) problems.push(`host port ${host}: ${owners.get(host)} and ${key}`);
      owners.set(host, key);
    }
  return problems;
}

let declared: Map<string, Declared>;
before(async () => {
  declared = await loadDeclarations();
});

describe("deployment declarations (services/*/src/declaration.ts)", () => {
  test("one per service directory, each on its own default port", () => {
    assert.ok(declared.size >= 8, `found ${[...declared.keys()].join(", ")}`);
    const ports = new Map<number, string>();
    for (const [name, d] of declared) {
      assert.equal(d.declaration.name, name, `services/${name} declares itself as ${d.declaration.name}`);
      const other = ports.get(d.declaration.defaultPort);
      assert.equal(other, undefined, `${name} and ${other} share port ${d.declaration.defaultPort}`);
      ports.set(d.declaration.defaultPort, name);
    }
  });

  test("`temper stack` starts the same services on the same ports", () => {
    assert.deepEqual(
      Object.fromEntries(SERVICES.map((s) => [s.name, s.port])),
      Object.fromEntries([...declared].map(([name, d]) => [name, d.declaration.defaultPort])),
    );
  });

  test("the check finds what a broken deployment gets wrong", () => {
    const d = declared.get("orchestrator");
    assert.ok(d);
    const problems = envProblems(
      "orchestrator",
      d,
      { SERVICE: "orchestrator", PORT: "15090", RUNS_DIRR: "/runs", ROLLOUT_ADDR: "rollout:50071" },
      { mounts: [], peer: (host, port) => (port === 15070 ? undefined : `${host}:${port} is not served`) },
    );
    const has = (re: RegExp) =>
      assert.ok(
        problems.some((p) => re.test(p)),
        `${re} in\n${problems.join("\n")}`,
      );
    has(/RUNS_DIRR is set but the service does not read it/);
    has(/HOST defaults to 127\.0\.0\.1/);
    has(/SCHEDULER_ADDR defaults to 127\.0\.0\.1:15060/);
    has(/NATS_URL defaults to nats:\/\/127\.0\.0\.1:4222/);
    has(/ROLLOUT_ADDR=rollout:50071: rollout:50071 is not served/);
    has(/GRPC_TLS_CERT is not set/);
    has(/NATS_USER=undefined/);
    const learner = declared.get("learner");
    assert.ok(learner);
    const l = envProblems(
      "learner",
      learner,
      { SERVICE: "learner", CHECKPOINT_DIR: "/ckpt" },
      { mounts: ["/x"], peer: () => undefined },
    );
    assert.ok(
      l.some((p) => /MODEL_DIR or MODEL is required/.test(p)),
      l.join("\n"),
    );
    assert.ok(
      l.some((p) => /CHECKPOINT_DIR=\/ckpt is on no mounted volume/.test(p)),
      l.join("\n"),
    );
    assert.ok(
      l.some((p) => /PORT=undefined, not the service's default port 15080/.test(p)),
      l.join("\n"),
    );
    const bad = envProblems("learner", learner, { DTYPE: "float16" }, { mounts: [], peer: () => undefined });
    assert.ok(
      bad.some((p) => /DTYPE="float16": /.test(p)),
      bad.join("\n"),
    );
  });
});

describe("deploy/compose*.yaml", () => {
  test("compose.yaml runs every service with the variables it reads and needs", () => {
    assert.deepEqual(composeProblems(readCompose("compose.yaml"), declared), []);
  });

  // Every combination of the overlays, as CI's `docker-compose -f … config -q` loop renders them.
  const overlays = readdirSync(join(repoRoot, "deploy"))
    .filter((f) => /^compose\..+\.yaml$/.test(f))
    .sort();
  const combine = (mask: number) =>
    overlays.reduce(
      (project, f, i) => (mask & (1 << i) ? overlay(project, readCompose(f)) : project),
      readCompose("compose.yaml"),
    );

  test("every container mounts its own secrets only, and finds there every secret it names", () => {
    const services = SERVICES.map((x) => x.name);
    for (let mask = 0; mask < 1 << overlays.length; mask++) {
      const project = combine(mask);
      const where = ["compose.yaml", ...overlays.filter((_, i) => mask & (1 << i))].join(" + ");
      const init = project.services["secrets-init"];
      const cmd = init.command as string[];
      const shares = new Map(
        cmd[cmd.indexOf("--share") + 1].split(",").map((x) => x.split("=") as [string, string]),
      );
      for (const [key, s] of Object.entries(project.services)) {
        const mounts = (s.volumes ?? []).map((v) => v.split(":"));
        const secretMounts = mounts.filter(([volume]) => /^secrets/.test(volume));
        if (key === "secrets-init") {
          // it alone holds the whole set, and fills each holder's volume
          for (const [holder, dir] of shares)
            assert.ok(
              mounts.some(([volume, at]) => volume === `secrets-${holder}` && at === dir),
              `${where}: secrets-init does not mount secrets-${holder} at ${dir}`,
            );
          continue;
        }
        const env = stringEnv(s);
        const named = Object.entries(env).filter(([, v]) => v.startsWith("/secrets/"));
        // a holder: a container that runs a service, the NATS server, or the operator's CLI
        const holder =
          key === "nats" ? "nats" : (env.SERVICE ?? (env.AUTH_TOKEN_FILE ? "operator" : undefined));
        if (!holder) {
          assert.deepEqual(secretMounts, [], `${where}: ${key} holds no secrets but mounts ${secretMounts}`);
          continue;
        }
        assert.deepEqual(
          secretMounts.map(([volume, at]) => `${volume}:${at}`),
          [`secrets-${holder}:/secrets/temper`],
          `${where}: ${key} mounts other secrets than ${holder}'s`,
        );
        assert.ok(shares.has(holder), `${where}: secrets-init shares nothing with ${holder}`);
        const has = new Set(filesOf(holder, services).map((f) => `/secrets/temper/${f}`));
        for (const [k, v] of named)
          assert.ok(has.has(v), `${where}: ${key} ${k}=${v} is not among ${holder}'s secrets`);
      }
      // the operator's token: in the operator's volume only
      for (const [holder] of shares)
        if (holder !== "operator")
          assert.ok(!filesOf(holder, services).some((f) => /operator\.(token|key)$/.test(f)), holder);
    }
  });

  test("every combination of the overlays keeps every service right", () => {
    assert.ok(overlays.length >= 3, overlays.join(", "));
    for (let mask = 1; mask < 1 << overlays.length; mask++) {
      const names = overlays.filter((_, i) => mask & (1 << i));
      assert.deepEqual(composeProblems(combine(mask), declared), [], names.join(" + "));
    }
  });

  test("compose.observability.yaml sends every service's traces to the collector", () => {
    const project = overlay(readCompose("compose.yaml"), readCompose("compose.observability.yaml"));
    for (const name of declared.keys())
      assert.equal(
        stringEnv(project.services[name]).OTEL_EXPORTER_OTLP_ENDPOINT,
        "http://otel-collector:4318",
        `${name} exports no traces`,
      );
  });

  test("compose.gpu.yaml: rollout, learner and the reference model on CUDA, a GPU each, from the gpu image", () => {
    const project = overlay(readCompose("compose.yaml"), readCompose("compose.gpu.yaml"));
    for (const [name, variable] of [
      ["rollout", "PROVIDER"],
      ["learner", "PROVIDER"],
      ["reward-perplexity", "REFERENCE_PROVIDER"],
    ]) {
      const s = project.services[name] as ComposeService & { build?: { target?: string } };
      assert.equal(s.build?.target, "gpu", name);
      assert.equal(s.image, "temper:gpu", name);
      assert.deepEqual(
        (s.deploy as { resources: { reservations: { devices: unknown[] } } }).resources.reservations.devices,
        [{ driver: "nvidia", count: 1, capabilities: ["gpu"] }],
        name,
      );
      assert.equal(stringEnv(s)[variable], "cuda", name);
    }
    assert.match(readFileSync(join(repoRoot, "deploy/Dockerfile"), "utf8"), /^FROM \S+ AS gpu$/m);
  });

  test("compose.swap-reasoning.yaml: the scheduler's reasoning endpoint is another image's server", () => {
    const project = overlay(readCompose("compose.yaml"), readCompose("compose.swap-reasoning.yaml"));
    const scheduler = stringEnv(project.services.scheduler);
    const host = scheduler.REWARD_REASONING_ADDR.split(":")[0];
    assert.notEqual(host, "reward-reasoning");
    const alt = project.services[host];
    assert.equal(stringEnv(alt).SERVICE, "reward-reasoning");
    assert.match(String(alt.image), /REASONING_IMAGE/);
    // its certificate names it: secrets-init adds the host to every certificate
    assert.equal(stringEnv(project.services["secrets-init"]).SECRETS_HOSTS, host);
  });

  test("compose.experiment.yaml: the default experiment end to end, on shared volumes at the same paths", () => {
    const project = overlay(readCompose("compose.yaml"), readCompose("compose.experiment.yaml"));
    const prepare = project.services["experiment-prepare"];
    const experiment = project.services.experiment;
    const flag = (s: ComposeService, name: string) => {
      const cmd = s.command as string[];
      assert.deepEqual(cmd.slice(0, 3), ["node", "tools/bin/temper.mjs", "default"]);
      const i = cmd.indexOf(name);
      return i < 0 ? undefined : cmd[i + 1];
    };
    const dataDir = flag(prepare, "--data-dir")!;
    assert.ok((prepare.command as string[]).includes("--prepare"));
    assert.equal(flag(experiment, "--data-dir"), dataDir);
    // what the experiment's runs name: the warm start the rollout and the learner serve
    const mountOf = (s: ComposeService, volume: string) =>
      (s.volumes ?? []).find((v) => v.split(":")[0] === volume)?.split(":")[1];
    for (const name of ["rollout", "learner"]) {
      const s = project.services[name];
      assert.equal(stringEnv(s).MODEL_DIR, `${dataDir}/model-warm`, name);
      assert.equal(dependsOn(s)["experiment-prepare"]?.condition, "service_completed_successfully", name);
    }
    // the data dir on the models volume, mounted at one path wherever it is read
    const models = mountOf(prepare, "models")!;
    assert.ok(dataDir.startsWith(`${models}/`), `${dataDir} is on the models volume (${models})`);
    for (const name of ["rollout", "learner", "orchestrator", "experiment"])
      assert.equal(mountOf(project.services[name], "models"), models, name);
    // the run directories the orchestrator writes are where the CLI reads them for the report
    const runs = stringEnv(project.services.orchestrator).RUNS_DIR;
    assert.equal(mountOf(experiment, "runs"), runs);
    assert.equal(mountOf(project.services.orchestrator, "runs"), runs);
    assert.ok(flag(experiment, "--out")!.startsWith(`${runs}/`));
    // on the orchestrator the stack serves, once it is healthy, as the operator (StartRun mutates)
    const orch = stringEnv(project.services.orchestrator);
    assert.equal(flag(experiment, "--orchestrator"), `orchestrator:${orch.PORT}`);
    assert.equal(dependsOn(experiment).orchestrator?.condition, "service_healthy");
    assert.match(orch.AUTH_IDENTITIES, /\boperator\b/);
    const env = stringEnv(experiment);
    const secrets = mountOf(experiment, "secrets-operator")!;
    for (const k of ["GRPC_TLS_CA", "GRPC_TLS_CERT", "GRPC_TLS_KEY", "AUTH_TOKEN_FILE"])
      assert.ok(env[k]?.startsWith(`${secrets}/`), `${k}=${env[k]} on the secrets volume`);
    assert.match(env.GRPC_TLS_CERT, /operator\.crt$/);
    // both one-shot: they run once and exit
    for (const s of [prepare, experiment]) assert.equal((s as { restart?: string }).restart, "no");
  });

  test("compose.observability.yaml: Prometheus scrapes every service's METRICS_PORT; Grafana reads Prometheus and provisions the board", () => {
    const project = overlay(readCompose("compose.yaml"), readCompose("compose.observability.yaml"));
    const scrape = parse(readFileSync(join(repoRoot, "deploy", "prometheus.yml"), "utf8"));
    const jobs: { job_name: string; static_configs: { targets: string[] }[] }[] = scrape.scrape_configs;
    const targets = new Set(
      jobs.filter((c) => c.job_name === "temper").flatMap((c) => c.static_configs.flatMap((t) => t.targets)),
    );
    // the collector's metrics pipeline ends in a Prometheus exporter that Prometheus scrapes too
    const collector = parse(readFileSync(join(repoRoot, "deploy", "otel-collector.yaml"), "utf8"));
    assert.deepEqual(collector.service.pipelines.metrics.exporters, ["prometheus"]);
    const collectorPort = collector.exporters.prometheus.endpoint.split(":")[1];
    assert.ok(
      jobs.some((c) => c.static_configs.some((t) => t.targets.includes(`otel-collector:${collectorPort}`))),
    );
    const running = Object.entries(project.services).filter(([, s]) => stringEnv(s).SERVICE);
    assert.ok(running.length >= 8);
    for (const [key, s] of running) {
      const env = stringEnv(s);
      assert.ok(env.METRICS_PORT, `${key}: no METRICS_PORT`);
      assert.ok(targets.has(`${key}:${env.METRICS_PORT}`), `${key}:${env.METRICS_PORT} is not scraped`);
    }
    assert.equal(targets.size, running.length, "a scrape target runs no service");
    const grafana = project.services.grafana;
    assert.equal(dependsOn(grafana).prometheus?.condition, "service_healthy");
    const datasource = parse(
      readFileSync(
        join(repoRoot, "deploy", "grafana", "provisioning", "datasources", "prometheus.yaml"),
        "utf8",
      ),
    );
    assert.equal(
      datasource.datasources[0].url,
      `http://prometheus:${project.services.prometheus.ports![0].split(":")[1]}`,
    );
    const panels = dashboardPanels();
    assert.deepEqual([...new Set(panels.map((p) => p.board))].sort(), ["Temper runs", "Temper services"]);
    const exprs = panels.flatMap((p) => p.exprs);
    // every metric the board queries is one the services export (tests/service-metrics.test.ts)
    const exported = [
      "rpc_server_call_duration",
      "nodejs_eventloop_delay_p99",
      "v8js_memory_heap_used",
      "process_memory_usage",
      // per service and per run (tests/rl-loop.test.ts scrapes them)
      "temper_rollout_tokens",
      "temper_learner_tokens",
      "temper_scheduler_source_duration",
      "temper_runs",
      // each run's metrics.jsonl names (services/orchestrator/src/run-metrics.ts)
      "temper_reward_",
      "temper_accuracy_",
      "temper_alpha",
      "temper_zero_signal_fraction",
      "temper_train_",
      "temper_time_",
    ];
    for (const e of exprs)
      assert.ok(
        exported.some((m) => e.includes(m)),
        `the board queries something no service exports: ${e}`,
      );
    for (const m of exported)
      assert.ok(
        exprs.some((e) => e.includes(m)),
        `the board shows no ${m}`,
      );
  });

  test("compose.observability.yaml: collector and Jaeger answer real health checks; the collector waits for Jaeger", () => {
    const obs = readCompose("compose.observability.yaml");
    const collector = obs.services["otel-collector"];
    const jaeger = obs.services.jaeger;
    assert.deepEqual(collector.healthcheck?.test, [
      "CMD",
      "wget",
      "-q",
      "-O",
      "/dev/null",
      "http://127.0.0.1:13133/",
    ]);
    assert.deepEqual(jaeger.healthcheck?.test, [
      "CMD",
      "wget",
      "-q",
      "-O",
      "/dev/null",
      "http://127.0.0.1:14269/",
    ]);
    assert.equal(dependsOn(collector).jaeger?.condition, "service_healthy");
    // 13133 is the collector's health_check extension, and the collector runs it
    const config = parse(readFileSync(join(repoRoot, "deploy", "otel-collector.yaml"), "utf8"));
    assert.equal(config.extensions.health_check.endpoint, "0.0.0.0:13133");
    assert.ok(config.service.extensions.includes("health_check"));
    // the image has wget: built from deploy/otel-collector.Dockerfile on Alpine (BusyBox)
    const build = (collector as { build?: { context: string; dockerfile: string } }).build!;
    const dockerfile = readFileSync(join(repoRoot, "deploy", build.context, build.dockerfile), "utf8");
    assert.match(dockerfile, /^FROM alpine:\S+$/m);
    assert.match(dockerfile, /^COPY --from=otelcol \/otelcol-contrib \/otelcol-contrib$/m);
  });

  test("nats: JetStream on a volume, health from the monitoring port's /healthz", () => {
    const nats = readCompose("compose.yaml").services.nats;
    const cmd = (nats.command as string[]).join(" ");
    assert.match(cmd, /-js\b/);
    assert.match(cmd, /-sd \/data/);
    assert.ok(nats.volumes?.some((v) => v.startsWith("nats-data:/data")));
    assert.deepEqual(nats.healthcheck?.test, [
      "CMD",
      "wget",
      "-q",
      "-O",
      "/dev/null",
      "http://127.0.0.1:8222/healthz",
    ]);
  });
});

describe('README "Deploy": its commands are the ones the checks cover', () => {
  const lines = readmeDeployCommands();

  test("compose: deploy/compose.yaml first, then overlays CI combines", () => {
    const compose = lines.filter((l) => /\bdocker compose\b/.test(l));
    assert.ok(compose.length >= 4, compose.join("\n"));
    for (const l of compose) {
      const files = [...l.matchAll(/-f (\S+)/g)].map((m) => m[1]);
      assert.equal(files[0], "deploy/compose.yaml", l);
      for (const f of files.slice(1)) {
        assert.match(f, /^deploy\/compose\.[^/]+\.yaml$/, l);
        assert.doesNotThrow(() => readCompose(f.slice("deploy/".length)), l);
      }
    }
  });

  test("kubectl: every path is a kustomization the k8s test renders", () => {
    const kube = lines.filter((l) => /^kubectl (apply -k|kustomize) /.test(l));
    assert.ok(kube.length >= 3, kube.join("\n"));
    for (const l of kube) {
      const dir = l.split(" ").at(-1) ?? "";
      assert.match(dir, /^deploy\/k8s\/(secrets|overlays\/(dev|gpu|scale))$/, l);
      assert.doesNotThrow(() => readFileSync(join(repoRoot, dir, "kustomization.yaml")), l);
    }
  });

  test("grpcurl: every service on its port, methods and request fields that exist", () => {
    const index = DescriptorIndex.fromPath(descriptorSetPath);
    for (const file of builtinDescriptorFiles()) index.addFile(file); // grpc.health.v1, as servers add it
    const byPort = new Map([...declared.values()].map((d) => [d.declaration.defaultPort, d]));
    const loop = lines.find((l) => l.startsWith("for port in "));
    assert.deepEqual(
      loop
        ?.match(/for port in ([\d ]+);/)?.[1]
        .trim()
        .split(/\s+/)
        .map(Number)
        .sort(),
      [...byPort.keys()].sort(),
    );
    const calls = lines.filter((l) => l.startsWith("grpcurl ") && /\s\S+\/\S+$/.test(l));
    const served = new Set<number>();
    for (const l of calls) {
      const [, address, method] = /\s(\S+:\d+) (\S+\/\S+)$/.exec(l) ?? [];
      const port = Number(address?.split(":").at(-1));
      const d = byPort.get(port);
      assert.ok(d, `${l}: port ${port} is no service's`);
      const [svc] = method.split("/");
      assert.ok(
        svc === d.healthName || svc === "grpc.health.v1.Health",
        `${l}: ${svc} is not served on ${port}`,
      );
      const input = index.methodInputs.get(`/${method}`);
      assert.ok(input, `${l}: no method ${method}`);
      const body = /-d '(\{.*?\})'/.exec(l)?.[1];
      if (body) {
        const fields = (index.messages.get(input)?.field ?? []).flatMap((f) => [f.name, f.jsonName]);
        for (const k of Object.keys(JSON.parse(body)))
          assert.ok(fields.includes(k), `${l}: ${input} has no field ${k}`);
        const health = JSON.parse(body).service;
        if (svc === "grpc.health.v1.Health") assert.ok(health === "" || health === d.healthName, l);
      }
      served.add(port);
    }
    assert.deepEqual([...served].sort(), [...byPort.keys()].sort(), "an RPC for every service");
  });
});

describe("deploy/compose.hub.yaml", () => {
  test("a one-shot model-pull fills the Hub cache that rollout and learner read MODEL from, at one path", () => {
    const base = readCompose("compose.yaml");
    const project = overlay(base, readCompose("compose.hub.yaml"));
    assert.deepEqual(composeProblems(project, declared), []);
    const pull = project.services["model-pull"];
    assert.equal((pull as { restart?: string }).restart, "no");
    const script = (pull.command as string[]).join(" ");
    const model = /temper\.mjs model pull "([^"]+)"/.exec(script)?.[1];
    assert.ok(model, script);
    assert.match(script, /temper\.mjs data pull gsm8k/);
    const mountOf = (s: ComposeService) =>
      (s.volumes ?? []).find((v) => v.startsWith("hf-cache:"))?.split(":")[1];
    const cache = stringEnv(pull).HF_HUB_CACHE;
    assert.ok(cache.startsWith(`${mountOf(pull)}/`), cache);
    // the orchestrator reads hf:// data from the same cache
    const orch = project.services.orchestrator;
    assert.equal(stringEnv(orch).HF_HUB_CACHE, cache);
    assert.equal(mountOf(orch), mountOf(pull));
    for (const v of base.services.orchestrator.volumes ?? []) assert.ok(orch.volumes?.includes(v), v);
    for (const name of ["rollout", "learner"]) {
      const s = project.services[name];
      const env = stringEnv(s);
      assert.equal(env.MODEL, model, `${name} serves the model model-pull pulls`);
      assert.equal(env.MODEL_DIR, "", `${name}: MODEL decides`);
      assert.equal(env.HF_HUB_CACHE, cache, name);
      assert.equal(mountOf(s), mountOf(pull), name);
      assert.equal(dependsOn(s)["model-pull"]?.condition, "service_completed_successfully", name);
      // everything the base mounts is still mounted
      for (const v of base.services[name].volumes ?? []) assert.ok(s.volumes?.includes(v), `${name}: ${v}`);
    }
  });
});
