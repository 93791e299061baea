// Which prompts a step trains on: epochs over the training set without replacement, each epoch a
// seeded permutation, and never the same prompt twice within a step (an item that would repeat
// across an epoch boundary waits for the next step). The draw is a pure function of (dataset size,
// prompts per step, seed, step), so a resumed run draws exactly what it would have drawn.
import { Rng } from "@temper/qwen3/model";

function permutation(n: number, seed: number, epoch: number): number[] {
  const rng = new Rng(seed, 0x5eed0000 + epoch);
  const p = Array.from({ length: n }, (_, i) => i);
  for (let i = n - 1; i > 0; i--) {
    const j = rng.nextU32() % (i + 1);
    [p[i], p[j]] = [p[j], p[i]];
  }
  return p;
}

/** Dataset indices of every step in [0, steps): steps × perStep indices, distinct within a step. */
export function drawSteps(datasetSize: number, perStep: number, seed: number, steps: number): number[][] {
  if (perStep > datasetSize)
    throw new Error(`prompts_per_step ${perStep} is more than the dataset's ${datasetSize} problems`);
  const out: number[][] = [];
  let epoch = 0;
  let order = permutation(datasetSize, seed, epoch);
  let at = 0;
  let waiting: number[] = [];
  for (let s = 0; s < steps; s++) {
    const chosen = new Set<number>();
    const stillWaiting: number[] = [];
    for (const i of waiting) {
      if (chosen.size < perStep && !chosen.has(i)) chosen.add(i);
      else stillWaiting.push(i);
    }
    while (chosen.size < perStep) {
      if (at === order.length) {
        epoch++;
        order = permutation(datasetSize, seed, epoch);
        at = 0;
      }
      const i = order[at++];
      if (chosen.has(i)) stillWaiting.push(i);
      else chosen.add(i);
    }
    waiting = stillWaiting;
    out.push([...chosen]);
  }
  return out;
}

/** The prompts of one step (see drawSteps). */
export function drawStep(datasetSize: number, perStep: number, seed: number, step: number): number[] {
  return drawSteps(datasetSize, perStep, seed, step + 1)[step];
}

/**
 * Prompt `index`'s shard among `shards` rollout endpoints: contiguous blocks of the step's prompt
 * list, a fixed function of the list and the endpoint count (a retried shard is the same request).
 */
export function shardRanges(count: number, shards: number): [number, number][] {
  const k = Math.max(1, Math.min(shards, count));
  return Array.from({ length: k }, (_, s) => [
    Math.floor((s * count) / k),
    Math.floor(((s + 1) * count) / k),
  ]);
}

/** Most prompts in one Generate unless configured: the rollout's default MAX_PROMPTS. */
export const GENERATE_MAX_PROMPTS = 1024;

/**
 * `[from, to)` in consecutive pieces of at most `max` prompts: one shard as the Generate calls that
 * carry it (a held-out set may exceed what one call may hold). Rollout seeds each prompt by its id,
 * not its position, so the pieces sample what one call would.
 */
export function callRanges(from: number, to: number, max: number): [number, number][] {
  if (!(Number.isSafeInteger(max) && max >= 1))
    throw new RangeError(`max must be an integer ≥ 1, got ${max}`);
  const out: [number, number][] = [];
  for (let a = from; a < to; a += max) out.push([a, Math.min(to, a + max)]);
  return out;
}
