// Final-answer extraction with the blueprint's priority: an explicit marker beats the
// last-number fallback, and among markers the LAST one in the text wins.
import { formatNumber, lastNumber, type NumberToken, readNumberAt } from "./numbers.ts";
import { splitThink } from "./think.ts";

/** Which rule produced the answer; "none" when nothing did. */
export type ExtractionRule =
  | "hash"
  | "boxed"
  | "answer_is"
  | "answer_colon"
  | "a_colon"
  | "last_number"
  | "none";

/** The marker rules, i.e. every rule that counts as an explicit final answer (format = 1). */
export const MARKER_RULES: readonly ExtractionRule[] = [
  "hash",
  "boxed",
  "answer_is",
  "answer_colon",
  "a_colon",
];

/** Mirrors temper.common.v1.FinishReason; anything but "length" allows the fallback. */
export type FinishReason = "stop" | "length" | "unspecified";

export interface Extraction {
  /** The normalised answer, or null. */
  value: number | null;
  /** formatNumber(value), or "" when there is none. */
  text: string;
  rule: ExtractionRule;
  /** True when an explicit marker matched (as opposed to the fallback or nothing). */
  marker: boolean;
}

export interface ExtractOptions {
  /** "length": the completion was cut, so the last-number fallback is not used. */
  finishReason?: FinishReason | string;
}

const NONE: Extraction = { value: null, text: "", rule: "none", marker: false };

// Literal keywords only (plus single bounded-by-input \s/[ \t] runs that a later literal must
// end): the engine tries each start position once with O(1) work except those runs, which never
// overlap between matches of the same alternative. `\boxed` also accepts `\fbox`.
const MARKER = /####|\\(?:boxed|fbox)[ \t]*\{|answer|(?<![A-Za-z])a[ \t]*:/gi;

/** Skips what may sit between a marker and its number: spaces, bold/italic marks, ":", LaTeX "$" and "\(". */
function skipDecoration(text: string, i: number, allowColon: boolean): number {
  const limit = Math.min(text.length, i + 32);
  while (i < limit) {
    const c = text[i];
    if (c === " " || c === "\t" || c === "\n" || c === "\r" || c === "*" || c === "_" || c === "$") i++;
    else if (allowColon && c === ":") i++;
    else if (c === "\\" && (text[i + 1] === "(" || text[i + 1] === "[")) i += 2;
    else break;
  }
  return i;
}

function numberAfter(text: string, i: number, allowColon = true): NumberToken | null {
  const j = skipDecoration(text, i, allowColon);
  // skipDecoration consumed a "$"; a "-$5" or "$-5" still reads from the sign.
  const tok = readNumberAt(text, j);
  return tok;
}

function isWordChar(c: string | undefined): boolean {
  return c !== undefined && /[A-Za-z0-9_]/.test(c);
}

/** `\boxed{...}` content, braces balanced, at most 256 characters; null if unclosed. */
function boxedContent(text: string, open: number): string | null {
  let depth = 1;
  const limit = Math.min(text.length, open + 256);
  for (let i = open; i < limit; i++) {
    const c = text[i];
    if (c === "{") depth++;
    else if (c === "}") {
      depth--;
      if (depth === 0) return text.slice(open, i);
    }
  }
  return null;
}

/** A number inside a boxed expression: `\frac{a}{b}` becomes a/b, `\text{...}`, `\$`, `\,` and `\!` are dropped. */
function boxedNumber(content: string): number | null {
  const frac = /^\s*(-?)\\[dt]?frac\{\s*(-?[\d.,]+)\s*\}\{\s*(-?[\d.,]+)\s*\}/.exec(content);
  if (frac) {
    const a = readNumberAt(frac[2], 0);
    const b = readNumberAt(frac[3], 0);
    if (a && b && b.value !== 0) return (frac[1] ? -1 : 1) * (a.value / b.value);
  }
  const cleaned = content
    .replace(/\\text\{[^{}]*\}/g, " ")
    .replace(/\\[$,!;: ]/g, (m) => (m === "\\$" ? "$" : ""))
    .replace(/\{|\}/g, "");
  const tok = numberAfter(cleaned, 0, false);
  return tok ? tok.value : null;
}

/** A bare "A:" counts only at the start of a line (after spaces, "*", "_", ">" or "#"). */
function atLineStart(text: string, i: number): boolean {
  let j = i - 1;
  const limit = Math.max(-1, i - 16);
  while (j > limit && " \t*_>#".includes(text[j])) j--;
  return j === -1 || text[j] === "\n" || text[j] === "\r";
}

/** The last explicit marker with a readable number in `text`, or null. */
export function findMarker(text: string): { value: number; rule: ExtractionRule } | null {
  let best: { value: number; rule: ExtractionRule } | null = null;
  MARKER.lastIndex = 0;
  for (let m = MARKER.exec(text); m !== null; m = MARKER.exec(text)) {
    const word = m[0];
    const after = m.index + word.length;
    const first = word[0];
    if (first === "#") {
      const tok = numberAfter(text, after);
      if (tok) best = { value: tok.value, rule: "hash" };
    } else if (first === "\\") {
      const content = boxedContent(text, after);
      const value = content === null ? null : boxedNumber(content);
      if (value !== null) best = { value, rule: "boxed" };
    } else if (word.length === 6) {
      // "answer": a word of its own, then "is" or ":" (or "=") after optional bold marks.
      if (isWordChar(text[m.index - 1])) continue;
      let j = after;
      const limit = Math.min(text.length, j + 8);
      while (j < limit && (text[j] === " " || text[j] === "\t" || text[j] === "*" || text[j] === "_")) j++;
      if (
        (text[j] === "i" || text[j] === "I") &&
        (text[j + 1] === "s" || text[j + 1] === "S") &&
        !isWordChar(text[j + 2])
      ) {
        const tok = numberAfter(text, j + 2);
        if (tok) best = { value: tok.value, rule: "answer_is" };
      } else if (text[j] === ":" || text[j] === "=") {
        const tok = numberAfter(text, j + 1);
        if (tok) best = { value: tok.value, rule: "answer_colon" };
      }
    } else {
      // "A:" at the start of a line.
      if (!atLineStart(text, m.index)) continue;
      const tok = numberAfter(text, after);
      if (tok) best = { value: tok.value, rule: "a_colon" };
    }
  }
  return best;
}

/**
 * Extracts the final answer of a completion. `<think>` blocks are removed first (see
 * splitThink); then the last explicit marker wins (`#### N`, `\boxed{N}`, "the (final) answer
 * is N", "(Final) Answer: N", "A: N" at a line start, each also inside markdown bold,
 * case-insensitive); without a marker the last number is used, except when finishReason is
 * "length" (a cut completion's last number is usually an intermediate value).
 */
export function extractAnswer(completion: string, options: ExtractOptions = {}): Extraction {
  const answerText = splitThink(completion).answer;
  const marked = findMarker(answerText);
  if (marked)
    return { value: marked.value, text: formatNumber(marked.value), rule: marked.rule, marker: true };
  if (options.finishReason === "length") return NONE;
  const last = lastNumber(answerText);
  if (!last) return NONE;
  return { value: last.value, text: formatNumber(last.value), rule: "last_number", marker: false };
}
