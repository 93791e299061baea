// Which reward-source endpoints a run may name (SOURCE_ENDPOINT_ALLOW): without a list, any caller
// could point a run's sources at any host:port the scheduler can reach and probe it.
//
// Rules, comma-separated: `loopback` (localhost, 127.0.0.0/8, ::1; any port), `HOST:PORT`,
// `HOST:*` (any port), `*:PORT`, or `*` (anything: no protection). Hosts compare case-insensitively
// and literally: a name is not resolved, so `127.1` or a name that resolves to loopback is not
// `loopback`.
import { isIPv4 } from "node:net";
import { quote } from "@temper/kit";

export const ALLOW_VARIABLE = "SOURCE_ENDPOINT_ALLOW";

interface Rule {
  text: string;
  matches(host: string, port: number): boolean;
}

function splitEndpoint(endpoint: string): { host: string; port: number } | undefined {
  const m = /^(\[[0-9a-fA-F:.]+\]|[A-Za-z0-9._-]+):(\d{1,5})$/.exec(endpoint.trim());
  if (!m) return undefined;
  return { host: m[1].replace(/^\[|\]$/g, "").toLowerCase(), port: Number(m[2]) };
}

export function isLoopback(host: string): boolean {
  if (host === "localhost" || host === "::1" || host === "0:0:0:0:0:0:0:1") return true;
  return isIPv4(host) && host.startsWith("127.");
}

function parseRule(text: string): Rule {
  const t = text.trim();
  if (t === "*") return { text: t, matches: () => true };
  if (t.toLowerCase() === "loopback") return { text: "loopback", matches: (host) => isLoopback(host) };
  const m = /^(\*|\[[0-9a-fA-F:.]+\]|[A-Za-z0-9._-]+):(\*|\d{1,5})$/.exec(t);
  if (!m || (m[2] !== "*" && (Number(m[2]) < 1 || Number(m[2]) > 65535)))
    throw new Error(`rule ${JSON.stringify(t)}: expected loopback, HOST:PORT, HOST:*, *:PORT or *`);
  const host = m[1].replace(/^\[|\]$/g, "").toLowerCase();
  const port = m[2] === "*" ? undefined : Number(m[2]);
  return {
    text: t,
    matches: (h, p) => (host === "*" || h === host) && (port === undefined || p === port),
  };
}

export class EndpointPolicy {
  private readonly rules: Rule[];

  /** Throws an Error naming the bad rule. */
  constructor(
    spec: string,
    /** Where the list came from, named in every refusal (the variable, or its default). */
    readonly source = ALLOW_VARIABLE,
  ) {
    const parts = spec
      .split(",")
      .map((s) => s.trim())
      .filter(Boolean);
    if (parts.length === 0) throw new Error("expected at least one rule (loopback, HOST:PORT, HOST:*, *)");
    this.rules = parts.map(parseRule);
  }

  get description(): string {
    return this.rules.map((r) => r.text).join(", ");
  }

  /**
   * Why `endpoint` is not admitted, naming the list; undefined when a rule admits it. A list of
   * replicas (`ip:port,ip:port`) is admitted when every entry is.
   */
  problem(endpoint: string): string | undefined {
    for (const entry of endpoint.split(",")) {
      const e = splitEndpoint(entry);
      if (!e) return `must be host:port, got ${JSON.stringify(entry.trim().slice(0, 80))}`;
      if (!this.rules.some((r) => r.matches(e.host, e.port)))
        return `endpoint ${quote(entry.trim())} is not admitted by ${this.source} = ${this.description}`;
    }
    return undefined;
  }
}
