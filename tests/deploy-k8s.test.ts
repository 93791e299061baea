// deploy/k8s: every overlay rendered by `kubectl kustomize` (CI installs Debian's kubectl 1.20, whose
// old built-in kustomize the manifests are written for), each object validated against the
// Kubernetes schemas (kubernetes-models), and the services checked against their declarations
// (services/*/src/declaration.ts) as tests/deploy-config.test.ts checks compose: the variables they
// read and need, peers that exist on their ports, native gRPC probes on a plaintext health port
// (readiness: the service's own health name; liveness: the server-wide ""), Services with a `grpc`
// port, resources, volumes, the Secret's keys as `temper secrets` makes them. No cluster needed.
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { cpSync, mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, test } from "node:test";
import { parseAllDocuments } from "yaml";
import { type Declared, envProblems, loadDeclarations, readmeDeployCommands } from "./src/deploy.ts";
import { repoRoot } from "./src/index.ts";

const KUBECTL = process.env.KUBECTL ?? "kubectl";
const probe = spawnSync(KUBECTL, ["version", "--client"], { encoding: "utf8" });
const skip = probe.error
  ? `${KUBECTL} not installed (${probe.error.message}): CI installs kubernetes-client`
  : false;
if (skip) process.stdout.write(`deploy-k8s: skipped: ${skip}\n`);

const OVERLAYS = ["dev", "gpu", "scale", "hub"];

/** A rendered manifest: untyped YAML. */
type Obj = {
  apiVersion: string;
  kind: string;
  metadata: { name: string; labels?: Record<string, string> };
  // biome-ignore lint/suspicious/noExplicitAny: rendered manifests are untyped YAML
  [k: string]: any;
};

function kustomize(dir: string): Obj[] {
  const r = spawnSync(KUBECTL, ["kustomize", dir], { encoding: "utf8", maxBuffer: 1 << 26 });
  assert.equal(r.status, 0, `${KUBECTL} kustomize ${dir}: ${r.stderr}`);
  return parseAllDocuments(r.stdout)
    .map((d) => d.toJS() as Obj)
    .filter(Boolean);
}

async function schemaProblem(o: Obj): Promise<string | undefined> {
  const mod = (await import(`kubernetes-models/${o.apiVersion}`)) as Record<
    string,
    new (
      x: unknown,
    ) => { validate(): void }
  >;
  const Model = mod[o.kind];
  if (!Model) return `${o.kind} ${o.metadata.name}: no schema for ${o.apiVersion} ${o.kind}`;
  // kustomize 5 wraps a Secret's base64 in lines, which the API server's decoder skips
  const obj =
    o.kind === "Secret" && o.data
      ? {
          ...o,
          data: Object.fromEntries(Object.entries(o.data).map(([k, v]) => [k, String(v).replace(/\s/g, "")])),
        }
      : o;
  try {
    new Model(obj).validate();
    return undefined;
  } catch (err) {
    return `${o.kind} ${o.metadata.name}: ${(err as Error).message}`;
  }
}

const find = (objs: Obj[], kind: string, name: string) =>
  objs.find((o) => o.kind === kind && o.metadata.name === name);

const selects = (selector: Record<string, string>, labels: Record<string, string> = {}) =>
  Object.entries(selector).every(([k, v]) => labels[k] === v);

/** The workloads (Deployments, StatefulSets) whose pods a Service selects. */
function podsOf(objs: Obj[], service: Obj): Obj[] {
  return objs.filter(
    (o) =>
      (o.kind === "Deployment" || o.kind === "StatefulSet") &&
      selects(service.spec.selector ?? {}, o.spec.template.metadata.labels),
  );
}

/** Every problem of one rendered overlay (with the Secret) against the declarations. */
function overlayProblems(objs: Obj[], declared: Map<string, Declared>): string[] {
  const problems: string[] = [];
  const secret = find(objs, "Secret", "temper-secrets");
  if (!secret) problems.push("no Secret temper-secrets");
  for (const [name, d] of declared) {
    const say = (m: string) => problems.push(`${name}: ${m}`);
    const dep = find(objs, "Deployment", name);
    if (!dep) {
      say("no Deployment");
      continue;
    }
    const pod = dep.spec.template.spec;
    const c = pod.containers.find((x: Obj) => x.name === name);
    if (!c) {
      say("no container named after the service");
      continue;
    }
    // The environment as the kubelet assembles it: envFrom in order, then env.
    const env: Record<string, string> = {};
    for (const from of c.envFrom ?? []) {
      const ref = from.configMapRef ?? from.secretRef;
      const src = find(objs, from.configMapRef ? "ConfigMap" : "Secret", ref.name);
      if (!src) say(`envFrom ${ref.name}: not in the manifests`);
      else Object.assign(env, src.data ?? {});
    }
    for (const e of c.env ?? []) if (e.value !== undefined) env[e.name] = e.value;
    const mounts: string[] = (c.volumeMounts ?? []).map((m: Obj) => m.mountPath);
    problems.push(
      ...envProblems(name, d, env, {
        mounts,
        peer(host, port) {
          const svc = find(objs, "Service", host);
          if (!svc) return `no Service ${host}`;
          const sp = svc.spec.ports.find((p: Obj) => p.port === port);
          if (!sp) return `Service ${host} has no port ${port}`;
          const targets = podsOf(objs, svc).flatMap((w) => w.spec.template.spec.containers);
          const served = targets.some((t: Obj) =>
            (t.ports ?? []).some((cp: Obj) =>
              typeof sp.targetPort === "string"
                ? cp.name === sp.targetPort
                : cp.containerPort === (sp.targetPort ?? port),
            ),
          );
          return served ? undefined : `Service ${host}:${port} selects no pod serving it`;
        },
      }),
    );
    // Secret files: every path under the secret mount is an item of the volume, from a key the Secret has.
    for (const m of c.volumeMounts ?? []) {
      const vol = pod.volumes.find((v: Obj) => v.name === m.name);
      if (
        vol?.persistentVolumeClaim &&
        !find(objs, "PersistentVolumeClaim", vol.persistentVolumeClaim.claimName)
      )
        say(`volume ${m.name}: no PersistentVolumeClaim ${vol.persistentVolumeClaim.claimName}`);
      if (!vol?.secret) continue;
      for (const [key, value] of Object.entries(env)) {
        if (!value.startsWith(`${m.mountPath}/`)) continue;
        const path = value.slice(m.mountPath.length + 1);
        const item = (vol.secret.items ?? []).find((i: Obj) => i.path === path);
        if (!item) say(`${key}=${value}: not projected from Secret ${vol.secret.secretName}`);
        else if (secret && !(item.key in (secret.data ?? {})))
          say(`${key}=${value}: Secret ${vol.secret.secretName} has no key ${item.key}`);
      }
    }
    // Probes: native gRPC, on the plaintext health port (the kubelet's probe speaks no TLS).
    const healthPort = Number(env.HEALTH_PORT);
    const r = c.readinessProbe?.grpc;
    const l = c.livenessProbe?.grpc;
    if (!r || r.port !== healthPort || r.service !== d.healthName)
      say(
        `readiness ${JSON.stringify(c.readinessProbe)}: expected gRPC on ${healthPort}, service ${d.healthName}`,
      );
    if (!l || l.port !== healthPort || (l.service ?? "") !== "")
      say(`liveness ${JSON.stringify(c.livenessProbe)}: expected gRPC on ${healthPort}, service ""`);
    if (
      c.startupProbe &&
      (c.startupProbe.grpc?.port !== healthPort || (c.startupProbe.grpc.service ?? "") !== "")
    )
      say(`startup ${JSON.stringify(c.startupProbe)}: expected gRPC on ${healthPort}, service ""`);
    const ports: Obj[] = c.ports ?? [];
    if (!ports.some((p) => p.name === "grpc" && String(p.containerPort) === env.PORT))
      say(`no container port grpc = PORT ${env.PORT}`);
    if (!ports.some((p) => p.name === "health" && p.containerPort === healthPort))
      say(`no container port health = HEALTH_PORT ${env.HEALTH_PORT}`);
    // Metrics: Prometheus finds the pod by its annotations, on METRICS_PORT, path /metrics.
    const notes = dep.spec.template.metadata?.annotations ?? {};
    if (!env.METRICS_PORT) say("METRICS_PORT is not set");
    else {
      if (notes["prometheus.io/scrape"] !== "true" || notes["prometheus.io/port"] !== env.METRICS_PORT)
        say(
          `annotations ${JSON.stringify(notes)}: expected prometheus.io/scrape "true", port ${env.METRICS_PORT}`,
        );
      if (notes["prometheus.io/path"] !== "/metrics") say("prometheus.io/path is not /metrics");
      if (!ports.some((p) => p.name === "metrics" && String(p.containerPort) === env.METRICS_PORT))
        say(`no container port metrics = METRICS_PORT ${env.METRICS_PORT}`);
    }
    // Its Service: named after it, port `grpc` on PORT, to the container's grpc port.
    const svc = find(objs, "Service", name);
    const sp = svc?.spec.ports.find((p: Obj) => p.name === "grpc");
    if (
      !svc ||
      !sp ||
      String(sp.port) !== env.PORT ||
      sp.targetPort !== "grpc" ||
      !podsOf(objs, svc).includes(dep)
    )
      say(`Service ${name}: expected port grpc ${env.PORT} -> the pods' grpc port`);
  }
  // Every container: requests and limits for CPU and memory.
  for (const o of objs) {
    if (!o.spec?.template?.spec) continue;
    const spec = o.spec.template.spec;
    for (const c of [...(spec.initContainers ?? []), ...spec.containers])
      for (const kind of ["requests", "limits"])
        for (const r of ["cpu", "memory"])
          if (!c.resources?.[kind]?.[r])
            problems.push(`${o.kind} ${o.metadata.name}/${c.name}: no ${kind}.${r}`);
  }
  return problems;
}

describe("deploy/k8s (kustomize overlays)", { skip }, () => {
  let declared: Map<string, Declared>;
  let work: string;
  const rendered = new Map<string, Obj[]>();

  before(async () => {
    declared = await loadDeclarations();
    // A copy with the Secret's files made as the README says (`temper secrets`), so the Secret renders.
    work = mkdtempSync(join(tmpdir(), "temper-k8s-"));
    cpSync(join(repoRoot, "deploy", "k8s"), join(work, "k8s"), { recursive: true });
    // README "Deploy"'s command, with the copy's directory
    const readme = readmeDeployCommands().find((l) =>
      l.startsWith("temper secrets --dir deploy/k8s/secrets/files"),
    );
    assert.ok(readme, 'README "Deploy" shows how the Secret\'s files are made');
    const args = readme.split(/\s+/).slice(1);
    args[args.indexOf("--dir") + 1] = join(work, "k8s/secrets/files");
    const made = spawnSync(process.execPath, [join(repoRoot, "tools/bin/temper.mjs"), ...args], {
      encoding: "utf8",
    });
    assert.equal(made.status, 0, made.stderr);
    const secrets = kustomize(join(work, "k8s/secrets"));
    for (const o of OVERLAYS) rendered.set(o, [...kustomize(join(work, "k8s/overlays", o)), ...secrets]);
  });
  after(() => {
    if (work) rmSync(work, { recursive: true, force: true });
  });

  test("every object of every overlay is valid against the Kubernetes schemas", async () => {
    for (const [overlay, objs] of rendered) {
      const problems = (await Promise.all(objs.map(schemaProblem))).filter(Boolean);
      assert.deepEqual(problems, [], overlay);
    }
  });

  test("the schema check rejects a wrong type", async () => {
    const dep = structuredClone(find(rendered.get("dev") ?? [], "Deployment", "scheduler"));
    assert.ok(dep);
    dep.spec.template.spec.containers[0].readinessProbe.grpc.port = "health";
    assert.match((await schemaProblem(dep)) ?? "", /port must be integer/);
  });

  for (const overlay of OVERLAYS)
    test(`${overlay}: every service with the variables it reads and needs, gRPC probes, a grpc Service`, () => {
      assert.deepEqual(overlayProblems(rendered.get(overlay) ?? [], declared), []);
    });

  test("the Secret holds no CA key or operator credential", () => {
    const secret = find(rendered.get("dev") ?? [], "Secret", "temper-secrets");
    assert.ok(secret);
    const keys = Object.keys(secret.data);
    assert.ok(keys.includes("ca.crt") && keys.includes("nats.conf"), keys.join(", "));
    assert.deepEqual(
      keys.filter((k) => k === "ca.key" || k.startsWith("operator.")),
      [],
    );
  });

  test("NATS: a 3-node JetStream cluster whose routes name its own pods, store on its own volumes", () => {
    for (const [overlay, objs] of rendered) {
      const sts = find(objs, "StatefulSet", "nats");
      assert.ok(sts, overlay);
      assert.equal(sts.spec.replicas, 3);
      const headless = find(objs, "Service", sts.spec.serviceName);
      assert.equal(headless?.spec.clusterIP, "None");
      const cm = objs.find((o) => o.kind === "ConfigMap" && o.metadata.name.startsWith("nats-config"));
      const conf: string = cm?.data["nats-server.conf"] ?? "";
      for (let i = 0; i < 3; i++)
        assert.match(conf, new RegExp(`nats-route://nats-${i}\\.${sts.spec.serviceName}:6222`));
      assert.match(conf, /jetstream\s*\{\s*store_dir: \/data/);
      assert.match(conf, /include \.\.\/auth\/nats\.conf/);
      const c = sts.spec.template.spec.containers[0];
      assert.ok(
        c.volumeMounts.some(
          (m: Obj) => m.mountPath === "/data" && m.name === sts.spec.volumeClaimTemplates[0].metadata.name,
        ),
      );
      assert.equal(c.readinessProbe.httpGet.path, "/healthz");
      // what the services create (streams, KV, object stores) lives on every server
      const users = objs.filter((o) => o.kind === "ConfigMap" && o.data?.NATS_USER);
      assert.ok(users.length >= 4, overlay);
      for (const cm of users)
        assert.equal(cm.data.NATS_REPLICAS, String(sts.spec.replicas), cm.metadata.name);
    }
  });

  test("autoscaling: reward sources and rollout, never the stateful services; rollout pods by a headless Service", () => {
    for (const [overlay, objs] of rendered) {
      const scaled = objs
        .filter((o) => o.kind === "HorizontalPodAutoscaler")
        .map((o) => o.spec.scaleTargetRef.name)
        .sort();
      assert.deepEqual(
        scaled,
        [...declared.keys()].filter((n) => n.startsWith("reward-") || n === "rollout").sort(),
        overlay,
      );
      const orchestrator =
        find(objs, "ConfigMap", "") ??
        objs.find((o) => o.kind === "ConfigMap" && o.data?.SERVICE === "orchestrator");
      const host = String(orchestrator?.data.ROLLOUT_ADDR).split(":")[0];
      const svc = find(objs, "Service", host);
      assert.equal(
        svc?.spec.clusterIP,
        "None",
        `${overlay}: ROLLOUT_ADDR=${orchestrator?.data.ROLLOUT_ADDR}`,
      );
      assert.deepEqual(
        podsOf(objs, svc as Obj).map((w) => w.metadata.name),
        ["rollout"],
      );
    }
    const scale = rendered.get("scale") ?? [];
    assert.ok((find(scale, "Deployment", "rollout")?.spec.replicas ?? 0) > 1);
  });

  test("gpu: rollout, learner and the reference model on CUDA, a GPU each, on GPU nodes, from the gpu image", () => {
    const objs = rendered.get("gpu") ?? [];
    for (const [name, variable] of [
      ["rollout", "PROVIDER"],
      ["learner", "PROVIDER"],
      ["reward-perplexity", "REFERENCE_PROVIDER"],
    ]) {
      const pod = find(objs, "Deployment", name)?.spec.template.spec;
      const c = pod.containers[0];
      assert.equal(c.image, "temper:gpu", name);
      assert.equal(String(c.resources.limits["nvidia.com/gpu"]), "1", name);
      assert.equal(pod.nodeSelector["nvidia.com/gpu.present"], "true", name);
      assert.ok(
        pod.tolerations.some((t: Obj) => t.key === "nvidia.com/gpu" && t.effect === "NoSchedule"),
        name,
      );
      const cm = objs.find((o) => o.kind === "ConfigMap" && o.data?.SERVICE === name);
      assert.equal(cm?.data[variable], "cuda", name);
    }
    const dev = rendered.get("dev") ?? [];
    assert.equal(
      find(dev, "Deployment", "rollout")?.spec.template.spec.containers[0].resources.limits["nvidia.com/gpu"],
      undefined,
    );
  });

  test("hub: a model-pull Job fills the Hub cache rollout and learner read MODEL from, mounted at one path", () => {
    const objs = rendered.get("hub") ?? [];
    const job = find(objs, "Job", "model-pull");
    assert.ok(job);
    const pod = job.spec.template.spec;
    const configMap = (ref: string) => objs.find((o) => o.kind === "ConfigMap" && o.metadata.name === ref);
    const envOf = (c: Obj) =>
      Object.assign({}, ...(c.envFrom ?? []).map((e: Obj) => configMap(e.configMapRef.name)?.data ?? {}));
    const mountAt = (spec: Obj, c: Obj) => {
      const m = c.volumeMounts.find(
        (v: Obj) =>
          spec.volumes.find((x: Obj) => x.name === v.name)?.persistentVolumeClaim?.claimName === "hf-cache",
      );
      return m?.mountPath;
    };
    const pulled = envOf(pod.containers[0]);
    assert.match(pod.containers[0].command.join(" "), /temper\.mjs model pull "\$MODEL"/);
    const cache = mountAt(pod, pod.containers[0]);
    assert.ok(pulled.HF_HUB_CACHE.startsWith(`${cache}/`));
    for (const name of ["rollout", "learner"]) {
      const spec = find(objs, "Deployment", name)?.spec.template.spec;
      const env = envOf(spec.containers[0]);
      assert.equal(env.MODEL, pulled.MODEL, `${name} serves the model the Job pulls`);
      assert.equal(env.MODEL_DIR, "", `${name}: MODEL decides`);
      assert.equal(env.HF_HUB_CACHE, pulled.HF_HUB_CACHE, name);
      assert.equal(mountAt(spec, spec.containers[0]), cache, name);
      const wait = spec.initContainers.find((c: Obj) => c.name === "wait-for-model");
      assert.match(
        wait.command.join(" "),
        /HF_HUB_OFFLINE=1 node tools\/bin\/temper\.mjs model pull "\$MODEL"/,
      );
      assert.equal(mountAt(spec, wait), cache, `${name}: wait-for-model sees the cache`);
    }
  });
});
