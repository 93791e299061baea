// correctness source: correctness_hard, correctness_soft, format.
import { type Extraction, numbersMatch } from "@temper/gsm8k";
import { type ComponentValue, ok } from "./components.ts";

/** 1 if |x − y| ≤ 1e-6·max(1, |y|), else 0; no answer → 0. */
export function correctnessHard(answer: number | null, reference: number): number {
  return answer !== null && numbersMatch(answer, reference) ? 1 : 0;
}

/** exp(−|x − y| / max(1, |y|)); no answer → 0. */
export function correctnessSoft(answer: number | null, reference: number): number {
  if (answer === null) return 0;
  return Math.exp(-Math.abs(answer - reference) / Math.max(1, Math.abs(reference)));
}

/** 1 for an explicit final-answer marker, 0.5 for the last-number fallback, 0 for nothing. */
export function formatScore(extraction: Extraction): number {
  if (extraction.marker) return 1;
  return extraction.rule === "last_number" ? 0.5 : 0;
}

export function correctnessComponents(
  extraction: Extraction,
  reference: number,
): Record<string, ComponentValue> {
  return {
    correctness_hard: ok(correctnessHard(extraction.value, reference)),
    correctness_soft: ok(correctnessSoft(extraction.value, reference)),
    format: ok(formatScore(extraction)),
  };
}
