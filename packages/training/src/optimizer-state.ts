// AdamW state on disk: one safetensors file with float64 tensors `exp_avg.<param>` and
// `exp_avg_sq.<param>` (torch's names for m and v) and the update count in the header metadata
// (`step`). Float64 keeps the round trip exact, so a resumed run continues bitwise.
import { SafetensorsFile, writeSafetensors } from "@temper/qwen3";
import { type AdamWState, OptimizerError } from "./adamw.ts";

export const OPTIMIZER_FILE = "optimizer.safetensors";

/** Writes `state` to `path` (1-D tensors; shapes are the parameters' business). */
export function saveAdamWState(path: string, state: AdamWState): void {
  const tensors = [...state.m.keys()].flatMap((name) => {
    const m = state.m.get(name)!;
    const v = state.v.get(name);
    if (!v) throw new OptimizerError(`optimizer state has m but no v for ${name}`);
    return [
      { name: `exp_avg.${name}`, dtype: "F64" as const, shape: [m.length], chunks: () => [m] },
      { name: `exp_avg_sq.${name}`, dtype: "F64" as const, shape: [v.length], chunks: () => [v] },
    ];
  });
  writeSafetensors(path, tensors, { format: "pt", step: String(state.step), optimizer: "adamw" });
}

/** Reads a state written by saveAdamWState. */
export function loadAdamWState(path: string): AdamWState {
  const file = SafetensorsFile.open(path);
  try {
    const step = Number(file.metadata.step);
    if (!Number.isSafeInteger(step) || step < 0)
      throw new OptimizerError(`${path}: metadata step ${JSON.stringify(file.metadata.step)} is not a count`);
    const m = new Map<string, Float64Array>();
    const v = new Map<string, Float64Array>();
    for (const key of file.tensors.keys()) {
      if (key.startsWith("exp_avg_sq.")) v.set(key.slice(11), file.read(key, "float64") as Float64Array);
      else if (key.startsWith("exp_avg.")) m.set(key.slice(8), file.read(key, "float64") as Float64Array);
      else throw new OptimizerError(`${path}: unexpected tensor ${key}`);
    }
    for (const name of m.keys())
      if (!v.has(name)) throw new OptimizerError(`${path}: exp_avg.${name} has no exp_avg_sq`);
    for (const name of v.keys())
      if (!m.has(name)) throw new OptimizerError(`${path}: exp_avg_sq.${name} has no exp_avg`);
    return { step, m, v };
  } finally {
    file.close();
  }
}
