// The rollout servers a step is sharded over. ROLLOUT_ADDR lists entries (host:port); an entry whose
// host is a name is resolved again for every Generate, and each address it resolves to is one
// server: a Kubernetes headless Service (`rollout-pods`, one record per ready pod) spreads a step
// over every pod, and a scaled deployment is used from the next step on. The servers are the
// entries in order, each name's addresses sorted, duplicates once: a fixed function of what the
// names resolve to, so the shards of a step are a fixed function of its prompts and that list.
import { lookup } from "node:dns/promises";
import { isIP } from "node:net";
import { GrpcError, type PromiseClient, parseHostPort, Status } from "@temper/kit";
import type { rollout } from "@temper/proto";

export type RolloutClient = PromiseClient<typeof rollout.RolloutServiceService>;

/** A name's addresses (IPv4 when it has any, else IPv6). */
export type Resolver = (host: string) => Promise<string[]>;

export const dnsResolver: Resolver = async (host) => {
  const all = await lookup(host, { all: true, verbatim: true });
  const v4 = all.filter((a) => a.family === 4).map((a) => a.address);
  return v4.length ? v4 : all.map((a) => a.address);
};

/**
 * Makes the client of one server: `address` is ip:port; `authority`, when set, is the entry's host
 * name, which the server's certificate must name (the address is an IP the pool resolved).
 */
export type ClientFactory = (address: string, authority: string | undefined) => RolloutClient;

interface Held {
  client: RolloutClient;
  closing?: NodeJS.Timeout;
}

export class RolloutPool {
  private readonly entries: { host: string; port: number; text: string; name: boolean }[];
  private readonly held = new Map<string, Held>();

  constructor(
    entries: readonly string[],
    private readonly make: ClientFactory,
    private readonly options: {
      resolver?: Resolver;
      /** A server no longer resolved is closed after this long (its calls have ended by then). */
      closeAfterMs?: number;
    } = {},
  ) {
    if (entries.length === 0) throw new Error("ROLLOUT_ADDR: expected at least one host:port");
    this.entries = entries.map((e) => {
      const hp = parseHostPort(e);
      return { ...hp, name: isIP(hp.host) === 0 };
    });
  }

  /** The entries as configured. */
  get configured(): string[] {
    return this.entries.map((e) => e.text);
  }

  /**
   * Every rollout server now, in a fixed order. A name that does not resolve is UNAVAILABLE
   * (retried by the caller: a headless Service has no record while no pod is ready).
   */
  async endpoints(): Promise<RolloutClient[]> {
    const resolve = this.options.resolver ?? dnsResolver;
    const keys: { key: string; address: string; authority?: string }[] = [];
    const seen = new Set<string>();
    for (const e of this.entries) {
      let addresses: string[];
      if (!e.name) addresses = [e.host];
      else {
        try {
          addresses = await resolve(e.host);
        } catch (err) {
          const why = (err as NodeJS.ErrnoException).code ?? (err as Error).message;
          throw new GrpcError(
            Status.UNAVAILABLE,
            `ROLLOUT_ADDR entry ${e.text}: cannot resolve ${e.host}: ${why}`,
          );
        }
        if (addresses.length === 0)
          throw new GrpcError(Status.UNAVAILABLE, `ROLLOUT_ADDR entry ${e.text}: ${e.host} has no address`);
        addresses = [...addresses].sort((a, b) => a.localeCompare(b, "en", { numeric: true }));
      }
      for (const ip of addresses) {
        const address = isIP(ip) === 6 ? `[${ip}]:${e.port}` : `${ip}:${e.port}`;
        const authority = e.name ? e.host : undefined;
        const key = `${address}|${authority ?? ""}`;
        if (seen.has(key)) continue;
        seen.add(key);
        keys.push({ key, address, authority });
      }
    }
    const out = keys.map(({ key, address, authority }) => {
      let h = this.held.get(key);
      if (!h) {
        h = { client: this.make(address, authority) };
        this.held.set(key, h);
      }
      if (h.closing) {
        clearTimeout(h.closing);
        h.closing = undefined;
      }
      return h.client;
    });
    // servers gone from the names (scaled down, rescheduled) are closed once their calls are over
    for (const [key, h] of this.held)
      if (!seen.has(key) && !h.closing) {
        h.closing = setTimeout(() => {
          h.client.$close();
          this.held.delete(key);
        }, this.options.closeAfterMs ?? 600_000);
        h.closing.unref();
      }
    return out;
  }

  close(): void {
    for (const h of this.held.values()) {
      if (h.closing) clearTimeout(h.closing);
      h.client.$close();
    }
    this.held.clear();
  }
}
