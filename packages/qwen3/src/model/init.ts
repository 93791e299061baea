// The model maker: a randomly initialised Qwen3 in exactly the Hugging Face layout. Initialisation
// follows transformers' Qwen3 _init_weights: normal(0, 0.02) for linear and embedding weights, ones
// for RMSNorm. Every tensor draws from its own stream (seed, tensor name), so the bytes depend only
// on the seed and config, and tensors stream to disk one chunk at a time (Qwen3-4B is 8 GB in bf16).
import { existsSync, mkdirSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { writeCheckpoint } from "./checkpoint.ts";
import {
  ConfigError,
  configToJson,
  type GenerationConfig,
  generationConfigToJson,
  type Qwen3Config,
  type TorchDtype,
} from "./config.ts";
import { CONFIG_FILE, GENERATION_CONFIG_FILE } from "./model-dir.ts";
import { hashString, Rng } from "./prng.ts";
import type { SafetensorsDtype, TensorSource } from "./safetensors.ts";
import { type TokenizerKind, tokenizerIds, writeTokenizerFiles } from "./tokenizer.ts";
import { expectedTensors } from "./weights.ts";

export type WeightDtype = "bf16" | "f16" | "f32";
export const WEIGHT_DTYPES: readonly WeightDtype[] = ["bf16", "f16", "f32"];

const STORAGE: Record<WeightDtype, { safetensors: SafetensorsDtype; torch: TorchDtype }> = {
  bf16: { safetensors: "BF16", torch: "bfloat16" },
  f16: { safetensors: "F16", torch: "float16" },
  f32: { safetensors: "F32", torch: "float32" },
};

export const INIT_STD = 0.02;
const CHUNK = 1 << 20;

export interface InitOptions {
  config: Qwen3Config;
  tokenizer: TokenizerKind;
  out: string;
  seed?: number;
  dtype?: WeightDtype;
  shards?: number;
  /** Standard deviation of the random weights (default INIT_STD). Larger values give a model
   * whose logits are far from uniform, e.g. a policy that tests can move visibly. */
  std?: number;
  /** Called as the weights stream to disk: parameters written so far, of `total` (every ~1M values). */
  onProgress?: (written: number, total: number) => void;
}

/** The same tensors, reporting each chunk once the writer has taken it (asked for the next one). */
function withProgress(
  tensors: TensorSource[],
  onProgress: (written: number, total: number) => void,
): TensorSource[] {
  const total = tensors.reduce((n, t) => n + t.shape.reduce((a, b) => a * b, 1), 0);
  let written = 0;
  onProgress(0, total);
  return tensors.map((t) => ({
    ...t,
    chunks: function* () {
      for (const chunk of t.chunks()) {
        yield chunk;
        written += chunk.length;
        onProgress(written, total);
      }
    },
  }));
}

/** The random tensors of a config, each a lazily generated stream. */
export function randomTensors(
  config: Qwen3Config,
  seed: number,
  dtype: WeightDtype,
  std = INIT_STD,
): TensorSource[] {
  return expectedTensors(config).map((t) => ({
    name: t.name,
    dtype: STORAGE[dtype].safetensors,
    shape: t.shape,
    chunks: function* () {
      const total = t.shape.reduce((a, b) => a * b, 1);
      if (t.kind === "norm") {
        yield new Float64Array(total).fill(1);
        return;
      }
      const rng = new Rng(seed, hashString(t.name));
      for (let start = 0; start < total; start += CHUNK) {
        const chunk = new Float64Array(Math.min(CHUNK, total - start));
        for (let i = 0; i < chunk.length; i++) chunk[i] = std * rng.normal();
        yield chunk;
      }
    },
  }));
}

/** Writes a random model directory; returns the file names written. */
export function initModel(options: InitOptions): string[] {
  const { tokenizer, out } = options;
  const seed = options.seed ?? 0;
  const dtype = options.dtype ?? "bf16";
  if (!STORAGE[dtype])
    throw new ConfigError(`unknown dtype "${dtype}" (expected ${WEIGHT_DTYPES.join(", ")})`);
  if (!Number.isSafeInteger(seed)) throw new ConfigError(`seed must be an integer, got ${seed}`);
  const std = options.std ?? INIT_STD;
  if (!(std > 0 && Number.isFinite(std))) throw new ConfigError(`std must be a positive number, got ${std}`);
  const ids = tokenizerIds(tokenizer);
  const config: Qwen3Config = { ...options.config, torchDtype: STORAGE[dtype].torch };
  if (config.vocabSize < ids.vocabSize) {
    throw new ConfigError(
      `vocab_size ${config.vocabSize} is smaller than the ${tokenizer} tokenizer's ${ids.vocabSize} tokens`,
    );
  }
  if (existsSync(join(out, CONFIG_FILE)))
    throw new ConfigError(`${out} already holds a model (${CONFIG_FILE})`);
  mkdirSync(out, { recursive: true });

  // Qwen3's generation_config.json: stop on <|im_end|> or <|endoftext|>, its sampling defaults.
  const generation: GenerationConfig = {
    bosTokenId: ids.bosTokenId,
    doSample: true,
    eosTokenIds: [ids.eosTokenId, ids.padTokenId],
    padTokenId: ids.padTokenId,
    temperature: 0.6,
    topK: 20,
    topP: 0.95,
  };
  writeFileSync(join(out, CONFIG_FILE), `${JSON.stringify(configToJson(config), null, 2)}\n`);
  writeFileSync(
    join(out, GENERATION_CONFIG_FILE),
    `${JSON.stringify(generationConfigToJson(generation), null, 2)}\n`,
  );
  writeTokenizerFiles(out, tokenizer);
  const tensors = randomTensors(config, seed, dtype, std);
  const weightFiles = writeCheckpoint(
    out,
    options.onProgress ? withProgress(tensors, options.onProgress) : tensors,
    options.shards ?? 1,
  );
  return [CONFIG_FILE, GENERATION_CONFIG_FILE, "tokenizer.json", "tokenizer_config.json", ...weightFiles];
}
