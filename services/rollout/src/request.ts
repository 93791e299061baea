// Checking a GenerateRequest and turning it into what the engine runs: every problem is an
// INVALID_ARGUMENT naming its field (`prompts[2].id`, `sampling.max_new_tokens`, ...), prompts are
// rendered (chat template when asked) and tokenized here, in the main thread, so a bad request is
// answered at once instead of after the queue.
import { check, checkRunId, failedPrecondition, fieldPath, invalidArgument, quote } from "@temper/kit";
import type { rollout } from "@temper/proto";
import type { Tokenizer } from "@temper/qwen3";
import { promptSeed } from "./seed.ts";

export interface RolloutLimits {
  maxPrompts: number;
  maxCompletions: number;
  maxNewTokens: number;
  maxPromptTokens: number;
}

/** Fixed limits (documented in services/rollout/README.md). */
export const MAX_STOP_STRINGS = 16;
export const MAX_STOP_CHARS = 256;
export const MAX_ID_CHARS = 256;
export const MAX_TAG_CHARS = 128;
/** A prompt longer than this many characters per allowed token is rejected before tokenizing. */
export const CHARS_PER_TOKEN_BOUND = 64;

export const ADAPTER_VERSION = /^[A-Za-z0-9_.-]{1,128}$/;
export const CALL_TAG = /^[A-Za-z0-9_.:-]*$/;

export interface ModelLimits {
  /** Longest prompt + completion the model accepts. */
  maxPositions: number;
}

/** A checked request, ready for the engine. */
export interface PreparedCall {
  prompts: rollout.PromptInput[];
  promptIds: number[][];
  seeds: number[];
  n: number;
  temperature: number;
  topK: number;
  topP: number;
  maxNewTokens: number;
  stop: string[];
  runId: string;
  adapterVersion: string;
  step: number;
  callTag: string;
}

export function prepareGenerate(
  req: rollout.GenerateRequest,
  limits: RolloutLimits,
  model: ModelLimits,
  tokenizer: Tokenizer,
): PreparedCall {
  // run and adapter first: they decide whether the rest is worth tokenizing
  if (req.runId !== "") checkRunId(req.runId);
  if (req.adapterVersion !== "") {
    if (req.runId === "") throw invalidArgument("run_id", "required when adapter_version is set");
    check.matches(req.adapterVersion, ADAPTER_VERSION, "adapter_version", "match [A-Za-z0-9_.-]{1,128}");
  }
  check.that(req.callTag.length <= MAX_TAG_CHARS, "call_tag", `longer than ${MAX_TAG_CHARS} characters`);
  check.matches(req.callTag, CALL_TAG, "call_tag", "match [A-Za-z0-9_.:-]*");

  const s = req.sampling;
  if (!s) throw invalidArgument("sampling", "required (max_new_tokens at least)");
  const temperature = s.temperature ?? 1;
  check.that(
    Number.isFinite(temperature) && temperature >= 0,
    "sampling.temperature",
    `must be a finite number ≥ 0 (0 = greedy), got ${temperature}`,
  );
  const topP = s.topP ?? 1;
  check.that(topP > 0 && topP <= 1, "sampling.top_p", `must be in (0, 1], got ${topP}`);
  check.that(
    s.maxNewTokens >= 1 && s.maxNewTokens <= limits.maxNewTokens,
    "sampling.max_new_tokens",
    `must be in [1, ${limits.maxNewTokens}], got ${s.maxNewTokens}`,
  );
  check.maxItems(s.stop, MAX_STOP_STRINGS, "sampling.stop");
  s.stop.forEach((stop, i) => {
    const path = fieldPath("sampling", "stop", i);
    check.nonEmpty(stop, path);
    check.that(stop.length <= MAX_STOP_CHARS, path, `longer than ${MAX_STOP_CHARS} characters`);
  });

  check.that(req.numCompletions >= 1, "num_completions", "must be at least 1");
  check.that(
    req.numCompletions <= limits.maxCompletions,
    "num_completions",
    `must be at most ${limits.maxCompletions}, got ${req.numCompletions}`,
  );
  check.nonEmpty(req.prompts, "prompts");
  check.maxItems(req.prompts, limits.maxPrompts, "prompts");
  if (req.enableThinking && !req.chat) throw invalidArgument("enable_thinking", "only applies with chat");

  const seen = new Map<string, number>();
  const promptIds: number[][] = [];
  const maxChars = limits.maxPromptTokens * CHARS_PER_TOKEN_BOUND;
  req.prompts.forEach((p, i) => {
    const idPath = fieldPath("prompts", i, "id");
    check.nonEmpty(p.id, idPath);
    check.that(p.id.length <= MAX_ID_CHARS, idPath, `longer than ${MAX_ID_CHARS} characters`);
    const first = seen.get(p.id);
    if (first !== undefined)
      throw invalidArgument(idPath, `duplicate id ${quote(p.id)} (also prompts[${first}].id)`);
    seen.set(p.id, i);
    const textPath = fieldPath("prompts", i, "prompt");
    check.nonEmpty(p.prompt, textPath);
    check.that(p.prompt.length <= maxChars, textPath, `longer than ${maxChars} characters`);
    let text = p.prompt;
    if (req.chat) {
      try {
        text = tokenizer.applyChatTemplate([{ role: "user", content: p.prompt }], {
          addGenerationPrompt: true,
          enableThinking: req.enableThinking,
        });
      } catch (err) {
        throw failedPrecondition(`chat: cannot render the model's chat template: ${(err as Error).message}`);
      }
    }
    const ids = tokenizer.encode(text);
    check.that(ids.length > 0, textPath, "encodes to no tokens");
    check.that(
      ids.length <= limits.maxPromptTokens,
      textPath,
      `has ${ids.length} tokens, at most ${limits.maxPromptTokens} allowed`,
    );
    if (ids.length + s.maxNewTokens > model.maxPositions)
      throw invalidArgument(
        textPath,
        `has ${ids.length} tokens; with max_new_tokens ${s.maxNewTokens} it exceeds the model's ${model.maxPositions} positions`,
      );
    promptIds.push(ids);
  });

  return {
    prompts: req.prompts,
    promptIds,
    seeds: req.prompts.map((p) => promptSeed(s.seed, req.step, p.id)),
    n: req.numCompletions,
    temperature,
    topK: s.topK,
    topP,
    maxNewTokens: s.maxNewTokens,
    stop: s.stop,
    runId: req.runId,
    adapterVersion: req.adapterVersion,
    step: req.step,
    callTag: req.callTag,
  };
}
