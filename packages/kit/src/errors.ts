// The error type handlers throw to answer with a specific gRPC status.
import { Metadata, type ServiceError, status } from "@grpc/grpc-js";

export { status as Status } from "@grpc/grpc-js";

/** Thrown by a handler (or returned by a client call) to carry a gRPC status code and message. */
export class GrpcError extends Error {
  constructor(
    readonly code: status,
    message: string,
    readonly metadata: Metadata = new Metadata(),
  ) {
    super(message);
    this.name = "GrpcError";
  }

  /** The status name, e.g. "INVALID_ARGUMENT". */
  get codeName(): string {
    return status[this.code] ?? String(this.code);
  }

  /**
   * The status as grpc-js sends it, its message cut to STATUS_MESSAGE_LIMIT characters: a message
   * travels in the grpc-message trailer, and one past the client's metadata limit (8 KiB in grpc-js)
   * does not arrive as a status at all.
   */
  toServiceError(): Partial<ServiceError> {
    return { code: this.code, details: clipMessage(this.message), metadata: this.metadata };
  }

  /** Wraps a grpc-js client error (ServiceError) so callers see one error type. */
  static from(err: unknown): GrpcError {
    if (err instanceof GrpcError) return err;
    const e = err as Partial<ServiceError>;
    if (typeof e?.code === "number")
      return new GrpcError(e.code, plainDetails(e.details ?? e.message ?? ""), e.metadata);
    return new GrpcError(status.UNKNOWN, (err as Error)?.message ?? String(err));
  }
}

/**
 * The longest status message a service sends, in UTF-8 bytes: percent-encoded in the trailer, even
 * a message of 3-byte characters stays under grpc-js's 8 KiB metadata limit.
 */
export const STATUS_MESSAGE_LIMIT = 1000;

/** `message`, cut to STATUS_MESSAGE_LIMIT UTF-8 bytes with the cut said. */
export function clipMessage(message: string): string {
  if (message.length * 3 <= STATUS_MESSAGE_LIMIT || Buffer.byteLength(message) <= STATUS_MESSAGE_LIMIT)
    return message;
  // whole code points, so that the cut never splits a character
  let kept = "";
  let bytes = 0;
  for (const ch of message) {
    const n = Buffer.byteLength(ch);
    if (bytes + n > STATUS_MESSAGE_LIMIT - 48) break;
    kept += ch;
    bytes += n;
  }
  return `${kept} … (cut: ${message.length - kept.length} more characters)`;
}

export function isGrpcError(err: unknown, code?: status): err is GrpcError {
  return err instanceof GrpcError && (code === undefined || err.code === code);
}

/**
 * grpc-js's own status details in plain words, so its internals (load-balancer timings, channel
 * state, timestamps, "Error: " prefixes) never reach a caller or a log line through our messages.
 * Details set by a server's handler pass through unchanged.
 */
export function plainDetails(details: string): string {
  if (/^Deadline exceeded after /.test(details)) return "deadline exceeded";
  if (/^Cancelled on client$|^Call cancelled$/.test(details)) return "cancelled";
  const noConnection =
    /^No connection established\. Last error: (?:Error: )?(.*?)(?: \(\d{4}-\d\d-\d\dT[^)]*\))?$/.exec(
      details,
    );
  if (noConnection) return `cannot connect (${noConnection[1] || "no address answered"})`;
  const tooLarge = /^Received message larger than max \((\d+) vs\.? (\d+)\)$/.exec(details);
  if (tooLarge) return `message of ${tooLarge[1]} bytes exceeds the ${tooLarge[2]}-byte limit`;
  if (/^Received RST_STREAM with code \d+/.test(details) || /^Connection dropped$/.test(details))
    return "connection lost";
  return details;
}

// The NATS client's error names for "the server did not answer": the request may or may not have
// been applied, and the same request later will be answered. JetStream answers 503 while it has no
// leader (a restart) and 408/409 to requests cut short by one.
const NATS_OUTAGE = new Set([
  "TimeoutError",
  "NoResponders",
  "RequestError",
  "ConnectionError",
  "ClosedConnectionError",
  "DrainingConnectionError",
  "JetStreamNotEnabled",
]);

/** True when `err` (or an error it wraps) means the NATS server was unreachable or did not answer. */
export function isNatsOutage(err: unknown): boolean {
  let e = err as { name?: string; status?: number; cause?: unknown } | undefined;
  for (let depth = 0; e && typeof e === "object" && depth < 5; depth++) {
    if (e.name && NATS_OUTAGE.has(e.name)) return true;
    if (e.name === "JetStreamApiError" && (e.status === 503 || e.status === 408)) return true;
    e = e.cause as typeof e;
  }
  return false;
}
