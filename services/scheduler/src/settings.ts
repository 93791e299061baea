// A run's configuration: the proto RunConfig validated, with every default filled in, and the
// resolved reward structure the blend uses.
import { check, checkRunId, fieldPath, invalidArgument, parseEndpoint, quote } from "@temper/kit";
import { reward, scheduler } from "@temper/proto";
import { definedEnumValue, structureInputFromProto } from "@temper/reward-server";
import { type AdvantageScale, resolveStructure, type Structure, validateScoreRequest } from "@temper/rewards";
import type { EndpointPolicy } from "./endpoint-policy.ts";

/** run_id is part of NATS subjects and KV keys. */
/** The sources a run may name; a replacement implementation takes one of these names. */
export const SOURCE_NAMES = ["correctness", "perplexity", "reasoning", "consistency"] as const;
/**
 * Why `endpoint` is not a usable endpoint, or undefined when it is: `host:port` (port in 1–65535;
 * calls are balanced over every address the name resolves to), or replicas of one source as a
 * comma-separated list of `ip:port` (balanced per call).
 */
export function endpointProblem(endpoint: string): string | undefined {
  try {
    parseEndpoint(endpoint);
    return undefined;
  } catch (err) {
    return (err as Error).message;
  }
}

export interface RunSettings {
  runId: string;
  structure: Structure;
  /** Source name → host:port, or a list of ip:port (replicas). */
  sources: Record<string, string>;
  advantageScale: AdvantageScale;
  failurePolicy: "skip" | "fail";
  /** A control run (REWARD_CONTROL_PERMUTE): the step's rewards shuffled before advantages. */
  control?: { kind: "permute"; seed: number };
  sourceTimeoutMs: number;
  params: reward.ScoreParams;
  /** The normalised RunConfig as stored and returned by Configure / GetState. */
  config: scheduler.RunConfig;
}

export interface SettingsDefaults {
  sources: Record<string, string>;
  sourceTimeoutMs: number;
  /** SOURCE_ENDPOINT_ALLOW: the endpoints a run may name; absent admits any. */
  policy?: EndpointPolicy;
}

const SCALES: Record<number, AdvantageScale> = {
  [scheduler.AdvantageScale.ADVANTAGE_SCALE_UNSPECIFIED]: "group",
  [scheduler.AdvantageScale.ADVANTAGE_SCALE_GROUP]: "group",
  [scheduler.AdvantageScale.ADVANTAGE_SCALE_BATCH]: "batch",
  [scheduler.AdvantageScale.ADVANTAGE_SCALE_NONE]: "none",
};

/** Validates a Configure request's RunConfig; throws INVALID_ARGUMENT naming the field. */
export function resolveRunConfig(
  cfg: scheduler.RunConfig | undefined,
  defaults: SettingsDefaults,
): RunSettings {
  if (!cfg) throw invalidArgument("config", "required");
  checkRunId(cfg.runId, "config.run_id");
  const resolved = resolveStructure(structureInputFromProto(cfg.structure), { field: "config.structure" });
  if (!resolved.ok) throw invalidArgument(resolved.error.field, resolved.error.message);

  const sources: Record<string, string> = { ...defaults.sources };
  for (const [name, endpoint] of Object.entries(cfg.sources)) {
    const path = `${fieldPath("config", "sources")}[${quote(name, 40)}]`;
    check.oneOf(name, SOURCE_NAMES, path);
    const problem = endpointProblem(endpoint) ?? defaults.policy?.problem(endpoint);
    if (problem) throw invalidArgument(path, problem);
    // stored as parsed (" 127.0.0.1:57051 " passed the check but failed every call as it was)
    sources[name] = parseEndpoint(endpoint)
      .map((e) => e.text)
      .join(",");
  }
  if (!sources.correctness)
    throw invalidArgument('config.sources["correctness"]', "required (correctness_hard is)");

  const advantageScale = SCALES[cfg.advantageScale];
  if (!advantageScale) throw invalidArgument("config.advantage_scale", `unknown value ${cfg.advantageScale}`);
  const policies: Record<number, "skip" | "fail"> = {
    [scheduler.FailurePolicy.FAILURE_POLICY_UNSPECIFIED]: "skip",
    [scheduler.FailurePolicy.FAILURE_POLICY_SKIP]: "skip",
    [scheduler.FailurePolicy.FAILURE_POLICY_FAIL]: "fail",
  };
  const failurePolicy = policies[cfg.failurePolicy];
  if (!failurePolicy) throw invalidArgument("config.failure_policy", `unknown value ${cfg.failurePolicy}`);
  const controls: Record<number, "none" | "permute"> = {
    [scheduler.RewardControl.REWARD_CONTROL_UNSPECIFIED]: "none",
    [scheduler.RewardControl.REWARD_CONTROL_NONE]: "none",
    [scheduler.RewardControl.REWARD_CONTROL_PERMUTE]: "permute",
  };
  const controlKind = controls[cfg.control ?? 0];
  if (!controlKind) throw invalidArgument("config.control", `unknown value ${cfg.control}`);
  check.range(cfg.controlSeed ?? 0, 0, Number.MAX_SAFE_INTEGER, "config.control_seed");
  const control =
    controlKind === "permute" ? { kind: "permute" as const, seed: cfg.controlSeed ?? 0 } : undefined;
  const sourceTimeoutMs = cfg.sourceTimeoutMs || defaults.sourceTimeoutMs;
  check.range(sourceTimeoutMs, 1, 600_000, "config.source_timeout_ms");

  const params: reward.ScoreParams = cfg.params ?? {
    perplexityMode: reward.PerplexityMode.PERPLEXITY_MODE_UNSPECIFIED,
  };
  if (!definedEnumValue(reward.PerplexityMode, params.perplexityMode))
    throw invalidArgument("config.params.perplexity_mode", `unknown value ${params.perplexityMode}`);
  // The reward sources check params per request; checking here turns a bad value into a Configure error.
  const problem = validateScoreRequest([{ id: "g", reference: "1", completions: [{ id: "c", text: "1" }] }], {
    perplexityTau: params.perplexityTau,
    minTokens: params.minTokens,
    maxTokens: params.maxTokens,
  });
  if (problem) throw invalidArgument(`config.${problem.field}`, problem.message);

  return {
    runId: cfg.runId,
    structure: resolved.value,
    sources,
    advantageScale,
    failurePolicy,
    control,
    sourceTimeoutMs,
    params,
    config: {
      ...cfg,
      sources,
      advantageScale:
        cfg.advantageScale === scheduler.AdvantageScale.ADVANTAGE_SCALE_UNSPECIFIED
          ? scheduler.AdvantageScale.ADVANTAGE_SCALE_GROUP
          : cfg.advantageScale,
      failurePolicy:
        cfg.failurePolicy === scheduler.FailurePolicy.FAILURE_POLICY_UNSPECIFIED
          ? scheduler.FailurePolicy.FAILURE_POLICY_SKIP
          : cfg.failurePolicy,
      sourceTimeoutMs,
      params,
    },
  };
}
