// OpenTelemetry metrics: a MeterProvider with a Prometheus scrape endpoint (METRICS_PORT) and/or
// OTLP export (OTEL_EXPORTER_OTLP_ENDPOINT), set up once per process beside the tracer. With
// neither, no provider is registered and every instrument is the API's no-op: off costs nothing.
import { monitorEventLoopDelay } from "node:perf_hooks";
import { type Histogram, type Meter, metrics } from "@opentelemetry/api";
import { OTLPMetricExporter } from "@opentelemetry/exporter-metrics-otlp-proto";
import { PrometheusExporter } from "@opentelemetry/exporter-prometheus";
import { resourceFromAttributes } from "@opentelemetry/resources";
import { MeterProvider, type MetricReader, PeriodicExportingMetricReader } from "@opentelemetry/sdk-metrics";

export interface MetricsOptions {
  serviceName: string;
  serviceVersion?: string;
  /** Serve `/metrics` for Prometheus on this port (plaintext, like HEALTH_PORT); unset: none. */
  prometheusPort?: number;
  /** Host the scrape endpoint listens on (the service's HOST). */
  prometheusHost?: string;
  /** OTLP base URL; unset: no OTLP export. */
  otlpEndpoint?: string;
  /** OTLP export interval (default 15 s). */
  exportIntervalMs?: number;
}

export interface ServiceMetrics {
  meter: Meter;
  /** Whether any reader is registered (false: every instrument is a no-op). */
  enabled: boolean;
  /** The Prometheus endpoint's port, where one listens. */
  prometheusPort?: number;
  shutdown(): Promise<void>;
}

let active: ServiceMetrics | undefined;
let callDuration: Histogram | undefined;
/** Registers the global MeterProvider once per process; a second call returns the first. */
export async function startMetrics(o: MetricsOptions): Promise<ServiceMetrics> {
  if (active) return active;
  const readers: MetricReader[] = [];
  let prometheus: PrometheusExporter | undefined;
  if (o.prometheusPort !== undefined) {
    prometheus = new PrometheusExporter({
      port: o.prometheusPort,
      host: o.prometheusHost,
      preventServerStart: true,
    });
    readers.push(prometheus);
  }
  if (o.otlpEndpoint)
    readers.push(
      new PeriodicExportingMetricReader({
        exporter: new OTLPMetricExporter({ url: `${o.otlpEndpoint.replace(/\/+$/, "")}/v1/metrics` }),
        exportIntervalMillis: o.exportIntervalMs ?? 15_000,
      }),
    );
  if (readers.length === 0) {
    active = { meter: metrics.getMeter(o.serviceName), enabled: false, shutdown: async () => {} };
    return active;
  }
  const provider = new MeterProvider({
    resource: resourceFromAttributes({
      "service.name": o.serviceName,
      "service.version": o.serviceVersion ?? "0.0.0",
    }),
    readers,
  });
  metrics.setGlobalMeterProvider(provider);
  // started here, so that a port in use is an error of startMetrics, not a log line later
  await prometheus?.startServer();
  const meter = metrics.getMeter(o.serviceName, o.serviceVersion);
  const stopRuntime = runtimeMetrics(meter);
  active = {
    meter,
    enabled: true,
    prometheusPort: o.prometheusPort,
    async shutdown() {
      stopRuntime();
      active = undefined;
      callDuration = undefined;
      await provider.shutdown();
      metrics.disable();
    },
  };
  return active;
}

/** The process's own health: event-loop delay, V8 heap, resident memory (OTel semantic names). */
function runtimeMetrics(meter: Meter): () => void {
  const delay = monitorEventLoopDelay({ resolution: 10 });
  delay.enable();
  meter
    .createObservableGauge("nodejs.eventloop.delay.p99", {
      unit: "s",
      description: "99th percentile of the event loop's delay since the last collection",
    })
    .addCallback((r) => {
      r.observe(delay.percentile(99) / 1e9);
      delay.reset();
    });
  meter
    .createObservableGauge("v8js.memory.heap.used", { unit: "By", description: "V8 heap in use" })
    .addCallback((r) => r.observe(process.memoryUsage().heapUsed));
  meter
    .createObservableGauge("process.memory.usage", { unit: "By", description: "resident set size" })
    .addCallback((r) => r.observe(process.memoryUsage.rss()));
  return () => delay.disable();
}

/**
 * Records one finished RPC: `rpc.server.call.duration` in seconds (OTel RPC semantic conventions),
 * by method and status code; its count gives the rate and, by status, the errors.
 */
export function recordServerCall(method: string, statusName: string, seconds: number): void {
  if (!active?.enabled) return;
  callDuration ??= active.meter.createHistogram("rpc.server.call.duration", {
    unit: "s",
    description: "Duration of a server RPC, from its start to its status",
    advice: { explicitBucketBoundaries: [0.001, 0.005, 0.01, 0.05, 0.1, 0.5, 1, 5, 10, 30, 60, 300] },
  });
  callDuration.record(seconds, {
    "rpc.system.name": "grpc",
    "rpc.method": method.replace(/^\//, ""),
    "rpc.response.status_code": statusName,
  });
}

/**
 * The meter a service's own instruments hang on. Call it after runService has started metrics (in
 * the `services` callback or later): before, the API hands out a no-op meter that stays one.
 */
export function serviceMeter(name: string): Meter {
  return metrics.getMeter(name);
}
