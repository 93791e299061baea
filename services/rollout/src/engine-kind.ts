// Which engine a rollout worker runs (shared by the main thread and the worker, which must not
// import each other's module: the worker's serves on load).
import type { EngineDtype } from "@temper/qwen3";

/** "fast": Qwen3DecodeEngine (float32 only); "kv": Qwen3KvEngine, the exact float64 path. */
export type RolloutEngineKind = "fast" | "kv";

/** The engine a worker with this configuration runs: float64 always runs "kv". */
export function engineKind(dtype: EngineDtype, engine: RolloutEngineKind): RolloutEngineKind {
  return dtype === "float32" && engine === "fast" ? "fast" : "kv";
}
