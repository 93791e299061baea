// Exactly-once steps: a service that applies a numbered step of a run (the scheduler's Score, the
// learner's Train) keeps, per step done, the digest of the request that did it. A retried call —
// the same step with the same request — gets the stored answer again; the same step with another
// request is refused, never applied a second time.
import { createHash } from "node:crypto";
import { failedPrecondition } from "./validate.ts";

/** sha256 (hex) of a request's canonical bytes or text. */
export function requestDigest(...parts: (Uint8Array | string)[]): string {
  const h = createHash("sha256");
  for (const p of parts) h.update(p);
  return h.digest("hex");
}

/**
 * Throws FAILED_PRECONDITION unless `digest` is the digest the step was done with. `stored`
 * undefined: a step recorded before digests were kept, taken as the same. `step` names the step
 * ("run "r" step 3"), `done` what was done ("scored", "trained"), `hint` what the caller may do.
 */
export function checkSameRequest(
  step: string,
  done: string,
  stored: string | undefined,
  digest: string,
  hint: string,
): void {
  if (stored === undefined || stored === digest) return;
  throw failedPrecondition(
    `${step} was already ${done} with a different request (content hash ${stored.slice(0, 12)}…, ` +
      `this one ${digest.slice(0, 12)}…): ${hint}`,
  );
}
