// A step's phases whose results must survive a restart, stored in the run's directory: a resumed
// step reads what the phase stored instead of calling again, so it goes on from the same results.
import type { RunDir } from "./run-store.ts";

/** A protobuf message type as ts-proto generates it. */
export interface Codec<T> {
  encode(message: T): { finish(): Uint8Array };
  decode(bytes: Uint8Array): T;
}

/** `steps/<step>/<name>` if stored; otherwise `call()`, stored before it is returned. */
export async function cached<T>(
  dir: RunDir,
  step: number,
  name: string,
  codec: Codec<T>,
  call: () => Promise<T>,
): Promise<T> {
  const stored = await dir.readStep(step, name);
  if (stored) return codec.decode(stored);
  const fresh = await call();
  await dir.writeStep(step, name, codec.encode(fresh).finish());
  return fresh;
}
