// reasoning source: arithmetic_validity, structure, non_repetition, length and their aggregate
// reasoning = (0.6·arithmetic_validity + 0.2·structure + 0.2·non_repetition)·length.
import type { EquationCheck } from "@temper/gsm8k";
import type { CompletionAnalysis } from "./analysis.ts";
import { type ComponentValue, ok } from "./components.ts";

export const DEFAULT_MIN_TOKENS = 10;
export const DEFAULT_MAX_TOKENS = 400;

/** valid / total equations; none → 0. */
export function arithmeticValidity(equations: readonly EquationCheck[]): number {
  if (equations.length === 0) return 0;
  let valid = 0;
  for (const e of equations) if (e.valid) valid++;
  return valid / equations.length;
}

/** Non-empty lines and sentences (split at newlines and at ". ", "! ", "? "), normalised for comparison. */
function segments(text: string): string[] {
  const out: string[] = [];
  for (const s of text.split(/\n|[.!?]\s/)) {
    let t = s.trim();
    if (t === "") continue;
    t = t.toLowerCase();
    out.push(/\s\s|\t/.test(t) ? t.replace(/\s+/g, " ") : t);
  }
  return out;
}

/**
 * Mean of [at least two reasoning steps, a final-answer line]. A step is an equation, or a line
 * holding a number other than the final-answer line; steps = max(equations, such lines). The
 * final-answer line is present when an explicit marker matched.
 */
export function structureScore(work: string, equations: number, hasMarker: boolean): number {
  let numericLines = 0;
  for (const line of work.split("\n")) if (/\d/.test(line)) numericLines++;
  const steps = Math.max(equations, numericLines - (hasMarker ? 1 : 0));
  return ((steps >= 2 ? 1 : 0) + (hasMarker ? 1 : 0)) / 2;
}

/** 1 − share of lines (and sentences) that repeat an earlier one; no lines → 1. */
export function nonRepetition(work: string): number {
  const segs = segments(work);
  if (segs.length === 0) return 1;
  const seen = new Set<string>();
  let repeated = 0;
  for (const s of segs) {
    if (seen.has(s)) repeated++;
    else seen.add(s);
  }
  return 1 - repeated / segs.length;
}

/**
 * 1 inside [min, max] tokens, decaying linearly to 0 at 2·max. Below min (where the blueprint
 * is silent) it rises linearly from 0 at 0 tokens, so an empty completion scores 0.
 */
export function lengthScore(
  tokens: number,
  minTokens = DEFAULT_MIN_TOKENS,
  maxTokens = DEFAULT_MAX_TOKENS,
): number {
  if (tokens < minTokens) return minTokens > 0 ? tokens / minTokens : 1;
  if (tokens <= maxTokens) return 1;
  if (tokens >= 2 * maxTokens) return 0;
  return (2 * maxTokens - tokens) / maxTokens;
}

/**
 * Token count when no token ids are supplied. Qwen3's tokenizer splits digits one per token
 * and keeps most English words whole, so: one token per digit, per letter run (a word), and per
 * other non-space character. Measured against the real Qwen3 tokenizer on 400 GSM8K test
 * rationales: approximate/real = 0.91 on average (5th-95th percentile 0.80-1.00), i.e. it
 * undercounts by about a tenth. Supply token_ids when the exact count matters.
 */
export function approximateTokenCount(text: string): number {
  let count = 0;
  let inWord = false;
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    const letter = (c >= 65 && c <= 90) || (c >= 97 && c <= 122) || c >= 0xc0;
    if (letter) {
      if (!inWord) count++;
      inWord = true;
      continue;
    }
    inWord = false;
    if (c !== 32 && c !== 9 && c !== 10 && c !== 13) count++;
  }
  return count;
}

export interface ReasoningOptions {
  minTokens?: number;
  maxTokens?: number;
  /** The completion's token count when known (token_ids length). */
  tokenCount?: number;
}

export function reasoningComponents(
  analysis: CompletionAnalysis,
  options: ReasoningOptions = {},
): Record<string, ComponentValue> {
  const equations = analysis.equations();
  const work = analysis.work;
  const av = arithmeticValidity(equations);
  const st = structureScore(work, equations.length, analysis.extraction.marker);
  const nr = nonRepetition(work);
  const tokens = options.tokenCount ?? approximateTokenCount(work);
  const len = lengthScore(tokens, options.minTokens, options.maxTokens);
  return {
    reasoning: ok((0.6 * av + 0.2 * st + 0.2 * nr) * len),
    arithmetic_validity: ok(av),
    structure: ok(st),
    non_repetition: ok(nr),
    length: ok(len),
  };
}
