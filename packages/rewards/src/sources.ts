// The four reward sources as pure functions over a batch of groups: what each
// temper.reward.v1.RewardService returns, ready to be wrapped by a gRPC server or called in-process.
import { referenceValue } from "@temper/gsm8k";
import { analyzeCompletion, type CompletionAnalysis } from "./analysis.ts";
import {
  CONSISTENCY_COMPONENTS,
  CORRECTNESS_COMPONENTS,
  type ComponentValue,
  failed,
  PERPLEXITY_COMPONENTS,
  REASONING_COMPONENTS,
} from "./components.ts";
import { consistencyComponents, internalConsistency, selfConsistency } from "./consistency.ts";
import { correctnessComponents } from "./correctness.ts";
import { type FieldError, fieldError } from "./errors.ts";
import { DEFAULT_PERPLEXITY_TAU, perplexityComponent } from "./perplexity.ts";
import { DEFAULT_MAX_TOKENS, DEFAULT_MIN_TOKENS, reasoningComponents } from "./reasoning.ts";
import type { CompletionScore, GroupInput, ScoreParams } from "./types.ts";

export const REWARDS_VERSION = "0.1.0";

export interface RewardSource {
  /** Source name as the scheduler knows it: "correctness", "reasoning", "consistency", "perplexity". */
  name: string;
  version: string;
  /** The component names every result carries (temper.reward.v1.InfoResponse.components). */
  components: readonly string[];
  /** One result per completion, in request order. Expects input that passed validateScoreRequest. */
  score(groups: readonly GroupInput[], params?: ScoreParams): CompletionScore[];
}

type Scorer = (ctx: GroupContext, index: number, params: ResolvedParams) => Partial<CompletionScore>;

interface ResolvedParams {
  perplexityTau: number;
  minTokens: number;
  maxTokens: number;
}

interface GroupContext {
  group: GroupInput;
  reference: number | null;
  analyses: CompletionAnalysis[];
  answers: (number | null)[];
}

function resolveParams(p: ScoreParams = {}): ResolvedParams {
  return {
    perplexityTau: p.perplexityTau ?? DEFAULT_PERPLEXITY_TAU,
    minTokens: p.minTokens ?? DEFAULT_MIN_TOKENS,
    maxTokens: p.maxTokens ?? DEFAULT_MAX_TOKENS,
  };
}

function contextOf(group: GroupInput): GroupContext {
  const analyses = group.completions.map(analyzeCompletion);
  return {
    group,
    reference: referenceValue(group.reference),
    analyses,
    answers: analyses.map((a) => a.extraction.value),
  };
}

function allFailed(names: readonly string[], detail: string): Record<string, ComponentValue> {
  return Object.fromEntries(names.map((n) => [n, failed(detail)]));
}

const scoreCorrectness: Scorer = (ctx, i) => {
  const ex = ctx.analyses[i].extraction;
  return {
    components:
      ctx.reference === null
        ? allFailed(CORRECTNESS_COMPONENTS, "reference is not a number")
        : correctnessComponents(ex, ctx.reference),
    details: { extractedAnswer: ex.text, matchedRule: ex.rule, equations: [] },
  };
};

const scoreReasoning: Scorer = (ctx, i, p) => {
  const tokenIds = ctx.group.completions[i].tokenIds;
  const components = reasoningComponents(ctx.analyses[i], {
    minTokens: p.minTokens,
    maxTokens: p.maxTokens,
    tokenCount: tokenIds && tokenIds.length > 0 ? tokenIds.length : undefined,
  });
  return {
    components,
    details: { extractedAnswer: "", matchedRule: "", equations: ctx.analyses[i].equations() },
  };
};

const scoreConsistency: Scorer = (ctx, i) => {
  const a = ctx.analyses[i];
  return {
    components: consistencyComponents(
      selfConsistency(ctx.answers, i),
      internalConsistency(a.extraction.value, a.equations()),
    ),
  };
};

const scorePerplexity: Scorer = (ctx, i, p) => ({
  components: { perplexity: perplexityComponent(ctx.group.completions[i].logprobs, p.perplexityTau) },
});

function runScorers(
  groups: readonly GroupInput[],
  params: ScoreParams | undefined,
  scorers: Scorer[],
): CompletionScore[] {
  const p = resolveParams(params);
  const out: CompletionScore[] = [];
  for (const group of groups) {
    const ctx = contextOf(group);
    for (let i = 0; i < group.completions.length; i++) {
      const result: CompletionScore = {
        completionId: group.completions[i].id,
        groupId: group.id,
        components: {},
        details: { extractedAnswer: "", matchedRule: "", equations: [] },
      };
      for (const s of scorers) {
        const part = s(ctx, i, p);
        Object.assign(result.components, part.components);
        if (part.details) {
          if (part.details.matchedRule) {
            result.details.extractedAnswer = part.details.extractedAnswer;
            result.details.matchedRule = part.details.matchedRule;
          }
          if (part.details.equations.length > 0) result.details.equations = part.details.equations;
        }
      }
      out.push(result);
    }
  }
  return out;
}

function source(name: string, components: readonly string[], scorer: Scorer): RewardSource {
  return {
    name,
    version: REWARDS_VERSION,
    components,
    score: (groups, params) => runScorers(groups, params, [scorer]),
  };
}

export const correctnessSource = source("correctness", CORRECTNESS_COMPONENTS, scoreCorrectness);
export const reasoningSource = source("reasoning", REASONING_COMPONENTS, scoreReasoning);
export const consistencySource = source("consistency", CONSISTENCY_COMPONENTS, scoreConsistency);
export const perplexitySource = source("perplexity", PERPLEXITY_COMPONENTS, scorePerplexity);

/** The four default sources by name. */
export const DEFAULT_SOURCES: Readonly<Record<string, RewardSource>> = {
  correctness: correctnessSource,
  reasoning: reasoningSource,
  consistency: consistencySource,
  perplexity: perplexitySource,
};

/**
 * Every component of the four sources in one pass, each completion analysed once (the
 * in-process equivalent of the scheduler's fan-out). Component names are plain ("reasoning").
 */
export function scoreAllSources(groups: readonly GroupInput[], params?: ScoreParams): CompletionScore[] {
  return runScorers(groups, params, [scoreCorrectness, scoreReasoning, scoreConsistency, scorePerplexity]);
}

export interface ScoreLimits {
  /** Most groups in one request. Default 4096. */
  maxGroups: number;
  /** Most completions in one group. Default 1024. */
  maxGroupSize: number;
  /** Longest completion text, in UTF-16 code units. Default 262,144 (256 Ki). */
  maxTextLength: number;
  /** Whether an empty completion text is rejected (default true). An RL loop may prefer to score it 0. */
  rejectEmptyText: boolean;
}

export const DEFAULT_SCORE_LIMITS: ScoreLimits = {
  maxGroups: 4096,
  maxGroupSize: 1024,
  maxTextLength: 262_144,
  rejectEmptyText: true,
};

/** perplexity_tau's accepted range: beyond it NLL/τ overflows (or vanishes) for any real NLL. */
export const MIN_PERPLEXITY_TAU = 1e-6;
export const MAX_PERPLEXITY_TAU = 1e6;

/**
 * Checks a Score request; the first problem found, naming its field, or null. Completion ids
 * must be non-empty and unique across the request (results are matched to completions by id).
 */
export function validateScoreRequest(
  groups: readonly GroupInput[],
  params: ScoreParams = {},
  limits: Partial<ScoreLimits> = {},
): FieldError | null {
  const lim = { ...DEFAULT_SCORE_LIMITS, ...limits };
  if (groups.length === 0) return fieldError("groups", "empty batch").error;
  if (groups.length > lim.maxGroups) return fieldError("groups", `more than ${lim.maxGroups} groups`).error;
  if (
    params.perplexityTau !== undefined &&
    !(params.perplexityTau >= MIN_PERPLEXITY_TAU && params.perplexityTau <= MAX_PERPLEXITY_TAU)
  ) {
    // Outside this range exp(−NLL/τ) underflows to 0 (or rounds to 1) for every completion.
    return fieldError(
      "params.perplexity_tau",
      `must be in [${MIN_PERPLEXITY_TAU}, ${MAX_PERPLEXITY_TAU}] (NLL/τ would overflow), got ${params.perplexityTau}`,
    ).error;
  }
  const minT = params.minTokens ?? DEFAULT_MIN_TOKENS;
  const maxT = params.maxTokens ?? DEFAULT_MAX_TOKENS;
  if (!(Number.isInteger(minT) && minT >= 0))
    return fieldError("params.min_tokens", "must be an integer ≥ 0").error;
  if (!(Number.isInteger(maxT) && maxT > 0 && maxT >= minT)) {
    return fieldError("params.max_tokens", `must be an integer > 0 and ≥ min_tokens (${minT})`).error;
  }
  const ids = new Set<string>();
  const completionIds = new Set<string>();
  for (let g = 0; g < groups.length; g++) {
    const group = groups[g];
    if (ids.has(group.id)) return fieldError(`groups[${g}].id`, `duplicate group id "${group.id}"`).error;
    ids.add(group.id);
    if (group.completions.length === 0) return fieldError(`groups[${g}].completions`, "empty group").error;
    if (group.completions.length > lim.maxGroupSize) {
      return fieldError(`groups[${g}].completions`, `more than ${lim.maxGroupSize} completions`).error;
    }
    if (referenceValue(group.reference) === null) {
      return fieldError(`groups[${g}].reference`, 'not a number or an answer ending in "#### N"').error;
    }
    for (let c = 0; c < group.completions.length; c++) {
      const comp = group.completions[c];
      const field = `groups[${g}].completions[${c}]`;
      // Results are matched to completions by id: an empty or repeated one would be ambiguous.
      if (comp.id === "") return fieldError(`${field}.id`, "must not be empty").error;
      if (completionIds.has(comp.id))
        return fieldError(`${field}.id`, `duplicate completion id "${comp.id}"`).error;
      completionIds.add(comp.id);
      if (comp.text.length > lim.maxTextLength) {
        return fieldError(`${field}.text`, `longer than ${lim.maxTextLength} characters`).error;
      }
      if (lim.rejectEmptyText && comp.text.trim() === "")
        return fieldError(`${field}.text`, "empty completion").error;
      if (comp.logprobs && comp.logprobs.length > 0 && comp.tokenIds && comp.tokenIds.length > 0) {
        if (comp.logprobs.length !== comp.tokenIds.length) {
          return fieldError(
            `${field}.logprobs`,
            `${comp.logprobs.length} entries for ${comp.tokenIds.length} token ids`,
          ).error;
        }
      }
    }
  }
  return null;
}
