// Gradient clipping by global L2 norm, as torch.nn.utils.clip_grad_norm_: the norm over every
// tensor together (float64 accumulation); when it exceeds maxNorm every gradient is multiplied by
// maxNorm / (norm + 1e-6). A non-finite norm (a NaN or ±Inf anywhere, or Σ g² overflowing) is
// reported and nothing is scaled: the caller skips the update.
import type { FloatArray } from "@temper/qwen3";

export interface ClipResult {
  /** The global norm before clipping. */
  norm: number;
  /** False when the norm is NaN or infinite (a non-finite value, or Σ g² overflowed). */
  finite: boolean;
  /** The factor applied (1 when nothing was clipped). */
  scale: number;
}

/** √(Σ g²) over every tensor, accumulated in float64. */
export function globalGradNorm(grads: Iterable<ArrayLike<number>>): number {
  let sum = 0;
  for (const g of grads) for (let i = 0; i < g.length; i++) sum += g[i] * g[i];
  return Math.sqrt(sum);
}

/** Clips `grads` in place to global norm `maxNorm` (0 disables clipping); returns the norm before. */
export function clipGradNorm(grads: ReadonlyMap<string, FloatArray>, maxNorm: number): ClipResult {
  if (!Number.isFinite(maxNorm) || maxNorm < 0)
    throw new RangeError(`max grad norm must be a finite number ≥ 0, got ${maxNorm}`);
  const norm = globalGradNorm(grads.values());
  const finite = Number.isFinite(norm);
  if (!finite || maxNorm === 0) return { norm, finite, scale: 1 };
  const coef = maxNorm / (norm + 1e-6);
  if (coef >= 1) return { norm, finite, scale: 1 };
  for (const g of grads.values()) for (let i = 0; i < g.length; i++) g[i] *= coef;
  return { norm, finite, scale: coef };
}
