// Request validation: each check throws INVALID_ARGUMENT naming the field path, e.g.
// `groups[3].completions[0].text: exceeds 262144 bytes`.
import { status } from "@grpc/grpc-js";
import { GrpcError } from "./errors.ts";

/** Joins path segments: fieldPath("groups", 3, "completions", 0, "text") = "groups[3].completions[0].text". */
export function fieldPath(...segments: (string | number)[]): string {
  let out = "";
  for (const s of segments) {
    if (typeof s === "number") out += `[${s}]`;
    else out += out ? `.${s}` : s;
  }
  return out;
}

/** Characters of a caller's value an error message quotes at most. */
export const QUOTE_LIMIT = 200;

/**
 * A caller's value for an error message: JSON-quoted, cut to `max` characters with the full length
 * said, so that a long input never makes a long status message.
 */
export function quote(value: string, max = QUOTE_LIMIT): string {
  if (value.length <= max) return JSON.stringify(value);
  return `${JSON.stringify(value.slice(0, max))}… (${value.length} characters)`;
}

/** INVALID_ARGUMENT with message "<path>: <problem>". */
export function invalidArgument(path: string, problem: string): GrpcError {
  return new GrpcError(status.INVALID_ARGUMENT, path ? `${path}: ${problem}` : problem);
}

export function failedPrecondition(message: string): GrpcError {
  return new GrpcError(status.FAILED_PRECONDITION, message);
}

export function resourceExhausted(message: string): GrpcError {
  return new GrpcError(status.RESOURCE_EXHAUSTED, message);
}

/** Each function throws invalidArgument(path, ...) when the value breaks the rule. */
export const check = {
  that(condition: boolean, path: string, problem: string): void {
    if (!condition) throw invalidArgument(path, problem);
  },
  nonEmpty(value: string | readonly unknown[] | undefined | null, path: string): void {
    if (value === undefined || value === null || value.length === 0)
      throw invalidArgument(path, "must not be empty");
  },
  /** UTF-8 byte length (what travels on the wire), not UTF-16 length. */
  maxBytes(value: string, max: number, path: string): void {
    // A UTF-16 unit is 1 to 3 UTF-8 bytes, so most strings are decided without encoding them.
    if (value.length * 3 <= max) return;
    if (value.length > max || Buffer.byteLength(value, "utf8") > max)
      throw invalidArgument(path, `exceeds ${max} bytes`);
  },
  maxItems(list: readonly unknown[], max: number, path: string): void {
    if (list.length > max) throw invalidArgument(path, `has ${list.length} items, at most ${max} allowed`);
  },
  range(value: number, min: number, max: number, path: string): void {
    if (!Number.isFinite(value) || value < min || value > max)
      throw invalidArgument(path, `must be in [${min}, ${max}], got ${value}`);
  },
  finite(value: number, path: string): void {
    if (!Number.isFinite(value)) throw invalidArgument(path, `must be a finite number, got ${value}`);
  },
  matches(value: string, pattern: RegExp, path: string, what = `match ${pattern}`): void {
    if (!pattern.test(value)) throw invalidArgument(path, `must ${what}, got ${quote(value, 80)}`);
  },
  oneOf<T>(value: T, allowed: readonly T[], path: string): void {
    if (!allowed.includes(value))
      throw invalidArgument(
        path,
        `must be one of ${allowed.join(", ")}, got ${typeof value === "string" ? quote(value) : String(value)}`,
      );
  },
  unique(values: readonly string[], path: string): void {
    const seen = new Set<string>();
    values.forEach((v, i) => {
      if (seen.has(v)) throw invalidArgument(fieldPath(path, i), `duplicate value ${quote(v)}`);
      seen.add(v);
    });
  },
};
