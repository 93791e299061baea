// The sampling stream of a completion: completion j of prompt p draws from Rng(promptSeed, j), where
// promptSeed mixes (seed, step, p's id). The run id is deliberately not part of it, so runs with one
// experiment seed sample the same random numbers; the prompt's position in the request is not part
// of it either, so adding or reordering prompts leaves every prompt's completions unchanged.
import { hashString } from "@temper/qwen3";

/** One round of a 32-bit finaliser (murmur3's fmix32) over h combined with v. */
function mix(h: number, v: number): number {
  let x = Math.imul(h ^ v, 0x85ebca6b) >>> 0;
  x = Math.imul(x ^ (x >>> 13), 0xc2b2ae35) >>> 0;
  x ^= x >>> 16;
  return Math.imul(x ^ (x >>> 15), 0x9e3779b1) >>> 0;
}

const low = (v: number) => v >>> 0;
const high = (v: number) => Math.floor(v / 2 ** 32) >>> 0;

/**
 * The seed of prompt `promptId`'s streams at `step` under experiment `seed` (both safe non-negative
 * integers): a 32-bit unsigned integer.
 */
export function promptSeed(seed: number, step: number, promptId: string): number {
  let h = 0x7e3b1a5d;
  for (const v of [low(seed), high(seed), low(step), high(step), hashString(promptId), promptId.length])
    h = mix(h, v);
  return h;
}
