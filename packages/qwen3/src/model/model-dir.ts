// Opening a Hugging Face-layout model directory: config.json, generation_config.json and the
// safetensors checkpoint (validated against the config). The tokenizer loads separately.
import { existsSync, readFileSync, statSync } from "node:fs";
import { join } from "node:path";
import { Checkpoint } from "./checkpoint.ts";
import {
  ConfigError,
  type GenerationConfig,
  parseConfig,
  parseGenerationConfig,
  type Qwen3Config,
} from "./config.ts";
import { validateCheckpoint } from "./weights.ts";

export const CONFIG_FILE = "config.json";
export const GENERATION_CONFIG_FILE = "generation_config.json";

export interface ModelDir {
  dir: string;
  config: Qwen3Config;
  generationConfig: GenerationConfig;
  /** Every id that ends generation: generation_config.json's list, else config.json's. */
  eosTokenIds: number[];
  checkpoint: Checkpoint;
}

function readJson(path: string): unknown {
  try {
    return JSON.parse(readFileSync(path, "utf8"));
  } catch {
    throw new ConfigError(`${path}: not valid JSON`);
  }
}

/** Reads config.json of a model directory. */
export function readConfig(dir: string): Qwen3Config {
  if (!existsSync(dir) || !statSync(dir).isDirectory()) throw new ConfigError(`${dir}: not a directory`);
  const path = join(dir, CONFIG_FILE);
  if (!existsSync(path)) throw new ConfigError(`${dir}: missing ${CONFIG_FILE}`);
  return parseConfig(readJson(path), path);
}

/** Opens a model directory and checks every tensor's name and shape. Call checkpoint.close() when done. */
export function openModelDir(dir: string): ModelDir {
  const config = readConfig(dir);
  const genPath = join(dir, GENERATION_CONFIG_FILE);
  // A checkpoint without generation_config.json still works: EOS then comes from config.json.
  const generationConfig = existsSync(genPath)
    ? parseGenerationConfig(readJson(genPath), genPath)
    : { eosTokenIds: [], bosTokenId: config.bosTokenId, padTokenId: null };
  for (const id of generationConfig.eosTokenIds) {
    if (id >= config.vocabSize)
      throw new ConfigError(`${genPath}: eos_token_id ${id} is outside vocab_size ${config.vocabSize}`);
  }
  const checkpoint = Checkpoint.open(dir);
  try {
    validateCheckpoint(config, checkpoint);
  } catch (err) {
    checkpoint.close();
    throw err;
  }
  const eosTokenIds =
    generationConfig.eosTokenIds.length > 0 ? generationConfig.eosTokenIds : config.eosTokenIds;
  return { dir, config, generationConfig, eosTokenIds, checkpoint };
}

/** Builds something from a model directory's config and checkpoint; the checkpoint is closed after. */
export async function fromModelDir<T>(
  dir: string,
  build: (config: Qwen3Config, checkpoint: Checkpoint) => Promise<T>,
): Promise<T> {
  const model = openModelDir(dir);
  try {
    return await build(model.config, model.checkpoint);
  } finally {
    model.checkpoint.close();
  }
}
