// The mapped weight cache: a checkpoint converted once, a tensor at a time, into one float32 file laid
// out for one graph. ORT memory-maps page-aligned external data and, where a kernel does not repack
// a weight into its own heap, computes from the mapping in place, so every session in every process
// that opens the model shares the page cache's one copy (and the kernel can drop it under pressure).
//
//   <root>/<key>/weights.bin                 the layout's tensors, float32, each at a 4096-aligned offset
//               /manifest.json               {model, layout, ort, tensors: {name: {offset, shape}}}
//               /<graph>-<hash>.onnx         graphs over weights.bin (one per LoRA layout), by content
//               /packed-<hash>-<isa>/        ORT's optimized graph with its prepacked weights saved to a
//                                            file (`prepack`): the packed layout depends on the CPU's ISA
//   <root>/hashes/<hash of the path>.json    model content hashes, memoised by the files' size and mtime
//
// key = sha256 of the model's content hash, the layout's name and version, and the ORT version. Each
// entry is written into a private temporary directory and renamed into place, so a process that
// loses the race to write it reads the winner's (identical) files.
import { createHash, randomBytes } from "node:crypto";
import {
  closeSync,
  existsSync,
  fsyncSync,
  mkdirSync,
  openSync,
  readFileSync,
  realpathSync,
  renameSync,
  rmSync,
  statSync,
  writeFileSync,
  writeSync,
} from "node:fs";
import { homedir } from "node:os";
import { join } from "node:path";
import { type OnnxModel, Session } from "@temper/onnx";
import * as ort from "onnxruntime-node";
import { modelContentHash, modelFiles } from "../model/model-hash.ts";

const PAGE = 4096;
const WEIGHTS_FILE = "weights.bin";
const MANIFEST_FILE = "manifest.json";

/** TEMPER_WEIGHT_CACHE, else $XDG_CACHE_HOME/temper/weights, else ~/.cache/temper/weights. */
export function weightCacheRoot(env: NodeJS.ProcessEnv = process.env): string {
  if (env.TEMPER_WEIGHT_CACHE) return env.TEMPER_WEIGHT_CACHE;
  return join(env.XDG_CACHE_HOME || join(homedir(), ".cache"), "temper", "weights");
}

function sha256(text: string | Uint8Array): string {
  return createHash("sha256").update(text).digest("hex");
}

/** Writes `data` to `path` through a temporary file and a rename (readers never see a partial file). */
function writeAtomically(path: string, data: string | Uint8Array): void {
  const tmp = `${path}.tmp-${process.pid}-${randomBytes(4).toString("hex")}`;
  writeFileSync(tmp, data);
  renameSync(tmp, path);
}

/** Renames a finished temporary directory to `dir`; where another process got there first, keeps theirs. */
function publishDir(tmp: string, dir: string): void {
  try {
    renameSync(tmp, dir);
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if ((code !== "ENOTEMPTY" && code !== "EEXIST") || !existsSync(dir)) throw err;
    rmSync(tmp, { recursive: true, force: true });
  }
}

/**
 * modelContentHash of `modelDir`, memoised in the cache by each file's size, mtime and inode: hashing
 * a 4B model's 8 GB on every start would cost more than opening it.
 */
export async function cachedModelHash(
  modelDir: string,
  root = weightCacheRoot(),
  onHash?: (done: boolean) => void,
): Promise<string> {
  const dir = realpathSync(modelDir);
  const stamps = modelFiles(dir).map((name) => {
    const s = statSync(join(dir, name));
    return [name, s.size, s.mtimeMs, s.ino];
  });
  const memo = join(root, "hashes", `${sha256(dir).slice(0, 32)}.json`);
  try {
    const saved = JSON.parse(readFileSync(memo, "utf8")) as { stamps: unknown; hash: string };
    if (JSON.stringify(saved.stamps) === JSON.stringify(stamps)) return saved.hash;
  } catch {}
  // an unwritable cache fails before minutes of hashing, not after
  cacheIo(root, () => mkdirSync(join(root, "hashes"), { recursive: true }));
  onHash?.(false);
  const hash = await modelContentHash(dir);
  onHash?.(true);
  cacheIo(root, () => writeAtomically(memo, JSON.stringify({ dir, stamps, hash })));
  return hash;
}

/** A file-system failure of the cache, as one line that says where and what to change. */
function cacheIo<T>(dir: string, io: () => T): T {
  try {
    return io();
  } catch (err) {
    const e = err as NodeJS.ErrnoException;
    if (!e.code) throw err;
    throw new Error(
      `weight cache ${dir}: ${e.code === "ENOSPC" ? "the disk is full" : e.code} (${e.syscall ?? "io"}); set TEMPER_WEIGHT_CACHE to a writable directory with room for the model's float32 weights`,
    );
  }
}

/** A short name of this CPU's instruction set: prepacked weight layouts depend on it. */
export function cpuIsaTag(): string {
  let flags = `${process.arch}`;
  try {
    const m = /^flags\s*:\s*(.*)$/m.exec(readFileSync("/proc/cpuinfo", "utf8"));
    if (m) flags += ` ${m[1].trim().split(/\s+/).sort().join(" ")}`;
  } catch {}
  return sha256(flags).slice(0, 12);
}

interface Manifest {
  model: string;
  layout: string;
  ort: string;
  tensors: Record<string, { offset: number; shape: number[] }>;
}

/** Where a graph weight lives in the entry's weights file. */
export interface WeightRegion {
  location: string;
  offset: number;
}

/**
 * One cache entry: read (every tensor already in weights.bin) or being written (each tensor appended
 * when the graph asks for it, then published).
 */
export class MappedWeights {
  private writer: { fd: number; tmp: string; offset: number; manifest: Manifest } | null = null;
  /** Called with the bytes written so far after each tensor of a conversion. */
  onWrite: ((bytes: number) => void) | null = null;

  private constructor(
    /** The entry's final directory (where graphs are saved and opened from). */
    readonly dir: string,
    private readonly manifest: Manifest | null,
    model: string,
    layout: string,
  ) {
    if (!manifest) {
      const tmp = `${dir}.tmp-${process.pid}-${randomBytes(4).toString("hex")}`;
      const fd = cacheIo(dir, () => {
        mkdirSync(tmp, { recursive: true });
        return openSync(join(tmp, WEIGHTS_FILE), "w");
      });
      this.writer = {
        fd,
        tmp,
        offset: 0,
        manifest: { model, layout, ort: ort.env.versions.common, tensors: {} },
      };
    }
  }

  /** Opens (or starts writing) the entry of `modelDir` in `layout` ("decode-v1"). */
  static async open(
    modelDir: string,
    layout: string,
    root = weightCacheRoot(),
    onHash?: (done: boolean) => void,
  ): Promise<MappedWeights> {
    const model = await cachedModelHash(modelDir, root, onHash);
    const key = sha256(JSON.stringify({ model, layout, ort: ort.env.versions.common })).slice(0, 32);
    const dir = join(root, key);
    let manifest: Manifest | null = null;
    try {
      manifest = JSON.parse(readFileSync(join(dir, MANIFEST_FILE), "utf8")) as Manifest;
    } catch {}
    return new MappedWeights(dir, manifest, model, layout);
  }

  /** Whether the entry was already there (nothing converted). */
  get hit(): boolean {
    return this.manifest !== null;
  }

  /**
   * The region of tensor `name` [shape]: read from the manifest, or (while writing) `make()` appended to
   * the weights file at the next page boundary, so a conversion holds one tensor at a time.
   */
  region(name: string, shape: number[], make: () => Float32Array): WeightRegion {
    const n = shape.reduce((a, b) => a * b, 1);
    if (this.manifest) {
      const t = this.manifest.tensors[name];
      if (!t || t.shape.join(",") !== shape.join(","))
        throw new Error(
          `weight cache ${this.dir}: tensor ${name} ${t ? `has shape [${t.shape}]` : "is missing"}, the graph needs [${shape}] (delete the directory to rebuild it)`,
        );
      return { location: WEIGHTS_FILE, offset: t.offset };
    }
    const w = this.writer!;
    const prior = w.manifest.tensors[name];
    if (prior) return { location: WEIGHTS_FILE, offset: prior.offset };
    const data = make();
    if (data.length !== n) throw new Error(`weight ${name}: ${data.length} values for [${shape}]`);
    const offset = Math.ceil(w.offset / PAGE) * PAGE;
    const bytes = new Uint8Array(data.buffer, data.byteOffset, data.byteLength);
    // fs writes stop near 2 GiB per call
    cacheIo(this.dir, () => {
      for (let done = 0; done < bytes.byteLength; ) {
        const chunk = bytes.subarray(done, Math.min(bytes.byteLength, done + (1 << 30)));
        done += writeSync(w.fd, chunk, 0, chunk.byteLength, offset + done);
      }
    });
    w.manifest.tensors[name] = { offset, shape: [...shape] };
    w.offset = offset + bytes.byteLength;
    this.onWrite?.(w.offset);
    return { location: WEIGHTS_FILE, offset };
  }

  /** Ends a conversion: the file is synced, the manifest written and the directory renamed into place. */
  publish(): void {
    const w = this.writer;
    if (!w) return;
    fsyncSync(w.fd);
    closeSync(w.fd);
    writeFileSync(join(w.tmp, MANIFEST_FILE), JSON.stringify(w.manifest));
    publishDir(w.tmp, this.dir);
    this.writer = null;
  }

  /**
   * Runs `declare` (a graph declaration that asks for this entry's regions), then publishes the
   * entry; where `declare` throws, drops the unfinished conversion instead.
   */
  declareWith<T>(declare: () => T): T {
    try {
      const result = declare();
      this.publish();
      return result;
    } catch (err) {
      this.abandon();
      throw err;
    }
  }

  /** Drops an unfinished conversion. */
  abandon(): void {
    const w = this.writer;
    if (!w) return;
    closeSync(w.fd);
    rmSync(w.tmp, { recursive: true, force: true });
    this.writer = null;
  }

  /**
   * Saves `model` (every weight a region of this entry) beside weights.bin, named by its content, and
   * returns its path; an identical graph saved before is reused.
   */
  saveGraph(model: OnnxModel, name: string): string {
    if (this.writer) throw new Error("saveGraph: publish() the weights first");
    if (model.external.length)
      throw new Error(
        `saveGraph: weights ${model.external.map((e) => e.name).slice(0, 3)} are not in the cache`,
      );
    const bytes = model.toBytes();
    const path = join(this.dir, `${name}-${sha256(bytes).slice(0, 16)}.onnx`);
    if (!existsSync(path)) writeAtomically(path, bytes);
    return path;
  }

  /**
   * The optimized form of the graph at `graphPath` with ORT's prepacked weights saved to a file beside
   * it (session.save_external_prepacked_constant_initializers), made once per graph and CPU: sessions
   * opened from it map the packed weights instead of packing them into their own heap.
   */
  async packedGraph(graphPath: string, threads?: number, onPack?: (done: boolean) => void): Promise<string> {
    const hash = /-([0-9a-f]{16})\.onnx$/.exec(graphPath)?.[1] ?? sha256(graphPath).slice(0, 16);
    const dir = join(this.dir, `packed-${hash}-${cpuIsaTag()}`);
    const path = join(dir, "model.onnx");
    if (existsSync(path)) return path;
    onPack?.(false);
    const tmp = `${dir}.tmp-${process.pid}-${randomBytes(4).toString("hex")}`;
    mkdirSync(tmp, { recursive: true });
    try {
      const packing = await Session.create(graphPath, {
        threads,
        optimization: "all",
        ortOptions: {
          optimizedModelFilePath: join(tmp, "model.onnx"),
          // "the saved model holds hardware-specific optimizations": hence the ISA in its name
          logSeverityLevel: 3,
          extra: {
            session: {
              save_external_prepacked_constant_initializers: "1",
              optimized_model_external_initializers_file_name: "model.onnx.data",
              optimized_model_external_initializers_min_size_in_bytes: String(PAGE),
            },
          },
        },
      });
      await packing.release();
      publishDir(tmp, dir);
      onPack?.(true);
    } catch (err) {
      rmSync(tmp, { recursive: true, force: true });
      throw err;
    }
    return path;
  }
}
