// Where a graph's weights come from (WeightSource implementations): a checkpoint converted into
// in-memory external data, checkpoint tensors referenced in place by file region, or placeholder
// regions for building and inspecting a graph without any data.
import { relative } from "node:path";
import type { GraphBuilder, Value } from "@temper/onnx";
import type { Checkpoint } from "../model/checkpoint.ts";
import { parameterCount, type Qwen3Config } from "../model/config.ts";
import { MAP_MIN_BYTES } from "../model/load-memory.ts";
import { WeightsError } from "../model/weights.ts";
import type { WeightSource } from "./forward-graph.ts";
import { MappedWeights } from "./weight-cache.ts";

function memo(make: (name: string, shape: number[]) => Value): WeightSource {
  const made = new Map<string, Value>();
  return (name, shape) => {
    let v = made.get(name);
    if (!v) {
      v = make(name, shape);
      made.set(name, v);
    }
    return v;
  };
}

function checkShape(checkpoint: Checkpoint, name: string, shape: number[]): void {
  const info = checkpoint.info(name);
  if (info.shape.length !== shape.length || info.shape.some((s, i) => s !== shape[i]))
    throw new WeightsError(
      `${checkpoint.dir}: tensor ${name} has shape [${info.shape.join(", ")}], the graph needs [${shape.join(", ")}]`,
    );
}

/**
 * Every weight read from the checkpoint and widened to the graph's dtype (float32 or float64), held as
 * in-memory external data (bf16/f16 have no Node binding type, so they are always converted here).
 */
export function checkpointWeights(g: GraphBuilder, checkpoint: Checkpoint): WeightSource {
  const dtype = g.dtype;
  if (dtype !== "float32" && dtype !== "float64")
    throw new Error(`checkpointWeights: graph dtype ${dtype} is not float32 or float64`);
  return memo((name, shape) => {
    checkShape(checkpoint, name, shape);
    return g.weight(name, dtype, shape, checkpoint.read(name, dtype));
  });
}

/**
 * float32 graphs: F32 tensors referenced inside their safetensors files (nothing read), the rest
 * converted into memory. The model must then be saved in `modelDir` (shard paths are relative to it)
 * and opened by path.
 */
export function fileRegionWeights(g: GraphBuilder, checkpoint: Checkpoint, modelDir: string): WeightSource {
  if (g.dtype !== "float32") throw new Error(`fileRegionWeights: graph dtype ${g.dtype} is not float32`);
  const converted = checkpointWeights(g, checkpoint);
  return memo((name, shape) => {
    checkShape(checkpoint, name, shape);
    const info = checkpoint.info(name);
    if (info.dtype !== "F32") return converted(name, shape);
    const location = relative(modelDir, info.path);
    return g.weightFromFile(name, "float32", shape, { location, offset: info.offset });
  });
}

/**
 * Consecutive regions of one (possibly nonexistent) file in the graph's dtype: the graph builds and
 * its shapes can be checked with no weight data at all (e.g. a Qwen3-4B-shaped config in a test).
 */
export function placeholderWeights(g: GraphBuilder, location = "weights.bin"): WeightSource {
  let offset = 0;
  const bytes = g.dtype === "float64" ? 8 : g.dtype === "float16" ? 2 : 4;
  return memo((name, shape) => {
    const v = g.weightFromFile(name, g.dtype, shape, { location, offset });
    offset += shape.reduce((a, b) => a * b, 1) * bytes;
    return v;
  });
}

/** The name and version of the checkpoint's own layout, as float32, in the mapped weight cache. */
export const CHECKPOINT_WEIGHT_LAYOUT = "checkpoint-f32-v1";

/**
 * A float32 graph's weights from the mapped weight cache, in the checkpoint's own layout (converted
 * on the first open): what the trainer and the logprobs engine build on above MAP_MIN_BYTES. Their
 * graphs transpose each weight, which ORT folds (and prepacks) into private copies, so a process
 * still holds the weights once; the converted copy in JavaScript and ORT's initializers are gone.
 * Call `publish()` on the returned cache once the graph is declared, then save the graph in it.
 */
export async function mappedCheckpointWeights(
  g: GraphBuilder,
  checkpoint: Checkpoint,
  cacheRoot?: string,
): Promise<{ source: WeightSource; cache: MappedWeights }> {
  if (g.dtype !== "float32")
    throw new Error(`mappedCheckpointWeights: graph dtype ${g.dtype} is not float32`);
  const cache = await MappedWeights.open(checkpoint.dir, CHECKPOINT_WEIGHT_LAYOUT, cacheRoot);
  const source = memo((name, shape) => {
    checkShape(checkpoint, name, shape);
    const region = cache.region(name, shape, () => checkpoint.read(name, "float32") as Float32Array);
    return g.weightFromFile(name, "float32", shape, region);
  });
  return { source, cache };
}

/** Whether a float32 graph over this model maps its checkpoint's weights (mapped: the caller's choice). */
export function mapsCheckpointWeights(config: Qwen3Config, dtype: string, mapped?: boolean): boolean {
  return dtype === "float32" && (mapped ?? 4 * parameterCount(config) >= MAP_MIN_BYTES);
}
