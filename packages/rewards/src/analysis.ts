// The text analysis every source needs, done once per completion.
import { type EquationCheck, type Extraction, extractAnswer, findEquations, splitThink } from "@temper/gsm8k";
import type { CompletionInput } from "./types.ts";

export interface CompletionAnalysis {
  extraction: Extraction;
  /** The completion with `<think>` tags removed but their content kept: the work the reasoning checks read. */
  work: string;
  /** Arithmetic claims in `work`, computed on first use. */
  equations(): EquationCheck[];
}

export function analyzeCompletion(completion: CompletionInput): CompletionAnalysis {
  const extraction = extractAnswer(completion.text, { finishReason: completion.finishReason });
  let work: string | null = null;
  let equations: EquationCheck[] | null = null;
  return {
    extraction,
    get work() {
      work ??= splitThink(completion.text).full;
      return work;
    },
    equations() {
      equations ??= findEquations(this.work);
      return equations;
    },
  };
}
