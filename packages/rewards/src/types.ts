// Inputs and outputs of the reward sources, shaped 1:1 after temper.common.v1 and temper.reward.v1.
import type { EquationCheck, ExtractionRule, FinishReason } from "@temper/gsm8k";
import type { ComponentValue } from "./components.ts";

export interface CompletionInput {
  id: string;
  text: string;
  /** Completion token ids; empty or missing → the length component approximates the count from text. */
  tokenIds?: readonly number[];
  /** Per-token log-probabilities; empty or missing → perplexity is ABSENT. */
  logprobs?: readonly number[];
  finishReason?: FinishReason | string;
}

export interface GroupInput {
  id: string;
  prompt?: string;
  /** A GSM8K answer text ending in "#### N", or a bare number. */
  reference: string;
  completions: readonly CompletionInput[];
}

/** temper.reward.v1.ScoreParams; every field optional with the documented default. */
export interface ScoreParams {
  /** τ of exp(−NLL/τ). Default 1. */
  perplexityTau?: number;
  /** Length window of the reasoning component, in tokens. Defaults 10 and 400. */
  minTokens?: number;
  maxTokens?: number;
}

export interface ScoreDetails {
  /** Normalised extracted answer, "" when none. */
  extractedAnswer: string;
  /** The extraction rule; "" when this source did not extract. */
  matchedRule: ExtractionRule | "";
  equations: EquationCheck[];
}

/** temper.reward.v1.CompletionScore. */
export interface CompletionScore {
  completionId: string;
  groupId: string;
  components: Record<string, ComponentValue>;
  details: ScoreDetails;
}
