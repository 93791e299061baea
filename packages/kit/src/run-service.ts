// A service's whole main: config from env (exit 2 on a bad value), logger, telemetry, optional
// NATS, the gRPC server, and graceful SIGTERM (NOT_SERVING, in-flight calls finish, NATS drained,
// spans flushed, exit 0).
import { readFileSync } from "node:fs";
import { ConfigError, type ConfigOf, loadConfigOrExit, type Schema } from "./config.ts";
import { createLogger, type Logger } from "./logger.ts";
import { startMetrics } from "./metrics.ts";
import { type Bus, connectBus, type StreamSpec, TEMPER_STREAM } from "./nats.ts";
import {
  type ClientSecurity,
  clientSecurityFromConfig,
  type ServerSecurity,
  serverSecurityFromConfig,
  setDefaultClientSecurity,
} from "./security.ts";
import {
  type ServerHandle,
  type ServiceDefinition,
  type ServiceRegistration,
  serviceName,
  startServer,
} from "./server.ts";
import { type commonConfigSchema, type natsConfigSchema, serviceSchema } from "./service-config.ts";
import { onShutdown, type ShutdownStep } from "./shutdown.ts";
import { startTelemetry, type Telemetry } from "./telemetry.ts";

type Common = ReturnType<typeof commonConfigSchema>;
type NatsVars = ReturnType<typeof natsConfigSchema>;

export interface ServiceDeps<S extends Schema> {
  config: ConfigOf<S> & ConfigOf<Common> & Partial<ConfigOf<NatsVars>>;
  logger: Logger;
  telemetry: Telemetry;
  /** Present when the service asked for NATS. */
  bus?: Bus;
}

export interface RunServiceOptions<S extends Schema> {
  name: string;
  version: string;
  defaultPort: number;
  /** The service's own variables; merged with the common ones (HOST, PORT, LOG_LEVEL, ...). */
  config?: S;
  /** Connect to NATS_URL and ensure these streams (true: the TEMPER stream). */
  nats?: boolean | StreamSpec[];
  /** FileDescriptorSet bytes or path (descriptorSetPath from @temper/proto). */
  descriptorSet: Uint8Array | string;
  services(deps: ServiceDeps<S>): Promise<ServiceRegistration[]> | ServiceRegistration[];
  /** The declaration's application service (ServiceDeclaration); the registrations say what is served. */
  api?: ServiceDefinition;
  /** Extra steps run after the server has closed and before NATS is drained. */
  onShutdown?: ShutdownStep[];
}

export interface RunningService<S extends Schema> extends ServiceDeps<S> {
  server: ServerHandle;
  /** Same sequence as SIGTERM (exits the process when done). */
  stop(): Promise<void>;
}

export async function runService<S extends Schema = Record<string, never>>(
  options: RunServiceOptions<S>,
): Promise<RunningService<S>> {
  const schema = serviceSchema(options);
  const config = loadConfigOrExit(schema, options.name) as ServiceDeps<S>["config"];
  // The common variables, typed without the service's generic part.
  const c = config as ConfigOf<Common> & Partial<ConfigOf<NatsVars>>;
  // Cross-variable checks (a certificate without its key, client auth without a CA ...): one line, exit 2.
  let serverSecurity: ServerSecurity;
  let clientSecurity: ClientSecurity;
  try {
    serverSecurity = serverSecurityFromConfig(c);
    clientSecurity = clientSecurityFromConfig(c);
    if (c.NATS_USER && !c.NATS_PASSWORD_FILE)
      throw new ConfigError("NATS_PASSWORD_FILE", "NATS_USER is set: NATS_PASSWORD_FILE is required");
  } catch (err) {
    if (!(err instanceof ConfigError)) throw err;
    process.stderr.write(`${options.name}: invalid configuration: ${err.message}\n`);
    process.exit(2);
  }
  // Every client this service makes (createClient) uses its TLS settings and token.
  setDefaultClientSecurity(clientSecurity);
  const logger = createLogger({ name: options.name, level: c.LOG_LEVEL });
  process.on("uncaughtException", (err) => {
    logger.fatal({ err }, "uncaught exception");
    process.exit(1);
  });
  process.on("unhandledRejection", (err) => logger.error({ err }, "unhandled rejection"));
  const telemetry = startTelemetry({
    serviceName: c.OTEL_SERVICE_NAME,
    serviceVersion: options.version,
    endpoint: c.OTEL_EXPORTER_OTLP_ENDPOINT,
  });
  // OTEL_METRICS_EXPORTER, where set, picks the ways out among those configured
  const ways = c.OTEL_METRICS_EXPORTER ? new Set(c.OTEL_METRICS_EXPORTER.split(",")) : undefined;
  const serviceMetrics = await startMetrics({
    serviceName: c.OTEL_SERVICE_NAME,
    serviceVersion: options.version,
    prometheusPort: !ways || ways.has("prometheus") ? c.METRICS_PORT : undefined,
    prometheusHost: c.HOST,
    otlpEndpoint: !ways || ways.has("otlp") ? c.OTEL_EXPORTER_OTLP_ENDPOINT : undefined,
  }).catch((err: Error) => {
    process.stderr.write(`${options.name}: METRICS_PORT=${c.METRICS_PORT}: ${err.message.split("\n")[0]}\n`);
    process.exit(2);
  });
  let bus: Bus | undefined;
  if (options.nats) {
    bus = await connectBus({
      url: c.NATS_URL,
      name: options.name,
      logger,
      streams: options.nats === true ? [TEMPER_STREAM] : options.nats,
      user: c.NATS_USER,
      password: c.NATS_PASSWORD_FILE ? readFileSync(c.NATS_PASSWORD_FILE, "utf8").trim() : undefined,
      tlsCaFile: c.NATS_TLS_CA,
      replicas: c.NATS_REPLICAS,
    });
  }
  const deps: ServiceDeps<S> = { config, logger, telemetry, bus };
  const registrations = await options.services(deps);
  const server = await startServer({
    name: options.name,
    version: options.version,
    host: c.HOST,
    port: c.PORT,
    services: registrations,
    descriptorSet: options.descriptorSet,
    limits: {
      maxReceiveMessageBytes: c.GRPC_MAX_MESSAGE_BYTES,
      maxSendMessageBytes: c.GRPC_MAX_MESSAGE_BYTES,
    },
    graceMs: c.SHUTDOWN_GRACE_MS,
    logger,
    tracer: telemetry.tracer,
    security: serverSecurity,
    healthPort: c.HEALTH_PORT,
  });
  if (bus) {
    // Readiness follows the store: each application service is NOT_SERVING while NATS is down and
    // SERVING again after; the server-wide name "" stays SERVING (the process is sound), so a
    // liveness probe does not restart the service during an outage.
    const names = registrations.map((r) => serviceName(r.definition));
    bus.onConnectionChange((up) => {
      for (const n of names) server.setHealth(n, up ? "SERVING" : "NOT_SERVING");
    });
  }
  const stop = onShutdown({
    logger,
    steps: [
      { name: "grpc", run: () => server.shutdown() },
      ...(options.onShutdown ?? []),
      { name: "nats", run: () => bus?.drain() },
      { name: "telemetry", run: () => telemetry.shutdown() },
      { name: "metrics", run: () => serviceMetrics.shutdown() },
    ],
    stepTimeoutMs: c.SHUTDOWN_GRACE_MS + 5000,
  });
  return { ...deps, server, stop };
}
