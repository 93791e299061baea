// The perplexity RewardService with two ways to get a completion's NLL:
//   logprobs  — its own supplied logprobs (perplexitySource of @temper/rewards, unchanged);
//   reference — −log p(token | prompt_token_ids + earlier completion tokens) under a frozen
//               reference model, averaged over the completion (temperature 1).
// perplexity = exp(−NLL/τ) in both. The mode is per request (ScoreParams.perplexity_mode), with the
// service's default (PERPLEXITY_MODE) for UNSPECIFIED.
import { existsSync, statSync } from "node:fs";
import { join } from "node:path";
import { type CallContext, env, failedPrecondition, invalidArgument, type VarSpec } from "@temper/kit";
import { type common, reward } from "@temper/proto";
import {
  paramsFromProto,
  rewardServiceImplementation,
  rewardSourceConfig,
  scoreToProto,
} from "@temper/reward-server";
import {
  absent,
  type CompletionScore,
  type ComponentValue,
  DEFAULT_PERPLEXITY_TAU,
  failed,
  perplexityComponent,
  perplexitySource,
  REWARDS_VERSION,
} from "@temper/rewards";
import type { ReferenceSequence } from "./reference.ts";
import type { ReferenceScorer } from "./reference-model.ts";

export type PerplexityMode = "logprobs" | "reference";
const MODES: readonly PerplexityMode[] = ["logprobs", "reference"];

const modelDir: VarSpec<string> = {
  ...env.string({ doc: "" }),
  doc: "reference model directory (Hugging Face layout); enables the reference mode",
  kind: "directory with config.json",
  parse(raw) {
    if (!existsSync(raw) || !statSync(raw).isDirectory()) throw new Error("expected an existing directory");
    if (!existsSync(join(raw, "config.json"))) throw new Error("expected a model directory with config.json");
    return raw;
  },
};

export const perplexityConfig = {
  ...rewardSourceConfig,
  PERPLEXITY_MODE: env.optional(
    env.enum(MODES, {
      doc: "mode for requests that leave params.perplexity_mode UNSPECIFIED (default: reference when REFERENCE_MODEL_DIR is set, else logprobs)",
    }),
  ),
  REFERENCE_MODEL_DIR: env.optional(modelDir),
  REFERENCE_DTYPE: env.enum(["float32", "float64"] as const, {
    default: "float32",
    doc: "compute precision of the reference model (weights converted at load)",
  }),
  REFERENCE_PROVIDER: env.enum(["cpu", "webgpu", "cuda"] as const, {
    default: "cpu",
    doc: "ONNX Runtime execution provider of the reference model",
  }),
  REFERENCE_THREADS: env.optional(
    env.int({ min: 1, max: 1024, doc: "intra-op threads of the reference model (ORT's choice when unset)" }),
  ),
  REFERENCE_BATCH_ROWS: env.int({
    default: 8,
    min: 1,
    max: 4096,
    doc: "most sequences (prompt + completion) in one reference-model run",
  }),
  REFERENCE_BATCH_TOKENS: env.int({
    default: 16_384,
    min: 1,
    max: 1 << 24,
    doc: "most padded tokens (rows × longest) in one reference-model run; a longer sequence runs alone",
  }),
};

/** The service's default mode: PERPLEXITY_MODE, else reference when a model is configured. */
export function defaultMode(config: {
  PERPLEXITY_MODE?: PerplexityMode;
  REFERENCE_MODEL_DIR?: string;
}): PerplexityMode {
  return config.PERPLEXITY_MODE ?? (config.REFERENCE_MODEL_DIR ? "reference" : "logprobs");
}

/**
 * Info/provenance version: the rewards version alone without a reference model (as before); with one,
 * "+<default mode>.ref-<dtype>", e.g. "0.1.0+reference.ref-float64".
 */
export function serviceVersion(mode: PerplexityMode, referenceDtype?: string): string {
  return referenceDtype ? `${REWARDS_VERSION}+${mode}.ref-${referenceDtype}` : REWARDS_VERSION;
}

/** The request's mode; INVALID_ARGUMENT for a value outside the enum. */
export function requestMode(
  value: reward.PerplexityMode | undefined,
  fallback: PerplexityMode,
): PerplexityMode {
  switch (value ?? reward.PerplexityMode.PERPLEXITY_MODE_UNSPECIFIED) {
    case reward.PerplexityMode.PERPLEXITY_MODE_UNSPECIFIED:
      return fallback;
    case reward.PerplexityMode.PERPLEXITY_MODE_LOGPROBS:
      return "logprobs";
    case reward.PerplexityMode.PERPLEXITY_MODE_REFERENCE:
      return "reference";
    default:
      throw invalidArgument("params.perplexity_mode", `unknown value ${value}`);
  }
}

function checkIds(ids: readonly number[], vocabSize: number, field: string): void {
  for (let k = 0; k < ids.length; k++) {
    const id = ids[k];
    if (!Number.isInteger(id) || id < 0 || id >= vocabSize)
      throw invalidArgument(
        field,
        `[${k}] = ${id} is outside the reference model's vocabulary [0, ${vocabSize})`,
      );
  }
}

function emptyScore(groupId: string, completionId: string, perplexity: ComponentValue): CompletionScore {
  return {
    completionId,
    groupId,
    components: { perplexity },
    details: { extractedAnswer: "", matchedRule: "", equations: [] },
  };
}

/**
 * Reference-mode results, one per completion in request order. Token ids are checked first
 * (INVALID_ARGUMENT naming the field); a completion without prompt_token_ids or token_ids is ABSENT.
 */
export async function scoreWithReference(
  groups: readonly common.Group[],
  tau: number,
  model: ReferenceScorer,
  signal?: AbortSignal,
): Promise<CompletionScore[]> {
  const { vocabSize, maxPositionEmbeddings } = model.info;
  const results: CompletionScore[] = [];
  const sequences: ReferenceSequence[] = [];
  const slots: number[] = []; // result index of each sequence
  groups.forEach((group, g) => {
    const prompt = group.promptTokenIds ?? [];
    checkIds(prompt, vocabSize, `groups[${g}].prompt_token_ids`);
    group.completions.forEach((c, j) => {
      const ids = c.tokenIds ?? [];
      const field = `groups[${g}].completions[${j}].token_ids`;
      checkIds(ids, vocabSize, field);
      if (prompt.length === 0 || ids.length === 0) {
        const missing = prompt.length === 0 ? "prompt_token_ids" : "token_ids";
        results.push(emptyScore(group.id, c.id, absent(`reference mode needs ${missing}; none supplied`)));
        return;
      }
      const total = prompt.length + ids.length;
      if (total > maxPositionEmbeddings)
        throw invalidArgument(
          field,
          `prompt + completion is ${total} tokens, more than the reference model's max_position_embeddings ${maxPositionEmbeddings}`,
        );
      slots.push(results.length);
      sequences.push({ ids: [...prompt, ...ids], scored: ids.length });
      results.push(emptyScore(group.id, c.id, absent("")));
    });
  });
  if (sequences.length === 0) return results;
  const logprobs = await model.score(sequences, signal);
  slots.forEach((slot, s) => {
    const value = perplexityComponent(Array.from(logprobs[s]), tau);
    results[slot].components.perplexity =
      value.status === "error" ? failed(`reference model: ${value.detail}`) : value;
  });
  return results;
}

export interface PerplexityServiceOptions {
  limits: { maxGroups: number; maxGroupSize: number; maxTextLength: number; rejectEmptyText: boolean };
  defaultMode: PerplexityMode;
  version: string;
  /** The reference model; without one, reference mode is FAILED_PRECONDITION. */
  reference?: ReferenceScorer;
}

export function perplexityServiceImplementation(options: PerplexityServiceOptions) {
  // The logprobs mode is the shared reward-source implementation itself, so it stays exactly what
  // every other reward service does (validation, limits, results).
  const logprobs = rewardServiceImplementation(perplexitySource, options.limits);
  return {
    async score(req: reward.ScoreRequest, ctx: CallContext): Promise<reward.ScoreResponse> {
      const mode = requestMode(req.params?.perplexityMode, options.defaultMode);
      // Both modes check the request the same way: the logprobs scoring is cheap, its values are
      // discarded in reference mode.
      const checked = logprobs.score(req);
      if (mode === "logprobs") return checked;
      if (!options.reference)
        throw failedPrecondition(
          "params.perplexity_mode: PERPLEXITY_MODE_REFERENCE needs a reference model and this service has none (REFERENCE_MODEL_DIR is unset)",
        );
      const tau = paramsFromProto(req.params).perplexityTau ?? DEFAULT_PERPLEXITY_TAU;
      const results = await scoreWithReference(req.groups, tau, options.reference, ctx.signal);
      return { results: results.map(scoreToProto) };
    },
    info(): reward.InfoResponse {
      return {
        name: perplexitySource.name,
        version: options.version,
        components: [...perplexitySource.components],
      };
    },
  };
}
