// The secrets of a secure deployment, made once into a directory: a private CA, one certificate
// per service (and one for the operator), the operator's bearer token, and NATS users with
// per-service permissions. `temper stack --secure` and compose's one-shot secrets-init use it; the
// environment each service then needs comes from secureServiceEnv().
import { randomBytes } from "node:crypto";
import {
  chmodSync,
  chownSync,
  copyFileSync,
  existsSync,
  mkdirSync,
  readdirSync,
  renameSync,
  rmSync,
  writeFileSync,
} from "node:fs";
import { dirname, join } from "node:path";
import { type Leaf, makeCertificates, tokenDigest } from "@temper/kit";

/** Who the operator is: the CLI user's certificate name and token name. */
export const OPERATOR = "operator";

/** JetStream buckets and the one service allowed to write each. */
/**
 * The services that use NATS, each with its own user; the reward sources use none and get none.
 * The buckets are created by their owners (BUCKET_OWNERS) when those first start; the events stream
 * TEMPER by whichever of these starts first (each may create it, so none waits for another), and
 * changed by its owner only.
 */
export const NATS_USERS = ["scheduler", "rollout", "learner", "orchestrator"];
export const EVENTS_STREAM_OWNER = "orchestrator";

export const BUCKET_OWNERS: Record<string, { kind: "kv" | "obj"; bucket: string }[]> = {
  scheduler: [{ kind: "kv", bucket: "temper_scheduler" }],
  orchestrator: [{ kind: "kv", bucket: "temper_orchestrator" }],
  learner: [{ kind: "obj", bucket: "temper_adapters" }],
};

/** Which client identities may call each service's mutating RPCs (AUTH_IDENTITIES). */
export const CALLERS: Record<string, string[]> = {
  scheduler: ["orchestrator", OPERATOR],
  learner: ["orchestrator", OPERATOR],
  orchestrator: [OPERATOR],
  // Generate changes nothing but holds the engine
  rollout: ["orchestrator", OPERATOR],
};

/** CALLER_CALL_LIMITS: identities allowed more than one call at once (the orchestrator drives several runs). */
export const CALLER_LIMITS: Record<string, string> = { rollout: "orchestrator=64" };

export interface SecretsOptions {
  dir: string;
  /** Service names: each gets a certificate (CN and DNS name = the service name) and a NATS user. */
  services: string[];
  /** Extra DNS names / IP addresses on every service certificate (localhost, 127.0.0.1 and ::1 always are). */
  hosts?: string[];
  /** "auto" (default): openssl when installed, else node-forge. */
  backend?: "auto" | "openssl" | "forge";
  /**
   * Who owns the files (chown; needs root): the user the services run as, when it is not the one
   * making them (compose's secrets-init runs as root for the image's `node` user, 1000:1000).
   */
  owner?: { uid: number; gid: number };
}

export interface Secrets {
  dir: string;
  ca: string;
  /** The operator's files, for the CLI, grpcurl and tests. */
  operator: { cert: string; key: string; token: string };
  natsConfig: string;
  /** What was done: "created" or "kept" (every file was already there). */
  outcome: "created" | "kept";
  backend: "openssl" | "forge" | "none";
}

/** Which of `services` get a NATS user. */
function natsUsers(services: string[]): string[] {
  return services.filter((s) => NATS_USERS.includes(s));
}

function files(dir: string, services: string[]) {
  const names = [...services, OPERATOR];
  return [
    join(dir, "ca.crt"),
    join(dir, "ca.key"),
    join(dir, "tokens"),
    join(dir, `${OPERATOR}.token`),
    join(dir, "nats", "nats.conf"),
    ...names.flatMap((n) => [join(dir, `${n}.crt`), join(dir, `${n}.key`)]),
    ...natsUsers(services).map((n) => join(dir, "nats", `${n}.password`)),
  ];
}

function secret(bytes: number): string {
  return randomBytes(bytes).toString("base64url");
}

/**
 * Only the owner reads a secret: files 0600, directories 0700, owned by `owner` when given (another
 * local user read every key, token and password when they were 0644 in 0755 directories).
 */
function protect(dir: string, services: string[], owner?: { uid: number; gid: number }): void {
  const dirs = [dir, join(dir, "nats")];
  for (const f of files(dir, services)) {
    chmodSync(f, 0o600);
    if (owner) chownSync(f, owner.uid, owner.gid);
  }
  for (const d of dirs) {
    chmodSync(d, 0o700);
    if (owner) chownSync(d, owner.uid, owner.gid);
  }
}

/** publish/subscribe allow-lists of a service's NATS user. */
export function natsPermissions(service: string): { publish: string[]; subscribe: string[] } {
  const own = BUCKET_OWNERS[service] ?? [];
  const publish = [
    // read side of JetStream: account info, stream info and lookups, direct and message gets,
    // consumers (ordered consumers read KV keys and objects) and their acks and flow control
    "$JS.API.INFO",
    "$JS.API.STREAM.INFO.*",
    "$JS.API.STREAM.NAMES",
    "$JS.API.STREAM.LIST",
    "$JS.API.STREAM.MSG.GET.*",
    "$JS.API.DIRECT.GET.>",
    "$JS.API.CONSUMER.>",
    "$JS.ACK.>",
    "$JS.FC.>",
    // the events stream (created by whoever comes first, changed by its owner only) and its events
    "$JS.API.STREAM.CREATE.TEMPER",
    ...(service === EVENTS_STREAM_OWNER ? ["$JS.API.STREAM.UPDATE.TEMPER"] : []),
    "temper.>",
  ];
  for (const { kind, bucket } of own) {
    const stream = kind === "kv" ? `KV_${bucket}` : `OBJ_${bucket}`;
    publish.push(
      kind === "kv" ? `$KV.${bucket}.>` : `$O.${bucket}.>`,
      ...["CREATE", "UPDATE", "PURGE", "MSG.DELETE"].map((op) => `$JS.API.STREAM.${op}.${stream}`),
    );
  }
  return { publish, subscribe: ["_INBOX.>", "temper.>"] };
}

/** nats-server configuration: one user per service, each with its permissions; no anonymous access. */
export function natsConfig(passwords: Record<string, string>): string {
  const users = Object.entries(passwords).map(([user, password]) => {
    const p = natsPermissions(user);
    return {
      user,
      password,
      permissions: { publish: { allow: p.publish }, subscribe: { allow: p.subscribe } },
    };
  });
  // JSON is valid nats-server configuration; quoted strings are taken literally ($ included).
  return `# Made by temper: one user per service; only each bucket's owner may write it.\nauthorization ${JSON.stringify({ users }, null, 2)}\n`;
}

/**
 * Makes the secrets under `dir` unless every file is already there (then keeps them, so a restart
 * or a second `up` changes nothing). Files are written into a temporary directory and renamed.
 */
export async function ensureSecrets(o: SecretsOptions): Promise<Secrets> {
  const result = (outcome: Secrets["outcome"], backend: Secrets["backend"]): Secrets => ({
    dir: o.dir,
    ca: join(o.dir, "ca.crt"),
    operator: {
      cert: join(o.dir, `${OPERATOR}.crt`),
      key: join(o.dir, `${OPERATOR}.key`),
      token: join(o.dir, `${OPERATOR}.token`),
    },
    natsConfig: join(o.dir, "nats", "nats.conf"),
    outcome,
    backend,
  });
  if (files(o.dir, o.services).every((f) => existsSync(f))) {
    // a directory made by an older version had its files readable by all: tighten it too
    protect(o.dir, o.services, o.owner);
    return result("kept", "none");
  }
  if (existsSync(join(o.dir, "ca.crt")))
    throw new Error(
      `${o.dir}: holds some secrets but not all (for services ${o.services.join(", ")}): remove the directory to make new ones`,
    );
  let backend: Secrets["backend"] = "none";
  const tmp = `${o.dir}.tmp-${process.pid}`;
  rmSync(tmp, { recursive: true, force: true });
  mkdirSync(join(tmp, "nats"), { recursive: true, mode: 0o700 });
  try {
    const common = ["localhost", "127.0.0.1", "::1", ...(o.hosts ?? [])];
    const leaves: Leaf[] = [
      ...o.services.map((name) => ({ name, sans: [name, ...common] })),
      { name: OPERATOR, sans: [OPERATOR] },
    ];
    backend = await makeCertificates(tmp, leaves, o.backend ?? "auto");
    const token = secret(32);
    writeFileSync(join(tmp, `${OPERATOR}.token`), `${token}\n`);
    // services read this file: it holds the token's digest, never the token
    writeFileSync(
      join(tmp, "tokens"),
      `# accepted bearer tokens (AUTH_TOKENS_FILE): NAME TOKEN or NAME sha256:<hex of the token>\n${OPERATOR} sha256:${tokenDigest(token)}\n`,
    );
    const passwords: Record<string, string> = {};
    for (const s of natsUsers(o.services)) {
      passwords[s] = secret(24);
      writeFileSync(join(tmp, "nats", `${s}.password`), `${passwords[s]}\n`);
    }
    writeFileSync(join(tmp, "nats", "nats.conf"), natsConfig(passwords));
    protect(tmp, o.services, o.owner);
    rmSync(o.dir, { recursive: true, force: true });
    renameSync(tmp, o.dir);
  } catch (err) {
    rmSync(tmp, { recursive: true, force: true });
    throw err;
  }
  return result("created", backend);
}

/** What `holder` reads, relative to the secrets directory: a service, "nats" (the server) or the operator. */
export function filesOf(holder: string, services: readonly string[]): string[] {
  if (holder === "nats") return [join("nats", "nats.conf")];
  if (holder === OPERATOR) return ["ca.crt", `${OPERATOR}.crt`, `${OPERATOR}.key`, `${OPERATOR}.token`];
  if (!services.includes(holder))
    throw new Error(
      `no secrets for ${JSON.stringify(holder.slice(0, 64))}: one of ${[...services, "nats", OPERATOR].join(", ")}`,
    );
  return [
    "ca.crt",
    "tokens", // digests only: which tokens a service accepts
    `${holder}.crt`,
    `${holder}.key`,
    ...(NATS_USERS.includes(holder) ? [join("nats", `${holder}.password`)] : []),
  ];
}

/**
 * Copies into `to` only what `holder` reads (filesOf), in the same layout, 0600 in 0700 directories,
 * and removes the secrets an earlier share left there: a container mounts its holder's directory and nothing more, so
 * no service can read another's key or the operator's token.
 */
export function shareSecrets(
  dir: string,
  holder: string,
  to: string,
  services: readonly string[],
  owner?: { uid: number; gid: number },
): string[] {
  const wanted = filesOf(holder, services);
  mkdirSync(to, { recursive: true, mode: 0o700 });
  // what an earlier share left (another holder's names included), and nothing that is not a secret
  for (const entry of readdirSync(to))
    if (/^(?:.*\.(?:crt|key|token)|tokens|nats)$/.test(entry))
      rmSync(join(to, entry), { recursive: true, force: true });
  for (const f of wanted) {
    const target = join(to, f);
    mkdirSync(dirname(target), { recursive: true, mode: 0o700 });
    copyFileSync(join(dir, f), target);
  }
  const dirs = new Set([to, ...wanted.map((f) => dirname(join(to, f)))]);
  for (const f of wanted) {
    chmodSync(join(to, f), 0o600);
    if (owner) chownSync(join(to, f), owner.uid, owner.gid);
  }
  for (const d of dirs) {
    chmodSync(d, 0o700);
    if (owner) chownSync(d, owner.uid, owner.gid);
  }
  return wanted;
}

/** The environment of a service in a secure deployment (TLS, mutual TLS, credentials, NATS user). */
export function secureServiceEnv(dir: string, service: string): Record<string, string> {
  const env: Record<string, string> = {
    GRPC_TLS_CERT: join(dir, `${service}.crt`),
    GRPC_TLS_KEY: join(dir, `${service}.key`),
    GRPC_TLS_CA: join(dir, "ca.crt"),
    GRPC_TLS_CLIENT_AUTH: "require",
    AUTH_TOKENS_FILE: join(dir, "tokens"),
  };
  if (NATS_USERS.includes(service)) {
    env.NATS_USER = service;
    env.NATS_PASSWORD_FILE = join(dir, "nats", `${service}.password`);
  }
  const callers = CALLERS[service];
  if (callers) env.AUTH_IDENTITIES = callers.join(",");
  if (CALLER_LIMITS[service]) env.CALLER_CALL_LIMITS = CALLER_LIMITS[service];
  return env;
}

/** The operator's client environment (the CLI, scripts): mutual TLS with its certificate, and its token. */
export function operatorEnv(dir: string): Record<string, string> {
  return {
    GRPC_TLS_CA: join(dir, "ca.crt"),
    GRPC_TLS_CERT: join(dir, `${OPERATOR}.crt`),
    GRPC_TLS_KEY: join(dir, `${OPERATOR}.key`),
    AUTH_TOKEN_FILE: join(dir, `${OPERATOR}.token`),
  };
}
