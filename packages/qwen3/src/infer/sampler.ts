// Next-token sampling from one logits row: greedy, temperature, top-k, top-p, restricted to the ids
// the tokenizer has. All arithmetic is float64 whatever the row's type.
//
// Order (as transformers' logits warpers): divide by temperature → top-k → top-p over the top-k
// survivors renormalised. Both masks are thresholds on the logit, so tokens with equal logits are
// kept or dropped together and the kept set never depends on how ids happen to be numbered:
//   top-k keeps every token whose logit ≥ the k-th largest logit (more than k only through exact ties);
//   top-p sorts by probability, finds the first token at which the cumulative probability reaches p,
//   and keeps every token at least as probable (the smallest such set, closed under ties).
// The returned logprob follows the blueprint's logprob alignment: log softmax(row / temperature) over
// the WHOLE row, untruncated by top-k/top-p and not restricted to the tokenizer's ids, which is what
// the learner recomputes from the full forward pass. Greedy (temperature 0) reports it at
// temperature 1.

export type LogitsRow = Float32Array | Float64Array;

export interface SamplingParams {
  /** 0 = greedy (argmax); otherwise logits are divided by it before softmax. */
  temperature: number;
  /** Keep the k highest logits (and every logit tied with the k-th); 0 or undefined = off. */
  topK?: number;
  /** Nucleus mass in (0, 1]; 1 or undefined = off. */
  topP?: number;
}

/** A draw source: uniform numbers in the open interval (0, 1). `Rng` from prng.ts is one. */
export interface UniformSource {
  uniform(): number;
}

export interface SampledToken {
  token: number;
  /** log softmax(row / temperature)[token] over the whole row (temperature 1 when greedy). */
  logprob: number;
}

/** Bad sampling parameters or logits: the message is one line naming the offending value. */
export class SamplingError extends Error {
  override name = "SamplingError";
}

// A cumulative sum this close below p counts as reaching it, so a nucleus boundary that is exact in
// real arithmetic does not depend on rounding in the probabilities.
const TOP_P_SLACK = 1e-12;

export function checkSamplingParams(params: SamplingParams): void {
  const { temperature, topK, topP } = params;
  if (!(Number.isFinite(temperature) && temperature >= 0))
    throw new SamplingError(`temperature must be a finite number ≥ 0, got ${temperature}`);
  if (topK !== undefined && !(Number.isSafeInteger(topK) && topK >= 0))
    throw new SamplingError(`top_k must be an integer ≥ 0 (0 = off), got ${topK}`);
  if (topP !== undefined && !(topP > 0 && topP <= 1))
    throw new SamplingError(`top_p must be in (0, 1], got ${topP}`);
}

function checkLimit(row: LogitsRow, vocabLimit: number): void {
  if (!(Number.isSafeInteger(vocabLimit) && vocabLimit >= 1 && vocabLimit <= row.length))
    throw new SamplingError(`vocabLimit must be an integer in [1, ${row.length}], got ${vocabLimit}`);
}

/** Largest logit among ids < vocabLimit; the lowest such id wins ties. Rejects NaN and +∞. */
export function argmax(row: LogitsRow, vocabLimit: number = row.length): number {
  checkLimit(row, vocabLimit);
  let best = -1;
  let max = -Infinity;
  for (let i = 0; i < vocabLimit; i++) {
    const v = row[i];
    if (Number.isNaN(v) || v === Infinity) throw new SamplingError(`logit of token ${i} is ${v}`);
    if (v > max) {
      max = v;
      best = i;
    }
  }
  if (best < 0) throw new SamplingError(`every logit of tokens 0..${vocabLimit - 1} is -Infinity`);
  return best;
}

/** log softmax(row / temperature)[token] over the whole row, in float64. */
export function tokenLogprob(row: LogitsRow, token: number, temperature = 1): number {
  if (!(temperature > 0)) throw new SamplingError(`temperature must be positive, got ${temperature}`);
  const scale = 1 / temperature;
  let max = -Infinity;
  for (let i = 0; i < row.length; i++) if (row[i] > max) max = row[i];
  let sum = 0;
  for (let i = 0; i < row.length; i++) sum += Math.exp((row[i] - max) * scale);
  return (row[token] - max) * scale - Math.log(sum);
}

/** The k-th largest of row[0 … n) (k ≤ n), by a size-k min-heap: O(n log k), no full sort. */
function kthLargest(row: LogitsRow, n: number, k: number): number {
  const heap = new Float64Array(k);
  let size = 0;
  const siftDown = (start: number) => {
    let i = start;
    for (;;) {
      const l = 2 * i + 1;
      const r = l + 1;
      let m = i;
      if (l < size && heap[l] < heap[m]) m = l;
      if (r < size && heap[r] < heap[m]) m = r;
      if (m === i) return;
      const t = heap[i];
      heap[i] = heap[m];
      heap[m] = t;
      i = m;
    }
  };
  for (let i = 0; i < n; i++) {
    const v = row[i];
    if (size < k) {
      let j = size++;
      heap[j] = v;
      while (j > 0) {
        const parent = (j - 1) >> 1;
        if (heap[parent] <= heap[j]) break;
        const t = heap[parent];
        heap[parent] = heap[j];
        heap[j] = t;
        j = parent;
      }
    } else if (v > heap[0]) {
      heap[0] = v;
      siftDown(0);
    }
  }
  return heap[0];
}

/** Descending logit, ties by ascending id: the deterministic order candidates are listed in. */
function byLogitDesc(row: LogitsRow): (a: number, b: number) => number {
  return (a, b) => row[b] - row[a] || a - b;
}

/**
 * The ids top-k and top-p leave to sample from (temperature > 0), in descending logit order with
 * ties by ascending id; greedy (temperature 0) gives [argmax]. Only ids < vocabLimit are candidates.
 */
export function keptTokens(
  row: LogitsRow,
  params: SamplingParams,
  vocabLimit: number = row.length,
): number[] {
  checkSamplingParams(params);
  const top = argmax(row, vocabLimit); // also validates the row
  if (params.temperature === 0) return [top];
  const scale = 1 / params.temperature;
  const max = row[top];
  const topK = params.topK ?? 0;
  const topP = params.topP ?? 1;

  let ids: number[];
  if (topK > 0 && topK < vocabLimit) {
    const kth = kthLargest(row, vocabLimit, topK);
    ids = [];
    for (let i = 0; i < vocabLimit; i++) if (row[i] >= kth && row[i] > -Infinity) ids.push(i);
  } else if (topP < 1) {
    // Tokens with probability below τ = (1 − p) / (2n) hold less than (1 − p) / 2 of the mass
    // together, so the nucleus (a prefix by probability) lies among the others: skip sorting them.
    let sum = 0;
    for (let i = 0; i < vocabLimit; i++) sum += Math.exp((row[i] - max) * scale);
    const floor = ((1 - topP) / (2 * vocabLimit)) * sum;
    ids = [];
    for (let i = 0; i < vocabLimit; i++) if (Math.exp((row[i] - max) * scale) >= floor) ids.push(i);
  } else {
    ids = [];
    for (let i = 0; i < vocabLimit; i++) if (row[i] > -Infinity) ids.push(i);
  }
  ids.sort(byLogitDesc(row));
  if (topP >= 1) return ids;

  // Nucleus over the top-k survivors renormalised (or over every id when top-k is off).
  let total = 0;
  if (topK > 0 && topK < vocabLimit) {
    for (const i of ids) total += Math.exp((row[i] - max) * scale);
  } else {
    for (let i = 0; i < vocabLimit; i++) total += Math.exp((row[i] - max) * scale);
  }
  let cumulative = 0;
  let cut = ids.length;
  for (let j = 0; j < ids.length; j++) {
    cumulative += Math.exp((row[ids[j]] - max) * scale) / total;
    if (cumulative >= topP - TOP_P_SLACK) {
      cut = j + 1;
      break;
    }
  }
  // Tokens tied with the last one kept stay too.
  const boundary = row[ids[cut - 1]];
  while (cut < ids.length && row[ids[cut]] === boundary) cut++;
  return ids.slice(0, cut);
}

/**
 * Draws one token from a logits row: greedy when temperature is 0 (no draw consumed), else one
 * uniform draw from the temperature-scaled, top-k/top-p-truncated distribution over ids < vocabLimit.
 */
export function sampleToken(
  row: LogitsRow,
  params: SamplingParams,
  rng: UniformSource,
  vocabLimit: number = row.length,
): SampledToken {
  const t = params.temperature;
  const untruncated =
    t > 0 && !((params.topK ?? 0) > 0 && params.topK! < vocabLimit) && (params.topP ?? 1) >= 1;
  // Without truncation the draw walks the ids in index order: no sort of the whole row.
  const ids = untruncated ? allIds(row, params, vocabLimit) : keptTokens(row, params, vocabLimit);
  if (t === 0) return { token: ids[0], logprob: tokenLogprob(row, ids[0], 1) };
  const scale = 1 / t;
  let max = -Infinity;
  for (const i of ids) if (row[i] > max) max = row[i];
  const weights = new Float64Array(ids.length);
  let total = 0;
  for (let j = 0; j < ids.length; j++) {
    weights[j] = Math.exp((row[ids[j]] - max) * scale);
    total += weights[j];
  }
  const target = rng.uniform() * total;
  let chosen = -1;
  let cumulative = 0;
  for (let j = 0; j < ids.length; j++) {
    if (weights[j] === 0) continue;
    chosen = j; // rounding can leave target ≥ the final sum: then the last positive-weight id
    cumulative += weights[j];
    if (target < cumulative) break;
  }
  const token = ids[chosen];
  return { token, logprob: tokenLogprob(row, token, t) };
}

/** Every id < vocabLimit with a finite logit, in id order (validated like keptTokens). */
function allIds(row: LogitsRow, params: SamplingParams, vocabLimit: number): number[] {
  checkSamplingParams(params);
  argmax(row, vocabLimit);
  const ids: number[] = [];
  for (let i = 0; i < vocabLimit; i++) if (row[i] > -Infinity) ids.push(i);
  return ids;
}
