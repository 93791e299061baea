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
import { clipMessage, GrpcError, isNatsOutage } from "./errors.ts";
import { traceLogger } from "./logger.ts";
import { recordServerCall } from "./metrics.ts";
import type { CallCredentials, Principal } from "./security.ts";
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
  /** Who called, when the call carried a credential the server accepted (token or certificate). */
  principal?: Principal;
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
  /**
   * The credential hook (see security.ts authorizeCall): runs before the request is looked at;
   * throws UNAUTHENTICATED or PERMISSION_DENIED, or returns the caller's principal.
   */
  authorize?: (call: CallCredentials) => Principal | undefined;
  /** The largest message the server sends (bytes); a larger response is RESOURCE_EXHAUSTED. */
  maxSendBytes?: number;
}

/**
 * A response as the bytes grpc-js sends (the server's definition passes Buffers through), checked
 * against the send limit while the handler can still answer with a status: past the limit grpc-js
 * would fail the call in transport, where a caller sees UNAVAILABLE and retries what can never fit.
 */
function encodeResponse(res: unknown, serialize: (value: unknown) => Buffer, deps: HandlerDeps): Buffer {
  const bytes = serialize(res);
  if (deps.maxSendBytes !== undefined && bytes.length > deps.maxSendBytes)
    throw new GrpcError(
      status.RESOURCE_EXHAUSTED,
      `response: ${bytes.length} bytes, more than the ${deps.maxSendBytes}-byte message limit (GRPC_MAX_MESSAGE_BYTES): ask for less in one call`,
    );
  return bytes;
}

/** What the safe deserializer yields for bytes that are not a valid message. */
export class MalformedRequest {
  constructor(
    readonly reason: string,
    /** The offending field, when it could be found (e.g. a uint64 above 2^53 − 1). */
    readonly field?: { path: string; problem: string },
  ) {}
}

/**
 * Wraps a request deserializer so undecodable bytes reach the handler wrapper, which answers
 * INVALID_ARGUMENT (grpc-js alone would answer INTERNAL). `explain` looks for the field that made
 * decoding fail, so the answer can name it.
 */
export function safeDeserializer<Req>(
  decode: (bytes: Buffer) => Req,
  explain?: (bytes: Buffer) => { path: string; problem: string } | undefined,
): (bytes: Buffer) => Req | MalformedRequest {
  return (bytes) => {
    try {
      return decode(bytes);
    } catch (err) {
      let field: { path: string; problem: string } | undefined;
      try {
        field = explain?.(bytes);
      } catch {}
      return new MalformedRequest((err as Error).message, field);
    }
  };
}

/** The credential part of a call, for the authorize hook. */
function callCredentials(
  call: ServerUnaryCall<unknown, unknown> | ServerWritableStream<unknown, unknown>,
  path: string,
): CallCredentials {
  const header = call.metadata.get("authorization")[0];
  const auth = typeof call.getAuthContext === "function" ? call.getAuthContext() : {};
  return {
    method: path,
    authorization: header === undefined ? undefined : String(header),
    certificate: auth.sslPeerCertificate,
  };
}

function authorize(
  call: ServerUnaryCall<unknown, unknown> | ServerWritableStream<unknown, unknown>,
  path: string,
  deps: HandlerDeps,
  ctx: CallContext,
): void {
  if (!deps.authorize) return;
  const principal = deps.authorize(callCredentials(call, path));
  if (principal) {
    ctx.principal = principal;
    ctx.logger = ctx.logger.child({ principal: `${principal.kind}:${principal.name}` });
  }
}

function rejectMalformed(request: unknown): void {
  if (!(request instanceof MalformedRequest)) return;
  if (request.field)
    throw new GrpcError(status.INVALID_ARGUMENT, `${request.field.path}: ${request.field.problem}`);
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
  const logger = traceLogger(deps.logger, { method: path, trace_id: sc.traceId, span_id: sc.spanId });
  const startedAt = performance.now();
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
      const durationMs = Math.round((performance.now() - startedAt) * 1000) / 1000;
      // The access line: exactly one per RPC. OK at debug, a status the handler chose at info, a
      // bug (INTERNAL, with its stack) at error.
      if (err === undefined) {
        ctx.logger.debug({ code: status[code], duration_ms: durationMs }, "rpc");
      } else if (err instanceof GrpcError) {
        out = err;
        ctx.logger.info(
          { code: err.codeName, duration_ms: durationMs, details: clipMessage(err.message) },
          "rpc",
        );
      } else if (isNatsOutage(err)) {
        // NATS did not answer (down, restarting, hung): the caller may retry what it asked for
        out = new GrpcError(
          status.UNAVAILABLE,
          `the NATS store did not answer (${(err as Error).message}); retry`,
        );
        ctx.logger.warn({ code: out.codeName, duration_ms: durationMs, err }, "rpc");
      } else {
        // A bug, not a bad request: keep the stack in the log, give the caller a trace id to find it.
        out = new GrpcError(status.INTERNAL, `internal error (trace ${sc.traceId})`);
        ctx.logger.error({ code: out.codeName, duration_ms: durationMs, err }, "rpc");
      }
      if (out) code = out.code;
      recordServerCall(path, status[code] ?? String(code), durationMs / 1000);
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
  serialize: (value: unknown) => Buffer,
): handleUnaryCall<Req, Res> {
  return (call, callback) => {
    const started = begin(call, path, deps);
    started
      .run(async () => {
        authorize(call, path, deps, started.ctx);
        rejectMalformed(call.request);
        return encodeResponse(await handler(call.request, started.ctx), serialize, deps);
      })
      .then(
        (bytes) => {
          started.finish(status.OK);
          callback(null, bytes as Res);
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
  serialize: (value: unknown) => Buffer,
): handleServerStreamingCall<Req, Res> {
  return (call) => {
    const started = begin(call, path, deps);
    started
      .run(async () => {
        authorize(call, path, deps, started.ctx);
        rejectMalformed(call.request);
        for await (const item of handler(call.request, started.ctx)) {
          if (call.cancelled) return;
          // Respect backpressure so a slow reader does not make the server buffer without bound.
          const bytes = encodeResponse(item, serialize, deps) as Res;
          if (!call.write(bytes)) await new Promise((resolve) => call.once("drain", resolve));
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
