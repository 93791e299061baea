// consistency source (needs the whole group): self_consistency, internal, consistency.
import { type EquationCheck, numbersMatch } from "@temper/gsm8k";
import { absent, type ComponentValue, ok } from "./components.ts";

/**
 * Share of the OTHER completions of the group whose answer equals this one (the
 * correctness_hard tolerance, relative to this answer); no answer → 0; group of one → null (ABSENT).
 */
export function selfConsistency(answers: readonly (number | null)[], index: number): number | null {
  if (answers.length < 2) return null;
  const mine = answers[index];
  if (mine === null) return 0;
  let same = 0;
  for (let j = 0; j < answers.length; j++) {
    const other = answers[j];
    if (j !== index && other !== null && numbersMatch(other, mine)) same++;
  }
  return same / (answers.length - 1);
}

/**
 * 1 if the final answer equals the result STATED by the last equation of the work, else 0; no
 * equations → null (ABSENT); no answer → 0. The stated (not the recomputed) result is used:
 * internal asks whether the answer follows from the work as written, while wrong arithmetic is
 * already arithmetic_validity's business.
 */
export function internalConsistency(
  answer: number | null,
  equations: readonly EquationCheck[],
): number | null {
  if (equations.length === 0) return null;
  if (answer === null) return 0;
  return numbersMatch(answer, equations[equations.length - 1].stated) ? 1 : 0;
}

export function consistencyComponents(
  selfC: number | null,
  internal: number | null,
): Record<string, ComponentValue> {
  const present = [selfC, internal].filter((v): v is number => v !== null);
  return {
    consistency:
      present.length === 0
        ? absent("no other completions and no equations")
        : ok(present.reduce((a, b) => a + b, 0) / present.length),
    self_consistency: selfC === null ? absent("group of one") : ok(selfC),
    internal: internal === null ? absent("no equations") : ok(internal),
  };
}
