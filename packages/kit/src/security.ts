// Transport security and credentials for every gRPC server and client of the kit: TLS and mutual
// TLS from PEM files, bearer tokens, and the hook that requires a credential for the RPCs a service
// marks as mutating. Everything is off unless the environment turns it on.
import { createHash, X509Certificate } from "node:crypto";
import { readFileSync } from "node:fs";
import type { SecureServerOptions } from "node:http2";
import type { PeerCertificate } from "node:tls";
import { type ChannelCredentials, credentials, ServerCredentials, status } from "@grpc/grpc-js";
import { ConfigError, type ConfigOf, env, loadConfig, type Schema, type VarSpec } from "./config.ts";
import { GrpcError } from "./errors.ts";

export const CLIENT_AUTH_MODES = ["none", "optional", "require"] as const;
export type ClientAuthMode = (typeof CLIENT_AUTH_MODES)[number];

/** A PEM file, read when the variable is parsed: an unreadable file or one without `marker` is a config error. */
function pemFile(doc: string, marker: RegExp, what: string): VarSpec<string> & { optional: true } {
  return env.optional({
    doc,
    kind: `path of a PEM file (${what})`,
    parse(raw) {
      let text: string;
      try {
        text = readFileSync(raw, "utf8");
      } catch (err) {
        throw new Error(
          `cannot read ${raw}: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`,
        );
      }
      if (!marker.test(text)) throw new Error(`${raw} holds no ${what}`);
      return raw;
    },
  });
}

function secretFile(doc: string): VarSpec<string> & { optional: true } {
  return env.optional({
    doc,
    kind: "path of a file",
    parse(raw) {
      try {
        readFileSync(raw);
      } catch (err) {
        throw new Error(
          `cannot read ${raw}: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`,
        );
      }
      return raw;
    },
  });
}

const CERT = /-----BEGIN CERTIFICATE-----/;
const KEY = /-----BEGIN (?:RSA |EC |ENCRYPTED )?PRIVATE KEY-----/;

/** The variables of gRPC TLS and credentials, read by every service (and the CLI's clients). */
export function securityConfigSchema() {
  return {
    GRPC_TLS_CERT: pemFile(
      "This process's certificate (chain): the server listens with TLS and, as a client, presents it for mutual TLS. Needs GRPC_TLS_KEY.",
      CERT,
      "certificate",
    ),
    GRPC_TLS_KEY: pemFile("Private key of GRPC_TLS_CERT.", KEY, "private key"),
    GRPC_TLS_CA: pemFile(
      "CA certificate(s): clients verify servers against it (set, or GRPC_TLS_CERT set: clients use TLS); servers verify client certificates against it.",
      CERT,
      "certificate",
    ),
    GRPC_TLS_CLIENT_AUTH: env.enum(CLIENT_AUTH_MODES, {
      default: "none",
      doc: "Client certificates: none (not asked for), optional (verified against GRPC_TLS_CA when sent; the identity counts for AUTH_IDENTITIES), require (every application call without one is UNAUTHENTICATED; health and reflection stay open for probes).",
    }),
    AUTH_TOKENS_FILE: secretFile(
      "Bearer tokens this server accepts for mutating RPCs: one per line, `NAME TOKEN` or `TOKEN` (16+ characters, or `sha256:<hex>` of one); `#` comments. Set (or AUTH_IDENTITIES set): mutating RPCs need a credential.",
    ),
    AUTH_IDENTITIES: env.optional({
      doc: "Comma-separated client-certificate names (CN or DNS SAN) allowed to call mutating RPCs; `*` = any certificate the CA signed. Needs GRPC_TLS_CLIENT_AUTH optional or require.",
      kind: "comma-separated names",
      parse(raw) {
        const names = raw.split(",").map((s) => s.trim());
        if (names.some((n) => !/^(\*|[A-Za-z0-9._-]{1,253})$/.test(n)))
          throw new Error("expected comma-separated names of [A-Za-z0-9._-] or *");
        return raw;
      },
    }),
    AUTH_TOKEN_FILE: secretFile(
      "The bearer token this process sends on its own gRPC calls (a service calling another, the CLI); sent as `authorization: Bearer <token>`.",
    ),
  } satisfies Schema;
}

export type SecurityConfig = ConfigOf<ReturnType<typeof securityConfigSchema>>;

/** TLS and credentials of a server. */
export interface ServerSecurity {
  tls?: { cert: Buffer; key: Buffer; ca?: Buffer; clientAuth: ClientAuthMode };
  /** Present: mutating RPCs need a credential. */
  auth?: {
    /** sha256(token) hex → the token's name (logged, never the token). */
    tokens: Map<string, string>;
    /** Certificate names allowed; "*" any verified certificate. */
    identities: Set<string>;
  };
}

/** TLS and the token of a client. */
export interface ClientSecurity {
  /** Present: the channel uses TLS. `ca` absent: the system's roots. */
  tls?: { ca?: Buffer; cert?: Buffer; key?: Buffer };
  token?: string;
}

/** Who made a call, when it carried a credential the server accepted. */
export interface Principal {
  kind: "token" | "certificate";
  name: string;
}

export function tokenDigest(token: string): string {
  return createHash("sha256").update(token, "utf8").digest("hex");
}

/** Parses an AUTH_TOKENS_FILE body: `NAME TOKEN` or `TOKEN` per line. */
export function parseTokens(text: string, source = "AUTH_TOKENS_FILE"): Map<string, string> {
  const out = new Map<string, string>();
  text.split("\n").forEach((line, i) => {
    const l = line.trim();
    if (!l || l.startsWith("#")) return;
    const parts = l.split(/\s+/);
    if (parts.length > 2)
      throw new ConfigError(source, `${source} line ${i + 1}: expected "NAME TOKEN" or "TOKEN"`);
    const token = parts.length === 2 ? parts[1] : parts[0];
    const name = parts.length === 2 ? parts[0] : `token-${i + 1}`;
    // `sha256:<hex>`: the token's digest, so the file need not hold the token itself
    const digest = /^sha256:([0-9a-f]{64})$/.exec(token);
    if (digest) {
      out.set(digest[1], name);
      return;
    }
    if (token.length < 16)
      throw new ConfigError(source, `${source} line ${i + 1}: a token needs at least 16 characters`);
    out.set(tokenDigest(token), name);
  });
  if (out.size === 0) throw new ConfigError(source, `${source}: no token in the file`);
  return out;
}

function readToken(path: string, variable: string): string {
  const token = readFileSync(path, "utf8").trim();
  if (!token || /\s/.test(token))
    throw new ConfigError(variable, `${variable}=${path}: expected one token (no spaces) in the file`);
  return token;
}

/** The server side of the security variables; cross-variable mistakes are ConfigErrors. */
export function serverSecurityFromConfig(c: SecurityConfig): ServerSecurity {
  const out: ServerSecurity = {};
  if (!!c.GRPC_TLS_CERT !== !!c.GRPC_TLS_KEY)
    throw new ConfigError(
      c.GRPC_TLS_CERT ? "GRPC_TLS_KEY" : "GRPC_TLS_CERT",
      "GRPC_TLS_CERT and GRPC_TLS_KEY go together: set both or neither",
    );
  if (c.GRPC_TLS_CLIENT_AUTH !== "none" && !(c.GRPC_TLS_CERT && c.GRPC_TLS_CA))
    throw new ConfigError(
      "GRPC_TLS_CLIENT_AUTH",
      `GRPC_TLS_CLIENT_AUTH=${c.GRPC_TLS_CLIENT_AUTH} needs GRPC_TLS_CERT, GRPC_TLS_KEY and GRPC_TLS_CA`,
    );
  if (c.GRPC_TLS_CERT && c.GRPC_TLS_KEY) {
    out.tls = {
      cert: readFileSync(c.GRPC_TLS_CERT),
      key: readFileSync(c.GRPC_TLS_KEY),
      ca: c.GRPC_TLS_CA ? readFileSync(c.GRPC_TLS_CA) : undefined,
      clientAuth: c.GRPC_TLS_CLIENT_AUTH,
    };
  }
  if (c.AUTH_IDENTITIES && c.GRPC_TLS_CLIENT_AUTH === "none")
    throw new ConfigError(
      "AUTH_IDENTITIES",
      "AUTH_IDENTITIES needs GRPC_TLS_CLIENT_AUTH=optional or require (client certificates are not asked for)",
    );
  if (c.AUTH_TOKENS_FILE || c.AUTH_IDENTITIES) {
    out.auth = {
      tokens: c.AUTH_TOKENS_FILE ? parseTokens(readFileSync(c.AUTH_TOKENS_FILE, "utf8")) : new Map(),
      identities: new Set(
        (c.AUTH_IDENTITIES ?? "")
          .split(",")
          .map((s) => s.trim())
          .filter(Boolean),
      ),
    };
  }
  return out;
}

/** The client side: TLS when a CA or a certificate is set (mutual TLS with the certificate). */
export function clientSecurityFromConfig(c: SecurityConfig): ClientSecurity {
  if (!!c.GRPC_TLS_CERT !== !!c.GRPC_TLS_KEY)
    throw new ConfigError(
      c.GRPC_TLS_CERT ? "GRPC_TLS_KEY" : "GRPC_TLS_CERT",
      "GRPC_TLS_CERT and GRPC_TLS_KEY go together: set both or neither",
    );
  const out: ClientSecurity = {};
  if (c.GRPC_TLS_CA || c.GRPC_TLS_CERT)
    out.tls = {
      ca: c.GRPC_TLS_CA ? readFileSync(c.GRPC_TLS_CA) : undefined,
      cert: c.GRPC_TLS_CERT ? readFileSync(c.GRPC_TLS_CERT) : undefined,
      key: c.GRPC_TLS_KEY ? readFileSync(c.GRPC_TLS_KEY) : undefined,
    };
  if (c.AUTH_TOKEN_FILE) out.token = readToken(c.AUTH_TOKEN_FILE, "AUTH_TOKEN_FILE");
  return out;
}

let defaultClient: ClientSecurity | undefined;

/**
 * What createClient uses when a caller gives no `security`: set by runService from the service's
 * validated config, else read once from the environment (the CLI). Throws ConfigError on a bad value.
 */
export function defaultClientSecurity(): ClientSecurity {
  defaultClient ??= clientSecurityFromConfig(loadConfig(securityConfigSchema()));
  return defaultClient;
}

export function setDefaultClientSecurity(security: ClientSecurity | undefined): void {
  defaultClient = security;
}

let ipServerNameQuiet = false;

/**
 * grpc-js sets the TLS server name (SNI) to the target host even when it is an IP address, and
 * Node then prints DEP0123 once per process. The certificate is still checked against the IP, so
 * the warning says nothing to a user: this drops that one warning and passes every other through.
 */
function quietIpServerNameWarning(): void {
  if (ipServerNameQuiet) return;
  ipServerNameQuiet = true;
  const emit = process.emitWarning.bind(process) as (...args: unknown[]) => void;
  process.emitWarning = ((...args: unknown[]) => {
    const [, type, code] = args;
    const c = typeof type === "object" && type !== null ? (type as { code?: unknown }).code : code;
    if (c === "DEP0123") return;
    emit(...args);
  }) as typeof process.emitWarning;
}

/** grpc-js channel credentials for a client. */
export function channelCredentials(security: ClientSecurity): ChannelCredentials {
  if (!security.tls) return credentials.createInsecure();
  quietIpServerNameWarning();
  const { ca, cert, key } = security.tls;
  return credentials.createSsl(ca ?? null, key ?? null, cert ?? null);
}

/**
 * Server credentials that ask for a client certificate without failing the handshake when none (or
 * an unverifiable one) comes: the per-call check then answers UNAUTHENTICATED with a reason, where a
 * handshake failure would reach the caller as an opaque UNAVAILABLE.
 */
class TlsServerCredentials extends ServerCredentials {
  constructor(tls: NonNullable<ServerSecurity["tls"]>) {
    const options: SecureServerOptions = {
      requestCert: tls.clientAuth !== "none",
      rejectUnauthorized: false,
      minVersion: "TLSv1.2",
    };
    super(options, { cert: [tls.cert], key: [tls.key], ...(tls.ca ? { ca: tls.ca } : {}) });
  }
  _equals(other: ServerCredentials): boolean {
    return other === this;
  }
}

export function serverCredentials(security: ServerSecurity): ServerCredentials {
  return security.tls ? new TlsServerCredentials(security.tls) : ServerCredentials.createInsecure();
}

/** Names a verified client certificate answers to: its CN and DNS subject alternative names. */
export function certificateNames(cert: PeerCertificate): string[] {
  const names = new Set<string>();
  const cn = cert.subject?.CN;
  if (typeof cn === "string") names.add(cn);
  else if (Array.isArray(cn)) for (const n of cn) names.add(n);
  let san = cert.subjectaltname;
  if (!san && cert.raw) san = new X509Certificate(cert.raw).subjectAltName;
  for (const part of (san ?? "").split(",")) {
    const m = /^\s*DNS:(.+)$/.exec(part);
    if (m) names.add(m[1].trim());
  }
  return [...names];
}

/** What the per-call check sees of a call. */
export interface CallCredentials {
  /** Full method path. */
  method: string;
  /** The authorization metadata value, if any. */
  authorization?: string;
  /** The client certificate, present only when it was verified against the CA. */
  certificate?: PeerCertificate;
}

/**
 * The kit's credential hook: decides whether a call may proceed. Returns the caller's principal
 * (undefined for an anonymous call that needs none); throws UNAUTHENTICATED (no or a bad credential)
 * or PERMISSION_DENIED (a good certificate that is not allowed this method).
 */
export function authorizeCall(
  security: ServerSecurity,
  mutating: ReadonlySet<string>,
  call: CallCredentials,
): Principal | undefined {
  const names = call.certificate ? certificateNames(call.certificate) : [];
  const method = call.method.slice(call.method.lastIndexOf("/") + 1);
  if (security.tls?.clientAuth === "require" && !call.certificate)
    throw new GrpcError(
      status.UNAUTHENTICATED,
      `${method}: this server requires a client certificate signed by its CA (GRPC_TLS_CLIENT_AUTH=require)`,
    );
  const certPrincipal: Principal | undefined = names.length
    ? { kind: "certificate", name: names[0] }
    : undefined;
  const auth = security.auth;
  if (!auth || !mutating.has(call.method)) return certPrincipal;
  if (call.authorization !== undefined) {
    const m = /^Bearer\s+(\S+)\s*$/i.exec(call.authorization);
    if (!m) throw new GrpcError(status.UNAUTHENTICATED, 'authorization: expected "Bearer <token>"');
    const name = auth.tokens.get(tokenDigest(m[1]));
    if (name === undefined)
      throw new GrpcError(status.UNAUTHENTICATED, "authorization: the token is not valid");
    return { kind: "token", name };
  }
  if (certPrincipal) {
    const allowed = auth.identities.has("*") ? names : names.filter((n) => auth.identities.has(n));
    if (allowed.length) return { kind: "certificate", name: allowed[0] };
    throw new GrpcError(
      status.PERMISSION_DENIED,
      `${method}: client certificate "${names[0]}" is not allowed to call it (not in the server's AUTH_IDENTITIES)`,
    );
  }
  throw new GrpcError(
    status.UNAUTHENTICATED,
    `${method} changes state and needs a credential: a bearer token (authorization metadata) or a client certificate the server allows`,
  );
}
