// A test's stack on a port range no other stack uses, so it runs beside a real one and beside
// other tests.
import { freeStackOffset, NATS_DEFAULT_PORT, type Stack, type StackOptions, startStack } from "@temper/stack";

/** A local stack for a test, on a port range no other stack uses (NATS at 4222 + the offset). */
export async function startTestStack(o: Omit<StackOptions, "natsPort" | "portOffset">): Promise<Stack> {
  const offset = await freeStackOffset();
  return startStack({ ...o, natsPort: NATS_DEFAULT_PORT + offset, portOffset: offset });
}
