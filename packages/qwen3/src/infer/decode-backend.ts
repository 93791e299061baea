// The one place a decode backend is chosen and opened. The rollout's worker, `temper model generate`
// and SFT's evaluation all call openDecodeBackend, so one dtype and engine decode the same way
// wherever they run, and the defaults (float32, "fast") are the rollout's.
//
//   fast       Qwen3DecodeEngine + DecodeCacheBackend: float32, the cache read in place, each distinct
//              prompt prefilled once. At float64 it runs "kv": its fused kernels have no float64 form.
//   kv         Qwen3KvEngine + KvCacheBackend: float32 or float64, the exact float64 path.
//   reference  ReferenceBackend: the float64 plain-loop oracle, the whole sequence recomputed each
//              step (an adapter merged into the weights); dtype does not apply. For checks only.
import type { ExecutionProvider } from "@temper/onnx";
import type { LoraAdapter, LoraConfig } from "../adapter/lora.ts";
import { EngineInputError } from "../graph/engine-batch.ts";
import type { Checkpoint } from "../model/checkpoint.ts";
import type { Qwen3Config } from "../model/config.ts";
import type { DecodeWeightsOptions } from "../model/load-memory.ts";
import { loadWeights } from "../model/weights.ts";
import { ReferenceBackend } from "../reference/generate-reference.ts";
import type { EngineDtype } from "./engine.ts";
import { Qwen3DecodeEngine } from "./engine-decode.ts";
import { Qwen3KvEngine } from "./engine-kv.ts";
import type { DecodeBackend } from "./generate.ts";
import { DecodeCacheBackend } from "./generate-decode.ts";
import { KvCacheBackend } from "./generate-kv.ts";

export type DecodeEngineKind = "fast" | "kv" | "reference";
export const DECODE_ENGINES: readonly DecodeEngineKind[] = ["fast", "kv", "reference"];
export const DECODE_DTYPES: readonly EngineDtype[] = ["float32", "float64"];

/** The rollout's defaults, and so everyone's. */
export const DEFAULT_DECODE_DTYPE: EngineDtype = "float32";
export const DEFAULT_DECODE_ENGINE: DecodeEngineKind = "fast";

/** The engine that runs for `engine` at `dtype` ("fast" at float64 runs "kv"). */
export function resolveDecodeEngine(dtype: EngineDtype, engine: DecodeEngineKind): DecodeEngineKind {
  return engine === "fast" && dtype !== "float32" ? "kv" : engine;
}

export interface DecodeBackendOptions {
  /** Compute precision of the ONNX engines (default float32). */
  dtype?: EngineDtype;
  /** Default "fast". */
  engine?: DecodeEngineKind;
  /** Default cpu. */
  provider?: ExecutionProvider;
  /** Intra-op threads (ORT's choice when omitted). */
  threads?: number;
  /**
   * The LoRA layout the graph takes as inputs; setAdapter then swaps adapters of that layout without
   * a new session. Omitted: a base-model graph (setAdapter(null) only). The reference takes any.
   */
  lora?: LoraConfig;
  /** Where the fast engine's weights live (mapped from the weight cache or in memory). */
  weights?: DecodeWeightsOptions;
}

/** An open decode backend: generate() runs on it; release() frees its session. */
export interface OpenDecodeBackend extends DecodeBackend {
  /** The engine that runs (after resolveDecodeEngine). */
  readonly engine: DecodeEngineKind;
  /** The precision it computes in (float64 for the reference). */
  readonly dtype: EngineDtype;
  /** The adapter of later sessions (null: the base model). */
  setAdapter(adapter: LoraAdapter | null): void;
  release(): Promise<void>;
}

/**
 * Opens the backend `options` name on an open model (its checkpoint is read here and may be closed
 * once this resolves).
 */
export async function openDecodeBackend(
  model: { config: Qwen3Config; checkpoint: Checkpoint },
  options: DecodeBackendOptions = {},
): Promise<OpenDecodeBackend> {
  const dtype = options.dtype ?? DEFAULT_DECODE_DTYPE;
  if (!DECODE_DTYPES.includes(dtype))
    throw new EngineInputError(`dtype must be ${DECODE_DTYPES.join(" or ")}, got "${dtype}"`);
  const requested = options.engine ?? DEFAULT_DECODE_ENGINE;
  if (!DECODE_ENGINES.includes(requested))
    throw new EngineInputError(`engine must be one of ${DECODE_ENGINES.join(", ")}, got "${requested}"`);
  const engine = resolveDecodeEngine(dtype, requested);
  const { config, checkpoint } = model;
  const { provider, threads, lora, weights } = options;

  let backend: DecodeBackend & { setAdapter(adapter: LoraAdapter | null): void };
  let release: () => Promise<void>;
  if (engine === "reference") {
    backend = new ReferenceBackend(config, loadWeights(config, checkpoint, "float64"));
    release = async () => {};
  } else if (engine === "fast") {
    const e = await Qwen3DecodeEngine.fromCheckpoint(config, checkpoint, {
      provider,
      threads,
      lora,
      weights,
    });
    backend = new DecodeCacheBackend(e);
    release = () => e.release();
  } else {
    const e = await Qwen3KvEngine.fromCheckpoint(config, checkpoint, { dtype, provider, threads, lora });
    backend = new KvCacheBackend(e);
    release = () => e.release();
  }
  const opened: OpenDecodeBackend = {
    engine,
    dtype: engine === "reference" ? "float64" : dtype,
    vocabSize: backend.vocabSize,
    maxPositions: backend.maxPositions,
    prefill: (prompts) => backend.prefill(prompts),
    setAdapter: (adapter) => backend.setAdapter(adapter),
    release,
  };
  return opened;
}
