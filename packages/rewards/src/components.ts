// Component values and names. Mirrors temper.reward.v1.ComponentValue: a value is present only
// when the status is "ok"; an absent or failed component is never a silent 0.

export type ComponentStatus = "ok" | "absent" | "error";

export interface ComponentValue {
  status: ComponentStatus;
  /** The score in [0, 1] when status is "ok", else null. */
  value: number | null;
  /** Why a component is absent or failed; "" when ok. */
  detail: string;
}

export function ok(value: number): ComponentValue {
  return { status: "ok", value, detail: "" };
}

export function absent(detail: string): ComponentValue {
  return { status: "absent", value: null, detail };
}

export function failed(detail: string): ComponentValue {
  return { status: "error", value: null, detail };
}

/** Component names per source (names are part of the contract). The first of each is its aggregate. */
export const CORRECTNESS_COMPONENTS = ["correctness_hard", "correctness_soft", "format"] as const;
export const REASONING_COMPONENTS = [
  "reasoning",
  "arithmetic_validity",
  "structure",
  "non_repetition",
  "length",
] as const;
export const CONSISTENCY_COMPONENTS = ["consistency", "self_consistency", "internal"] as const;
export const PERPLEXITY_COMPONENTS = ["perplexity"] as const;

/** Source name → its component names, for the four default sources. */
export const SOURCE_COMPONENTS: Readonly<Record<string, readonly string[]>> = {
  correctness: CORRECTNESS_COMPONENTS,
  reasoning: REASONING_COMPONENTS,
  consistency: CONSISTENCY_COMPONENTS,
  perplexity: PERPLEXITY_COMPONENTS,
};

/** Every component name of the default sources, plain ("reasoning") and qualified ("reasoning.reasoning"). */
export function knownComponentNames(
  sources: Readonly<Record<string, readonly string[]>> = SOURCE_COMPONENTS,
): Set<string> {
  const names = new Set<string>();
  for (const [source, comps] of Object.entries(sources)) {
    for (const c of comps) {
      names.add(c);
      names.add(`${source}.${c}`);
    }
  }
  return names;
}
