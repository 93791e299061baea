// Content hashes. A Train request's hash is taken over a canonical form of the DECODED request (so
// two encodings of the same message — field order, packed or not — hash alike): JSON with a fixed
// key order and every number written by JSON.stringify (shortest round-trip form, so doubles are
// exact).
import { requestDigest } from "@temper/kit";
import type { learner } from "@temper/proto";

export function trainRequestHash(req: learner.TrainRequest): string {
  return requestDigest(
    JSON.stringify({ run_id: req.runId, step: req.step, n: req.sequences.length }),
    ...req.sequences.map(
      (s) => `\n${JSON.stringify([s.inputIds, s.completionMask, s.advantage, s.oldLogprobs, s.refLogprobs])}`,
    ),
  );
}
