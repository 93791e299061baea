// NATS JetStream helper: connect, ensure streams, publish events with a caller-supplied
// Nats-Msg-Id (JetStream drops duplicates within the stream's window) and W3C trace context in
// headers, KV buckets (scheduler state) and object stores (adapters), drain on shutdown.

import { type JetStreamClient, type JetStreamManager, jetstream, jetstreamManager } from "@nats-io/jetstream";
import { type KV, Kvm, type KvOptions } from "@nats-io/kv";
import { type ObjectStore, type ObjectStoreOptions, Objm, setSha256Backend } from "@nats-io/obj";
import {
  connect,
  type MsgHdrs,
  type NatsConnection,
  nanos,
  headers as natsHeaders,
} from "@nats-io/transport-node";
import { type Context, context as otelContext } from "@opentelemetry/api";
import type { Logger } from "pino";
import { GrpcError, isNatsOutage, Status } from "./errors.ts";
import { retry } from "./retry.ts";
import { extractTraceContext, injectTraceContext } from "./trace-context.ts";

/** Events are small; anything larger (adapters, batches) goes through the object store. */
export const MAX_EVENT_BYTES = 1024 * 1024;
/** Room kept for headers (Nats-Msg-Id, traceparent) inside the server's payload limit. */
const HEADER_ROOM = 4096;

export interface StreamSpec {
  name: string;
  subjects: string[];
  /** Window in which a repeated Nats-Msg-Id is dropped. Default 24 h, so a replay of a day's run is de-duplicated. */
  duplicateWindowMs?: number;
  /** Default: keep forever. */
  maxAgeMs?: number;
}

/** The events stream of the blueprint: every `temper.<run>.<domain>.<event>` subject. */
export const TEMPER_STREAM: StreamSpec = { name: "TEMPER", subjects: ["temper.>"] };

export interface PublishOptions {
  /** Nats-Msg-Id, e.g. `<run>.<step>.<event>`; required so replays are de-duplicated. */
  msgId: string;
  headers?: Record<string, string>;
  /** Trace context to carry; default the active one. */
  traceContext?: Context;
}

export interface PublishResult {
  stream: string;
  seq: number;
  /** True when JetStream had already stored a message with this Nats-Msg-Id. */
  duplicate: boolean;
}

export interface Bus {
  readonly nc: NatsConnection;
  readonly js: JetStreamClient;
  readonly jsm: JetStreamManager;
  /** Creates the stream, or updates its subjects and windows if it exists. */
  ensureStream(spec: StreamSpec): Promise<void>;
  publish(subject: string, data: Uint8Array, options: PublishOptions): Promise<PublishResult>;
  /** Opens a KV bucket, creating it when missing. */
  kv(bucket: string, options?: Partial<KvOptions>): Promise<KV>;
  /** Opens an object store, creating it when missing. */
  objectStore(bucket: string, options?: Partial<ObjectStoreOptions>): Promise<ObjectStore>;
  /** Flushes pending publishes and closes the connection. */
  drain(): Promise<void>;
  /** Whether the connection is up now (false between a disconnect and the reconnect). */
  readonly connected: boolean;
  /** Calls `listener(up)` on every disconnect (false) and reconnect (true). */
  onConnectionChange(listener: (up: boolean) => void): void;
  /**
   * Throws UNAVAILABLE at once while NATS is unreachable, so a call that needs the store fails fast
   * (callers retry on UNAVAILABLE) instead of hanging until a request times out.
   */
  assertConnected(what?: string): void;
}

export interface ConnectBusOptions {
  /** Default NATS_URL, else nats://127.0.0.1:4222. */
  url?: string;
  /** Connection name shown by the server (the service name). */
  name: string;
  logger?: Logger;
  /** Streams to ensure right after connecting. */
  streams?: StreamSpec[];
  /** Default 5 s. */
  timeoutMs?: number;
  /** User and password of the server's authorization block (NATS_USER, NATS_PASSWORD_FILE). */
  user?: string;
  password?: string;
  /** CA file to verify a TLS NATS server (NATS_TLS_CA). */
  tlsCaFile?: string;
  /**
   * Replicas of the streams, KV buckets and object stores this client creates (NATS_REPLICAS;
   * default 1; a JetStream cluster of 3 servers keeps each on 3 with 3).
   */
  replicas?: number;
}

/** A trace context continued from a received message's headers. */
export function traceContextOf(headers: MsgHdrs | undefined): Context {
  return headers ? extractTraceContext(headers) : otelContext.active();
}

export async function connectBus(options: ConnectBusOptions): Promise<Bus> {
  const url = options.url ?? process.env.NATS_URL ?? "nats://127.0.0.1:4222";
  let nc: NatsConnection;
  try {
    // Reconnect without limit: a service outlives any NATS outage, and its health says when the
    // store is back (runService). The client's default gives up after 10 attempts (~20 s).
    nc = await connect({
      servers: url,
      name: options.name,
      timeout: options.timeoutMs ?? 5000,
      maxReconnectAttempts: -1,
      reconnectTimeWait: 500,
      reconnectJitter: 250,
      ...(options.user !== undefined ? { user: options.user, pass: options.password ?? "" } : {}),
      ...(options.tlsCaFile ? { tls: { caFile: options.tlsCaFile } } : {}),
    });
  } catch (err) {
    throw new Error(`cannot connect to NATS at ${url}: ${(err as Error).message}`);
  }
  const replicas = options.replicas ?? 1;
  const js = jetstream(nc);
  const jsm = await jetstreamManager(nc);
  const kvm = new Kvm(js);
  // Object digests through node:crypto rather than the library's pure-JS default: a 2 MB adapter
  // put takes ~60 ms instead of ~100 (8 MB: ~90 instead of ~200) on the 2-core dev machine.
  setSha256Backend("native");
  const objm = new Objm(js);
  const limit = Math.min(MAX_EVENT_BYTES, nc.info?.max_payload ?? MAX_EVENT_BYTES) - HEADER_ROOM;

  let connected = true;
  const listeners: ((up: boolean) => void)[] = [];
  void (async () => {
    for await (const st of nc.status()) {
      const up = st.type === "reconnect" ? true : st.type === "disconnect" ? false : undefined;
      if (up === undefined || up === connected) continue;
      connected = up;
      options.logger?.[up ? "info" : "warn"]({ url }, up ? "NATS reconnected" : "NATS disconnected");
      for (const l of listeners) l(up);
    }
  })();

  const bus: Bus = {
    nc,
    get connected() {
      return connected && !nc.isClosed();
    },
    onConnectionChange(listener) {
      listeners.push(listener);
    },
    assertConnected(what = "the NATS store") {
      if (!bus.connected)
        throw new GrpcError(
          Status.UNAVAILABLE,
          `${what} is unreachable (NATS at ${url} is down); retry later`,
        );
    },
    js,
    jsm,
    async ensureStream(spec) {
      const config = {
        name: spec.name,
        subjects: spec.subjects,
        duplicate_window: nanos(spec.duplicateWindowMs ?? 24 * 3600_000),
        max_age: nanos(spec.maxAgeMs ?? 0),
        num_replicas: replicas,
      };
      let current: Awaited<ReturnType<typeof jsm.streams.info>>["config"] | undefined;
      try {
        current = (await jsm.streams.info(spec.name)).config;
      } catch (err) {
        if (!/not found/i.test((err as Error).message)) throw err;
      }
      if (!current) {
        await jsm.streams.add(config);
        return;
      }
      // only a stream that differs is updated: in a secure deployment only the stream's owner may
      // update it, and every other service finds it as it should be
      const same =
        (current.subjects ?? []).join(",") === config.subjects.join(",") &&
        current.duplicate_window === config.duplicate_window &&
        current.max_age === config.max_age &&
        current.num_replicas === config.num_replicas;
      if (!same) await jsm.streams.update(spec.name, config);
    },
    async publish(subject, data, opts) {
      if (!opts.msgId) throw new Error(`publish to ${subject}: msgId (Nats-Msg-Id) is required`);
      if (data.length > limit)
        throw new Error(
          `publish to ${subject}: payload of ${data.length} bytes exceeds the ${limit}-byte event limit (1 MiB less header room); put large data in the object store`,
        );
      const h = natsHeaders();
      for (const [k, v] of Object.entries(opts.headers ?? {})) h.set(k, v);
      injectTraceContext(h, opts.traceContext);
      const ack = await js.publish(subject, data, { msgID: opts.msgId, headers: h });
      return { stream: ack.stream, seq: ack.seq, duplicate: ack.duplicate };
    },
    kv: (bucket, o) => kvm.create(bucket, { replicas, ...o }),
    objectStore: (bucket, o) => objm.create(bucket, { replicas, ...o }),
    async drain() {
      if (nc.isClosed()) return;
      await nc.drain();
    },
  };
  try {
    for (const s of options.streams ?? []) await bus.ensureStream(s);
  } catch (err) {
    await nc.close();
    throw err;
  }
  options.logger?.info({ url, streams: (options.streams ?? []).map((s) => s.name) }, "connected to NATS");
  return bus;
}

/**
 * How long a service waits, within its caller's deadline, for NATS to take an event its call
 * promises before the call fails UNAVAILABLE (and the caller's retry publishes it again).
 */
export const EVENT_WAIT_MS = 90_000;

export interface OutageRetryOptions {
  /** Give up (UNAVAILABLE) at this time, ms since the epoch; default: never. */
  untilMs?: number;
  /** Give up (the signal's reason) when it aborts. */
  signal?: AbortSignal;
  /** Told of each retry: NATS away is worth a warning, not an error. */
  onRetry?: (err: unknown, attempt: number) => void;
}

/**
 * `fn()`, again and again while NATS is away (isNatsOutage), with backoff from 200 ms to 2 s. What
 * `fn` does must be safe to repeat: a publish with its msgId, a compare-and-set that recognises its
 * own earlier write. Other errors pass through at once.
 */
export function retryNatsOutage<T>(
  what: string,
  fn: () => Promise<T>,
  options: OutageRetryOptions = {},
): Promise<T> {
  const started = Date.now();
  return retry(
    {
      retryable: isNatsOutage,
      backoffMs: 200,
      maxBackoffMs: 2000,
      untilMs: options.untilMs,
      signal: options.signal,
      onRetry: options.onRetry,
      giveUp: (err) =>
        new GrpcError(
          Status.UNAVAILABLE,
          `${what}: the NATS store did not answer for ${Math.round((Date.now() - started) / 1000)} s (${(err as Error).message}); retry later`,
        ),
    },
    fn,
  );
}
