// Writing trained weights as a Hugging Face model directory laid out like the model they came from:
// the same safetensors files (single or sharded, same index), the same tensor names, each tensor
// in its source dtype (or one chosen dtype), and every other file of the source directory (config,
// generation config, tokenizer files) copied. The result loads wherever the source did.
import { copyFileSync, readdirSync, readFileSync, statSync, writeFileSync } from "node:fs";
import { basename, join } from "node:path";
import {
  Checkpoint,
  INDEX_FILE,
  type SafetensorsDtype,
  type TensorSource,
  writeSafetensors,
} from "@temper/qwen3";

/** "same": every tensor keeps its source dtype; otherwise every float tensor is stored in this one. */
export type SaveDtype = "same" | "bf16" | "f16" | "f32";
export const SAVE_DTYPES: readonly SaveDtype[] = ["same", "bf16", "f16", "f32"];

const STORED: Record<Exclude<SaveDtype, "same">, { st: SafetensorsDtype; torch: string }> = {
  bf16: { st: "BF16", torch: "bfloat16" },
  f16: { st: "F16", torch: "float16" },
  f32: { st: "F32", torch: "float32" },
};

const CHUNK = 1 << 20;

function* chunksOf(values: ArrayLike<number> & { subarray?: unknown }): Generator<ArrayLike<number>> {
  const a = values as Float32Array | Float64Array;
  for (let i = 0; i < a.length; i += CHUNK) yield a.subarray(i, Math.min(a.length, i + CHUNK));
  if (a.length === 0) yield a;
}

/**
 * Writes `params` (by Hugging Face tensor name) into the existing empty directory `out`, laid out
 * like `srcDir`; tensors of the source without a value in `params` are copied. Returns the files.
 */
export function writeTrainedModel(
  srcDir: string,
  out: string,
  params: ReadonlyMap<string, Float32Array | Float64Array>,
  saveDtype: SaveDtype = "same",
): string[] {
  const checkpoint = Checkpoint.open(srcDir);
  const written: string[] = [];
  let dataBytes = 0;
  try {
    for (const [name] of params)
      if (!checkpoint.has(name)) throw new Error(`${srcDir}: the model has no tensor ${name} to save`);
    for (const file of checkpoint.files) {
      const fileName = basename(file.path);
      const tensors: TensorSource[] = [...file.tensors.values()].map((info) => {
        const isFloat = info.dtype !== "I64";
        const dtype = saveDtype === "same" || !isFloat ? info.dtype : STORED[saveDtype].st;
        const value = params.get(info.name);
        return {
          name: info.name,
          dtype,
          shape: info.shape,
          chunks: () => (value ? chunksOf(value) : file.readChunks(info.name, "float64")),
        };
      });
      dataBytes += writeSafetensors(join(out, fileName), tensors, {
        ...file.metadata,
        format: file.metadata.format ?? "pt",
      });
      written.push(fileName);
    }
  } finally {
    checkpoint.close();
  }
  for (const entry of readdirSync(srcDir)) {
    if (entry.endsWith(".safetensors")) continue;
    const from = join(srcDir, entry);
    if (!statSync(from).isFile()) continue;
    copyFileSync(from, join(out, entry));
    written.push(entry);
  }
  if (saveDtype !== "same") {
    // config.json says what the weights are stored in; the index's total_size follows the dtype
    const configPath = join(out, "config.json");
    const config = JSON.parse(readFileSync(configPath, "utf8"));
    config.torch_dtype = STORED[saveDtype].torch;
    writeFileSync(configPath, `${JSON.stringify(config, null, 2)}\n`);
    const indexPath = join(out, INDEX_FILE);
    if (written.includes(INDEX_FILE)) {
      const index = JSON.parse(readFileSync(indexPath, "utf8"));
      if (index.metadata && typeof index.metadata === "object") index.metadata.total_size = dataBytes;
      writeFileSync(indexPath, `${JSON.stringify(index, null, 2)}\n`);
    }
  }
  return written.sort();
}
