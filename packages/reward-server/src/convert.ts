// temper.reward.v1 messages <-> the plain types of @temper/rewards.
import { common, reward } from "@temper/proto";
import type { CompletionScore, ComponentValue, GroupInput, ScoreParams } from "@temper/rewards";

const FINISH: Record<number, "stop" | "length" | "unspecified"> = {
  [common.FinishReason.FINISH_REASON_STOP]: "stop",
  [common.FinishReason.FINISH_REASON_LENGTH]: "length",
};

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
