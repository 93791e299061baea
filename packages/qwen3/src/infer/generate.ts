// The generation loop, independent of how logits are computed: a DecodeBackend turns prompts into
// next-token logits (prefill) and then extends chosen rows by one token at a time (decode). The
// loop samples, records logprobs, and stops rows on EOS ids, stop strings and max_new_tokens.
//
// Reproducibility: completion j of prompt p draws from its own stream Rng(promptSeed(p), j), where
// promptSeed(p) = options.seeds[p] when given, else defaultPromptSeed(options.seed, p). A stream
// never depends on the other rows of the batch, on batchSize or on when other rows finish, so a
// prompt generated alone with seeds: [s] gives the same completions as inside any batch where its
// seed is s (exactly so for a backend whose logits do not depend on batch composition).
//
// Outputs per completion:
//   tokenIds  every sampled token, including a final EOS id and every token of a stop string (the
//             learner must see exactly what was sampled);
//   logprobs  one per token id, see sampler.ts (untruncated, temperature-scaled, whole row);
//   text      the decoded tokens without a final EOS, cut before the first stop string;
//   finishReason "stop" (EOS id or stop string) or "length" (max_new_tokens reached without one).
import { Rng } from "../model/prng.ts";
import { checkSamplingParams, type LogitsRow, type SamplingParams, sampleToken } from "./sampler.ts";

/**
 * A batch in progress on some backend. Rows are numbered by their index in the prefill's prompts.
 */
export interface DecodeSession {
  /**
   * Appends tokens[i] to row rows[i] and returns the next-token logits of those rows, in the same
   * order. `rows` is strictly increasing and a subset of the rows of the previous call (finished
   * rows are never extended again; a backend may drop their cache or keep feeding padding).
   */
  decode(rows: readonly number[], tokens: readonly number[]): Promise<LogitsRow[]>;
  /** Frees what the session holds (KV cache). Called once, also after an error. */
  close(): void;
}

/**
 * Computes logits. prefill receives prompts of different lengths; left padding, attention masks and
 * per-row position ids (cumsum(mask) − 1) are the backend's business.
 */
export interface DecodeBackend {
  /** Length of every logits row (the model's embedding rows; may exceed the tokenizer's ids). */
  readonly vocabSize: number;
  /** Longest sequence (prompt + completion) the model accepts, when it has a limit. */
  readonly maxPositions?: number;
  /** Starts a session: row b is prompts[b]; returns each row's next-token logits. */
  prefill(prompts: readonly (readonly number[])[]): Promise<{ session: DecodeSession; logits: LogitsRow[] }>;
}

/** What the loop needs of a tokenizer (`Tokenizer` fits). */
export interface TokenDecoder {
  /** Ids ≥ this are never sampled. */
  readonly vocabSize: number;
  decode(ids: readonly number[]): string;
}

export interface GenerateOptions extends SamplingParams {
  /** Tokens to generate at most per completion (≥ 1). */
  maxNewTokens: number;
  /** Completions per prompt; default 1. */
  n?: number;
  /** Sampling any of these ends a completion (ModelDir.eosTokenIds). */
  eosTokenIds?: readonly number[];
  /** Ends a completion as soon as its decoded text contains one of these (non-empty) strings. */
  stop?: readonly string[];
  /** Base seed; default 0. */
  seed?: number;
  /** One seed per prompt, overriding `seed`. */
  seeds?: readonly number[];
  /** Rows (prompt × sample) per backend session; default all at once. Results do not depend on it. */
  batchSize?: number;
  /**
   * Called before every backend run (prefill or decode step); an exception it throws ends the
   * generation and is rethrown, the session closed. This is how a caller cancels between steps.
   */
  beforeStep?: () => void;
}

export type FinishReason = "stop" | "length";

export interface Completion {
  promptIndex: number;
  sampleIndex: number;
  text: string;
  tokenIds: number[];
  logprobs: number[];
  finishReason: FinishReason;
  /** The EOS id or stop string that ended it; null when finishReason is "length". */
  stopReason: number | string | null;
}

/** Bad generation input: the message is one line naming the offending value. */
export class GenerateError extends Error {
  override name = "GenerateError";
}

/** Prompt p's seed when GenerateOptions.seeds is not given: a 32-bit mix of (seed, p). */
export function defaultPromptSeed(seed: number, promptIndex: number): number {
  let h = (Math.floor(seed) ^ Math.floor(seed / 2 ** 32)) >>> 0;
  h = Math.imul(h ^ Math.imul(promptIndex + 1, 0x9e3779b9), 0x85ebca6b);
  h = Math.imul(h ^ (h >>> 13), 0xc2b2ae35);
  return (h ^ (h >>> 16)) >>> 0;
}

interface Row {
  promptIndex: number;
  sampleIndex: number;
  prompt: readonly number[];
  rng: Rng;
  tokens: number[];
  logprobs: number[];
  /** Decoded text length at the previous stop-string check. */
  checkedLength: number;
  finish: FinishReason | null;
  stopReason: number | string | null;
  text: string;
}

const positiveInteger = (v: number | undefined) => v === undefined || (Number.isSafeInteger(v) && v >= 1);

function checkOptions(
  backend: DecodeBackend,
  prompts: readonly (readonly number[])[],
  options: GenerateOptions,
): void {
  try {
    checkSamplingParams(options);
  } catch (err) {
    throw new GenerateError((err as Error).message);
  }
  if (!(Number.isSafeInteger(options.maxNewTokens) && options.maxNewTokens >= 1))
    throw new GenerateError(`max_new_tokens must be an integer ≥ 1, got ${options.maxNewTokens}`);
  if (!positiveInteger(options.n)) throw new GenerateError(`n must be an integer ≥ 1, got ${options.n}`);
  if (!positiveInteger(options.batchSize))
    throw new GenerateError(`batchSize must be an integer ≥ 1, got ${options.batchSize}`);
  if (options.seed !== undefined && !Number.isSafeInteger(options.seed))
    throw new GenerateError(`seed must be an integer, got ${options.seed}`);
  if (options.seeds !== undefined) {
    if (options.seeds.length !== prompts.length)
      throw new GenerateError(`seeds has ${options.seeds.length} entries for ${prompts.length} prompts`);
    options.seeds.forEach((s, i) => {
      if (!Number.isSafeInteger(s)) throw new GenerateError(`seeds[${i}] must be an integer, got ${s}`);
    });
  }
  for (const s of options.stop ?? []) {
    if (typeof s !== "string" || s === "") throw new GenerateError("stop strings must be non-empty");
  }
  for (const id of options.eosTokenIds ?? []) {
    if (!Number.isSafeInteger(id) || id < 0) throw new GenerateError(`EOS id ${id} is not a token id`);
  }
  if (prompts.length === 0) throw new GenerateError("no prompts");
  prompts.forEach((prompt, p) => {
    if (prompt.length === 0) throw new GenerateError(`prompt ${p} has no tokens`);
    prompt.forEach((id, i) => {
      if (!Number.isSafeInteger(id) || id < 0 || id >= backend.vocabSize)
        throw new GenerateError(
          `prompt ${p} token ${i} = ${id} is outside the model's ${backend.vocabSize} ids`,
        );
    });
    const max = backend.maxPositions;
    if (max !== undefined && prompt.length + options.maxNewTokens > max) {
      throw new GenerateError(
        `prompt ${p} has ${prompt.length} tokens; with max_new_tokens ${options.maxNewTokens} it exceeds the model's ${max} positions`,
      );
    }
  });
}

/**
 * Generates options.n completions for every prompt (token ids). Returns [prompt][sample].
 */
export async function generate(
  backend: DecodeBackend,
  tokenizer: TokenDecoder,
  prompts: readonly (readonly number[])[],
  options: GenerateOptions,
): Promise<Completion[][]> {
  checkOptions(backend, prompts, options);
  const n = options.n ?? 1;
  const seed = options.seed ?? 0;
  const vocabLimit = Math.min(tokenizer.vocabSize, backend.vocabSize);
  const eos = new Set(options.eosTokenIds ?? []);
  const stops = [...(options.stop ?? [])];
  const longestStop = Math.max(0, ...stops.map((s) => s.length));

  const rows: Row[] = [];
  prompts.forEach((prompt, p) => {
    const promptSeed = options.seeds?.[p] ?? defaultPromptSeed(seed, p);
    for (let j = 0; j < n; j++) {
      rows.push({
        promptIndex: p,
        sampleIndex: j,
        prompt,
        rng: new Rng(promptSeed, j),
        tokens: [],
        logprobs: [],
        checkedLength: 0,
        finish: null,
        stopReason: null,
        text: "",
      });
    }
  });

  /** Samples the next token of a row from its logits; returns true when the row is finished. */
  const advance = (row: Row, logits: LogitsRow): boolean => {
    if (logits.length !== backend.vocabSize)
      throw new GenerateError(
        `backend returned a logits row of ${logits.length}, expected ${backend.vocabSize}`,
      );
    const { token, logprob } = sampleToken(logits, options, row.rng, vocabLimit);
    row.tokens.push(token);
    row.logprobs.push(logprob);
    if (eos.has(token)) {
      row.finish = "stop";
      row.stopReason = token;
      return true;
    }
    if (stops.length > 0) {
      const text = tokenizer.decode(row.tokens);
      // Characters before this point were already checked; a few more are re-read because a
      // partial UTF-8 sequence at the previous end may have decoded differently.
      const from = Math.max(0, row.checkedLength - longestStop - 3);
      let at = -1;
      let which = "";
      for (const s of stops) {
        const i = text.indexOf(s, from);
        if (i >= 0 && (at < 0 || i < at)) {
          at = i;
          which = s;
        }
      }
      row.checkedLength = text.length;
      if (at >= 0) {
        row.finish = "stop";
        row.stopReason = which;
        row.text = text.slice(0, at);
        return true;
      }
    }
    if (row.tokens.length >= options.maxNewTokens) {
      row.finish = "length";
      return true;
    }
    return false;
  };

  const batchSize = options.batchSize ?? rows.length;
  for (let start = 0; start < rows.length; start += batchSize) {
    const chunk = rows.slice(start, start + batchSize);
    options.beforeStep?.();
    const { session, logits } = await backend.prefill(chunk.map((r) => r.prompt));
    try {
      if (logits.length !== chunk.length)
        throw new GenerateError(`backend returned ${logits.length} logits rows for ${chunk.length} prompts`);
      let active = chunk.map((_, i) => i);
      let current = logits;
      for (;;) {
        const next: number[] = [];
        active.forEach((i, k) => {
          if (!advance(chunk[i], current[k])) next.push(i);
        });
        if (next.length === 0) break;
        options.beforeStep?.();
        current = await session.decode(
          next,
          next.map((i) => chunk[i].tokens[chunk[i].tokens.length - 1]),
        );
        if (current.length !== next.length)
          throw new GenerateError(`backend returned ${current.length} logits rows for ${next.length} rows`);
        active = next;
      }
    } finally {
      session.close();
    }
  }

  const out: Completion[][] = prompts.map(() => []);
  for (const row of rows) {
    let text = row.text;
    if (row.stopReason === null || typeof row.stopReason === "number") {
      text = tokenizer.decode(row.finish === "stop" ? row.tokens.slice(0, -1) : row.tokens);
    }
    out[row.promptIndex].push({
      promptIndex: row.promptIndex,
      sampleIndex: row.sampleIndex,
      text,
      tokenIds: row.tokens,
      logprobs: row.logprobs,
      finishReason: row.finish!,
      stopReason: row.stopReason,
    });
  }
  return out;
}
