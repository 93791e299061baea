// pino JSON logs; every line written inside a traced call carries trace_id and span_id.
import { context, trace } from "@opentelemetry/api";
import { type DestinationStream, type Logger, pino } from "pino";

export type { Logger } from "pino";

export const LOG_LEVELS = ["fatal", "error", "warn", "info", "debug", "trace", "silent"] as const;
export type LogLevel = (typeof LOG_LEVELS)[number];

export interface LoggerOptions {
  /** Written as `service` on every line. */
  name: string;
  /** Defaults to LOG_LEVEL, else "info". */
  level?: LogLevel | string;
  /** Where lines go; stdout by default. */
  destination?: DestinationStream;
}

/**
 * Set on a logger whose bindings already carry trace_id and span_id (the per-call logger); its
 * children inherit it (pino children are prototype copies), so the mixin does not add them twice.
 */
export const TRACE_BOUND = Symbol.for("temper.logger.traceBound");

/** A child logger carrying trace_id and span_id once, whatever span is active when it writes. */
export function traceLogger(
  parent: Logger,
  bindings: Record<string, unknown> & { trace_id: string; span_id: string },
): Logger {
  const child = parent.child(bindings);
  (child as unknown as Record<symbol, boolean>)[TRACE_BOUND] = true;
  return child;
}

export function createLogger(options: LoggerOptions): Logger {
  const level = options.level ?? process.env.LOG_LEVEL ?? "info";
  return pino(
    {
      level,
      base: { service: options.name, pid: process.pid },
      timestamp: pino.stdTimeFunctions.isoTime,
      formatters: { level: (label) => ({ level: label }) },
      // The active span (set by the RPC wrapper) names the trace, so log lines join up with traces.
      mixin(_obj, _level, self) {
        if ((self as unknown as Record<symbol, boolean> | undefined)?.[TRACE_BOUND]) return {};
        const span = trace.getSpan(context.active());
        if (!span) return {};
        const sc = span.spanContext();
        return { trace_id: sc.traceId, span_id: sc.spanId };
      },
    },
    options.destination ?? pino.destination({ dest: 1, sync: true }),
  );
}
