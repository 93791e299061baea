// Promise clients for ts-proto service definitions: deadlines, W3C traceparent propagation, one
// client span per call, and retries of UNAVAILABLE only (never DEADLINE_EXCEEDED), all within the
// caller's deadline.
import {
  Client,
  type CallOptions as GrpcCallOptions,
  Metadata,
  type MethodDefinition,
  status,
} from "@grpc/grpc-js";
import { context as otelContext, SpanKind, SpanStatusCode, trace } from "@opentelemetry/api";
import { grpcTarget, ROUND_ROBIN_OPTIONS } from "./endpoints.ts";
import { GrpcError } from "./errors.ts";
import type { CallContext } from "./handler.ts";
import { retry } from "./retry.ts";
import { type ClientSecurity, channelCredentials, defaultClientSecurity } from "./security.ts";
import type { MessageLimits, ServiceDefinition } from "./server.ts";
import { currentTracer } from "./telemetry.ts";
import { injectTraceContext } from "./trace-context.ts";

export interface CallOptions {
  /** Deadline relative to now. Ignored when `deadline` is set. */
  timeoutMs?: number;
  deadline?: Date;
  /** Inherit the deadline (the earlier of both) and cancellation of a server call being handled. */
  parent?: CallContext;
  /** Total attempts including the first; only UNAVAILABLE is retried. Default 3. */
  attempts?: number;
  /** First backoff; doubles per retry, with jitter. Default 50 ms. */
  backoffMs?: number;
  metadata?: Metadata | Record<string, string>;
  signal?: AbortSignal;
}

export type PromiseClient<D extends ServiceDefinition> = {
  [K in keyof D]: D[K] extends MethodDefinition<infer Req, infer Res>
    ? D[K] extends { responseStream: true }
      ? (request: Req, options?: CallOptions) => AsyncIterable<Res>
      : (request: Req, options?: CallOptions) => Promise<Res>
    : never;
} & {
  /** The grpc-js client underneath (channel state, waitForReady). */
  readonly $client: Client;
  readonly $address: string;
  $close(): void;
};

export interface ClientOptions {
  limits?: MessageLimits;
  /**
   * TLS and the bearer token sent on every call. Default: the process's (runService sets it from
   * the service's config; elsewhere it is read from GRPC_TLS_* and AUTH_TOKEN_FILE).
   */
  security?: ClientSecurity;
  /** Applied to every call unless the call overrides them. */
  defaults?: CallOptions;
  /**
   * Balance calls over every server of the endpoint (round_robin): every address its name
   * resolves to, or each entry of an `ip:port,ip:port` list (see endpoints.ts; a list is always
   * balanced). Default: one connection, to the first address.
   */
  balance?: boolean;
  /**
   * The name the server's certificate is checked against and the call's :authority, when the
   * address is not that name (an IP the caller resolved itself). Default: the address's host.
   */
  authority?: string;
}

function effectiveDeadline(o: CallOptions): Date | undefined {
  const own = o.deadline ?? (o.timeoutMs !== undefined ? new Date(Date.now() + o.timeoutMs) : undefined);
  const inherited = o.parent?.deadline;
  if (own && inherited) return new Date(Math.min(own.getTime(), inherited.getTime()));
  return own ?? inherited;
}

/** The bearer token of each client createClient made (callUnary on `$client` sends it too). */
const tokens = new WeakMap<Client, string>();

function buildMetadata(o: CallOptions, client: Client): Metadata {
  let md: Metadata;
  if (o.metadata instanceof Metadata) md = o.metadata.clone();
  else {
    md = new Metadata();
    for (const [k, v] of Object.entries(o.metadata ?? {})) md.set(k, v);
  }
  const token = tokens.get(client);
  if (token && md.get("authorization").length === 0) md.set("authorization", `Bearer ${token}`);
  injectTraceContext(md);
  return md;
}

function unaryOnce<Req, Res>(
  client: Client,
  method: MethodDefinition<Req, Res>,
  request: Req,
  metadata: Metadata,
  deadline: Date | undefined,
  signal: AbortSignal | undefined,
): Promise<Res> {
  return new Promise<Res>((resolve, reject) => {
    const options: GrpcCallOptions = deadline ? { deadline } : {};
    const call = client.makeUnaryRequest(
      method.path,
      method.requestSerialize,
      method.responseDeserialize,
      request,
      metadata,
      options,
      (err, res) => {
        signal?.removeEventListener("abort", onAbort);
        if (err) reject(GrpcError.from(err));
        else resolve(res as Res);
      },
    );
    const onAbort = () => call.cancel();
    if (signal?.aborted) call.cancel();
    else signal?.addEventListener("abort", onAbort, { once: true });
  });
}

/** One unary call with deadline, trace propagation and UNAVAILABLE retries. */
export async function callUnary<Req, Res>(
  client: Client,
  method: MethodDefinition<Req, Res>,
  request: Req,
  options: CallOptions = {},
): Promise<Res> {
  const deadline = effectiveDeadline(options);
  const attempts = Math.max(1, options.attempts ?? 3);
  const backoff = options.backoffMs ?? 50;
  const signal = options.signal ?? options.parent?.signal;
  const span = currentTracer().startSpan(method.path.slice(1), {
    kind: SpanKind.CLIENT,
    attributes: { "rpc.system": "grpc", "rpc.method": method.path },
  });
  const ctx = trace.setSpan(otelContext.active(), span);
  try {
    const res = await retry(
      {
        // a cancelled call is not retried; the sleep between attempts is short (no signal needed)
        retryable: (err) => (err as GrpcError).code === status.UNAVAILABLE && !signal?.aborted,
        attempts,
        backoffMs: backoff,
        jitter: true,
        untilMs: deadline?.getTime(),
        onRetry: (err, attempt) =>
          span.addEvent("retry", { attempt: attempt + 1, "rpc.grpc.status_code": (err as GrpcError).code }),
      },
      () => {
        const metadata = otelContext.with(ctx, () => buildMetadata(options, client));
        return unaryOnce(client, method, request, metadata, deadline, signal);
      },
    );
    span.setAttribute("rpc.grpc.status_code", status.OK);
    return res;
  } catch (err) {
    const e = err as GrpcError;
    span.setAttribute("rpc.grpc.status_code", e.code ?? status.UNKNOWN);
    span.setStatus({ code: SpanStatusCode.ERROR, message: e.message });
    throw e;
  } finally {
    span.end();
  }
}

/** A server-streaming call as an async iterable; errors surface as GrpcError from the loop. */
export async function* callServerStream<Req, Res>(
  client: Client,
  method: MethodDefinition<Req, Res>,
  request: Req,
  options: CallOptions = {},
): AsyncIterable<Res> {
  const deadline = effectiveDeadline(options);
  const call = client.makeServerStreamRequest(
    method.path,
    method.requestSerialize,
    method.responseDeserialize,
    request,
    buildMetadata(options, client),
    deadline ? { deadline } : {},
  );
  const signal = options.signal ?? options.parent?.signal;
  const onAbort = () => call.cancel();
  signal?.addEventListener("abort", onAbort, { once: true });
  try {
    for await (const item of call) yield item as Res;
  } catch (err) {
    throw GrpcError.from(err);
  } finally {
    signal?.removeEventListener("abort", onAbort);
    call.cancel();
  }
}

/** A client with one promise-returning method per RPC of the definition. */
export function createClient<D extends ServiceDefinition>(
  definition: D,
  address: string,
  options: ClientOptions = {},
): PromiseClient<D> {
  const security = options.security ?? defaultClientSecurity();
  const target = grpcTarget(address);
  const client = new Client(target, channelCredentials(security), {
    "grpc.max_receive_message_length": options.limits?.maxReceiveMessageBytes ?? -1,
    "grpc.max_send_message_length": options.limits?.maxSendMessageBytes ?? -1,
    ...(options.balance || target !== address ? ROUND_ROBIN_OPTIONS : {}),
    ...(options.authority
      ? { "grpc.ssl_target_name_override": options.authority, "grpc.default_authority": options.authority }
      : {}),
  });
  if (security.token) tokens.set(client, security.token);
  const out: Record<string, unknown> = {
    $client: client,
    $address: address,
    $close: () => client.close(),
  };
  for (const [key, method] of Object.entries(definition)) {
    out[key] = method.responseStream
      ? (req: unknown, o?: CallOptions) =>
          callServerStream(client, method, req, { ...options.defaults, ...o })
      : (req: unknown, o?: CallOptions) => callUnary(client, method, req, { ...options.defaults, ...o });
  }
  return out as PromiseClient<D>;
}
