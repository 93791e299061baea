// ORT sessions for built models: provider choice with one-line errors, checked feeds, release.
import { existsSync } from "node:fs";
import { createRequire } from "node:module";
import { dirname, join } from "node:path";
import * as ort from "onnxruntime-node";
import { type DType, type HostArrays, hostFromNumbers } from "./dtype.ts";
import { OnnxModel } from "./model.ts";

export type ExecutionProvider = "cpu" | "webgpu" | "cuda";

export interface CreateSessionOptions {
  /** Default "cpu". */
  provider?: ExecutionProvider;
  /** Intra-op threads (ORT picks when omitted). */
  threads?: number;
  /** For a model given as bytes or a path: in-memory external data files. */
  externalData?: { path: string; data: Uint8Array }[];
  /**
   * ORT graph optimization level (default "all"). "all"/"extended" fuse patterns such as RMSNorm and
   * attention into contrib kernels that are not exact in float64 (~1e-9 relative); float64 checks use "basic".
   */
  optimization?: "disabled" | "basic" | "extended" | "all";
  /** Extra ORT options, merged last. */
  ortOptions?: ort.InferenceSession.SessionOptions;
}

function cudaInstalled(): boolean {
  const req = createRequire(import.meta.url);
  const binDir = join(
    dirname(req.resolve("onnxruntime-node/package.json")),
    "bin",
    "napi-v6",
    process.platform,
    process.arch,
  );
  return existsSync(join(binDir, "libonnxruntime_providers_cuda.so"));
}

/** Throws a one-line error when `provider` cannot work in this installation. */
export function checkProvider(provider: ExecutionProvider): void {
  const known = ort.listSupportedBackends().map((b) => b.name);
  if (!known.includes(provider))
    throw new Error(
      `execution provider "${provider}" is not supported by onnxruntime-node here (have: ${known.join(", ")})`,
    );
  if (provider === "cuda" && !cudaInstalled())
    throw new Error(
      'execution provider "cuda" is unavailable: onnxruntime-node was installed without its CUDA 12 libraries (reinstall it with ONNXRUNTIME_NODE_INSTALL=cuda12 on a CUDA machine)',
    );
}

/** An ORT tensor from a host typed array or plain numbers. */
export function tensor<D extends DType>(
  dtype: D,
  data: HostArrays[D] | ArrayLike<number>,
  dims: readonly number[],
): ort.Tensor {
  if (dtype === "float16")
    throw new Error("float16 feeds are not supported by the Node binding helper; cast in-graph");
  let host = ArrayBuffer.isView(data) ? data : hostFromNumbers(dtype, data as ArrayLike<number>);
  // ORT reads a feed in place, and some CPU reductions (Eigen's sum over a graph input) start their
  // vector loop at the next 16-byte boundary: a view at another offset would be summed in another
  // order and round differently. A fresh buffer (slice) starts at the allocator's alignment.
  if ((host as ArrayBufferView).byteOffset % 64 !== 0) host = (host as Float32Array).slice() as typeof host;
  const n = dims.reduce((a, b) => a * b, 1);
  if ((host as ArrayLike<unknown>).length !== n)
    throw new Error(
      `tensor: ${(host as ArrayLike<unknown>).length} values for ${dtype}[${dims}] (needs ${n})`,
    );
  const ortType = dtype === "bool" ? "bool" : dtype;
  return new ort.Tensor(ortType as "float32", host as Float32Array, dims);
}

export class Session {
  private constructor(
    private readonly inner: ort.InferenceSession,
    readonly provider: ExecutionProvider,
  ) {}

  static async create(
    model: OnnxModel | Uint8Array | string,
    opts: CreateSessionOptions = {},
  ): Promise<Session> {
    const provider = opts.provider ?? "cpu";
    checkProvider(provider);
    if (model instanceof OnnxModel && model.fileBacked.length)
      throw new Error(
        `weights ${model.fileBacked.slice(0, 3).join(", ")} live in files: save() the model next to them and create the session from its path`,
      );
    const externalData = model instanceof OnnxModel ? model.externalData() : opts.externalData;
    const options: ort.InferenceSession.SessionOptions = {
      executionProviders: [provider],
      graphOptimizationLevel: opts.optimization ?? "all",
      ...(opts.threads ? { intraOpNumThreads: opts.threads, interOpNumThreads: 1 } : {}),
      ...(externalData?.length ? { externalData } : {}),
      ...opts.ortOptions,
    };
    const source = model instanceof OnnxModel ? model.toBytes() : model;
    try {
      const inner =
        typeof source === "string"
          ? await ort.InferenceSession.create(source, options)
          : await ort.InferenceSession.create(source, options);
      return new Session(inner, provider);
    } catch (e) {
      const first = String((e as Error).message ?? e).split("\n")[0];
      throw new Error(`cannot create ${provider} session: ${first}`);
    }
  }

  get inputNames(): readonly string[] {
    return this.inner.inputNames;
  }

  get outputNames(): readonly string[] {
    return this.inner.outputNames;
  }

  /**
   * Runs with `feeds` (every graph input), returning the requested outputs (default: all).
   * A missing, unknown or mistyped feed fails with one line naming it.
   */
  async run(
    feeds: Record<string, ort.Tensor>,
    fetch?: readonly string[],
  ): Promise<Record<string, ort.Tensor>> {
    for (const meta of this.inner.inputMetadata) {
      const t = feeds[meta.name];
      if (!t) throw new Error(`run: missing feed "${meta.name}"`);
      if (!meta.isTensor) continue;
      if (t.type !== meta.type)
        throw new Error(`run: feed "${meta.name}" is ${t.type}, the graph wants ${meta.type}`);
      const want = meta.shape;
      if (t.dims.length !== want.length || want.some((d, i) => typeof d === "number" && d !== t.dims[i]))
        throw new Error(`run: feed "${meta.name}" has shape [${t.dims}], the graph wants [${want}]`);
    }
    for (const name of Object.keys(feeds))
      if (!this.inner.inputNames.includes(name))
        throw new Error(`run: "${name}" is not an input of this graph`);
    if (fetch) {
      for (const f of fetch)
        if (!this.inner.outputNames.includes(f)) throw new Error(`run: "${f}" is not an output`);
      return this.inner.run(feeds, fetch as string[]);
    }
    return this.inner.run(feeds);
  }

  async release(): Promise<void> {
    await this.inner.release();
  }
}
