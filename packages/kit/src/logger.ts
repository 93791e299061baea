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

export function createLogger(options: LoggerOptions): Logger {
  const level = options.level ?? process.env.LOG_LEVEL ?? "info";
  return pino(
    {
      level,
      base: { service: options.name, pid: process.pid },
      timestamp: pino.stdTimeFunctions.isoTime,
      formatters: { level: (label) => ({ level: label }) },
      // The active span (set by the RPC wrapper) names the trace, so log lines join up with traces.
      mixin() {
        const span = trace.getSpan(context.active());
        if (!span) return {};
        const sc = span.spanContext();
        return { trace_id: sc.traceId, span_id: sc.spanId };
      },
    },
    options.destination ?? pino.destination({ dest: 1, sync: true }),
  );
}
