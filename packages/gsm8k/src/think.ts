// Qwen3 reasoning blocks. The blueprint strips `<think>…</think>` before answer extraction.

export interface ThinkSplit {
  /** The text outside every think block: where the final answer is looked for. */
  answer: string;
  /** The whole text with only the tags removed: the work the reasoning components check. */
  full: string;
  /** A `<think>` was opened and never closed (typically a completion cut by max_new_tokens). */
  unclosed: boolean;
}

const OPEN = "<think>";
const CLOSE = "</think>";

/**
 * Removes reasoning blocks. Rules:
 * - every `<think>…</think>` block is dropped from the answer text;
 * - a `</think>` with no opening tag before it (the chat template opened the block in the
 *   prompt) drops everything before it;
 * - an unclosed `<think>` drops everything after it: the model was still thinking, so nothing
 *   after it is a final answer (a truncated thinking completion thus has no answer).
 * One left-to-right pass with indexOf: linear in the text length.
 */
export function splitThink(text: string): ThinkSplit {
  if (!text.includes("think>")) return { answer: text, full: text, unclosed: false };
  let answer = "";
  let full = "";
  let unclosed = false;
  let i = 0;
  const firstOpen = text.indexOf(OPEN);
  const firstClose = text.indexOf(CLOSE);
  if (firstClose !== -1 && (firstOpen === -1 || firstClose < firstOpen)) {
    full = text.slice(0, firstClose);
    i = firstClose + CLOSE.length;
  }
  while (i < text.length) {
    const open = text.indexOf(OPEN, i);
    if (open === -1) {
      const rest = text.slice(i).split(CLOSE).join("");
      answer += rest;
      full += rest;
      break;
    }
    const before = text.slice(i, open).split(CLOSE).join("");
    answer += before;
    full += before;
    const close = text.indexOf(CLOSE, open + OPEN.length);
    if (close === -1) {
      unclosed = true;
      full += text.slice(open + OPEN.length);
      break;
    }
    full += text.slice(open + OPEN.length, close);
    i = close + CLOSE.length;
  }
  return { answer, full, unclosed };
}

/** The answer text of a completion: `splitThink(text).answer`. */
export function stripThink(text: string): string {
  return splitThink(text).answer;
}
