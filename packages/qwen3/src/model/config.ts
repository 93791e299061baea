// Qwen3 config.json / generation_config.json: parsing, validation, presets and serialisation.
// Field names and meanings follow Hugging Face transformers' Qwen3Config.

/** Validated architecture of a Qwen3 causal LM. */
export interface Qwen3Config {
  vocabSize: number;
  hiddenSize: number;
  intermediateSize: number;
  numHiddenLayers: number;
  numAttentionHeads: number;
  numKeyValueHeads: number;
  /** Per-head width; may differ from hiddenSize / numAttentionHeads (Qwen3-4B: 128 vs 80). */
  headDim: number;
  rmsNormEps: number;
  ropeTheta: number;
  tieWordEmbeddings: boolean;
  maxPositionEmbeddings: number;
  torchDtype: TorchDtype;
  bosTokenId: number | null;
  /** config.json's eos_token_id (generation_config.json may list more). */
  eosTokenIds: number[];
  /** Fields not interpreted here, kept so that a loaded config can be written back unchanged. */
  extra: Record<string, unknown>;
}

export type TorchDtype = "bfloat16" | "float16" | "float32";

/** Decoding defaults of generation_config.json. */
export interface GenerationConfig {
  /** Every id that ends generation (a number or a list in the file). */
  eosTokenIds: number[];
  bosTokenId: number | null;
  padTokenId: number | null;
  doSample?: boolean;
  temperature?: number;
  topK?: number;
  topP?: number;
}

/** Invalid or unsupported config: the message is one line naming the file and field. */
export class ConfigError extends Error {
  override name = "ConfigError";
}

type Json = Record<string, unknown>;

function isObject(v: unknown): v is Json {
  return typeof v === "object" && v !== null && !Array.isArray(v);
}

function positiveInt(obj: Json, key: string, source: string): number {
  const v = obj[key];
  if (v === undefined || v === null) throw new ConfigError(`${source}: ${key} is missing`);
  if (typeof v !== "number" || !Number.isInteger(v) || v <= 0) {
    throw new ConfigError(`${source}: ${key} must be a positive integer, got ${JSON.stringify(v)}`);
  }
  return v;
}

function positiveNumber(v: unknown, key: string, source: string): number {
  if (v === undefined || v === null) throw new ConfigError(`${source}: ${key} is missing`);
  if (typeof v !== "number" || !Number.isFinite(v) || v <= 0) {
    throw new ConfigError(`${source}: ${key} must be a positive number, got ${JSON.stringify(v)}`);
  }
  return v;
}

function tokenId(v: unknown, key: string, source: string): number | null {
  if (v === undefined || v === null) return null;
  if (typeof v !== "number" || !Number.isInteger(v) || v < 0) {
    throw new ConfigError(`${source}: ${key} must be a non-negative integer, got ${JSON.stringify(v)}`);
  }
  return v;
}

/** eos_token_id may be a single id or a list of ids. */
function tokenIdList(v: unknown, key: string, source: string): number[] {
  if (v === undefined || v === null) return [];
  const list = Array.isArray(v) ? v : [v];
  return list.map((x, i) => tokenId(x, Array.isArray(v) ? `${key}[${i}]` : key, source) as number);
}

const DTYPES: Record<string, TorchDtype> = { bfloat16: "bfloat16", float16: "float16", float32: "float32" };

// Keys this module interprets; everything else in config.json is carried in `extra`.
const KNOWN_KEYS = new Set([
  "architectures",
  "model_type",
  "vocab_size",
  "hidden_size",
  "intermediate_size",
  "num_hidden_layers",
  "num_attention_heads",
  "num_key_value_heads",
  "head_dim",
  "rms_norm_eps",
  "rope_theta",
  "rope_scaling",
  "rope_parameters",
  "tie_word_embeddings",
  "max_position_embeddings",
  "torch_dtype",
  "dtype",
  "bos_token_id",
  "eos_token_id",
  "hidden_act",
  "attention_bias",
  "use_sliding_window",
]);

/** Parses and validates the object of a config.json; `source` names it in errors. */
export function parseConfig(json: unknown, source = "config.json"): Qwen3Config {
  if (!isObject(json)) throw new ConfigError(`${source}: expected a JSON object`);
  const modelType = json.model_type;
  if (modelType !== "qwen3") {
    throw new ConfigError(
      `${source}: model_type ${JSON.stringify(modelType ?? null)} is not supported (expected "qwen3")`,
    );
  }
  const arch = json.architectures;
  if (arch !== undefined && arch !== null) {
    if (!Array.isArray(arch) || arch.length !== 1 || arch[0] !== "Qwen3ForCausalLM") {
      throw new ConfigError(
        `${source}: architectures ${JSON.stringify(arch)} is not supported (expected ["Qwen3ForCausalLM"])`,
      );
    }
  }
  if (json.hidden_act !== undefined && json.hidden_act !== "silu") {
    throw new ConfigError(
      `${source}: hidden_act ${JSON.stringify(json.hidden_act)} is not supported (expected "silu")`,
    );
  }
  if (json.attention_bias !== undefined && json.attention_bias !== false) {
    throw new ConfigError(
      `${source}: attention_bias ${JSON.stringify(json.attention_bias)} is not supported`,
    );
  }
  if (json.use_sliding_window !== undefined && json.use_sliding_window !== false) {
    throw new ConfigError(
      `${source}: use_sliding_window ${JSON.stringify(json.use_sliding_window)} is not supported`,
    );
  }

  const hiddenSize = positiveInt(json, "hidden_size", source);
  const numAttentionHeads = positiveInt(json, "num_attention_heads", source);
  const numKeyValueHeads = positiveInt(json, "num_key_value_heads", source);
  if (numAttentionHeads % numKeyValueHeads !== 0) {
    throw new ConfigError(
      `${source}: num_attention_heads (${numAttentionHeads}) must be a multiple of num_key_value_heads (${numKeyValueHeads})`,
    );
  }
  const headDim = positiveInt(json, "head_dim", source);
  if (headDim % 2 !== 0)
    throw new ConfigError(`${source}: head_dim must be even for rotary embeddings, got ${headDim}`);

  // Newer transformers nest rope_theta in rope_parameters; only the default (unscaled) RoPE is supported.
  const ropeParams = isObject(json.rope_parameters) ? json.rope_parameters : undefined;
  const ropeScaling = isObject(json.rope_scaling) ? json.rope_scaling : undefined;
  for (const [key, params] of [
    ["rope_parameters", ropeParams],
    ["rope_scaling", ropeScaling],
  ] as const) {
    const type = params?.rope_type ?? params?.type;
    if (params && type !== undefined && type !== "default") {
      throw new ConfigError(
        `${source}: ${key}.rope_type ${JSON.stringify(type)} is not supported (expected "default")`,
      );
    }
  }
  const ropeTheta = positiveNumber(json.rope_theta ?? ropeParams?.rope_theta, "rope_theta", source);

  const tie = json.tie_word_embeddings;
  if (typeof tie !== "boolean") {
    throw new ConfigError(
      tie === undefined
        ? `${source}: tie_word_embeddings is missing`
        : `${source}: tie_word_embeddings must be true or false, got ${JSON.stringify(tie)}`,
    );
  }
  const dtypeKey = json.torch_dtype !== undefined ? "torch_dtype" : "dtype";
  const dtypeValue = json[dtypeKey] ?? "bfloat16";
  const torchDtype = DTYPES[dtypeValue as string];
  if (!torchDtype) {
    throw new ConfigError(
      `${source}: ${dtypeKey} ${JSON.stringify(dtypeValue)} is not supported (bfloat16, float16, float32)`,
    );
  }

  const extra: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(json)) if (!KNOWN_KEYS.has(k)) extra[k] = v;

  const config: Qwen3Config = {
    vocabSize: positiveInt(json, "vocab_size", source),
    hiddenSize,
    intermediateSize: positiveInt(json, "intermediate_size", source),
    numHiddenLayers: positiveInt(json, "num_hidden_layers", source),
    numAttentionHeads,
    numKeyValueHeads,
    headDim,
    rmsNormEps: positiveNumber(json.rms_norm_eps, "rms_norm_eps", source),
    ropeTheta,
    tieWordEmbeddings: tie,
    maxPositionEmbeddings: positiveInt(json, "max_position_embeddings", source),
    torchDtype,
    bosTokenId: tokenId(json.bos_token_id, "bos_token_id", source),
    eosTokenIds: tokenIdList(json.eos_token_id, "eos_token_id", source),
    extra,
  };
  for (const [key, ids] of [
    ["bos_token_id", config.bosTokenId === null ? [] : [config.bosTokenId]],
    ["eos_token_id", config.eosTokenIds],
  ] as const) {
    for (const id of ids) {
      if (id >= config.vocabSize)
        throw new ConfigError(`${source}: ${key} ${id} is outside vocab_size ${config.vocabSize}`);
    }
  }
  return config;
}

/** The config.json object of a config, in Hugging Face's key order and spelling. */
export function configToJson(config: Qwen3Config): Record<string, unknown> {
  const out: Record<string, unknown> = {
    architectures: ["Qwen3ForCausalLM"],
    attention_bias: false,
    attention_dropout: 0.0,
    bos_token_id: config.bosTokenId,
    eos_token_id: config.eosTokenIds.length === 1 ? config.eosTokenIds[0] : config.eosTokenIds,
    head_dim: config.headDim,
    hidden_act: "silu",
    hidden_size: config.hiddenSize,
    initializer_range: 0.02,
    intermediate_size: config.intermediateSize,
    max_position_embeddings: config.maxPositionEmbeddings,
    max_window_layers: config.numHiddenLayers,
    model_type: "qwen3",
    num_attention_heads: config.numAttentionHeads,
    num_hidden_layers: config.numHiddenLayers,
    num_key_value_heads: config.numKeyValueHeads,
    rms_norm_eps: config.rmsNormEps,
    rope_scaling: null,
    rope_theta: config.ropeTheta,
    sliding_window: null,
    tie_word_embeddings: config.tieWordEmbeddings,
    torch_dtype: config.torchDtype,
    use_cache: true,
    use_sliding_window: false,
    vocab_size: config.vocabSize,
  };
  for (const [k, v] of Object.entries(config.extra)) if (!(k in out)) out[k] = v;
  return out;
}

/** Parses generation_config.json; `source` names it in errors. */
export function parseGenerationConfig(json: unknown, source = "generation_config.json"): GenerationConfig {
  if (!isObject(json)) throw new ConfigError(`${source}: expected a JSON object`);
  const out: GenerationConfig = {
    eosTokenIds: tokenIdList(json.eos_token_id, "eos_token_id", source),
    bosTokenId: tokenId(json.bos_token_id, "bos_token_id", source),
    padTokenId: tokenId(json.pad_token_id, "pad_token_id", source),
  };
  if (json.do_sample !== undefined) {
    if (typeof json.do_sample !== "boolean")
      throw new ConfigError(`${source}: do_sample must be true or false`);
    out.doSample = json.do_sample;
  }
  if (json.temperature !== undefined)
    out.temperature = positiveNumber(json.temperature, "temperature", source);
  if (json.top_k !== undefined) {
    const k = json.top_k;
    if (typeof k !== "number" || !Number.isInteger(k) || k < 0) {
      throw new ConfigError(`${source}: top_k must be a non-negative integer, got ${JSON.stringify(k)}`);
    }
    out.topK = k;
  }
  if (json.top_p !== undefined) {
    const p = json.top_p;
    if (typeof p !== "number" || !(p > 0 && p <= 1)) {
      throw new ConfigError(`${source}: top_p must be in (0, 1], got ${JSON.stringify(p)}`);
    }
    out.topP = p;
  }
  return out;
}

/** The generation_config.json object, in Hugging Face's spelling. */
export function generationConfigToJson(gen: GenerationConfig): Record<string, unknown> {
  const out: Record<string, unknown> = { bos_token_id: gen.bosTokenId };
  if (gen.doSample !== undefined) out.do_sample = gen.doSample;
  out.eos_token_id = gen.eosTokenIds.length === 1 ? gen.eosTokenIds[0] : gen.eosTokenIds;
  out.pad_token_id = gen.padTokenId;
  if (gen.temperature !== undefined) out.temperature = gen.temperature;
  if (gen.topK !== undefined) out.top_k = gen.topK;
  if (gen.topP !== undefined) out.top_p = gen.topP;
  return out;
}

export type PresetName = "tiny" | "mini" | "small" | "qwen3-0.6b" | "qwen3-4b";
export const PRESET_NAMES: readonly PresetName[] = ["tiny", "mini", "small", "qwen3-0.6b", "qwen3-4b"];
/** The presets that are a published Qwen3 checkpoint's config (their vocab_size included). */
const REAL_PRESETS: ReadonlySet<PresetName> = new Set(["qwen3-0.6b", "qwen3-4b"]);

/** What a preset needs from the tokenizer it will be paired with. */
export interface TokenizerIds {
  /** Number of token ids the tokenizer knows; the embedding gets more rows (padded to a multiple of 64). */
  vocabSize: number;
  bosTokenId: number | null;
  eosTokenId: number;
}

type Shape = Omit<Qwen3Config, "vocabSize" | "bosTokenId" | "eosTokenIds" | "extra" | "torchDtype">;

const PRESETS: Record<PresetName, Shape> = {
  // CPU test size: grouped KV (2 query heads per KV head) and head_dim 32 ≠ 64 / 4, untied head.
  tiny: {
    hiddenSize: 64,
    intermediateSize: 128,
    numHiddenLayers: 2,
    numAttentionHeads: 4,
    numKeyValueHeads: 2,
    headDim: 32,
    rmsNormEps: 1e-6,
    ropeTheta: 1_000_000,
    tieWordEmbeddings: false,
    maxPositionEmbeddings: 2048,
  },
  // ~1.6M parameters with the byte tokenizer (~30.7M with qwen3's): the default experiment (SFT and RL in minutes on 2 cores).
  mini: {
    hiddenSize: 192,
    intermediateSize: 512,
    numHiddenLayers: 4,
    numAttentionHeads: 6,
    numKeyValueHeads: 2,
    headDim: 32,
    rmsNormEps: 1e-6,
    ropeTheta: 1_000_000,
    tieWordEmbeddings: true,
    maxPositionEmbeddings: 1024,
  },
  // ~12.7M parameters with the byte tokenizer (~70.8M with qwen3's 151,680-row embedding): benchmarks.
  small: {
    hiddenSize: 384,
    intermediateSize: 1024,
    numHiddenLayers: 8,
    numAttentionHeads: 6,
    numKeyValueHeads: 2,
    headDim: 64,
    rmsNormEps: 1e-6,
    ropeTheta: 1_000_000,
    tieWordEmbeddings: true,
    maxPositionEmbeddings: 4096,
  },
  // Qwen/Qwen3-0.6B's config.json: the size a CPU can run.
  "qwen3-0.6b": {
    hiddenSize: 1024,
    intermediateSize: 3072,
    numHiddenLayers: 28,
    numAttentionHeads: 16,
    numKeyValueHeads: 8,
    headDim: 128,
    rmsNormEps: 1e-6,
    ropeTheta: 1_000_000,
    tieWordEmbeddings: true,
    maxPositionEmbeddings: 40960,
  },
  // Qwen/Qwen3-4B's config.json.
  "qwen3-4b": {
    hiddenSize: 2560,
    intermediateSize: 9728,
    numHiddenLayers: 36,
    numAttentionHeads: 32,
    numKeyValueHeads: 8,
    headDim: 128,
    rmsNormEps: 1e-6,
    ropeTheta: 1_000_000,
    tieWordEmbeddings: true,
    maxPositionEmbeddings: 40960,
  },
};

/** A preset architecture paired with a tokenizer's ids. The real presets keep Qwen3's vocab_size (151936). */
export function presetConfig(
  name: PresetName,
  tokenizer: TokenizerIds,
  torchDtype: TorchDtype = "bfloat16",
): Qwen3Config {
  const shape = PRESETS[name];
  if (!shape) throw new ConfigError(`unknown config preset "${name}" (expected ${PRESET_NAMES.join(", ")})`);
  // Like Qwen3 (151669 tokens, 151936 rows), the embedding has more rows than the tokenizer has tokens.
  const padded = Math.ceil(tokenizer.vocabSize / 64) * 64;
  const vocabSize = REAL_PRESETS.has(name) ? Math.max(151936, padded) : padded;
  return {
    ...shape,
    vocabSize,
    torchDtype,
    bosTokenId: tokenizer.bosTokenId,
    eosTokenIds: [tokenizer.eosTokenId],
    extra: {},
  };
}

/** Number of weights of a model with this config (lm_head counted only when untied). */
export function parameterCount(config: Qwen3Config): number {
  const { hiddenSize: h, headDim: d, intermediateSize: m } = config;
  const q = config.numAttentionHeads * d;
  const kv = config.numKeyValueHeads * d;
  const perLayer = h * q + 2 * h * kv + q * h + 2 * d + 3 * h * m + 2 * h;
  const embed = config.vocabSize * h;
  return embed + config.numHiddenLayers * perLayer + h + (config.tieWordEmbeddings ? 0 : embed);
}
