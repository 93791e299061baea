// Typed configuration from environment variables: a declarative schema keyed by variable name,
// with defaults, ranges and docs. A bad value is one line naming the variable, then exit code 2.

export interface VarSpec<T> {
  /** What the variable does, for the README table. */
  doc: string;
  /** Used when the variable is unset or empty; without one the variable is required. */
  default?: T;
  /** Parses the raw string; throws an Error whose message says what was expected. */
  parse(raw: string): T;
  /** Type and range, e.g. "int 1..65535", for the docs. */
  kind: string;
  /** Optional: unset gives undefined instead of an error. */
  optional?: boolean;
}

export type Schema = Record<string, VarSpec<unknown>>;
export type ConfigOf<S extends Schema> = {
  [K in keyof S]: S[K] extends VarSpec<infer T>
    ? S[K] extends { optional: true }
      ? T | undefined
      : T
    : never;
};

interface Common<T> {
  doc: string;
  default?: T;
}

function intSpec(o: Common<number> & { min?: number; max?: number }): VarSpec<number> {
  const min = o.min ?? Number.MIN_SAFE_INTEGER;
  const max = o.max ?? Number.MAX_SAFE_INTEGER;
  const range =
    o.min !== undefined || o.max !== undefined ? ` in [${o.min ?? "-inf"}, ${o.max ?? "inf"}]` : "";
  return {
    ...o,
    kind: `integer${range}`,
    parse(raw) {
      const n = Number(raw);
      if (!/^[-+]?\d+$/.test(raw.trim()) || !Number.isSafeInteger(n) || n < min || n > max)
        throw new Error(`expected an integer${range}`);
      return n;
    },
  };
}

function numberSpec(o: Common<number> & { min?: number; max?: number }): VarSpec<number> {
  const min = o.min ?? Number.NEGATIVE_INFINITY;
  const max = o.max ?? Number.POSITIVE_INFINITY;
  const range =
    o.min !== undefined || o.max !== undefined ? ` in [${o.min ?? "-inf"}, ${o.max ?? "inf"}]` : "";
  return {
    ...o,
    kind: `number${range}`,
    parse(raw) {
      const n = Number(raw);
      if (raw.trim() === "" || !Number.isFinite(n) || n < min || n > max)
        throw new Error(`expected a number${range}`);
      return n;
    },
  };
}

function stringSpec(o: Common<string> & { pattern?: RegExp; optional?: boolean }): VarSpec<string> {
  return {
    ...o,
    kind: o.pattern ? `string matching ${o.pattern}` : "string",
    parse(raw) {
      if (o.pattern && !o.pattern.test(raw)) throw new Error(`expected a string matching ${o.pattern}`);
      return raw;
    },
  };
}

function enumSpec<const V extends readonly string[]>(values: V, o: Common<V[number]>): VarSpec<V[number]> {
  return {
    ...o,
    kind: `one of ${values.join(", ")}`,
    parse(raw) {
      if (!values.includes(raw)) throw new Error(`expected one of ${values.join(", ")}`);
      return raw as V[number];
    },
  };
}

function boolSpec(o: Common<boolean>): VarSpec<boolean> {
  return {
    ...o,
    kind: "bool (true|false|1|0)",
    parse(raw) {
      const v = raw.trim().toLowerCase();
      if (["true", "1", "yes", "on"].includes(v)) return true;
      if (["false", "0", "no", "off"].includes(v)) return false;
      throw new Error("expected true or false");
    },
  };
}

/** "host:port" (IPv6 hosts in brackets); the value stays a string ready for a gRPC client. */
function hostPortSpec(o: Common<string>): VarSpec<string> {
  return {
    ...o,
    kind: "host:port",
    parse(raw) {
      const m = /^(\[[0-9a-fA-F:.]+\]|[A-Za-z0-9._-]+):(\d{1,5})$/.exec(raw.trim());
      if (!m || Number(m[2]) < 1 || Number(m[2]) > 65535)
        throw new Error("expected host:port with a port in [1, 65535]");
      return raw.trim();
    },
  };
}

function urlSpec(o: Common<string> & { protocols?: string[]; optional?: boolean }): VarSpec<string> {
  const protocols = o.protocols;
  return {
    ...o,
    kind: protocols ? `URL (${protocols.join(", ")})` : "URL",
    parse(raw) {
      let u: URL;
      try {
        u = new URL(raw.trim());
      } catch {
        throw new Error("expected a URL");
      }
      if (protocols && !protocols.includes(u.protocol.replace(/:$/, "")))
        throw new Error(`expected a URL with scheme ${protocols.join(" or ")}`);
      return raw.trim();
    },
  };
}

function optional<T>(spec: VarSpec<T>): VarSpec<T> & { optional: true } {
  return { ...spec, optional: true };
}

export const env = {
  int: intSpec,
  number: numberSpec,
  string: stringSpec,
  enum: enumSpec,
  bool: boolSpec,
  hostPort: hostPortSpec,
  url: urlSpec,
  optional,
};

/** A config error: `message` is the one line to print. */
export class ConfigError extends Error {
  constructor(
    readonly variable: string,
    message: string,
  ) {
    super(message);
    this.name = "ConfigError";
  }
}

function show(raw: string): string {
  return JSON.stringify(raw.length > 60 ? `${raw.slice(0, 57)}...` : raw);
}

/** Reads and validates every variable of the schema; throws ConfigError on the first bad one. */
export function loadConfig<S extends Schema>(
  schema: S,
  source: NodeJS.ProcessEnv = process.env,
): ConfigOf<S> {
  const out: Record<string, unknown> = {};
  for (const [name, spec] of Object.entries(schema)) {
    const raw = source[name];
    if (raw === undefined || raw === "") {
      if (spec.default !== undefined) out[name] = spec.default;
      else if (spec.optional) out[name] = undefined;
      else throw new ConfigError(name, `${name} is required (${spec.kind}): ${spec.doc}`);
      continue;
    }
    try {
      out[name] = spec.parse(raw);
    } catch (err) {
      throw new ConfigError(name, `${name}=${show(raw)}: ${(err as Error).message}`);
    }
  }
  return out as ConfigOf<S>;
}

/**
 * loadConfig for a process entry point: a bad value prints one line on stderr
 * ("<program>: invalid configuration: PORT="x": expected an integer in [0, 65535]") and exits 2.
 */
export function loadConfigOrExit<S extends Schema>(
  schema: S,
  program: string,
  source: NodeJS.ProcessEnv = process.env,
): ConfigOf<S> {
  try {
    return loadConfig(schema, source);
  } catch (err) {
    if (!(err instanceof ConfigError)) throw err;
    process.stderr.write(`${program}: invalid configuration: ${err.message}\n`);
    process.exit(2);
  }
}

/** A Markdown table of the schema's variables, for READMEs. */
export function describeConfig(schema: Schema): string {
  const rows = Object.entries(schema).map(([name, s]) => {
    const def = s.default === undefined ? (s.optional ? "unset" : "required") : `\`${String(s.default)}\``;
    return `| \`${name}\` | ${s.kind} | ${def} | ${s.doc} |`;
  });
  return ["| Variable | Type | Default | Meaning |", "|---|---|---|---|", ...rows].join("\n");
}
