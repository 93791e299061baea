// LoRA adapters in Hugging Face PEFT's on-disk format: adapter_config.json (a LoraConfig) and
// adapter_model.safetensors holding float32 `base_model.model.model.layers.{i}.{block}.{module}
// .lora_{A,B}.weight` tensors, so `PeftModel.from_pretrained` loads what the learner saves.
import { existsSync, mkdirSync, readFileSync, statSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import type { Qwen3Config } from "../model/config.ts";
import {
  type FloatArray,
  type Precision,
  SafetensorsError,
  SafetensorsFile,
  writeSafetensors,
} from "../model/safetensors.ts";
import {
  checkLoraAdapter,
  type LoraAdapter,
  type LoraConfig,
  LoraError,
  loraLayout,
  loraTensorName,
  validateLoraConfig,
} from "./lora.ts";

export const ADAPTER_CONFIG_FILE = "adapter_config.json";
export const ADAPTER_WEIGHTS_FILE = "adapter_model.safetensors";

/** A PEFT adapter directory that cannot be used: one line naming the file and field or tensor. */
export class PeftError extends Error {
  override name = "PeftError";
}

export interface PeftAdapter<A extends FloatArray = FloatArray> extends LoraAdapter<A> {
  /** adapter_config.json's base_model_name_or_path (null when absent). */
  baseModel: string | null;
}

/**
 * adapter_config.json's object: LoraConfig's fields for a plain LoRA on a causal LM (no dropout,
 * biases untouched, nn.Linear layout), in PEFT's key order (sorted). `initLoraWeights` says whether
 * the weights are PEFT's default initialisation (B = 0: the adapted model is the base model); false
 * for any other start (a random B).
 */
export function adapterConfigJson(
  config: LoraConfig,
  baseModel: string | null,
  initLoraWeights = true,
): Record<string, unknown> {
  const cfg = validateLoraConfig(config);
  return {
    alpha_pattern: {},
    auto_mapping: null,
    base_model_name_or_path: baseModel,
    bias: "none",
    fan_in_fan_out: false,
    inference_mode: true,
    init_lora_weights: initLoraWeights,
    layers_pattern: null,
    layers_to_transform: null,
    lora_alpha: cfg.alpha,
    lora_dropout: 0,
    modules_to_save: null,
    peft_type: "LORA",
    r: cfg.rank,
    rank_pattern: {},
    revision: null,
    target_modules: [...cfg.targetModules],
    task_type: "CAUSAL_LM",
    use_dora: false,
    use_rslora: cfg.useRslora,
  };
}

/**
 * Writes adapter_config.json and adapter_model.safetensors into `dir`; returns their paths. Weights
 * are F32 (PEFT's usual) unless `dtype` is F64, which a float64 learner uses so that its checkpoints
 * resume bitwise. `baseModel` is written as given: PEFT looks a relative name up on the Hub, so a local
 * model is best given as an absolute path.
 */
export function saveAdapter(
  dir: string,
  adapter: LoraAdapter,
  options: { baseModel: string | null; dtype?: "F32" | "F64"; initLoraWeights?: boolean },
): string[] {
  const dtype = options.dtype ?? "F32";
  checkLoraAdapter(adapter);
  const r = adapter.config.rank;
  mkdirSync(dir, { recursive: true });
  const configPath = join(dir, ADAPTER_CONFIG_FILE);
  const weightsPath = join(dir, ADAPTER_WEIGHTS_FILE);
  const tensors = adapter.pairs.flatMap((p) => [
    {
      name: loraTensorName(p.layer, p.module, "A"),
      dtype,
      shape: [r, p.inFeatures],
      chunks: () => [p.a],
    },
    {
      name: loraTensorName(p.layer, p.module, "B"),
      dtype,
      shape: [p.outFeatures, r],
      chunks: () => [p.b],
    },
  ]);
  writeSafetensors(weightsPath, tensors, { format: "pt" });
  writeFileSync(
    configPath,
    `${JSON.stringify(adapterConfigJson(adapter.config, options.baseModel, options.initLoraWeights), null, 2)}\n`,
  );
  return [configPath, weightsPath];
}

type Json = Record<string, unknown>;

/** Parses adapter_config.json's object into a LoraConfig, rejecting LoRA variants this code does not run. */
export function parseAdapterConfig(
  json: unknown,
  source = ADAPTER_CONFIG_FILE,
): { config: LoraConfig; baseModel: string | null } {
  if (typeof json !== "object" || json === null || Array.isArray(json))
    throw new PeftError(`${source}: expected a JSON object`);
  const o = json as Json;
  const fail = (key: string, want: string): never => {
    throw new PeftError(
      `${source}: ${key} ${JSON.stringify(o[key] ?? null)} is not supported (expected ${want})`,
    );
  };
  if (o.peft_type !== "LORA") fail("peft_type", '"LORA"');
  if (typeof o.r !== "number" || !Number.isSafeInteger(o.r) || o.r < 1) fail("r", "a positive integer");
  if (typeof o.lora_alpha !== "number" || !(o.lora_alpha > 0)) fail("lora_alpha", "a positive number");
  if (!Array.isArray(o.target_modules) || !o.target_modules.every((m) => typeof m === "string"))
    fail("target_modules", "a list of module names");
  if (o.use_rslora !== undefined && typeof o.use_rslora !== "boolean") fail("use_rslora", "a boolean");
  // Variants that change the computation or the tensor set: refuse rather than silently ignore.
  if (o.fan_in_fan_out !== undefined && o.fan_in_fan_out !== false) fail("fan_in_fan_out", "false");
  if (o.bias !== undefined && o.bias !== "none") fail("bias", '"none"');
  if (o.use_dora !== undefined && o.use_dora !== false && o.use_dora !== null) fail("use_dora", "false");
  if (o.layers_to_transform !== undefined && o.layers_to_transform !== null)
    fail("layers_to_transform", "null");
  for (const key of ["rank_pattern", "alpha_pattern"])
    if (o[key] !== undefined && o[key] !== null && Object.keys(o[key] as Json).length > 0) fail(key, "{}");
  if (
    o.modules_to_save !== undefined &&
    o.modules_to_save !== null &&
    (o.modules_to_save as unknown[]).length > 0
  )
    fail("modules_to_save", "null");
  let config: LoraConfig;
  try {
    config = validateLoraConfig({
      rank: o.r as number,
      alpha: o.lora_alpha as number,
      useRslora: (o.use_rslora as boolean | undefined) ?? false,
      targetModules: o.target_modules as LoraConfig["targetModules"],
    });
  } catch (err) {
    if (err instanceof LoraError) throw new PeftError(`${source}: ${err.message}`);
    throw err;
  }
  const base = o.base_model_name_or_path;
  return { config, baseModel: typeof base === "string" ? base : null };
}

/**
 * Loads an adapter directory for `model`: the config is parsed, and the safetensors file must hold
 * exactly the A/B tensors the config implies for every layer, with shapes from the model config
 * (any float dtype on disk; widened to `precision`).
 */
export function loadAdapter(dir: string, model: Qwen3Config, precision: "float64"): PeftAdapter<Float64Array>;
export function loadAdapter(
  dir: string,
  model: Qwen3Config,
  precision?: "float32",
): PeftAdapter<Float32Array>;
export function loadAdapter(dir: string, model: Qwen3Config, precision: Precision = "float32"): PeftAdapter {
  if (!existsSync(dir) || !statSync(dir).isDirectory()) throw new PeftError(`${dir}: not a directory`);
  const configPath = join(dir, ADAPTER_CONFIG_FILE);
  const weightsPath = join(dir, ADAPTER_WEIGHTS_FILE);
  if (!existsSync(configPath)) throw new PeftError(`${dir}: missing ${ADAPTER_CONFIG_FILE}`);
  if (!existsSync(weightsPath)) throw new PeftError(`${dir}: missing ${ADAPTER_WEIGHTS_FILE}`);
  let json: unknown;
  try {
    json = JSON.parse(readFileSync(configPath, "utf8"));
  } catch {
    throw new PeftError(`${configPath}: not valid JSON`);
  }
  const { config, baseModel } = parseAdapterConfig(json, configPath);
  let file: SafetensorsFile;
  try {
    file = SafetensorsFile.open(weightsPath);
  } catch (err) {
    if (err instanceof SafetensorsError) throw new PeftError(err.message);
    throw err;
  }
  try {
    const layout = loraLayout(model, config);
    const expected = new Set<string>();
    const read = (name: string, shape: number[]): FloatArray => {
      expected.add(name);
      const info = file.tensors.get(name);
      if (!info) throw new PeftError(`${weightsPath}: missing tensor ${name}`);
      if (info.dtype === "I64") throw new PeftError(`${weightsPath}: tensor ${name} has integer dtype I64`);
      if (info.shape.length !== shape.length || info.shape.some((d, i) => d !== shape[i]))
        throw new PeftError(
          `${weightsPath}: tensor ${name} has shape [${info.shape.join(", ")}], the model and r=${config.rank} imply [${shape.join(", ")}]`,
        );
      return file.read(name, precision);
    };
    const pairs = layout.map((p) => ({
      ...p,
      a: read(loraTensorName(p.layer, p.module, "A"), [config.rank, p.inFeatures]),
      b: read(loraTensorName(p.layer, p.module, "B"), [p.outFeatures, config.rank]),
    }));
    for (const name of file.tensors.keys())
      if (!expected.has(name))
        throw new PeftError(
          `${weightsPath}: unexpected tensor ${name} (target_modules ${config.targetModules.join(",")}, ${model.numHiddenLayers} layers)`,
        );
    return { config, baseModel, pairs };
  } finally {
    file.close();
  }
}
