// The environment variables every Temper service reads (service-specific ones are added by each
// service's own schema).
import { env, type Schema } from "./config.ts";
import { LOG_LEVELS } from "./logger.ts";
import { DEFAULT_MAX_MESSAGE_BYTES } from "./server.ts";

export function commonConfigSchema(defaults: { port: number; name: string }) {
  return {
    HOST: env.string({ default: "127.0.0.1", doc: "Address to listen on (0.0.0.0 in containers)." }),
    PORT: env.int({
      default: defaults.port,
      min: 0,
      max: 65535,
      doc: "gRPC port; 0 picks a free one (logged).",
    }),
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
    OTEL_SERVICE_NAME: env.string({ default: defaults.name, doc: "service.name on traces." }),
  } satisfies Schema;
}

export function natsConfigSchema() {
  return {
    NATS_URL: env.url({
      default: "nats://127.0.0.1:4222",
      protocols: ["nats", "tls"],
      doc: "NATS server with JetStream (events, KV, object store).",
    }),
  } satisfies Schema;
}
