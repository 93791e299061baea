// OpenTelemetry tracing: spans always exist (so trace ids reach logs and downstream calls), and
// are exported over OTLP http/protobuf only when OTEL_EXPORTER_OTLP_ENDPOINT is set.
import { type Tracer, trace } from "@opentelemetry/api";
import { OTLPTraceExporter } from "@opentelemetry/exporter-trace-otlp-proto";
import { resourceFromAttributes } from "@opentelemetry/resources";
import { BatchSpanProcessor, type SpanProcessor } from "@opentelemetry/sdk-trace-base";
import { NodeTracerProvider } from "@opentelemetry/sdk-trace-node";

export interface TelemetryOptions {
  serviceName: string;
  serviceVersion?: string;
  /** OTLP base URL; defaults to OTEL_EXPORTER_OTLP_ENDPOINT. Unset: no export. */
  endpoint?: string;
  /** Extra processors (tests use an in-memory exporter). */
  spanProcessors?: SpanProcessor[];
}

export interface Telemetry {
  tracer: Tracer;
  /** Whether spans leave the process. */
  exporting: boolean;
  /** Flushes pending spans and stops exporting. */
  shutdown(): Promise<void>;
}

let active: { provider: NodeTracerProvider; telemetry: Telemetry } | undefined;

/**
 * Registers the global tracer provider (once per process: a second call returns the first
 * registration, since the OpenTelemetry API accepts one global provider).
 */
export function startTelemetry(options: TelemetryOptions): Telemetry {
  if (active) return active.telemetry;
  const endpoint = options.endpoint ?? process.env.OTEL_EXPORTER_OTLP_ENDPOINT;
  const processors: SpanProcessor[] = [...(options.spanProcessors ?? [])];
  if (endpoint) {
    const base = endpoint.replace(/\/+$/, "");
    processors.push(new BatchSpanProcessor(new OTLPTraceExporter({ url: `${base}/v1/traces` })));
  }
  const provider = new NodeTracerProvider({
    resource: resourceFromAttributes({
      "service.name": options.serviceName,
      "service.version": options.serviceVersion ?? "0.0.0",
    }),
    spanProcessors: processors,
  });
  provider.register();
  const telemetry: Telemetry = {
    tracer: trace.getTracer(options.serviceName, options.serviceVersion),
    exporting: Boolean(endpoint),
    async shutdown() {
      if (!active) return;
      const p = active.provider;
      active = undefined;
      await p.forceFlush();
      await p.shutdown();
      trace.disable();
    },
  };
  active = { provider, telemetry };
  return telemetry;
}

/** The tracer to use when telemetry was not started (a no-op tracer until it is). */
export function currentTracer(name = "temper"): Tracer {
  return active?.telemetry.tracer ?? trace.getTracer(name);
}
