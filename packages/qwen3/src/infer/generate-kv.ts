// A DecodeBackend over Qwen3KvEngine: one left-padded prefill fills the KV cache, then every decode
// step feeds one token per row and the previous step's present tensors as past (ORT tensors, never
// converted). Row b's cache column j holds its token j − pad_b; the attention mask keeps the
// prefill's padding columns masked for the whole session and position_ids continue per row.
//
// Finished rows: with `compact` (default) the cache drops them as soon as decode stops asking for
// them (a copy of the kept rows along the batch axis, only on steps where the row set shrinks);
// without it they stay in the batch, fed a padding token whose result is discarded.

import { tensor } from "@temper/onnx";
import type * as ort from "onnxruntime-node";
import type { LoraAdapter } from "../adapter/lora.ts";
import { checkSequences, EngineInputError, leftPad } from "../graph/engine-batch.ts";
import type { Qwen3KvEngine } from "./engine-kv.ts";
import type { DecodeBackend, DecodeSession } from "./generate.ts";
import type { LogitsRow } from "./sampler.ts";

export interface KvCacheBackendOptions {
  /** Drop finished rows from the cache (default true); false keeps them padded in the batch. */
  compact?: boolean;
}

export class KvCacheBackend implements DecodeBackend {
  readonly vocabSize: number;
  readonly maxPositions: number;
  private readonly compact: boolean;

  /** `engine` stays the caller's to release. */
  constructor(
    readonly engine: Qwen3KvEngine,
    options: KvCacheBackendOptions = {},
  ) {
    this.vocabSize = engine.config.vocabSize;
    this.maxPositions = engine.config.maxPositionEmbeddings;
    this.compact = options.compact ?? true;
  }

  /** The LoRA adapter of later sessions (null: base model); see Qwen3KvEngine.setAdapter. */
  setAdapter(adapter: LoraAdapter | null): void {
    this.engine.setAdapter(adapter);
  }

  async prefill(
    prompts: readonly (readonly number[])[],
  ): Promise<{ session: DecodeSession; logits: LogitsRow[] }> {
    checkSequences(prompts, this.vocabSize);
    const batch = leftPad(prompts);
    const out = await this.engine.step(batch, this.engine.emptyPast(batch.batch));
    const session = new KvDecodeSession(
      this.engine,
      this.compact,
      batch.attentionMask,
      batch.seq,
      batch.lengths,
      out.present,
    );
    return { session, logits: rowsOf(out.logits, batch.batch, this.vocabSize) };
  }
}

function rowsOf(logits: Float32Array | Float64Array, batch: number, vocab: number): LogitsRow[] {
  return Array.from({ length: batch }, (_, b) => logits.subarray(b * vocab, (b + 1) * vocab));
}

/** Copies rows `keep` (indices into the batch axis, increasing) of a [batch, …] tensor. */
function gatherRows(t: ort.Tensor, keep: readonly number[]): ort.Tensor {
  const data = t.data as Float32Array | Float64Array;
  const rowSize = data.length / t.dims[0];
  const out = new (data.constructor as Float32ArrayConstructor)(keep.length * rowSize);
  keep.forEach((b, k) => {
    out.set(data.subarray(b * rowSize, (b + 1) * rowSize), k * rowSize);
  });
  return tensor(t.type as "float32", out, [keep.length, ...t.dims.slice(1)]);
}

class KvDecodeSession implements DecodeSession {
  /** Prompt row held at each cache batch index. */
  private cacheRows: number[];
  /** Per cache batch index, the attention mask of its cached columns. */
  private masks: BigInt64Array[];
  /** Per prompt row, the position of its next token. */
  private readonly nextPosition: number[];
  /** Rows the previous decode call (or the prefill) returned. */
  private lastRows: number[];
  private past: ort.Tensor[] | null;

  constructor(
    private readonly engine: Qwen3KvEngine,
    private readonly compact: boolean,
    mask: BigInt64Array,
    private total: number,
    lengths: number[],
    past: ort.Tensor[],
  ) {
    this.cacheRows = lengths.map((_, b) => b);
    this.masks = lengths.map((_, b) => mask.subarray(b * total, (b + 1) * total));
    this.nextPosition = [...lengths];
    this.lastRows = [...this.cacheRows];
    this.past = past;
  }

  async decode(rows: readonly number[], tokens: readonly number[]): Promise<LogitsRow[]> {
    if (!this.past) throw new EngineInputError("decode after close");
    if (rows.length === 0 || rows.length !== tokens.length)
      throw new EngineInputError(`decode: ${rows.length} rows for ${tokens.length} tokens`);
    const previous = new Set(this.lastRows);
    rows.forEach((r, i) => {
      if (!previous.has(r) || (i > 0 && r <= rows[i - 1]))
        throw new EngineInputError(
          `decode: rows must be increasing and among the previous step's rows, got row ${r}`,
        );
      const t = tokens[i];
      if (!Number.isInteger(t) || t < 0 || t >= this.engine.config.vocabSize)
        throw new EngineInputError(
          `decode: token ${t} of row ${r} is outside vocab_size ${this.engine.config.vocabSize}`,
        );
    });
    this.lastRows = [...rows];

    if (this.compact && rows.length < this.cacheRows.length) {
      const wanted = new Set(rows);
      const keep = this.cacheRows.flatMap((r, k) => (wanted.has(r) ? [k] : []));
      this.past = this.past.map((t) => gatherRows(t, keep));
      this.masks = keep.map((k) => this.masks[k]);
      this.cacheRows = keep.map((k) => this.cacheRows[k]);
    }

    const batch = this.cacheRows.length;
    const total = this.total + 1;
    const tokenOf = new Map(rows.map((r, i) => [r, tokens[i]]));
    const inputIds = new BigInt64Array(batch);
    const positionIds = new BigInt64Array(batch);
    const attentionMask = new BigInt64Array(batch * total);
    const masks: BigInt64Array[] = [];
    this.cacheRows.forEach((r, k) => {
      const token = tokenOf.get(r);
      // A finished row kept in the batch (compact off) gets a padding token whose result is dropped.
      inputIds[k] = BigInt(token ?? 0);
      positionIds[k] = BigInt(this.nextPosition[r]);
      if (token !== undefined) this.nextPosition[r]++;
      attentionMask.set(this.masks[k], k * total);
      attentionMask[k * total + total - 1] = 1n;
      masks.push(attentionMask.subarray(k * total, (k + 1) * total));
    });
    const out = await this.engine.step({ batch, seq: 1, inputIds, attentionMask, positionIds }, this.past);
    this.past = out.present;
    this.masks = masks;
    this.total = total;
    const V = this.engine.config.vocabSize;
    const all = rowsOf(out.logits, batch, V);
    const at = new Map(this.cacheRows.map((r, k) => [r, k]));
    return rows.map((r) => all[at.get(r)!]);
  }

  close(): void {
    for (const t of this.past ?? []) t.dispose();
    this.past = null;
    this.masks = [];
  }
}
