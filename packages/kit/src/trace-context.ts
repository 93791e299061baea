// W3C trace context (traceparent/tracestate) in gRPC metadata and NATS headers. The propagator is
// used directly rather than through the global API so propagation works even when no tracer
// provider is registered.
import {
  type Context,
  context as otelContext,
  ROOT_CONTEXT,
  type TextMapGetter,
  type TextMapSetter,
} from "@opentelemetry/api";
import { W3CTraceContextPropagator } from "@opentelemetry/core";

const propagator = new W3CTraceContextPropagator();

/** The header surface shared by grpc-js Metadata and NATS MsgHdrs. */
interface HeaderCarrier {
  get(key: string): unknown;
  set(key: string, value: string): void;
}

const getter: TextMapGetter<HeaderCarrier> = {
  keys: () => ["traceparent", "tracestate"],
  get(carrier, key) {
    const v = carrier.get(key);
    if (Array.isArray(v)) return v.length ? String(v[0]) : undefined;
    if (v === undefined || v === null || v === "") return undefined;
    return String(v);
  },
};

const setter: TextMapSetter<HeaderCarrier> = {
  set: (carrier, key, value) => carrier.set(key, value),
};

/** Writes traceparent (and tracestate) of `ctx` (default: the active context) into metadata or headers. */
export function injectTraceContext(carrier: HeaderCarrier, ctx: Context = otelContext.active()): void {
  propagator.inject(ctx, carrier, setter);
}

/** A context whose parent span is the one named by the carrier's traceparent, if any. */
export function extractTraceContext(carrier: HeaderCarrier, base: Context = ROOT_CONTEXT): Context {
  return propagator.extract(base, carrier, getter);
}
