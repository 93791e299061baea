// Ports on loopback: whether one is free, one the kernel picks, the kernel's ephemeral range, and a
// port offset under which a whole stack fits beside another.
import { readFileSync } from "node:fs";
import { createServer } from "node:net";
import { NATS_DEFAULT_PORT, SERVICES } from "./services.ts";

/** Whether 127.0.0.1:`port` can be listened on now. */
export function portFree(port: number): Promise<boolean> {
  return new Promise((done) => {
    const server = createServer();
    server.once("error", () => done(false));
    server.listen(port, "127.0.0.1", () => server.close(() => done(true)));
  });
}

/** A port that was free a moment ago on 127.0.0.1. */
export function freePort(): Promise<number> {
  return new Promise((done, fail) => {
    const server = createServer();
    server.once("error", fail);
    server.listen(0, "127.0.0.1", () => {
      const address = server.address();
      const port = typeof address === "object" && address ? address.port : 0;
      server.close(() => done(port));
    });
  });
}

/** The range the kernel picks a connection's own port from (Linux), or undefined where unknown. */
export function ephemeralPortRange(): [number, number] | undefined {
  try {
    const [lo, hi] = readFileSync("/proc/sys/net/ipv4/ip_local_port_range", "utf8")
      .trim()
      .split(/\s+/)
      .map(Number);
    return Number.isInteger(lo) && Number.isInteger(hi) ? [lo, hi] : undefined;
  } catch {
    return undefined;
  }
}

/** A port offset under which every default port of the stack (NATS included) is free now. */
export async function freeStackOffset(): Promise<number> {
  const ports = [NATS_DEFAULT_PORT, ...SERVICES.map((s) => s.port)];
  for (let offset = 3000 + Math.floor(Math.random() * 50) * 100; offset < 12_000; offset += 100) {
    const free = await Promise.all(ports.map((p) => portFree(p + offset)));
    if (free.every(Boolean)) return offset;
  }
  throw new Error("no free port range for the stack");
}
