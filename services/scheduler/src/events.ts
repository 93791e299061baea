// The reward.blended event: per-component batch statistics over one scored step.
import type { events, scheduler } from "@temper/proto";
import { reward } from "@temper/proto";

function stats(values: number[], absent: number, error: number): events.ComponentStats {
  const n = values.length;
  const mean = n ? values.reduce((a, b) => a + b, 0) / n : 0;
  const variance = n > 1 ? values.reduce((a, v) => a + (v - mean) ** 2, 0) / (n - 1) : 0;
  return {
    mean,
    std: Math.sqrt(variance),
    min: n ? values.reduce((a, b) => Math.min(a, b)) : 0,
    max: n ? values.reduce((a, b) => Math.max(a, b)) : 0,
    present: n,
    absent,
    error,
  };
}

export function blendedEvent(
  response: scheduler.ScoreResponse,
  zeroSignalFraction: number,
  missing: string[],
): events.RewardBlended {
  const byComponent = new Map<string, { values: number[]; absent: number; error: number }>();
  for (const item of response.items) {
    for (const [name, c] of Object.entries(item.components)) {
      let s = byComponent.get(name);
      if (!s) {
        s = { values: [], absent: 0, error: 0 };
        byComponent.set(name, s);
      }
      if (c.status === reward.ComponentStatus.COMPONENT_STATUS_OK && c.value !== undefined)
        s.values.push(c.value);
      else if (c.status === reward.ComponentStatus.COMPONENT_STATUS_ABSENT) s.absent++;
      else s.error++;
    }
  }
  const components: Record<string, events.ComponentStats> = {};
  for (const [name, s] of byComponent) components[name] = stats(s.values, s.absent, s.error);
  const rewards = response.items.map((i) => i.reward);
  const all = stats(rewards, 0, 0);
  return {
    runId: response.runId,
    step: response.step,
    alpha: response.alpha,
    meanReward: all.mean,
    stdReward: all.std,
    zeroSignalFraction,
    components,
    provenance: response.provenance,
    missing,
    completions: response.items.length,
    groups: response.groups.length,
  };
}
