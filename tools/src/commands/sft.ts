// `temper sft`: a supervised full-parameter warm start of a model directory on GSM8K-format jsonl
// (synthetic or real); the loop is @temper/training's runSft. Progress is a live bar on a terminal
// and plain lines otherwise; held-out accuracy lines go to stdout and <out>/sft_eval.jsonl.
import { existsSync } from "node:fs";
import { dirname, resolve } from "node:path";
import { DEFAULT_INSTRUCTION, Gsm8kDataError, type Gsm8kExample, loadGsm8k } from "@temper/gsm8k";
// ONNX Runtime and the model code load only once the flags and files check out (see run()).
import type { SftDevCheck, SftEvalResult, SftStepInfo } from "@temper/training";
import { CliError, choiceFlag, numberFlag, outputDir, parseFlags } from "../cli.ts";
import { resolveModelFlag } from "../model-flag.ts";
import { bar, duration, Progress } from "../progress.ts";

const USAGE = `usage: temper sft --model DIR --data TRAIN.jsonl [--eval EVAL.jsonl] --out DIR [options]

Supervised full-parameter training of every weight of the model in --model on GSM8K-format lines
({"question", "answer"}): prompt "Question: <q>\\nAnswer:" (after --instruction), completion = the
answer without its <<…>> annotations, then EOS; loss on the completion only. Writes a new model
directory at --out laid out like --model (same files, tensor names and dtypes; tokenizer copied).

options:
  --model DIR              model to start from (Hugging Face layout)
  --data FILE              training jsonl (required)
  --eval FILE              held-out jsonl: greedy accuracy every --eval-every steps and at the end,
                           printed and written to <out>/sft_eval.jsonl {"step","accuracy","stderr","n"}
  --out DIR                the new model directory (must not exist)
  --steps N                optimizer steps (default 200)
  --batch-size B           sequences per step (default 16)
  --micro-batch-size M     sequences per graph run; gradients summed over the batch (default B)
  --lr X                   peak learning rate (default 2e-3)
  --schedule S             constant | linear | cosine (default cosine)
  --warmup N               linear warm-up steps (default 10, at most a tenth of --steps)
  --min-lr-ratio R         floor of linear/cosine as a fraction of --lr (default 0.1)
  --max-grad-norm G        clip the global gradient norm (default 1; 0 = off)
  --weight-decay W         AdamW decoupled weight decay (default 0)
  --eval-every K           evaluate (and save a resumable state) every K steps (default 0: at the end)
  --eval-size N            first N eval lines (default 200)
  --dev FILE               development jsonl: its mean completion-token loss every --dev-every steps
                           (and its greedy accuracy, with --target-dev-accuracy), printed and
                           written to <out>/sft_dev.jsonl {"step","loss","accuracy","n"}; a check
                           stops generating once the rest cannot change whether it meets the target
  --dev-every K            steps between dev checks (default 10)
  --dev-from N             the first step a dev check may fall on (default --dev-every)
  --target-dev-loss X      stop at the first check whose dev loss is ≤ X
  --target-dev-accuracy A  stop at the first check whose greedy dev accuracy is ≥ A (0–1); the model
                           is that check's, or the check before's when its accuracy is nearer A
  --max-steps M            with a target, run at most M steps (default --steps); past --steps the
                           learning rate stays at the schedule's floor
  --max-new-tokens T       generation length for evaluation (default 48)
  --instruction TEXT       prompt instruction (default: the GSM8K one; "" for none)
  --seed S                 batch order (default 0)
  --threads N              ONNX Runtime intra-op threads
  --dtype D                float32 | float64 compute and master weights (default float32)
  --save-every K           resumable state every K steps in <out>.partial (default --eval-every, else 50)
  --save-dtype D           same | bf16 | f16 | f32 storage of the written weights (default same)
  --prompt-loss            also train on the prompt tokens (language modelling of the question)
  --resume                 continue from <out>.partial (the same options and data)`;

const SCHEDULES = ["constant", "linear", "cosine"] as const;
const SAVE_DTYPES = ["same", "bf16", "f16", "f32"] as const;

const DEFAULTS = {
  steps: 200,
  batchSize: 16,
  lr: 2e-3,
  schedule: "cosine" as const,
  warmup: 10,
  minLrRatio: 0.1,
};

function integer(
  flag: string,
  value: string | undefined,
  min: number,
  fallback?: number,
): number | undefined {
  const n = numberFlag(flag, value, fallback);
  if (n !== undefined && !(Number.isSafeInteger(n) && n >= min))
    throw new CliError(`--${flag}: expected an integer ≥ ${min}, got "${value}"`);
  return n;
}

function nonNegative(flag: string, value: string | undefined, fallback: number): number {
  const n = numberFlag(flag, value, fallback)!;
  if (n < 0) throw new CliError(`--${flag}: expected a number ≥ 0, got "${value}"`);
  return n;
}

function readData(flag: string, path: string): Gsm8kExample[] {
  if (!existsSync(path)) throw new CliError(`--${flag}: ${path} does not exist`);
  const rows = loadGsm8k(path);
  if (rows.length === 0) throw new CliError(`--${flag}: ${path} has no examples`);
  return rows;
}

/**
 * sft's progress on stdout (the shared live line / plain lines of ../progress.ts): a redrawn bar on a
 * terminal, plain lines (at most ~100 per run) otherwise.
 */
class SftProgress {
  private readonly progress = new Progress({ out: process.stdout, plainLines: 100 });
  private tokens = 0;
  private losses: number[] = [];

  step(i: SftStepInfo): void {
    this.tokens += i.tokens;
    this.losses.push(i.loss);
    if (this.losses.length > 10) this.losses.shift();
    const loss = this.losses.reduce((a, b) => a + b, 0) / this.losses.length;
    const rate = this.tokens / i.trainSeconds;
    const eta = (i.trainSeconds / i.stepsThisRun) * (i.steps - i.step);
    const skipped = i.skipped ? " (update skipped: non-finite)" : "";
    this.progress.update(
      i.step,
      i.steps,
      (live) =>
        live
          ? `step ${i.step}/${i.steps} ${bar(i.step / i.steps)} loss ${loss.toFixed(4)} lr ${i.learningRate.toExponential(2)} ${Math.round(rate)} tok/s ETA ${duration(eta)}${skipped}`
          : `step ${i.step}/${i.steps} loss ${i.loss.toFixed(4)} (avg10 ${loss.toFixed(4)}) lr ${i.learningRate.toExponential(2)} grad_norm ${i.gradNorm.toFixed(3)} ${Math.round(rate)} tok/s elapsed ${duration(i.trainSeconds)} ETA ${duration(eta)}${skipped}`,
      i.skipped,
    );
  }

  line(text: string): void {
    this.progress.line(text);
  }

  eval(e: SftEvalResult): void {
    this.line(
      `eval step ${e.step}: accuracy ${e.accuracy.toFixed(4)} ± ${e.stderr.toFixed(4)} (n=${e.n}, ${e.seconds.toFixed(1)} s)`,
    );
  }

  devCheck(d: SftDevCheck, target: { loss?: number; accuracy?: number }): void {
    let met = "";
    if (target.loss !== undefined && d.loss <= target.loss) met = ` (loss ≤ ${target.loss}: stopping)`;
    if (target.accuracy !== undefined && d.accuracy! >= target.accuracy)
      met = ` (accuracy ≥ ${target.accuracy}: stopping)`;
    const accuracy = d.accuracy !== undefined ? `, accuracy ${d.accuracy.toFixed(4)} (n=${d.n})` : "";
    this.line(`dev step ${d.step}: loss ${d.loss.toFixed(5)}${accuracy}${met}`);
  }

  end(): void {
    this.progress.end();
  }
}

/** Errors for the user are one line, "temper sft: ...", exit 2; anything else goes to runCli (exit 1). */
export async function run(argv: string[]): Promise<void> {
  try {
    await sft(await resolveModelFlag(argv));
  } catch (err) {
    if (!(err instanceof CliError)) throw err;
    process.stderr.write(`temper sft: ${err.message.split("\n")[0]}\n`);
    process.exitCode = err.exitCode;
  }
}

async function sft(argv: string[]): Promise<void> {
  if (argv.includes("--help") || argv.includes("-h")) {
    process.stdout.write(`${USAGE}\n`);
    return;
  }
  const { values } = parseFlags(argv, {
    model: { type: "string" },
    data: { type: "string" },
    eval: { type: "string" },
    out: { type: "string" },
    steps: { type: "string" },
    "batch-size": { type: "string" },
    "micro-batch-size": { type: "string" },
    lr: { type: "string" },
    schedule: { type: "string" },
    warmup: { type: "string" },
    "min-lr-ratio": { type: "string" },
    "max-grad-norm": { type: "string" },
    "weight-decay": { type: "string" },
    "eval-every": { type: "string" },
    "eval-size": { type: "string" },
    dev: { type: "string" },
    "dev-every": { type: "string" },
    "dev-from": { type: "string" },
    "target-dev-loss": { type: "string" },
    "target-dev-accuracy": { type: "string" },
    "max-steps": { type: "string" },
    "max-new-tokens": { type: "string" },
    instruction: { type: "string" },
    seed: { type: "string" },
    threads: { type: "string" },
    dtype: { type: "string" },
    "save-every": { type: "string" },
    "save-dtype": { type: "string" },
    resume: { type: "boolean" },
    "prompt-loss": { type: "boolean" },
  });
  const need = (flag: "model" | "data" | "out") => {
    const v = values[flag];
    if (!v) throw new CliError(`--${flag} is required`);
    return v;
  };
  const modelDir = need("model");
  const dataPath = need("data");
  const out = need("out");
  const steps = integer("steps", values.steps, 1, DEFAULTS.steps)!;
  const batchSize = integer("batch-size", values["batch-size"], 1, DEFAULTS.batchSize)!;
  const microBatchSize = integer("micro-batch-size", values["micro-batch-size"], 1, batchSize)!;
  if (microBatchSize > batchSize)
    throw new CliError(`--micro-batch-size (${microBatchSize}) must not exceed --batch-size (${batchSize})`);
  const learningRate = numberFlag("lr", values.lr, DEFAULTS.lr)!;
  if (!(learningRate > 0)) throw new CliError(`--lr: expected a number > 0, got "${values.lr}"`);
  const schedule = choiceFlag("schedule", values.schedule, SCHEDULES, DEFAULTS.schedule);
  const warmupSteps = integer("warmup", values.warmup, 0, Math.min(DEFAULTS.warmup, Math.floor(steps / 10)))!;
  if (warmupSteps > steps) throw new CliError(`--warmup (${warmupSteps}) must not exceed --steps (${steps})`);
  const minLrRatio = numberFlag("min-lr-ratio", values["min-lr-ratio"], DEFAULTS.minLrRatio)!;
  if (!(minLrRatio >= 0 && minLrRatio <= 1))
    throw new CliError(`--min-lr-ratio: expected a number in [0, 1], got "${values["min-lr-ratio"]}"`);
  const maxGradNorm = nonNegative("max-grad-norm", values["max-grad-norm"], 1);
  const weightDecay = nonNegative("weight-decay", values["weight-decay"], 0);
  const evalEvery = integer("eval-every", values["eval-every"], 0, 0)!;
  const evalSize = integer("eval-size", values["eval-size"], 1, 200)!;
  const devEvery = integer("dev-every", values["dev-every"], 1, 10)!;
  const targetDevLoss = numberFlag("target-dev-loss", values["target-dev-loss"]);
  if (targetDevLoss !== undefined && !(targetDevLoss > 0))
    throw new CliError(`--target-dev-loss: expected a number > 0, got "${values["target-dev-loss"]}"`);
  if (targetDevLoss !== undefined && values.dev === undefined)
    throw new CliError("--target-dev-loss needs --dev");
  const targetDevAccuracy = numberFlag("target-dev-accuracy", values["target-dev-accuracy"]);
  if (targetDevAccuracy !== undefined && !(targetDevAccuracy > 0 && targetDevAccuracy <= 1))
    throw new CliError(
      `--target-dev-accuracy: expected a number in (0, 1], got "${values["target-dev-accuracy"]}"`,
    );
  if (targetDevAccuracy !== undefined && values.dev === undefined)
    throw new CliError("--target-dev-accuracy needs --dev");
  if (targetDevAccuracy !== undefined && targetDevLoss !== undefined)
    throw new CliError("give --target-dev-loss or --target-dev-accuracy, not both");
  const devFrom = integer("dev-from", values["dev-from"], 1, devEvery)!;
  const maxSteps = integer("max-steps", values["max-steps"], 1, steps)!;
  if (maxSteps < steps) throw new CliError(`--max-steps (${maxSteps}) must be at least --steps (${steps})`);
  if (maxSteps > steps && targetDevLoss === undefined && targetDevAccuracy === undefined)
    throw new CliError("--max-steps needs --target-dev-loss or --target-dev-accuracy");
  const maxNewTokens = integer("max-new-tokens", values["max-new-tokens"], 1, 48)!;
  const seed = integer("seed", values.seed, 0, 0)!;
  const threads = integer("threads", values.threads, 1);
  const dtype = choiceFlag("dtype", values.dtype, ["float32", "float64"] as const, "float32");
  const saveEvery = integer("save-every", values["save-every"], 0);
  const saveDtype = choiceFlag("save-dtype", values["save-dtype"], SAVE_DTYPES, "same");
  const resume = values.resume === true;
  const instruction = values.instruction ?? DEFAULT_INSTRUCTION;

  if (!existsSync(modelDir)) throw new CliError(`--model: ${modelDir} does not exist`);
  if (existsSync(out)) throw new CliError(`--out: ${out} already exists`);
  const partial = `${resolve(out)}.partial`;
  if (!resume && existsSync(partial))
    throw new CliError(`--out: ${partial} holds an unfinished run; pass --resume or remove it`);
  // --out itself must not exist (the model is renamed into place at the end); its parents are made now.
  outputDir("out", dirname(resolve(out)));

  let train: Gsm8kExample[];
  let evalRows: Gsm8kExample[] | undefined;
  let devRows: Gsm8kExample[] | undefined;
  try {
    train = readData("data", dataPath);
    evalRows = values.eval !== undefined ? readData("eval", values.eval) : undefined;
    devRows = values.dev !== undefined ? readData("dev", values.dev) : undefined;
  } catch (err) {
    if (err instanceof Gsm8kDataError) throw new CliError(err.message);
    throw err;
  }

  const { runSft, SftError, ScheduleError, OptimizerError } = await import("@temper/training");
  const { ConfigError, GenerateError, SafetensorsError, TokenizerError, TrainInputError, WeightsError } =
    await import("@temper/qwen3");
  const progress = new SftProgress();
  const started = performance.now();
  const cpuStart = process.cpuUsage();
  try {
    progress.line(
      `sft: ${modelDir} on ${train.length} examples${evalRows ? `, eval ${Math.min(evalSize, evalRows.length)}` : ""}: ${steps}${maxSteps > steps ? ` (up to ${maxSteps})` : ""} steps × ${batchSize} (micro ${microBatchSize}), lr ${learningRate} ${schedule}, ${dtype}`,
    );
    const result = await runSft(
      {
        modelDir,
        train,
        eval: evalRows,
        out,
        steps,
        batchSize,
        microBatchSize,
        learningRate,
        schedule,
        warmupSteps,
        minLrRatio,
        maxGradNorm,
        weightDecay,
        evalEvery,
        evalSize,
        maxNewTokens,
        instruction,
        seed,
        threads,
        dtype,
        saveEvery,
        saveDtype,
        resume,
        promptLoss: values["prompt-loss"] === true,
        dev: devRows,
        devEvery,
        devFrom,
        targetDevLoss,
        targetDevAccuracy,
        maxSteps,
      },
      {
        onStep: (i) => progress.step(i),
        onEval: (e) => progress.eval(e),
        onDevCheck: (d) => progress.devCheck(d, { loss: targetDevLoss, accuracy: targetDevAccuracy }),
        onLog: (m) => progress.line(m),
      },
    );
    progress.end();
    const last = result.evals.at(-1);
    const seconds = (performance.now() - started) / 1000;
    const cpu = process.cpuUsage(cpuStart);
    const cpuSeconds = (cpu.user + cpu.system) / 1e6;
    process.stdout.write(
      `wrote ${out}: ${result.endStep - result.startStep} steps${result.metTarget ? ` (stopped by the dev target with the model of step ${result.endStep})` : ""} in ${duration(result.trainSeconds)} of training, ${duration(seconds)} in all (CPU ${duration(cpuSeconds)})${last ? `; final accuracy ${last.accuracy.toFixed(4)} ± ${last.stderr.toFixed(4)} (n=${last.n})` : ""}\n`,
    );
  } catch (err) {
    progress.end();
    if (
      err instanceof SftError ||
      err instanceof ConfigError ||
      err instanceof SafetensorsError ||
      err instanceof WeightsError ||
      err instanceof TokenizerError ||
      err instanceof TrainInputError ||
      err instanceof GenerateError ||
      err instanceof ScheduleError ||
      err instanceof OptimizerError
    )
      throw new CliError(err.message);
    throw err;
  }
}
