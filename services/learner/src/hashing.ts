// Content hashes. A Train request's hash is taken over a canonical form of the DECODED request (so
// two encodings of the same message — field order, packed or not — hash alike): JSON with a fixed
// key order and every number written by JSON.stringify (shortest round-trip form, so doubles are
// exact). The model's hash is SHA-256 over config.json and its weight files (sorted by name).
import { createHash } from "node:crypto";
import { createReadStream, readdirSync } from "node:fs";
import { join } from "node:path";
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

/** SHA-256 (hex) over config.json and every *.safetensors (+ index) file, each preceded by its name. */
export async function modelContentHash(dir: string): Promise<string> {
  const files = readdirSync(dir)
    .filter((f) => f === "config.json" || f.endsWith(".safetensors") || f.endsWith(".safetensors.index.json"))
    .sort();
  const h = createHash("sha256");
  for (const f of files) {
    h.update(`${f}\0`);
    for await (const chunk of createReadStream(join(dir, f))) h.update(chunk as Buffer);
  }
  return h.digest("hex");
}
