// The deployment checks' shared part: each service's declaration (the ServiceDeclaration its main.ts
// runs from) and one check of the environment a deployment gives a service, used for compose and
// for the Kubernetes manifests alike.
import { readdirSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { pathToFileURL } from "node:url";
import { type ServiceDeclaration, serviceName, serviceSchema } from "@temper/kit";
import { repoRoot } from "./processes.ts";

export interface Declared {
  declaration: ServiceDeclaration;
  /** Every variable the service reads (common, NATS, its own). */
  schema: ReturnType<typeof serviceSchema>;
  /** The health name its readiness follows (its application service). */
  healthName: string;
}

/** Every directory under services/, with the declaration its main.ts runs from. */
export async function loadDeclarations(): Promise<Map<string, Declared>> {
  const dir = join(repoRoot, "services");
  const out = new Map<string, Declared>();
  for (const name of readdirSync(dir).sort()) {
    const file = join(dir, name, "src", "declaration.ts");
    const mod = (await import(pathToFileURL(file).href)) as { declaration: ServiceDeclaration };
    const d = mod.declaration;
    out.set(name, { declaration: d, schema: serviceSchema(d), healthName: serviceName(d.api) });
  }
  return out;
}

const LOOPBACK = /(^|[/@,\s])(127\.0\.0\.1|localhost|\[::1\])(:|$|,)/;

function rendered(value: unknown): string {
  return Array.isArray(value) ? value.join(",") : String(value);
}

/** host:port pairs named by an address variable's value (a URL, host:port or a comma list of them). */
export function addressesOf(value: string): { host: string; port: number }[] {
  return value.split(",").map((entry) => {
    const e = entry.trim();
    if (e.includes("://")) {
      const u = new URL(e);
      return { host: u.hostname, port: Number(u.port || (u.protocol === "nats:" ? 4222 : 0)) };
    }
    const i = e.lastIndexOf(":");
    return { host: e.slice(0, i).replace(/^\[|\]$/g, ""), port: Number(e.slice(i + 1)) };
  });
}

export interface DeploymentView {
  /** Where the deployment mounts volumes in this service's container. */
  mounts: string[];
  /** A problem with reaching host:port from this service (unknown host, wrong port, no ordering). */
  peer(host: string, port: number): string | undefined;
}

/**
 * What is wrong with the environment `env` a deployment gives service `name`, as one line each.
 * Derived from the declaration, not from a list kept here: a variable the service does not read is
 * a typo; a required one (no default) must be set; one whose default is a loopback address must be
 * set to another host (in a container or pod, loopback is never the other service); values must
 * parse as the service parses them; address variables must name a peer the deployment runs; paths
 * must lie on a mounted volume; the secure defaults (mutual TLS, credentials, the service's own NATS
 * user) must be on.
 */
export function envProblems(
  name: string,
  d: Declared,
  env: Record<string, string>,
  view: DeploymentView,
): string[] {
  const problems: string[] = [];
  const say = (m: string) => problems.push(`${name}: ${m}`);
  if (env.SERVICE !== name) say(`SERVICE=${JSON.stringify(env.SERVICE)} (the image runs services/$SERVICE)`);
  for (const key of Object.keys(env)) {
    if (key !== "SERVICE" && !(key in d.schema)) say(`${key} is set but the service does not read it`);
  }
  for (const [key, spec] of Object.entries(d.schema)) {
    const value = env[key];
    const set = value !== undefined && value !== "";
    if (spec.default === undefined && !spec.optional && !set)
      say(`${key} is required (no default) but not set`);
    const loopbackDefault = spec.default !== undefined && LOOPBACK.test(rendered(spec.default));
    if (loopbackDefault && (!set || LOOPBACK.test(value)))
      say(`${key} defaults to ${rendered(spec.default)} (loopback): set it to the peer's name`);
    if (!set) continue;
    const onDisk = /file|director|path/i.test(spec.kind);
    if (!onDisk) {
      try {
        spec.parse(value);
      } catch (err) {
        say(`${key}=${JSON.stringify(value)}: ${(err as Error).message}`);
      }
    }
    if (value.startsWith("/") && !view.mounts.some((m) => value === m || value.startsWith(`${m}/`)))
      say(`${key}=${value} is on no mounted volume (${view.mounts.join(", ") || "none"})`);
    if (loopbackDefault && key !== "HOST") {
      for (const { host, port } of addressesOf(value)) {
        const problem = view.peer(host, port);
        if (problem) say(`${key}=${value}: ${problem}`);
      }
    }
  }
  // a model by directory or by Hub id: one of the two (services/*: @temper/hub serviceModelDir)
  if ("MODEL" in d.schema && !env.MODEL_DIR && !env.MODEL)
    say("MODEL_DIR or MODEL is required but neither is set");
  if (env.PORT !== String(d.declaration.defaultPort))
    say(`PORT=${env.PORT}, not the service's default port ${d.declaration.defaultPort}`);
  for (const key of ["GRPC_TLS_CERT", "GRPC_TLS_KEY", "GRPC_TLS_CA", "AUTH_TOKENS_FILE"])
    if (!env[key]) say(`${key} is not set (deployments are secure by default)`);
  if (env.GRPC_TLS_CLIENT_AUTH !== "require") say("GRPC_TLS_CLIENT_AUTH is not `require`");
  if (d.declaration.nats) {
    if (env.NATS_USER !== name) say(`NATS_USER=${JSON.stringify(env.NATS_USER)}, not the service's own user`);
    if (!env.NATS_PASSWORD_FILE) say("NATS_PASSWORD_FILE is not set");
  }
  return problems;
}

/** The shell lines of docs/operations.md's "Deploy" section (its ```sh blocks, continuations joined). */
export function readmeDeployCommands(): string[] {
  const readme = readFileSync(join(repoRoot, "docs", "operations.md"), "utf8");
  const start = readme.indexOf("\n## Deploy\n");
  if (start < 0) throw new Error('docs/operations.md has no "## Deploy" section');
  const end = readme.indexOf("\n## ", start + 1);
  const section = readme.slice(start, end < 0 ? undefined : end);
  const lines: string[] = [];
  for (const block of section.matchAll(/```sh\n([\s\S]*?)```/g))
    lines.push(
      ...block[1]
        .replace(/\\\n\s*/g, "")
        .split("\n")
        .map((l) => l.replace(/\s+#.*$/, "").trim())
        .filter((l) => l && !l.startsWith("#")),
    );
  return lines;
}

/** Every panel of every Grafana board under deploy/grafana/dashboards: its board, title and queries. */
export function dashboardPanels(): { board: string; title: string; exprs: string[] }[] {
  const dir = join(repoRoot, "deploy", "grafana", "dashboards");
  return readdirSync(dir)
    .filter((f) => f.endsWith(".json"))
    .flatMap((f) => {
      const board = JSON.parse(readFileSync(join(dir, f), "utf8")) as {
        title: string;
        panels: { title: string; targets: { expr: string }[] }[];
      };
      return board.panels.map((p) => ({
        board: board.title,
        title: p.title,
        exprs: p.targets.map((t) => t.expr),
      }));
    });
}
