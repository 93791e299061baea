// AdamW with decoupled weight decay over named tensors, with torch.optim.AdamW's semantics
// (amsgrad off, maximize off). For each parameter p with gradient g, at update t = 1, 2, …:
//
//   p ← p − lr·wd·p                       (decoupled weight decay, before the moment update)
//   m ← β1·m + (1 − β1)·g
//   v ← β2·v + (1 − β2)·g²
//   m̂ = m / (1 − β1^t),  v̂ = v / (1 − β2^t)
//   p ← p − lr·m̂ / (√v̂ + ε)
//
// Moments are float64 whatever the parameters' precision (a Float32Array parameter is updated in
// float64 and rounded once when stored), so saving and loading the state is exact and a resumed
// run continues bitwise.
import type { FloatArray } from "@temper/qwen3";

export interface AdamWHyper {
  /** β1 (default 0.9). */
  beta1: number;
  /** β2 (default 0.999). */
  beta2: number;
  /** ε added to √v̂ (default 1e-8). */
  epsilon: number;
  /** Decoupled weight decay coefficient (default 0; torch's default is 0.01). */
  weightDecay: number;
}

export const ADAMW_DEFAULTS: Readonly<AdamWHyper> = {
  beta1: 0.9,
  beta2: 0.999,
  epsilon: 1e-8,
  weightDecay: 0,
};

/** The optimizer state: first and second moments by parameter name, and the updates applied. */
export interface AdamWState {
  /** Updates applied so far (t of the last update). */
  step: number;
  /** First moments (torch's exp_avg). */
  m: Map<string, Float64Array>;
  /** Second moments (torch's exp_avg_sq). */
  v: Map<string, Float64Array>;
}

/** A bad optimizer input: one line naming the parameter or hyper-parameter. */
export class OptimizerError extends Error {
  override name = "OptimizerError";
}

/** Zero moments for every parameter (what torch creates lazily at the first update). */
export function initAdamWState(params: ReadonlyMap<string, FloatArray>): AdamWState {
  const m = new Map<string, Float64Array>();
  const v = new Map<string, Float64Array>();
  for (const [name, p] of params) {
    m.set(name, new Float64Array(p.length));
    v.set(name, new Float64Array(p.length));
  }
  return { step: 0, m, v };
}

/** A deep copy (to restore when a step is abandoned). */
export function cloneAdamWState(state: AdamWState): AdamWState {
  const copy = (src: Map<string, Float64Array>) => new Map([...src].map(([k, a]) => [k, a.slice()]));
  return { step: state.step, m: copy(state.m), v: copy(state.v) };
}

/** Checks hyper-parameters: β in [0, 1), ε ≥ 0, weight decay ≥ 0, lr ≥ 0; throws OptimizerError. */
export function checkAdamWHyper(h: AdamWHyper, lr?: number): void {
  const inUnit = (x: number) => Number.isFinite(x) && x >= 0 && x < 1;
  if (!inUnit(h.beta1)) throw new OptimizerError(`beta1 must be in [0, 1), got ${h.beta1}`);
  if (!inUnit(h.beta2)) throw new OptimizerError(`beta2 must be in [0, 1), got ${h.beta2}`);
  if (!Number.isFinite(h.epsilon) || h.epsilon < 0)
    throw new OptimizerError(`epsilon must be a finite number ≥ 0, got ${h.epsilon}`);
  if (!Number.isFinite(h.weightDecay) || h.weightDecay < 0)
    throw new OptimizerError(`weight_decay must be a finite number ≥ 0, got ${h.weightDecay}`);
  if (lr !== undefined && (!Number.isFinite(lr) || lr < 0))
    throw new OptimizerError(`learning rate must be a finite number ≥ 0, got ${lr}`);
}

/**
 * One AdamW update, in place: `params` and `state` change, `grads` do not. Every parameter must
 * have a gradient of the same length (and moments, when the state was made for these params).
 */
export function adamwStep(
  params: ReadonlyMap<string, FloatArray>,
  grads: ReadonlyMap<string, ArrayLike<number>>,
  state: AdamWState,
  lr: number,
  hyper: AdamWHyper = ADAMW_DEFAULTS,
): void {
  checkAdamWHyper(hyper, lr);
  for (const [name, p] of params) {
    const g = grads.get(name);
    if (!g) throw new OptimizerError(`no gradient for parameter ${name}`);
    if (g.length !== p.length)
      throw new OptimizerError(`gradient of ${name} has ${g.length} values, the parameter ${p.length}`);
    const m = state.m.get(name);
    const v = state.v.get(name);
    if (!m || !v || m.length !== p.length || v.length !== p.length)
      throw new OptimizerError(`optimizer state has no moments of ${p.length} values for ${name}`);
  }
  const t = state.step + 1;
  const { beta1, beta2, epsilon, weightDecay } = hyper;
  const bc1 = 1 - beta1 ** t;
  const bc2 = 1 - beta2 ** t;
  const decay = lr * weightDecay;
  for (const [name, p] of params) {
    const g = grads.get(name)!;
    const m = state.m.get(name)!;
    const v = state.v.get(name)!;
    for (let i = 0; i < p.length; i++) {
      let x = p[i];
      x -= decay * x;
      const gi = g[i];
      m[i] = beta1 * m[i] + (1 - beta1) * gi;
      v[i] = beta2 * v[i] + (1 - beta2) * gi * gi;
      const mhat = m[i] / bc1;
      const vhat = v[i] / bc2;
      x -= (lr * mhat) / (Math.sqrt(vhat) + epsilon);
      p[i] = x;
    }
  }
  state.step = t;
}
