// The environment variables every Temper service reads (service-specific ones are added by each
// service's own schema).
import { readFileSync } from "node:fs";
import { env, type Schema } from "./config.ts";
import { LOG_LEVELS } from "./logger.ts";
import type { StreamSpec } from "./nats.ts";
import { securityConfigSchema } from "./security.ts";
import { DEFAULT_MAX_MESSAGE_BYTES, type ServiceDefinition } from "./server.ts";

/**
 * What a deployment needs to know about a service, in one place: each service's main runs from it
 * (runService) and the deployment checks (tests/deploy-config.test.ts) read it, so compose and the
 * Kubernetes manifests are checked against the variables the code actually reads.
 */
export interface ServiceDeclaration<S extends Schema = Schema> {
  /** Process name, the directory under services/ and the host name in compose and Kubernetes. */
  name: string;
  defaultPort: number;
  /** The application's gRPC service; its name is the health name readiness probes ask about. */
  api: ServiceDefinition;
  /** The service's own variables (the common ones, and NATS's when `nats` is set, are added). */
  config?: S;
  /** Connect to NATS_URL and ensure these streams (true: the TEMPER stream). */
  nats?: boolean | StreamSpec[];
}

/** Every variable a service reads: the common ones, NATS's when it uses NATS, then its own. */
export function serviceSchema(
  d: Pick<ServiceDeclaration, "name" | "defaultPort" | "config" | "nats">,
): Schema {
  return {
    ...commonConfigSchema({ port: d.defaultPort, name: d.name }),
    ...(d.nats ? natsConfigSchema() : {}),
    ...(d.config ?? {}),
  };
}

export function commonConfigSchema(defaults: { port: number; name: string }) {
  return {
    HOST: env.string({ default: "127.0.0.1", doc: "Address to listen on (0.0.0.0 in containers)." }),
    PORT: env.int({
      default: defaults.port,
      min: 0,
      max: 65535,
      doc: "gRPC port; 0 picks a free one (logged).",
    }),
    HEALTH_PORT: env.optional(
      env.int({
        min: 1,
        max: 65535,
        doc: "Also serve grpc.health.v1 alone in plaintext on this port, for probes without TLS (Kubernetes gRPC probes); unset: none.",
      }),
    ),
    METRICS_PORT: env.optional(
      env.int({
        min: 1,
        max: 65535,
        doc: "Serve the service's metrics for Prometheus (GET /metrics, plaintext, no secrets or paths in labels) on this port; unset: none.",
      }),
    ),
    LOG_LEVEL: env.enum(LOG_LEVELS, { default: "info", doc: "pino log level." }),
    SHUTDOWN_GRACE_MS: env.int({
      default: 10_000,
      min: 0,
      max: 600_000,
      doc: "On SIGTERM, how long in-flight calls may run before they are cancelled.",
    }),
    GRPC_MAX_MESSAGE_BYTES: env.int({
      default: DEFAULT_MAX_MESSAGE_BYTES,
      min: 1024,
      max: 2 ** 31 - 1,
      doc: "Largest gRPC message received or sent; larger requests get RESOURCE_EXHAUSTED.",
    }),
    OTEL_EXPORTER_OTLP_ENDPOINT: env.optional(
      env.url({
        protocols: ["http", "https"],
        doc: "OTLP/HTTP (protobuf) base URL for traces; unset: traces stay in-process (ids still logged).",
      }),
    ),
    OTEL_METRICS_EXPORTER: env.string({
      default: "",
      pattern: /^((otlp|prometheus|none)(,(otlp|prometheus|none))*)?$/,
      doc: "Where metrics go: otlp, prometheus, none, or a list (unset: prometheus where METRICS_PORT is set, and otlp where OTEL_EXPORTER_OTLP_ENDPOINT is).",
    }),
    OTEL_SERVICE_NAME: env.string({ default: defaults.name, doc: "service.name on traces." }),
    ...securityConfigSchema(),
  } satisfies Schema;
}

export function natsConfigSchema() {
  return {
    NATS_URL: env.url({
      default: "nats://127.0.0.1:4222",
      protocols: ["nats", "tls"],
      doc: "NATS server with JetStream (events, KV, object store).",
    }),
    NATS_REPLICAS: env.int({
      default: 1,
      min: 1,
      max: 5,
      doc: "Replicas of the streams, KV buckets and object stores the service creates (3 on a 3-server JetStream cluster).",
    }),
    NATS_USER: env.optional(
      env.string({ doc: "NATS user name (the server's authorization block); needs NATS_PASSWORD_FILE." }),
    ),
    NATS_PASSWORD_FILE: env.optional({
      doc: "File holding NATS_USER's password.",
      kind: "path of a file",
      parse(raw: string) {
        let text: string;
        try {
          text = readFileSync(raw, "utf8").trim();
        } catch (err) {
          throw new Error(
            `cannot read ${raw}: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`,
          );
        }
        if (!text) throw new Error(`${raw} is empty`);
        return raw;
      },
    }),
    NATS_TLS_CA: env.optional({
      doc: "CA certificate to verify a NATS server that uses TLS (tls:// URL or a server requiring TLS).",
      kind: "path of a PEM file",
      parse(raw: string) {
        try {
          readFileSync(raw);
        } catch (err) {
          throw new Error(
            `cannot read ${raw}: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`,
          );
        }
        return raw;
      },
    }),
  } satisfies Schema;
}
