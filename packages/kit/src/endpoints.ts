// Endpoints with several servers behind them, balanced per call on the client (grpc-js round_robin):
// - `host:port`: grpc-js resolves the name and, balanced, spreads calls over every address it
//   resolves to (a Kubernetes headless Service, `docker compose --scale`); grpc-js resolves it
//   again when a connection drops;
// - `ip:port,ip:port,…`: a fixed list (replicas on one machine, on different ports). A list takes IP
//   literals only, as grpc-js's ipv4:/ipv6: targets do; a name with several servers is given alone.
import { isIP } from "node:net";

const HOST_PORT = /^(\[[0-9a-fA-F:.]+\]|[A-Za-z0-9._-]+):(\d{1,5})$/;

export interface HostPort {
  host: string;
  port: number;
  /** As written (IPv6 in brackets). */
  text: string;
}

/** `host:port` with a port in [1, 65535], or an Error saying what is wrong. */
export function parseHostPort(raw: string): HostPort {
  const text = raw.trim();
  const m = HOST_PORT.exec(text);
  if (!m) throw new Error(`must be host:port, got ${JSON.stringify(text.slice(0, 80))}`);
  const port = Number(m[2]);
  if (port < 1 || port > 65535) throw new Error(`port must be in [1, 65535], got ${port}`);
  return { host: m[1].replace(/^\[|\]$/g, ""), port, text };
}

/**
 * The servers of an endpoint: one `host:port`, or a comma-separated list of `ip:port` (all IPv4 or
 * all IPv6). Throws an Error naming the entry at fault.
 */
export function parseEndpoint(raw: string): HostPort[] {
  const parts = raw.split(",").map((s) => s.trim());
  const list = parts.map((p, i) => {
    try {
      return parseHostPort(p);
    } catch (err) {
      throw new Error(
        parts.length > 1 ? `entry ${i + 1}: ${(err as Error).message}` : (err as Error).message,
      );
    }
  });
  if (list.length > 1) {
    const families = new Set(list.map((e) => isIP(e.host)));
    if (families.has(0))
      throw new Error(
        `a list of servers takes IP addresses (${list.find((e) => isIP(e.host) === 0)!.text} is a name): give a name that resolves to several addresses alone`,
      );
    if (families.size > 1) throw new Error("a list of servers takes all IPv4 or all IPv6 addresses");
  }
  return list;
}

/**
 * The grpc-js target of an endpoint: anything without a comma as it is (`host:port`, or a grpc-js
 * target such as `dns:///name:port`), a list (see parseEndpoint) as an ipv4:/ipv6: target.
 */
export function grpcTarget(endpoint: string): string {
  if (!endpoint.includes(",")) return endpoint;
  const list = parseEndpoint(endpoint);
  const scheme = isIP(list[0].host) === 6 ? "ipv6" : "ipv4";
  return `${scheme}:${list.map((e) => e.text).join(",")}`;
}

/** grpc-js channel options that balance calls over every server of the target. */
export const ROUND_ROBIN_OPTIONS = {
  "grpc.service_config": JSON.stringify({ loadBalancingConfig: [{ round_robin: {} }] }),
} as const;
