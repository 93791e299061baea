// Supervised fine-tuning (the warm start before RL): every weight of a Qwen3 model trained on
// GSM8K-format examples. Each example is the plain prompt (plainPrompt(question, instruction)) then
// the completion sftTarget(answer) + EOS; the loss is the mean token NLL of the completion tokens
// over the batch (Qwen3Trainer, full mode, SFT loss, token aggregation, micro-batches summed).
// Updates: clip by global norm, AdamW, a learning-rate schedule with warm-up.
//
// Batches: step s takes examples s·B … s·B + B − 1 of an endless sequence of epochs, each epoch a
// seeded permutation of the training set (without replacement inside an epoch), so the sampler's
// position is the step alone.
//
// Held-out accuracy: greedy generation (KV cache) on the first evalSize eval examples, scored by
// correctness_hard (the extracted answer equals the reference's "#### N" number), every evalEvery
// steps and at the end (on the saved model).
//
// Early stop: with a dev set, every devEvery steps from devFrom on, the mean completion-token loss
// on it (teacher forced, no update) and, with an accuracy target, its greedy accuracy (generation,
// as the held-out evaluation). A loss target ends the run at the first check at or below it. An
// accuracy target ends it at the first check at or above it, with that check's weights or, when the
// check before fell short by less than this one overshoots, with that check's (kept in memory and
// in the saved state): accuracy moves by several points between checks near the target, and the
// nearer of the two is the warm start whose competence is the target's. Without a stop the run ends
// at maxSteps (default `steps`, the schedule's length; past it the rate stays at the schedule's end).
// (A loss target did not hold the default warm start's accuracy steady over batch orders:
// docs/experiments.md, "The warm start's spread".)
//
// Crash safety: every saveEvery steps the state (weights in the training dtype, AdamW moments, step,
// evaluations so far) is written atomically as <out>.partial/step-N; `resume` continues from the
// newest one bitwise as if never stopped (same dtype, same micro-batching, same thread count, same
// machine: see docs/experiments.md, Reproducibility). The finished model is written to a temporary sibling
// of <out> and renamed into place; <out>.partial is then removed.
import { createHash, randomBytes } from "node:crypto";
import { existsSync, mkdirSync, mkdtempSync, readFileSync, renameSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { basename, dirname, join, resolve } from "node:path";
import {
  DEFAULT_INSTRUCTION,
  extractAnswer,
  type Gsm8kExample,
  plainPrompt,
  referenceValue,
  sftTarget,
} from "@temper/gsm8k";
import {
  type FloatArray,
  fromModelDir,
  generate,
  loadTokenizer,
  openDecodeBackend,
  openModelDir,
  Qwen3Trainer,
  Rng,
  readWeightMap,
  SafetensorsFile,
  type Tokenizer,
  type TrainSequence,
  writeSafetensors,
} from "@temper/qwen3";
import { ADAMW_DEFAULTS, type AdamWState, adamwStep, initAdamWState } from "./adamw.ts";
import {
  cleanTemporary,
  latestCheckpoint,
  pruneCheckpoints,
  stepDirName,
  writeCheckpoint,
} from "./checkpoint.ts";
import { clipGradNorm } from "./clip.ts";
import { type SaveDtype, writeTrainedModel } from "./model-out.ts";
import { loadAdamWState, OPTIMIZER_FILE, saveAdamWState } from "./optimizer-state.ts";
import { checkSchedule, type LrScheduleConfig, type LrScheduleKind, learningRateAt } from "./schedule.ts";

/** A bad SFT input or state (one line): the CLI reports it and exits 2. */
export class SftError extends Error {
  override name = "SftError";
}

export interface SftOptions {
  /** Hugging Face-layout model directory to start from. */
  modelDir: string;
  train: readonly Gsm8kExample[];
  /** Held-out examples; none: no evaluation. */
  eval?: readonly Gsm8kExample[];
  /** The new model directory (must not exist). */
  out: string;
  steps: number;
  batchSize: number;
  /** Sequences per graph run (default: the whole batch). */
  microBatchSize?: number;
  learningRate: number;
  schedule?: LrScheduleKind;
  warmupSteps?: number;
  minLrRatio?: number;
  /** Global gradient-norm clip (default 1; 0 = off). */
  maxGradNorm?: number;
  /** AdamW decoupled weight decay (default 0). */
  weightDecay?: number;
  /** Evaluate every this many steps (0 = only at the end; default 0). */
  evalEvery?: number;
  /** How many eval examples (the first ones) to score (default 200, at most all). */
  evalSize?: number;
  /** Generation length for evaluation (default 48). */
  maxNewTokens?: number;
  /** Rows per generation session during evaluation (default 64). */
  evalBatchSize?: number;
  /** Prompt instruction (default DEFAULT_INSTRUCTION; "" = just "Question: …\nAnswer:"). */
  instruction?: string;
  seed?: number;
  threads?: number;
  dtype?: "float32" | "float64";
  /** Save the resumable state every this many steps (default evalEvery, else 50; 0 = never). */
  saveEvery?: number;
  /** Storage dtype of the written weights (default "same" as the input). */
  saveDtype?: SaveDtype;
  /** Continue from <out>.partial when it holds a state (else start afresh). */
  resume?: boolean;
  /**
   * Also train on the prompt tokens (language modelling of the question; default false: the loss
   * is on the completion only). A model trained from scratch learns to copy from the question
   * sooner this way.
   */
  promptLoss?: boolean;
  /** Development examples for the early stop (and the dev-check lines); none: no dev checks. */
  dev?: readonly Gsm8kExample[];
  /** Check the dev set every this many steps (default 10). */
  devEvery?: number;
  /** The first step a check may fall on (default devEvery): earlier checks cost time and stop nothing. */
  devFrom?: number;
  /** End the run at the first check whose dev loss is at or below this (default: never early). */
  targetDevLoss?: number;
  /**
   * End the run at the first check whose greedy dev accuracy is at or above this (0–1), with its
   * weights or the previous check's, whichever accuracy is nearer.
   */
  targetDevAccuracy?: number;
  /** With a target: the most steps to run (default `steps`); past `steps` the rate stays at the floor. */
  maxSteps?: number;
}

export interface SftDevCheck {
  step: number;
  /** Mean NLL per completion token over the dev set. */
  loss: number;
  /** Greedy accuracy on the dev problems generated (only with an accuracy target: it costs a generation). */
  accuracy?: number;
  /**
   * How many dev problems were generated: fewer than the set when the rest could no longer change
   * whether the target is met (problems go in batches, in order, and stop there).
   */
  n?: number;
}

export interface SftStepInfo {
  /** Updates done (1-based after this step). */
  step: number;
  /** The most it runs (maxSteps). */
  steps: number;
  loss: number;
  learningRate: number;
  gradNorm: number;
  /** Non-finite loss or gradient: the update was skipped. */
  skipped: boolean;
  /** Sequence tokens (prompt + completion) in the batch. */
  tokens: number;
  /** Completion tokens (the ones the loss counts). */
  completionTokens: number;
  /** Seconds of this step. */
  seconds: number;
  /** Training seconds in this process so far (evaluation and saving excluded). */
  trainSeconds: number;
  /** Steps done in this process (for rates and ETA after a resume). */
  stepsThisRun: number;
}

export interface SftEvalResult {
  step: number;
  accuracy: number;
  /** √(p(1 − p)/n). */
  stderr: number;
  n: number;
  seconds: number;
}

export interface SftHooks {
  onStep?(info: SftStepInfo): void;
  onEval?(result: SftEvalResult): void;
  onDevCheck?(result: SftDevCheck): void;
  onLog?(message: string): void;
}

export interface SftResult {
  out: string;
  /** The final weights in the training dtype, by Hugging Face name. */
  params: Map<string, FloatArray>;
  evals: SftEvalResult[];
  devChecks: SftDevCheck[];
  /** The step the run started from (0, or the resumed checkpoint's). */
  startStep: number;
  /** The step it ended at: the dev check that met the target, else maxSteps. */
  endStep: number;
  /** Whether a dev check met the target (else the run went to maxSteps). */
  metTarget: boolean;
  trainSeconds: number;
}

export const SFT_STATE_FILE = "sft_state.json";
export const SFT_WEIGHTS_FILE = "weights.safetensors";
export const SFT_EVAL_FILE = "sft_eval.jsonl";
export const SFT_DEV_FILE = "sft_dev.jsonl";
export const SFT_SAMPLES_FILE = "sft_eval_samples.jsonl";
export const SFT_ARGS_FILE = "sft_args.json";

/** Where the resumable state of a run writing `out` lives. */
export function partialDir(out: string): string {
  return `${resolve(out)}.partial`;
}

/** The training-set indices of step `step`'s batch: epochs are seeded permutations, no replacement. */
export function sftBatchIndices(n: number, batchSize: number, seed: number, step: number): number[] {
  const out: number[] = [];
  let perm: number[] | null = null;
  let permEpoch = -1;
  for (let k = 0; k < batchSize; k++) {
    const p = step * batchSize + k;
    const epoch = Math.floor(p / n);
    if (epoch !== permEpoch) {
      perm = epochPermutation(n, seed, epoch);
      permEpoch = epoch;
    }
    out.push(perm![p % n]);
  }
  return out;
}

/** Fisher–Yates with stream (seed, epoch). */
export function epochPermutation(n: number, seed: number, epoch: number): number[] {
  const rng = new Rng(seed, epoch + 1);
  const perm = Array.from({ length: n }, (_, i) => i);
  for (let i = n - 1; i > 0; i--) {
    const j = rng.nextU32() % (i + 1);
    [perm[i], perm[j]] = [perm[j], perm[i]];
  }
  return perm;
}

/**
 * prompt + sftTarget(answer) + EOS token ids; the loss on the completion (and EOS) only, or with
 * `promptLoss` on every token after the first.
 */
export function sftSequence(
  tokenizer: Pick<Tokenizer, "encode">,
  example: Gsm8kExample,
  instruction: string,
  eosTokenId: number,
  promptLoss = false,
): TrainSequence {
  const prompt = tokenizer.encode(plainPrompt(example.question, instruction));
  const completion = [...tokenizer.encode(sftTarget(example.answer)), eosTokenId];
  const p = promptLoss ? 1 : 0;
  return {
    inputIds: [...prompt, ...completion],
    completionMask: [...prompt.map((_, t) => (t === 0 ? 0 : p)), ...completion.map(() => 1)],
  };
}

function hashExamples(examples: readonly Gsm8kExample[]): string {
  const h = createHash("sha256");
  for (const e of examples) h.update(JSON.stringify([e.question, e.answer])).update("\n");
  return h.digest("hex").slice(0, 16);
}

interface Resolved {
  steps: number;
  maxSteps: number;
  batchSize: number;
  microBatchSize: number;
  schedule: LrScheduleConfig;
  maxGradNorm: number;
  weightDecay: number;
  evalEvery: number;
  evalSize: number;
  maxNewTokens: number;
  evalBatchSize: number;
  instruction: string;
  seed: number;
  dtype: "float32" | "float64";
  saveEvery: number;
  saveDtype: SaveDtype;
  promptLoss: boolean;
  devEvery: number;
  devFrom: number;
  targetDevLoss: number | null;
  targetDevAccuracy: number | null;
}

function positiveInt(name: string, v: number, min = 1): number {
  if (!Number.isSafeInteger(v) || v < min)
    throw new SftError(`${name} must be an integer ≥ ${min}, got ${v}`);
  return v;
}

function resolveOptions(o: SftOptions): Resolved {
  const steps = positiveInt("steps", o.steps);
  const batchSize = positiveInt("batch size", o.batchSize);
  const microBatchSize = positiveInt("micro-batch size", o.microBatchSize ?? batchSize);
  if (microBatchSize > batchSize)
    throw new SftError(`micro-batch size (${microBatchSize}) must not exceed the batch size (${batchSize})`);
  const schedule: LrScheduleConfig = {
    kind: o.schedule ?? "constant",
    learningRate: o.learningRate,
    warmupSteps: o.warmupSteps ?? 0,
    totalSteps: steps,
    minLrRatio: o.minLrRatio ?? 0,
  };
  try {
    checkSchedule(schedule);
  } catch (err) {
    throw new SftError(`schedule: ${(err as Error).message}`);
  }
  const maxGradNorm = o.maxGradNorm ?? 1;
  if (!Number.isFinite(maxGradNorm) || maxGradNorm < 0)
    throw new SftError(`max grad norm must be a number ≥ 0, got ${maxGradNorm}`);
  const weightDecay = o.weightDecay ?? 0;
  if (!Number.isFinite(weightDecay) || weightDecay < 0)
    throw new SftError(`weight decay must be a number ≥ 0, got ${weightDecay}`);
  const evalEvery = positiveInt("eval every", o.evalEvery ?? 0, 0);
  const evalSize = positiveInt("eval size", o.evalSize ?? 200);
  const maxNewTokens = positiveInt("max new tokens", o.maxNewTokens ?? 48);
  const evalBatchSize = positiveInt("eval batch size", o.evalBatchSize ?? 64);
  const seed = o.seed ?? 0;
  if (!Number.isSafeInteger(seed) || seed < 0) throw new SftError(`seed must be an integer ≥ 0, got ${seed}`);
  const dtype = o.dtype ?? "float32";
  if (dtype !== "float32" && dtype !== "float64")
    throw new SftError(`dtype must be float32 or float64, got ${dtype}`);
  const saveEvery = positiveInt("save every", o.saveEvery ?? (evalEvery > 0 ? evalEvery : 50), 0);
  if (o.train.length === 0) throw new SftError("the training data has no examples");
  const devEvery = positiveInt("dev every", o.devEvery ?? 10);
  const devFrom = positiveInt("dev from", o.devFrom ?? devEvery);
  const targetDevLoss = o.targetDevLoss ?? null;
  if (targetDevLoss !== null) {
    if (!(Number.isFinite(targetDevLoss) && targetDevLoss > 0))
      throw new SftError(`target dev loss must be a number > 0, got ${targetDevLoss}`);
    if (!o.dev?.length) throw new SftError("a target dev loss needs dev examples");
  }
  const targetDevAccuracy = o.targetDevAccuracy ?? null;
  if (targetDevAccuracy !== null) {
    if (!(targetDevAccuracy > 0 && targetDevAccuracy <= 1))
      throw new SftError(`target dev accuracy must be a number in (0, 1], got ${targetDevAccuracy}`);
    if (!o.dev?.length) throw new SftError("a target dev accuracy needs dev examples");
    if (targetDevLoss !== null)
      throw new SftError("give a target dev loss or a target dev accuracy, not both");
  }
  const maxSteps = positiveInt("max steps", o.maxSteps ?? steps, steps);
  if (maxSteps > steps && targetDevLoss === null && targetDevAccuracy === null)
    throw new SftError(`max steps (${maxSteps}) beyond steps (${steps}) needs a target`);
  return {
    steps,
    maxSteps,
    batchSize,
    microBatchSize,
    schedule,
    maxGradNorm,
    weightDecay,
    evalEvery,
    evalSize,
    maxNewTokens,
    evalBatchSize,
    instruction: o.instruction ?? DEFAULT_INSTRUCTION,
    seed,
    dtype,
    saveEvery,
    saveDtype: o.saveDtype ?? "same",
    promptLoss: o.promptLoss === true,
    devEvery,
    devFrom,
    targetDevLoss,
    targetDevAccuracy,
  };
}

/** What a resumed run must agree on with the run that saved the state (the math, not the speed). */
function fingerprint(o: SftOptions, r: Resolved): Record<string, unknown> {
  return {
    model: resolve(o.modelDir),
    train: hashExamples(o.train),
    eval: o.eval ? hashExamples(o.eval.slice(0, r.evalSize)) : null,
    steps: r.steps,
    max_steps: r.maxSteps,
    batch_size: r.batchSize,
    schedule: r.schedule,
    max_grad_norm: r.maxGradNorm,
    weight_decay: r.weightDecay,
    instruction: r.instruction,
    seed: r.seed,
    dtype: r.dtype,
    max_new_tokens: r.maxNewTokens,
    save_dtype: r.saveDtype,
    prompt_loss: r.promptLoss,
    dev: o.dev?.length ? hashExamples(o.dev) : null,
    dev_every: r.devEvery,
    dev_from: r.devFrom,
    target_dev_loss: r.targetDevLoss,
    target_dev_accuracy: r.targetDevAccuracy,
  };
}

interface SavedState {
  format: 1;
  step: number;
  fingerprint: Record<string, unknown>;
  evals: SftEvalResult[];
  devChecks?: SftDevCheck[];
  /** The step of the last accuracy check that fell short; its weights are in BELOW_WEIGHTS_FILE. */
  belowStep?: number;
}

const BELOW_WEIGHTS_FILE = "below.safetensors";

function copyWeights(params: ReadonlyMap<string, FloatArray>): Map<string, FloatArray> {
  return new Map([...params].map(([name, w]) => [name, w.slice()]));
}

/**
 * Of the check that fell short of the target and the first that reached it, the one nearer the
 * target (the one that reached it on a tie): a check ten steps on may overshoot by as much as the
 * last one fell short, and the nearer is the warm start whose competence is the target's.
 */
export function nearerCheck(below: number | null, reached: number, target: number): "below" | "reached" {
  return below !== null && target - below < reached - target ? "below" : "reached";
}

function isCorrect(text: string, finishReason: string, reference: number): boolean {
  const x = extractAnswer(text, { finishReason }).value;
  return x !== null && Math.abs(x - reference) <= 1e-6 * Math.max(1, Math.abs(reference));
}

interface EvalSet {
  prompts: number[][];
  references: number[];
  examples: readonly Gsm8kExample[];
}

/** The fewest solved of n problems that reach accuracy `target`. */
export function solvedNeeded(target: number, n: number): number {
  let c = Math.min(n, Math.ceil(target * n));
  while (c > 0 && (c - 1) / n >= target) c--;
  while (c < n && c / n < target) c++;
  return c;
}

/**
 * Greedy accuracy of the model in `dir` on the eval set; optionally the completions. With `target`,
 * generation stops after the batch that settles whether the accuracy reaches it: each batch is
 * generated as it would be in one call, so the answer is the whole set's.
 */
async function evaluateDir(
  dir: string,
  tokenizer: Tokenizer,
  eosTokenIds: readonly number[],
  set: EvalSet,
  r: Resolved,
  threads: number | undefined,
  step: number,
  target?: number,
): Promise<{ result: SftEvalResult; samples: Record<string, unknown>[] }> {
  const started = performance.now();
  // The kv engine, as SFT has always evaluated: "fast" would be quicker, but a greedy choice between
  // two logits within float32 rounding of each other may flip, and the evaluation's figures with it.
  const backend = await fromModelDir(dir, (config, checkpoint) =>
    openDecodeBackend({ config, checkpoint }, { dtype: "float32", engine: "kv", threads }),
  );
  const total = set.prompts.length;
  const needed = target === undefined ? 0 : solvedNeeded(target, total);
  const completions: Awaited<ReturnType<typeof generate>> = [];
  try {
    let solved = 0;
    for (let at = 0; at < total; at += r.evalBatchSize) {
      const batch = await generate(backend, tokenizer, set.prompts.slice(at, at + r.evalBatchSize), {
        temperature: 0,
        maxNewTokens: r.maxNewTokens,
        eosTokenIds,
      });
      batch.forEach(([c], i) => {
        completions.push([c]);
        if (isCorrect(c.text, c.finishReason, set.references[at + i])) solved++;
      });
      const unsolved = completions.length - solved;
      if (target !== undefined && (solved >= needed || unsolved > total - needed)) break;
    }
  } finally {
    await backend.release();
  }
  let correct = 0;
  const samples = completions.map(([c], i) => {
    const ok = isCorrect(c.text, c.finishReason, set.references[i]);
    if (ok) correct++;
    return {
      question: set.examples[i].question,
      reference: set.references[i],
      completion: c.text,
      finish_reason: c.finishReason,
      extracted: extractAnswer(c.text, { finishReason: c.finishReason }).value,
      correct: ok,
    };
  });
  const n = completions.length;
  const p = correct / n;
  return {
    result: {
      step,
      accuracy: p,
      stderr: Math.sqrt((p * (1 - p)) / n),
      n,
      seconds: (performance.now() - started) / 1000,
    },
    samples,
  };
}

function evalLines(evals: readonly SftEvalResult[]): string {
  return evals
    .map((e) => `${JSON.stringify({ step: e.step, accuracy: e.accuracy, stderr: e.stderr, n: e.n })}\n`)
    .join("");
}

/** Runs SFT to completion (or from a saved state); writes the model directory `out`. */
export async function runSft(options: SftOptions, hooks: SftHooks = {}): Promise<SftResult> {
  const r = resolveOptions(options);
  const out = resolve(options.out);
  const partial = partialDir(out);
  if (existsSync(out)) throw new SftError(`${options.out} already exists`);
  const saved = options.resume ? latestCheckpoint(partial) : undefined;
  if (!options.resume && latestCheckpoint(partial))
    throw new SftError(`${partial} holds an unfinished run: pass --resume to continue it, or remove it`);
  const print = (m: string) => hooks.onLog?.(m);

  const model = openModelDir(options.modelDir);
  const { config } = model;
  let params: Map<string, FloatArray>;
  try {
    params = readWeightMap(config, model.checkpoint, r.dtype);
  } finally {
    model.checkpoint.close();
  }
  const eosTokenIds = model.eosTokenIds;
  if (eosTokenIds.length === 0)
    throw new SftError(`${options.modelDir}: no EOS token id in generation_config.json or config.json`);
  const tokenizer = await loadTokenizer(options.modelDir);

  const sequences = options.train.map((e, i) => {
    const s = sftSequence(tokenizer, e, r.instruction, eosTokenIds[0], r.promptLoss);
    if (s.inputIds.length > config.maxPositionEmbeddings)
      throw new SftError(
        `training example ${i + 1} has ${s.inputIds.length} tokens, more than the model's ${config.maxPositionEmbeddings} positions`,
      );
    return s;
  });
  const toEvalSet = (examples: readonly Gsm8kExample[], what: string): EvalSet => {
    const references = examples.map((e, i) => {
      const v = referenceValue(e.answer);
      if (v === null)
        throw new SftError(`${what} example ${i + 1}: the answer has no "#### <number>" reference`);
      return v;
    });
    const prompts = examples.map((e) => tokenizer.encode(plainPrompt(e.question, r.instruction)));
    return { prompts, references, examples };
  };
  const evalSet = options.eval?.length ? toEvalSet(options.eval.slice(0, r.evalSize), "eval") : null;
  const devSet = r.targetDevAccuracy !== null ? toEvalSet(options.dev ?? [], "dev") : null;
  const devSequences = (options.dev ?? []).map((e, i) => {
    const s = sftSequence(tokenizer, e, r.instruction, eosTokenIds[0]);
    if (s.inputIds.length > config.maxPositionEmbeddings)
      throw new SftError(
        `dev example ${i + 1} has ${s.inputIds.length} tokens, more than the model's ${config.maxPositionEmbeddings} positions`,
      );
    return s;
  });

  const print0 = fingerprint(options, r);
  let opt: AdamWState;
  let startStep = 0;
  const evals: SftEvalResult[] = [];
  const devChecks: SftDevCheck[] = [];
  /** The last accuracy check that fell short of the target, with its weights: the stop may pick it. */
  let below: { check: SftDevCheck; weights: Map<string, FloatArray> } | null = null;
  if (saved) {
    const state = JSON.parse(readFileSync(join(saved.dir, SFT_STATE_FILE), "utf8")) as SavedState;
    // (a key the saved state lacks is an option added since: that run had its default)
    for (const [k, v] of Object.entries(print0))
      if (k in state.fingerprint && JSON.stringify(state.fingerprint[k]) !== JSON.stringify(v))
        throw new SftError(
          `--resume: ${k} differs from the saved run's (${JSON.stringify(state.fingerprint[k])} there, ${JSON.stringify(v)} now)`,
        );
    const file = SafetensorsFile.open(join(saved.dir, SFT_WEIGHTS_FILE));
    try {
      for (const name of params.keys()) params.set(name, file.read(name, r.dtype));
    } finally {
      file.close();
    }
    opt = loadAdamWState(join(saved.dir, OPTIMIZER_FILE));
    startStep = state.step;
    evals.push(...state.evals);
    devChecks.push(...(state.devChecks ?? []));
    if (state.belowStep !== undefined) {
      const check = devChecks.find((d) => d.step === state.belowStep);
      if (!check) throw new SftError(`${saved.dir}: no dev check at step ${state.belowStep}`);
      const weights = new Map<string, FloatArray>();
      const f = SafetensorsFile.open(join(saved.dir, BELOW_WEIGHTS_FILE));
      try {
        for (const name of params.keys()) weights.set(name, f.read(name, r.dtype));
      } finally {
        f.close();
      }
      below = { check, weights };
    }
    print(`resuming from ${saved.dir} (step ${startStep} of at most ${r.maxSteps})`);
  } else {
    opt = initAdamWState(params);
    if (options.resume) print(`no saved state in ${partial}: starting from step 0`);
  }
  cleanTemporary(partial);

  const saveState = (step: number) => {
    writeCheckpoint(partial, stepDirName(step), (dir) => {
      writeTrainedWeights(join(dir, SFT_WEIGHTS_FILE), params, r.dtype);
      saveAdamWState(join(dir, OPTIMIZER_FILE), opt);
      if (below) writeTrainedWeights(join(dir, BELOW_WEIGHTS_FILE), below.weights, r.dtype);
      const state: SavedState = {
        format: 1,
        step,
        fingerprint: print0,
        evals,
        devChecks,
        ...(below && { belowStep: below.check.step }),
      };
      writeFileSync(join(dir, SFT_STATE_FILE), `${JSON.stringify(state, null, 1)}\n`);
    });
    pruneCheckpoints(partial, 1);
  };

  /** Greedy accuracy of `weights` on `set` (until `target` is settled), from a temporary copy. */
  const accuracyNow = async (
    set: EvalSet,
    step: number,
    target?: number,
    weights: ReadonlyMap<string, FloatArray> = params,
  ): Promise<SftEvalResult> => {
    const tmp = mkdtempSync(join(tmpdir(), "temper-sft-eval-"));
    try {
      writeTrainedModel(options.modelDir, tmp, weights, "f32");
      return (await evaluateDir(tmp, tokenizer, eosTokenIds, set, r, options.threads, step, target)).result;
    } finally {
      rmSync(tmp, { recursive: true, force: true });
    }
  };
  const evalNow = async (step: number) => {
    if (!evalSet) return;
    const result = await accuracyNow(evalSet, step);
    evals.push(result);
    hooks.onEval?.(result);
  };

  const trainer = await Qwen3Trainer.load(options.modelDir, {
    mode: "full",
    loss: { kind: "sft", aggregation: "token" },
    dtype: r.dtype,
    threads: options.threads,
    evaluate: devSequences.length > 0,
  });
  /** The whole dev set's accuracy of a check's weights (a check may have stopped early). */
  const wholeDevAccuracy = async (
    d: SftDevCheck,
    weights: ReadonlyMap<string, FloatArray>,
  ): Promise<number> => {
    if (d.n !== devSet!.prompts.length) {
      const whole = await accuracyNow(devSet!, d.step, undefined, weights);
      Object.assign(d, { accuracy: whole.accuracy, n: whole.n });
    }
    return d.accuracy!;
  };
  /**
   * The dev loss (and accuracy) now; when it meets the target, the step whose weights end the run
   * (an accuracy target: this one or the check before, whichever is nearer the target).
   */
  const devCheck = async (step: number): Promise<number | null> => {
    const res = await trainer.evaluate(devSequences, params, { microBatchSize: r.microBatchSize });
    const d: SftDevCheck = { step, loss: res.loss };
    if (!devSet || r.targetDevAccuracy === null) {
      devChecks.push(d);
      hooks.onDevCheck?.(d);
      return r.targetDevLoss !== null && res.loss <= r.targetDevLoss ? step : null;
    }
    const target = r.targetDevAccuracy;
    const acc = await accuracyNow(devSet, step, target);
    Object.assign(d, { accuracy: acc.accuracy, n: acc.n });
    devChecks.push(d);
    hooks.onDevCheck?.(d);
    if (Math.round(acc.accuracy * acc.n) < solvedNeeded(target, devSet.prompts.length)) {
      below = { check: d, weights: copyWeights(params) };
      return null;
    }
    const reached = await wholeDevAccuracy(d, params);
    const short = below ? await wholeDevAccuracy(below.check, below.weights) : null;
    if (!below || nearerCheck(short, reached, target) === "reached") return step;
    print(
      `dev step ${below.check.step} (accuracy ${short!.toFixed(4)}) is nearer ${target} than step ${step} (${reached.toFixed(4)}): its weights end the run`,
    );
    for (const [name, w] of below.weights) params.set(name, w);
    return below.check.step;
  };
  let endStep = r.maxSteps;
  let metTarget = false;
  let trainSeconds = 0;
  try {
    for (let step = startStep; step < r.maxSteps; step++) {
      const started = performance.now();
      const batch = sftBatchIndices(sequences.length, r.batchSize, r.seed, step).map((i) => sequences[i]);
      const res = await trainer.step(batch, params, { microBatchSize: r.microBatchSize });
      let skipped = !Number.isFinite(res.loss);
      const clip = skipped ? { norm: Number.NaN, finite: false } : clipGradNorm(res.grads, r.maxGradNorm);
      skipped ||= !clip.finite;
      const lr = learningRateAt(r.schedule, opt.step);
      if (!skipped) adamwStep(params, res.grads, opt, lr, { ...ADAMW_DEFAULTS, weightDecay: r.weightDecay });
      const seconds = (performance.now() - started) / 1000;
      trainSeconds += seconds;
      let tokens = 0;
      for (const s of batch) tokens += s.inputIds.length;
      hooks.onStep?.({
        step: step + 1,
        steps: r.maxSteps,
        loss: res.loss,
        learningRate: lr,
        gradNorm: clip.norm,
        skipped,
        tokens,
        completionTokens: res.maskedTokens,
        seconds,
        trainSeconds,
        stepsThisRun: step + 1 - startStep,
      });
      const done = step + 1;
      if (done < r.maxSteps) {
        const due = devSequences.length > 0 && done >= r.devFrom && done % r.devEvery === 0;
        const end = due ? await devCheck(done) : null;
        if (end !== null) {
          endStep = end;
          metTarget = true;
          break;
        }
        if (r.evalEvery > 0 && done % r.evalEvery === 0) await evalNow(done);
        if (r.saveEvery > 0 && done % r.saveEvery === 0) saveState(done);
      }
    }
  } finally {
    await trainer.release();
  }

  // The model directory: written beside `out`, evaluated as saved, then renamed into place.
  mkdirSync(dirname(out), { recursive: true });
  const tmpOut = join(dirname(out), `.${basename(out)}.tmp-${randomBytes(6).toString("hex")}`);
  mkdirSync(tmpOut);
  try {
    writeTrainedModel(options.modelDir, tmpOut, params, r.saveDtype);
    if (evalSet) {
      const { result, samples } = await evaluateDir(
        tmpOut,
        tokenizer,
        eosTokenIds,
        evalSet,
        r,
        options.threads,
        endStep,
      );
      evals.push(result);
      hooks.onEval?.(result);
      writeFileSync(join(tmpOut, SFT_EVAL_FILE), evalLines(evals));
      writeFileSync(join(tmpOut, SFT_SAMPLES_FILE), samples.map((s) => `${JSON.stringify(s)}\n`).join(""));
    }
    if (devChecks.length > 0)
      writeFileSync(join(tmpOut, SFT_DEV_FILE), devChecks.map((d) => `${JSON.stringify(d)}\n`).join(""));
    const args = {
      ...print0,
      micro_batch_size: r.microBatchSize,
      eval_every: r.evalEvery,
      eval_size: r.evalSize,
      dev_size: devSequences.length,
      end_step: endStep,
    };
    writeFileSync(join(tmpOut, SFT_ARGS_FILE), `${JSON.stringify(args, null, 2)}\n`);
    if (existsSync(out))
      throw new SftError(`${options.out} appeared while training; the model is in ${tmpOut}`);
    renameSync(tmpOut, out);
  } catch (err) {
    if (!(err instanceof SftError)) rmSync(tmpOut, { recursive: true, force: true });
    throw err;
  }
  rmSync(partial, { recursive: true, force: true });
  return { out, params, evals, devChecks, startStep, endStep, metTarget, trainSeconds };
}

/** The master weights, exactly (F32 or F64), for resuming. */
function writeTrainedWeights(path: string, params: ReadonlyMap<string, FloatArray>, dtype: string): void {
  const st = dtype === "float64" ? "F64" : "F32";
  writeSafetensors(
    path,
    [...params].map(([name, data]) => ({ name, dtype: st, shape: [data.length], chunks: () => [data] })),
  );
}
