// `temper model init-adapter`: a fresh LoRA adapter for a model directory, written in PEFT format
// (A Kaiming-uniform, B zero so the adapted model starts as the base model; `--init-b random` for checks).
import { existsSync } from "node:fs";
import { join, resolve } from "node:path";
import {
  ADAPTER_CONFIG_FILE,
  ADAPTER_WEIGHTS_FILE,
  ConfigError,
  initLoraAdapter,
  LORA_INIT_B,
  LoraError,
  type LoraInitB,
  loraScale,
  parseLoraTargets,
  readConfig,
  saveAdapter,
} from "@temper/qwen3";
import { CliError, numberFlag, outputDir, parseFlags } from "../cli.ts";

function required(value: string | undefined, flag: string): string {
  if (value === undefined || value === "") throw new CliError(`--${flag} is required`);
  return value;
}

function integer(flag: string, value: string | undefined, fallback: number | undefined, min: number): number {
  const n = numberFlag(flag, value, fallback);
  if (n === undefined) throw new CliError(`--${flag} is required`);
  if (!Number.isSafeInteger(n) || n < min)
    throw new CliError(`--${flag}: expected an integer ≥ ${min}, got "${value}"`);
  return n;
}

export async function runInitAdapter(argv: string[]): Promise<void> {
  const { values } = parseFlags(argv, {
    model: { type: "string" },
    rank: { type: "string" },
    alpha: { type: "string" },
    targets: { type: "string" },
    rslora: { type: "boolean" },
    seed: { type: "string" },
    "init-b": { type: "string" },
    out: { type: "string" },
  });
  const modelDir = required(values.model, "model");
  const out = required(values.out, "out");
  const rank = integer("rank", values.rank, undefined, 1);
  const alpha = numberFlag("alpha", required(values.alpha, "alpha"))!;
  if (!(alpha > 0)) throw new CliError(`--alpha: expected a positive number, got "${values.alpha}"`);
  const seed = integer("seed", values.seed, 0, 0);
  const initB = (values["init-b"] ?? "zero") as LoraInitB;
  if (!LORA_INIT_B.includes(initB))
    throw new CliError(`--init-b: expected one of ${LORA_INIT_B.join(", ")}, got "${values["init-b"]}"`);
  if (existsSync(join(out, ADAPTER_CONFIG_FILE)) || existsSync(join(out, ADAPTER_WEIGHTS_FILE)))
    throw new CliError(`--out: ${out} already holds an adapter`);

  let targetModules: ReturnType<typeof parseLoraTargets>;
  try {
    targetModules = parseLoraTargets(required(values.targets, "targets"));
  } catch (err) {
    if (err instanceof LoraError)
      throw new CliError(`--targets: ${err.message.replace(/^target modules: /, "")}`);
    throw err;
  }
  try {
    const model = readConfig(modelDir);
    const config = { rank, alpha, useRslora: values.rslora === true, targetModules };
    const adapter = initLoraAdapter(model, config, { seed, initB });
    outputDir("out", out);
    // The absolute path: PEFT reads a relative base_model_name_or_path as a Hub model id. B = 0 is
    // PEFT's own initialisation (init_lora_weights true); a random B is not.
    const files = saveAdapter(out, adapter, {
      baseModel: resolve(modelDir),
      initLoraWeights: initB === "zero",
    });
    const params = adapter.pairs.reduce((n, p) => n + p.a.length + p.b.length, 0);
    process.stdout.write(
      `wrote ${out}: LoRA r=${rank} alpha=${alpha}${config.useRslora ? " (rslora)" : ""} scale ${loraScale(config)} on ${targetModules.join(",")} × ${model.numHiddenLayers} layers, ${params} parameters, B ${initB}, seed ${seed}\n`,
    );
    for (const f of files) process.stdout.write(`  ${f}\n`);
  } catch (err) {
    if (err instanceof LoraError || err instanceof ConfigError) throw new CliError(err.message);
    throw err;
  }
}
