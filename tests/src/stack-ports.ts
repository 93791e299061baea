// A port offset under which every default port of the stack (NATS included) is free, so a test's
// stack runs beside a real one and beside other tests.
import { createServer } from "node:net";
import { NATS_DEFAULT_PORT, SERVICES } from "../../tools/src/services.ts";
import { type Stack, type StackOptions, startStack } from "../../tools/src/stack-runtime.ts";

function portFree(port: number): Promise<boolean> {
  return new Promise((done) => {
    const s = createServer();
    s.once("error", () => done(false));
    s.listen(port, "127.0.0.1", () => s.close(() => done(true)));
  });
}

export async function freeStackOffset(): Promise<number> {
  const ports = [NATS_DEFAULT_PORT, ...SERVICES.map((s) => s.port)];
  for (let offset = 3000 + Math.floor(Math.random() * 50) * 100; offset < 12_000; offset += 100) {
    const free = await Promise.all(ports.map((p) => portFree(p + offset)));
    if (free.every(Boolean)) return offset;
  }
  throw new Error("no free port range for the stack");
}

/** A local stack for a test, on a port range no other stack uses (NATS at 4222 + the offset). */
export async function startTestStack(o: Omit<StackOptions, "natsPort" | "portOffset">): Promise<Stack> {
  const offset = await freeStackOffset();
  return startStack({ ...o, natsPort: NATS_DEFAULT_PORT + offset, portOffset: offset });
}
