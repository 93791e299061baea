// temper.reward.v1 messages <-> the plain types of @temper/rewards.
import { common, reward } from "@temper/proto";
import type { CompletionScore, ComponentValue, GroupInput, ScoreParams } from "@temper/rewards";

const FINISH: Record<number, "stop" | "length" | "unspecified"> = {
  [common.FinishReason.FINISH_REASON_STOP]: "stop",
  [common.FinishReason.FINISH_REASON_LENGTH]: "length",
};

/** Whether `value` is one of the enum's declared numbers (ts-proto's UNRECOGNIZED = -1 is not). */
export function definedEnumValue(e: Record<string | number, string | number>, value: number): boolean {
  return value >= 0 && typeof e[value] === "string";
}

/**
 * Enum fields holding a number their enum does not define (a newer client, or garbage): the first
 * one's path, for INVALID_ARGUMENT. proto3 decoders keep such numbers instead of rejecting them.
 */
export function unknownEnumField(
  groups: readonly common.Group[],
  params?: reward.ScoreParams,
  prefix = "",
): { field: string; message: string } | null {
  for (let g = 0; g < groups.length; g++) {
    const completions = groups[g].completions;
    for (let c = 0; c < completions.length; c++) {
      const v = completions[c].finishReason;
      if (!definedEnumValue(common.FinishReason, v))
        return {
          field: `${prefix}groups[${g}].completions[${c}].finish_reason`,
          message: `unknown value ${v}`,
        };
    }
  }
  const mode = params?.perplexityMode ?? 0;
  if (!definedEnumValue(reward.PerplexityMode, mode))
    return { field: `${prefix}params.perplexity_mode`, message: `unknown value ${mode}` };
  return null;
}

export function groupsFromProto(groups: readonly common.Group[]): GroupInput[] {
  return groups.map((g) => ({
    id: g.id,
    prompt: g.prompt,
    reference: g.reference,
    completions: g.completions.map((c) => ({
      id: c.id,
      text: c.text,
      tokenIds: c.tokenIds,
      logprobs: c.logprobs,
      finishReason: FINISH[c.finishReason] ?? "unspecified",
    })),
  }));
}

export function paramsFromProto(p: reward.ScoreParams | undefined): ScoreParams {
  return { perplexityTau: p?.perplexityTau, minTokens: p?.minTokens, maxTokens: p?.maxTokens };
}

const STATUS = {
  ok: reward.ComponentStatus.COMPONENT_STATUS_OK,
  absent: reward.ComponentStatus.COMPONENT_STATUS_ABSENT,
  error: reward.ComponentStatus.COMPONENT_STATUS_ERROR,
} as const;

export function componentToProto(c: ComponentValue): reward.ComponentValue {
  return c.status === "ok" && c.value !== null
    ? { value: c.value, status: STATUS.ok, detail: c.detail }
    : { status: STATUS[c.status], detail: c.detail };
}

export function componentFromProto(c: reward.ComponentValue): ComponentValue {
  if (
    c.status === reward.ComponentStatus.COMPONENT_STATUS_OK &&
    c.value !== undefined &&
    Number.isFinite(c.value)
  )
    return { status: "ok", value: c.value, detail: c.detail };
  if (c.status === reward.ComponentStatus.COMPONENT_STATUS_ABSENT)
    return { status: "absent", value: null, detail: c.detail };
  return { status: "error", value: null, detail: c.detail || "no value" };
}

export function scoreToProto(s: CompletionScore): reward.CompletionScore {
  const components: Record<string, reward.ComponentValue> = {};
  for (const [name, value] of Object.entries(s.components)) components[name] = componentToProto(value);
  return {
    completionId: s.completionId,
    groupId: s.groupId,
    components,
    details: {
      extractedAnswer: s.details.extractedAnswer,
      matchedRule: s.details.matchedRule,
      equations: s.details.equations.map((e) => ({
        text: e.text,
        valid: e.valid,
        computed: e.computed ?? undefined,
        stated: e.stated ?? undefined,
      })),
    },
  };
}
