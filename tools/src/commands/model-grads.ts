// `temper model grads`: one training step's loss, per-token logprobs and LoRA gradients for a batch
// file, written to a safetensors file (gradients under their PEFT names), without updating anything.
import { readFileSync } from "node:fs";
import {
  ConfigError,
  checkTrainBatch,
  LOSS_AGGREGATIONS,
  LoraError,
  type LossAggregation,
  LossError,
  loadAdapter,
  loraTensorName,
  PeftError,
  Qwen3Trainer,
  readConfig,
  type SafetensorsDtype,
  type TensorSource,
  TRAIN_LOSS_KINDS,
  TrainInputError,
  type TrainLossKind,
  type TrainSequence,
  writeSafetensors,
} from "@temper/qwen3";
import { CliError, choiceFlag, numberFlag, outputFile, parseFlags } from "../cli.ts";

export const GRADS_USAGE =
  "temper model grads --model DIR --adapter DIR --batch FILE.jsonl --out FILE.safetensors [--loss grpo|sft] [--eps-low 0.2] [--eps-high 0.2] [--beta 0] [--agg token|sequence] [--temperature 1] [--micro-batch N] [--dtype float32|float64]";

const DTYPES = ["float32", "float64"] as const;

/** The fields of a batch line this command reads, and when each is needed (docs/cli.md and --help say the same). */
export const BATCH_FIELDS = {
  input_ids: "always",
  completion_mask: "always, entry 0 must be 0",
  advantage: "with --loss grpo",
  old_logprobs: "with --loss grpo",
  ref_logprobs: "when --beta > 0, on every line or none",
} as const;

export const GRADS_DETAILS = `batch lines (jsonl, one sequence each) hold ${Object.entries(BATCH_FIELDS)
  .map(([field, when]) => `${field}: ${when}`)
  .join("; ")}. Per-token fields have len(input_ids) entries; entry 0 is unused.`;

function numberList(value: unknown, where: string, field: string): number[] | undefined {
  if (value === undefined || value === null) return undefined;
  if (!Array.isArray(value) || value.some((v) => typeof v !== "number"))
    throw new CliError(`${where}: ${field} must be an array of numbers`);
  return value as number[];
}

/** Parses the JSONL batch: one sequence per non-empty line; errors name the file, line and field. */
export function parseBatchFile(path: string): { batch: TrainSequence[]; lines: number[] } {
  let text: string;
  try {
    text = readFileSync(path, "utf8");
  } catch {
    throw new CliError(`--batch: cannot read ${path}`);
  }
  const batch: TrainSequence[] = [];
  const lines: number[] = [];
  text.split("\n").forEach((line, i) => {
    if (line.trim() === "") return;
    const where = `${path} line ${i + 1}`;
    let row: Record<string, unknown>;
    try {
      row = JSON.parse(line);
    } catch {
      throw new CliError(`${where}: not valid JSON`);
    }
    if (typeof row !== "object" || row === null || Array.isArray(row))
      throw new CliError(`${where}: expected a JSON object`);
    const inputIds = numberList(row.input_ids, where, "input_ids");
    if (!inputIds) throw new CliError(`${where}: input_ids is required`);
    const completionMask = numberList(row.completion_mask, where, "completion_mask");
    if (!completionMask) throw new CliError(`${where}: completion_mask is required`);
    if (row.advantage !== undefined && typeof row.advantage !== "number")
      throw new CliError(`${where}: advantage must be a number`);
    batch.push({
      inputIds,
      completionMask,
      advantage: row.advantage as number | undefined,
      oldLogprobs: numberList(row.old_logprobs, where, "old_logprobs"),
      refLogprobs: numberList(row.ref_logprobs, where, "ref_logprobs"),
    });
    lines.push(i + 1);
  });
  if (batch.length === 0) throw new CliError(`--batch: ${path} holds no sequences`);
  return { batch, lines };
}

export async function runGrads(argv: string[]): Promise<void> {
  const { values } = parseFlags(argv, {
    model: { type: "string" },
    adapter: { type: "string" },
    batch: { type: "string" },
    out: { type: "string" },
    loss: { type: "string" },
    "eps-low": { type: "string" },
    "eps-high": { type: "string" },
    beta: { type: "string" },
    agg: { type: "string" },
    temperature: { type: "string" },
    "micro-batch": { type: "string" },
    dtype: { type: "string" },
  });
  for (const flag of ["model", "adapter", "batch", "out"] as const)
    if (!values[flag]) throw new CliError(`--${flag} is required`);
  const kind = choiceFlag<TrainLossKind>("loss", values.loss, TRAIN_LOSS_KINDS, "grpo");
  const aggregation = choiceFlag<LossAggregation>("agg", values.agg, LOSS_AGGREGATIONS, "token");
  const dtype = choiceFlag("dtype", values.dtype, DTYPES, "float32");
  const nonNegative = (flag: string, fallback: number) => {
    const v = numberFlag(flag, values[flag as keyof typeof values] as string | undefined, fallback)!;
    if (!(v >= 0))
      throw new CliError(`--${flag}: expected a number ≥ 0, got "${values[flag as keyof typeof values]}"`);
    return v;
  };
  const epsLow = nonNegative("eps-low", 0.2);
  if (epsLow > 1) throw new CliError(`--eps-low: expected a number in [0, 1], got "${values["eps-low"]}"`);
  const epsHigh = nonNegative("eps-high", 0.2);
  const beta = nonNegative("beta", 0);
  const temperature = numberFlag("temperature", values.temperature, 1)!;
  if (!(temperature > 0))
    throw new CliError(`--temperature: expected a positive number, got "${values.temperature}"`);
  const micro =
    values["micro-batch"] === undefined ? undefined : numberFlag("micro-batch", values["micro-batch"])!;
  if (micro !== undefined && (!Number.isSafeInteger(micro) || micro < 1))
    throw new CliError(`--micro-batch: expected an integer ≥ 1, got "${values["micro-batch"]}"`);
  if (kind === "sft" && values.beta !== undefined) throw new CliError("--beta applies to --loss grpo only");

  const { batch, lines } = parseBatchFile(values.batch!);
  outputFile("out", values.out!);
  try {
    const config = readConfig(values.model!);
    checkTrainBatch(
      batch,
      { vocabSize: config.vocabSize, grpo: kind === "grpo", needsRef: kind === "grpo" && beta > 0 },
      (b) => `${values.batch} line ${lines[b]}`,
    );
    const adapter = loadAdapter(values.adapter!, config, "float64");
    const loss = { kind, aggregation, ...(kind === "grpo" ? { epsLow, epsHigh, beta } : {}) };
    const trainer = await Qwen3Trainer.load(values.model!, {
      mode: "lora",
      lora: adapter.config,
      loss,
      dtype,
    });
    let result: Awaited<ReturnType<Qwen3Trainer["step"]>>;
    try {
      // right padding: logprobs[b, t] is about input_ids[t] of line b
      result = await trainer.step(batch, adapter, { microBatchSize: micro, temperature, padding: "right" });
    } finally {
      await trainer.release();
    }
    const st: SafetensorsDtype = dtype === "float64" ? "F64" : "F32";
    const T = Math.max(...batch.map((s) => s.inputIds.length));
    const logprobs = new Float64Array(batch.length * T);
    for (const [b, row] of result.logprobs.entries()) logprobs.set(row, b * T);
    const tensors: TensorSource[] = [
      { name: "loss", dtype: st, shape: [], chunks: () => [[result.loss]] },
      { name: "logprobs", dtype: st, shape: [batch.length, T], chunks: () => [logprobs] },
    ];
    for (const p of adapter.pairs)
      for (const which of ["A", "B"] as const) {
        const name = loraTensorName(p.layer, p.module, which);
        const grad = result.grads.get(name);
        if (!grad) throw new Error(`internal: no gradient for ${name}`);
        const shape =
          which === "A" ? [adapter.config.rank, p.inFeatures] : [p.outFeatures, adapter.config.rank];
        tensors.push({ name, dtype: st, shape, chunks: () => [grad] });
      }
    writeSafetensors(values.out!, tensors, {
      format: "pt",
      loss: kind,
      aggregation,
      ...(kind === "grpo" ? { eps_low: String(epsLow), eps_high: String(epsHigh), beta: String(beta) } : {}),
    });
    const diag = [
      `loss ${result.loss.toPrecision(8)}`,
      result.clipFraction !== undefined ? `clip fraction ${result.clipFraction.toFixed(4)}` : "",
      result.kl !== undefined ? `kl ${result.kl.toPrecision(6)}` : "",
      `entropy ${result.entropy.toFixed(4)}`,
    ].filter(Boolean);
    process.stdout.write(
      `wrote ${values.out}: ${diag.join(", ")}; ${batch.length} sequences, ${result.maskedTokens} completion tokens, ${tensors.length - 2} LoRA gradients (${dtype})\n`,
    );
  } catch (err) {
    if (
      err instanceof TrainInputError ||
      err instanceof PeftError ||
      err instanceof LoraError ||
      err instanceof LossError ||
      err instanceof ConfigError
    )
      throw new CliError(err.message);
    throw err;
  }
}
