// Content hashes. A Train request's hash is taken over a canonical form of the DECODED request (so
// two encodings of the same message — field order, packed or not — hash alike): JSON with a fixed
// key order and every number written by JSON.stringify (shortest round-trip form, so doubles are
// exact).
import { createHash } from "node:crypto";
import type { learner } from "@temper/proto";

export function trainRequestHash(req: learner.TrainRequest): string {
  const h = createHash("sha256");
  h.update(JSON.stringify({ run_id: req.runId, step: req.step, n: req.sequences.length }));
  for (const s of req.sequences)
    h.update(
      `\n${JSON.stringify([s.inputIds, s.completionMask, s.advantage, s.oldLogprobs, s.refLogprobs])}`,
    );
  return h.digest("hex");
}
