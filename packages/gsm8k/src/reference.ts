// GSM8K reference answers: a rationale with `<<a*b=c>>` calculator annotations, then "#### N".
import { type EquationCheck, findEquations } from "./equations.ts";
import { parseNumber } from "./numbers.ts";

export interface ParsedReference {
  /** The final answer after the last "#### ", or null when there is none or it is not a number. */
  answer: number | null;
  /** The text after "#### " as written (e.g. "1,080"). */
  answerText: string;
  /** The text before "####". */
  rationale: string;
  /** Every arithmetic claim of the rationale, checked. */
  equations: EquationCheck[];
}

export function parseReference(answer: string): ParsedReference {
  const at = answer.lastIndexOf("####");
  const rationale = at === -1 ? answer : answer.slice(0, at);
  const answerText = at === -1 ? "" : answer.slice(at + 4).trim();
  return {
    answer: at === -1 ? null : parseNumber(answerText),
    answerText,
    rationale,
    equations: findEquations(rationale),
  };
}

/**
 * The numeric value of a reference as the contract allows it: a GSM8K answer text ending in
 * "#### N", or a bare number ("72", "1,080", "$18", "3/4"). Null when neither reads as a number.
 */
export function referenceValue(reference: string): number | null {
  const at = reference.lastIndexOf("####");
  return parseNumber(at === -1 ? reference : reference.slice(at + 4));
}
