// A model directory's weights: model.safetensors, or shards listed by model.safetensors.index.json.
import { existsSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import {
  compareNames,
  DTYPE_BYTES,
  elementCount,
  type FloatArray,
  type Precision,
  SafetensorsError,
  SafetensorsFile,
  type TensorInfo,
  type TensorSource,
  writeSafetensors,
} from "./safetensors.ts";

export const SINGLE_FILE = "model.safetensors";
export const INDEX_FILE = "model.safetensors.index.json";

/** Every tensor of a checkpoint, across its shards, read lazily. Call close() when done. */
export class Checkpoint {
  readonly tensors = new Map<string, TensorInfo>();
  private readonly byName = new Map<string, SafetensorsFile>();

  private constructor(
    readonly dir: string,
    readonly files: SafetensorsFile[],
  ) {}

  /** Opens model.safetensors.index.json's shards if present, else model.safetensors. */
  static open(dir: string): Checkpoint {
    const indexPath = join(dir, INDEX_FILE);
    if (existsSync(indexPath)) return Checkpoint.openIndex(dir, indexPath);
    const single = join(dir, SINGLE_FILE);
    if (!existsSync(single)) throw new SafetensorsError(`${dir}: missing ${SINGLE_FILE} (or ${INDEX_FILE})`);
    const file = SafetensorsFile.open(single);
    const ckpt = new Checkpoint(dir, [file]);
    for (const [name, info] of file.tensors) ckpt.add(name, info, file);
    return ckpt;
  }

  private static openIndex(dir: string, indexPath: string): Checkpoint {
    let weightMap: Record<string, unknown>;
    try {
      weightMap = JSON.parse(readFileSync(indexPath, "utf8")).weight_map;
    } catch {
      throw new SafetensorsError(`${indexPath}: not valid JSON`);
    }
    if (typeof weightMap !== "object" || weightMap === null) {
      throw new SafetensorsError(`${indexPath}: weight_map is missing`);
    }
    const shardNames = [...new Set(Object.values(weightMap))].sort();
    const files: SafetensorsFile[] = [];
    const ckpt = new Checkpoint(dir, files);
    try {
      for (const shard of shardNames) {
        if (typeof shard !== "string" || shard.includes("/") || shard.includes("\\")) {
          throw new SafetensorsError(`${indexPath}: invalid shard file name ${JSON.stringify(shard)}`);
        }
        const path = join(dir, shard);
        if (!existsSync(path))
          throw new SafetensorsError(`${dir}: missing shard ${shard} (listed in ${INDEX_FILE})`);
        files.push(SafetensorsFile.open(path));
      }
      const byShard = new Map(files.map((f, i) => [shardNames[i] as string, f]));
      for (const [name, shard] of Object.entries(weightMap)) {
        const file = byShard.get(shard as string)!;
        const info = file.tensors.get(name);
        if (!info)
          throw new SafetensorsError(`${dir}: tensor ${name} is mapped to ${shard} but not stored there`);
        ckpt.add(name, info, file);
      }
    } catch (err) {
      ckpt.close();
      throw err;
    }
    return ckpt;
  }

  private add(name: string, info: TensorInfo, file: SafetensorsFile): void {
    this.tensors.set(name, info);
    this.byName.set(name, file);
  }

  has(name: string): boolean {
    return this.tensors.has(name);
  }

  info(name: string): TensorInfo {
    const t = this.tensors.get(name);
    if (!t) throw new SafetensorsError(`${this.dir}: checkpoint has no tensor ${name}`);
    return t;
  }

  /** One tensor widened to float32 or float64. */
  read(name: string, precision: Precision = "float32"): FloatArray {
    this.info(name);
    return this.byName.get(name)!.read(name, precision);
  }

  /** One tensor's values in row-major chunks, for streaming a tensor too large to hold twice. */
  readChunks(name: string, precision: Precision = "float32"): Generator<FloatArray> {
    this.info(name);
    return this.byName.get(name)!.readChunks(name, precision);
  }

  readBytes(name: string): Buffer {
    this.info(name);
    return this.byName.get(name)!.readBytes(name);
  }

  close(): void {
    for (const f of this.files) f.close();
  }
}

/** HF's shard file name: model-00001-of-00003.safetensors. */
export function shardFileName(index: number, count: number): string {
  const pad = (n: number) => String(n).padStart(5, "0");
  return `model-${pad(index + 1)}-of-${pad(count)}.safetensors`;
}

/**
 * Writes `tensors` as model.safetensors (shards = 1) or as `shards` files plus the index. Tensors keep
 * their given order across shards (contiguous, balanced by bytes, none empty); each file sorts its keys.
 */
export function writeCheckpoint(dir: string, tensors: readonly TensorSource[], shards = 1): string[] {
  if (!Number.isInteger(shards) || shards < 1)
    throw new SafetensorsError(`shard count must be a positive integer, got ${shards}`);
  if (shards > tensors.length) {
    throw new SafetensorsError(`cannot split ${tensors.length} tensors into ${shards} shards`);
  }
  if (shards === 1) {
    writeSafetensors(join(dir, SINGLE_FILE), tensors);
    return [SINGLE_FILE];
  }
  const bytesOf = (t: TensorSource) => elementCount(t.shape) * DTYPE_BYTES[t.dtype];
  const total = tensors.reduce((a, t) => a + bytesOf(t), 0);
  const groups: TensorSource[][] = [[]];
  let cumulative = 0;
  tensors.forEach((t, i) => {
    const current = groups[groups.length - 1];
    const remainingTensors = tensors.length - i;
    const remainingShards = shards - groups.length;
    const full = cumulative >= (total * groups.length) / shards;
    if (current.length > 0 && remainingShards > 0 && (full || remainingTensors === remainingShards))
      groups.push([]);
    groups[groups.length - 1].push(t);
    cumulative += bytesOf(t);
  });
  if (groups.length < shards)
    throw new SafetensorsError(`cannot balance ${tensors.length} tensors into ${shards} shards`);
  const names = groups.map((_, i) => shardFileName(i, shards));
  const weightMap: Record<string, string> = {};
  groups.forEach((group, i) => {
    writeSafetensors(join(dir, names[i]), group);
    for (const t of group) weightMap[t.name] = names[i];
  });
  const sortedMap = Object.fromEntries(Object.entries(weightMap).sort(([a], [b]) => compareNames(a, b)));
  const index = { metadata: { total_size: total }, weight_map: sortedMap };
  writeFileSync(join(dir, INDEX_FILE), `${JSON.stringify(index, null, 2)}\n`);
  return [...names, INDEX_FILE];
}
