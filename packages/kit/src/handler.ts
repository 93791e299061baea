// Wraps typed handlers into grpc-js handlers: a call context (deadline, metadata, logger with trace
// id, abort signal), one server span per RPC continuing the caller's traceparent, GrpcError mapped
// to its status, and any other exception answered as INTERNAL with its stack logged (never a crash).
import {
  type handleServerStreamingCall,
  type handleUnaryCall,
  type Metadata,
  type MethodDefinition,
  type ServerUnaryCall,
  type ServerWritableStream,
  status,
} from "@grpc/grpc-js";
import {
  context as otelContext,
  type Span,
  SpanKind,
  SpanStatusCode,
  type Tracer,
  trace,
} from "@opentelemetry/api";
import type { Logger } from "pino";
import { GrpcError } from "./errors.ts";
import { extractTraceContext } from "./trace-context.ts";

/** What every handler receives besides its request. */
export interface CallContext {
  /** Full method path, e.g. "/temper.reward.v1.RewardService/Score". */
  method: string;
  /** The caller's deadline, if it set one. */
  deadline: Date | undefined;
  /** Milliseconds left before the deadline (Infinity without one). */
  remainingMs(): number;
  metadata: Metadata;
  /** Child logger carrying method, trace_id and span_id. */
  logger: Logger;
  /** Aborted when the caller cancels, the deadline passes, or the server is forced down. */
  signal: AbortSignal;
  traceId: string;
  peer: string;
}

export type UnaryHandler<Req, Res> = (request: Req, ctx: CallContext) => Promise<Res> | Res;
export type ServerStreamHandler<Req, Res> = (request: Req, ctx: CallContext) => AsyncIterable<Res>;

/** Handlers for a ts-proto service definition, keyed like the definition (score, info, ...). */
export type ServiceImplementation<D> = {
  [K in keyof D]: D[K] extends MethodDefinition<infer Req, infer Res>
    ? D[K] extends { responseStream: true }
      ? ServerStreamHandler<Req, Res>
      : UnaryHandler<Req, Res>
    : never;
};

export interface HandlerDeps {
  logger: Logger;
  tracer: Tracer;
  /** Called around every call so the server can count what is in flight. */
  onStart?: () => void;
  onEnd?: () => void;
}

/** What the safe deserializer yields for bytes that are not a valid message. */
export class MalformedRequest {
  constructor(readonly reason: string) {}
}

/**
 * Wraps a request deserializer so undecodable bytes reach the handler wrapper, which answers
 * INVALID_ARGUMENT (grpc-js alone would answer INTERNAL).
 */
export function safeDeserializer<Req>(
  decode: (bytes: Buffer) => Req,
): (bytes: Buffer) => Req | MalformedRequest {
  return (bytes) => {
    try {
      return decode(bytes);
    } catch (err) {
      return new MalformedRequest((err as Error).message);
    }
  };
}

function rejectMalformed(request: unknown): void {
  if (request instanceof MalformedRequest)
    throw new GrpcError(status.INVALID_ARGUMENT, `request: not a valid protobuf message (${request.reason})`);
}

interface Started {
  ctx: CallContext;
  span: Span;
  run<T>(fn: () => T): T;
  finish(code: status, err?: unknown): GrpcError | undefined;
}

function begin(
  call: ServerUnaryCall<unknown, unknown> | ServerWritableStream<unknown, unknown>,
  path: string,
  deps: HandlerDeps,
): Started {
  const [, service = "", method = ""] = path.split("/");
  const parent = extractTraceContext(call.metadata);
  const span = deps.tracer.startSpan(
    path.slice(1),
    {
      kind: SpanKind.SERVER,
      attributes: { "rpc.system": "grpc", "rpc.service": service, "rpc.method": method },
    },
    parent,
  );
  const spanCtx = trace.setSpan(parent, span);
  const sc = span.spanContext();
  const logger = deps.logger.child({ method: path, trace_id: sc.traceId, span_id: sc.spanId });
  const abort = new AbortController();
  const rawDeadline = call.getDeadline();
  const deadline =
    rawDeadline instanceof Date
      ? rawDeadline
      : Number.isFinite(rawDeadline) && (rawDeadline as number) > 0
        ? new Date(rawDeadline as number)
        : undefined;
  call.once("cancelled", () =>
    abort.abort(new GrpcError(status.CANCELLED, "call cancelled or deadline exceeded")),
  );
  deps.onStart?.();
  const ctx: CallContext = {
    method: path,
    deadline,
    remainingMs: () => (deadline ? deadline.getTime() - Date.now() : Number.POSITIVE_INFINITY),
    metadata: call.metadata,
    logger,
    signal: abort.signal,
    traceId: sc.traceId,
    peer: call.getPeer(),
  };
  let ended = false;
  return {
    ctx,
    span,
    run: (fn) => otelContext.with(spanCtx, fn),
    finish(code, err) {
      let out: GrpcError | undefined;
      if (err !== undefined) {
        if (err instanceof GrpcError) {
          out = err;
          logger.debug({ code: err.codeName, details: err.message }, "call failed");
        } else {
          // A bug, not a bad request: keep the stack in the log, give the caller a trace id to find it.
          logger.error({ err }, "handler threw");
          out = new GrpcError(status.INTERNAL, `internal error (trace ${sc.traceId})`);
        }
        code = out.code;
      }
      span.setAttribute("rpc.grpc.status_code", code);
      if (code !== status.OK) span.setStatus({ code: SpanStatusCode.ERROR, message: out?.message });
      span.end();
      if (!ended) {
        ended = true;
        deps.onEnd?.();
      }
      return out;
    },
  };
}

export function wrapUnary<Req, Res>(
  path: string,
  handler: UnaryHandler<Req, Res>,
  deps: HandlerDeps,
): handleUnaryCall<Req, Res> {
  return (call, callback) => {
    const started = begin(call, path, deps);
    started
      .run(async () => {
        rejectMalformed(call.request);
        return handler(call.request, started.ctx);
      })
      .then(
        (res) => {
          started.finish(status.OK);
          callback(null, res);
        },
        (err) => {
          const e = started.finish(status.UNKNOWN, err)!;
          callback(e.toServiceError());
        },
      );
  };
}

export function wrapServerStream<Req, Res>(
  path: string,
  handler: ServerStreamHandler<Req, Res>,
  deps: HandlerDeps,
): handleServerStreamingCall<Req, Res> {
  return (call) => {
    const started = begin(call, path, deps);
    started
      .run(async () => {
        rejectMalformed(call.request);
        for await (const item of handler(call.request, started.ctx)) {
          if (call.cancelled) return;
          // Respect backpressure so a slow reader does not make the server buffer without bound.
          if (!call.write(item)) await new Promise((resolve) => call.once("drain", resolve));
        }
      })
      .then(
        () => {
          started.finish(status.OK);
          call.end();
        },
        (err) => {
          const e = started.finish(status.UNKNOWN, err)!;
          call.emit("error", e.toServiceError());
        },
      );
  };
}
