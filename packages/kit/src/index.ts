// @temper/kit: the runtime every Temper service uses.
export {
  type CallOptions,
  type ClientOptions,
  callServerStream,
  callUnary,
  createClient,
  type PromiseClient,
} from "./client.ts";
export {
  ConfigError,
  type ConfigOf,
  describeConfig,
  env,
  loadConfig,
  loadConfigOrExit,
  type Schema,
  type VarSpec,
} from "./config.ts";
export { DescriptorIndex } from "./descriptor-index.ts";
export { grpcTarget, type HostPort, parseEndpoint, parseHostPort, ROUND_ROBIN_OPTIONS } from "./endpoints.ts";
export {
  type CallOptions as WorkerCallOptions,
  EngineWorker,
  EngineWorkerError,
  type StartWorkerOptions,
  serveEngineWorker,
  type WorkerCallContext,
  WorkerCancelledError,
  type WorkerHandlers,
} from "./engine-worker.ts";
export { clipMessage, GrpcError, isGrpcError, isNatsOutage, STATUS_MESSAGE_LIMIT, Status } from "./errors.ts";
export {
  type CallContext,
  MalformedRequest,
  type ServerStreamHandler,
  type ServiceImplementation,
  safeDeserializer,
  type UnaryHandler,
  wrapServerStream,
  wrapUnary,
} from "./handler.ts";
export { HealthDefinition, HealthRegistry, type ServingStatus } from "./health.ts";
export { KeyedLock } from "./keyed-lock.ts";
export { createLogger, LOG_LEVELS, type Logger, type LogLevel } from "./logger.ts";
export {
  type AvailableMemory,
  availableMemory,
  formatBytes,
  machineMemory,
  memoryRefusal,
} from "./memory.ts";
export {
  type MetricsOptions,
  recordServerCall,
  type ServiceMetrics,
  serviceMeter,
  startMetrics,
} from "./metrics.ts";
export {
  type Bus,
  type ConnectBusOptions,
  connectBus,
  EVENT_WAIT_MS,
  MAX_EVENT_BYTES,
  type OutageRetryOptions,
  type PublishOptions,
  type PublishResult,
  retryNatsOutage,
  type StreamSpec,
  TEMPER_STREAM,
  traceContextOf,
} from "./nats.ts";
export {
  findNatsServer,
  type NatsServerHandle,
  type NatsServerOptions,
  startNatsServer,
} from "./nats-server.ts";
export { type Leaf, makeCertificates, opensslAvailable, type PkiBackend } from "./pki.ts";
export {
  addReflection,
  decodeReflectionRequest,
  decodeReflectionResponse,
  encodeReflectionRequest,
  encodeReflectionResponse,
  type ReflectionRequest,
  type ReflectionResponse,
  ReflectionV1AlphaDefinition,
  ReflectionV1Definition,
} from "./reflection.ts";
export { type RetryPolicy, retry } from "./retry.ts";
export { checkRunId, RUN_ID } from "./run-id.ts";
export { type RunningService, type RunServiceOptions, runService, type ServiceDeps } from "./run-service.ts";
export {
  authorizeCall,
  type CallCredentials,
  CLIENT_AUTH_MODES,
  type ClientAuthMode,
  type ClientSecurity,
  certificateNames,
  channelCredentials,
  clientSecurityFromConfig,
  defaultClientSecurity,
  type Principal,
  parseTokens,
  type SecurityConfig,
  type ServerSecurity,
  securityConfigSchema,
  serverCredentials,
  serverSecurityFromConfig,
  setDefaultClientSecurity,
  tokenDigest,
} from "./security.ts";
export {
  DEFAULT_MAX_MESSAGE_BYTES,
  type MessageLimits,
  type ServerHandle,
  type ServiceDefinition,
  type ServiceOptions,
  type ServiceRegistration,
  type StartServerOptions,
  service,
  serviceName,
  startServer,
} from "./server.ts";
export {
  commonConfigSchema,
  natsConfigSchema,
  type ServiceDeclaration,
  serviceSchema,
} from "./service-config.ts";
export {
  checkHealth,
  type ServiceProcess,
  type ServiceProcessOptions,
  startServiceProcess,
  waitForServing,
} from "./service-process.ts";
export { onShutdown, runShutdown, type ShutdownOptions, type ShutdownStep } from "./shutdown.ts";
export { checkSameRequest, requestDigest } from "./step-ledger.ts";
export { currentTracer, startTelemetry, type Telemetry, type TelemetryOptions } from "./telemetry.ts";
export { extractTraceContext, injectTraceContext } from "./trace-context.ts";
export {
  check,
  failedPrecondition,
  fieldPath,
  invalidArgument,
  QUOTE_LIMIT,
  quote,
  resourceExhausted,
} from "./validate.ts";
