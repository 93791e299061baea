// Where a decode engine's weights live, and the private memory a process needs to open a model:
// what `temper model generate` and the services compare with the memory there is before they load.
// Kept apart from the engines so a service can check before it loads onnxruntime-node.
import { totalmem } from "node:os";
import { parameterCount, type Qwen3Config } from "./config.ts";

export interface DecodeWeightsOptions {
  /** Map the weights from the weight cache (default: when their float32 bytes reach MAP_MIN_BYTES). */
  mapped?: boolean;
  /**
   * Mapped only. true: map ORT's prepacked MatMul weights, saved once per graph and CPU; false: no
   * prepacking (session.disable_prepacking), the kernels read the mapped weights as they are. Default:
   * true while the float32 weights take at most a quarter of `machineBytes` (the packing pass holds
   * them all in its heap once).
   */
  prepack?: boolean;
  /** The machine's memory in bytes (default os.totalmem(); services pass their cgroup's). */
  machineBytes?: number;
  /** The weight cache's root (default weightCacheRoot()). */
  cacheRoot?: string;
  /** Told about the one-time work of a mapped open: hashing the model, converting, packing. */
  onProgress?: (event: WeightCacheProgress) => void;
}

/** One-time work of the weight cache: `done` of `total` (bytes; 0 of 1, then 1 of 1, for a stage without measure). */
export interface WeightCacheProgress {
  stage: "hash" | "convert" | "pack";
  done: number;
  total: number;
}

/** Below this the weights stay in each session's memory: mapping a small model saves nothing. */
export const MAP_MIN_BYTES = 256 * 2 ** 20;

/** Float32 bytes of the decode graph's weights: the model's, plus a tied head's transposed copy. */
export function decodeWeightBytes(config: Qwen3Config): number {
  const tiedHead = config.tieWordEmbeddings ? config.vocabSize * config.hiddenSize : 0;
  return 4 * (parameterCount(config) + tiedHead);
}

/**
 * Where a decode engine's weights go: a pure function of the model's size and the machine's memory,
 * so one machine always decodes with the same kernels (prepacked or not round differently).
 */
export function decodeWeightPlacement(
  config: Qwen3Config,
  options: DecodeWeightsOptions = {},
): { mapped: boolean; prepack: boolean; weightBytes: number } {
  const weightBytes = decodeWeightBytes(config);
  const mapped = options.mapped ?? weightBytes >= MAP_MIN_BYTES;
  const prepack = options.prepack ?? weightBytes <= (options.machineBytes ?? totalmem()) / 4;
  return { mapped, prepack, weightBytes };
}

/**
 * Private memory a process takes to open the model, an estimate. Weights in memory count twice (the
 * converted copy in JavaScript and ONNX Runtime's initializers, held at once); mapped weights count
 * only for the one-time packing pass (prepack), plus the largest tensor twice while the cache entry
 * is converted (read, then laid out).
 */
export function weightLoadBytes(
  config: Qwen3Config,
  dtype: "float32" | "float64",
  mapped?: { prepack: boolean },
): number {
  if (!mapped || dtype !== "float32") return 2 * parameterCount(config) * (dtype === "float64" ? 8 : 4);
  const largest = 4 * config.vocabSize * config.hiddenSize;
  return (mapped.prepack ? decodeWeightBytes(config) : 0) + 2 * largest;
}

/**
 * weightLoadBytes of the decode engine `engine` opens at `dtype` (only the fast engine at float32 maps
 * its weights; at float64 "fast" runs "kv").
 */
export function decodeLoadBytes(
  config: Qwen3Config,
  dtype: "float32" | "float64",
  engine: "fast" | "kv" | "reference",
  weights: DecodeWeightsOptions = {},
): number {
  if (engine === "reference") return weightLoadBytes(config, "float64");
  const placement = decodeWeightPlacement(config, weights);
  return weightLoadBytes(config, dtype, engine === "fast" && placement.mapped ? placement : undefined);
}
