// A DecodeBackend over Qwen3DecodeEngine (float32): the KV cache lives in JavaScript buffers that ORT
// reads in place, and each decode step moves only the new tokens' keys and values.
//
// Cache layout: per layer, keys and values [rows, kv_heads, capacity, head_dim]; row k's tokens sit
// left-aligned in slots 0 … length_k − 1 (keys after RoPE, so a slot's index is not its position),
// and cacheBias [rows, capacity] hides the free slots. The capacity grows in `chunk`-slot steps (a
// copy of the cache, every `chunk` steps at most), so attention reads about as many slots as the
// longest live row holds.
//
// The rollout's shapes:
//   - prompts of different lengths: one left-padded prefill, then each row left-aligned in the cache;
//   - rows sharing a prompt (prompts × n): the distinct prompts are prefilled once and their cache
//     copied to every row that asked for them;
//   - rows finishing at different times: with `compact` (default) a finished row's slot in the batch
//     is refilled by the last live row (a copy of one row's cache), so a step costs the live rows
//     only; without it finished rows stay in the batch, fed a padding token whose result is dropped.
// A row's logits do not depend on the other rows beyond float32 rounding: hidden slots add exact
// zeros to its softmax and weighted sum, and every MatMul treats rows independently.

import type { LoraAdapter } from "../adapter/lora.ts";
import { checkSequences, EngineInputError, leftPad } from "../graph/engine-batch.ts";
import { HIDDEN_SLOT, type Qwen3DecodeEngine } from "./engine-decode.ts";
import type { DecodeBackend, DecodeSession } from "./generate.ts";
import type { LogitsRow } from "./sampler.ts";

export interface DecodeCacheBackendOptions {
  /** Drop finished rows from the batch (default true); false keeps them, fed padding. */
  compact?: boolean;
  /** Capacity growth step in slots (default 32). */
  chunk?: number;
}

export class DecodeCacheBackend implements DecodeBackend {
  readonly vocabSize: number;
  readonly maxPositions: number;
  private readonly compact: boolean;
  private readonly chunk: number;
  /** Buffers of a closed session, reused by the next one (no fresh pages to fault in per call). */
  private pool: CacheStorage | null = null;

  /** `engine` stays the caller's to release. */
  constructor(
    readonly engine: Qwen3DecodeEngine,
    options: DecodeCacheBackendOptions = {},
  ) {
    this.vocabSize = engine.config.vocabSize;
    this.maxPositions = engine.config.maxPositionEmbeddings;
    this.compact = options.compact ?? true;
    this.chunk = options.chunk ?? 32;
    if (!Number.isSafeInteger(this.chunk) || this.chunk < 1)
      throw new EngineInputError(`chunk must be a positive integer, got ${options.chunk}`);
  }

  /** The LoRA adapter of later sessions (null: base model); see Qwen3DecodeEngine.setAdapter. */
  setAdapter(adapter: LoraAdapter | null): void {
    this.engine.setAdapter(adapter);
  }

  async prefill(
    prompts: readonly (readonly number[])[],
  ): Promise<{ session: DecodeSession; logits: LogitsRow[] }> {
    checkSequences(prompts, this.vocabSize);
    for (const [b, p] of prompts.entries())
      if (p.length > this.maxPositions)
        throw new EngineInputError(
          `sequence ${b} has ${p.length} tokens, more than max_position_embeddings ${this.maxPositions}`,
        );
    // Distinct prompts, by content; row b reads the prefill row of unique[b].
    const index = new Map<string, number>();
    const distinct: (readonly number[])[] = [];
    const source = prompts.map((p) => {
      const key = p.join(",");
      let u = index.get(key);
      if (u === undefined) {
        u = distinct.length;
        index.set(key, u);
        distinct.push(p);
      }
      return u;
    });
    const batch = leftPad(distinct);
    const out = await this.engine.run({
      batch: batch.batch,
      seq: batch.seq,
      inputIds: batch.inputIds,
      attentionMask: batch.attentionMask,
      positionIds: batch.positionIds,
      capacity: 0,
      cacheBias: new Float32Array(0),
      cache: this.engine.emptyCache,
    });
    const storage = this.pool ?? { cache: [], bias: new Float32Array(0) };
    this.pool = null;
    const session = new DecodeCacheSession(
      this.engine,
      this.compact,
      this.chunk,
      prompts.length,
      storage,
      (s) => {
        this.pool = s;
      },
    );
    session.fill(out.newKeyValues, batch.seq, batch.lengths, source);
    const V = this.vocabSize;
    const logits = source.map((u) => out.logits.subarray(u * V, (u + 1) * V));
    return { session, logits };
  }
}

const roundUp = (n: number, step: number) => Math.ceil(n / step) * step;

/** A session's buffers: per layer keys then values, and the bias (each at least as long as needed). */
interface CacheStorage {
  cache: Float32Array[];
  bias: Float32Array;
}

class DecodeCacheSession implements DecodeSession {
  private readonly kvh: number;
  private readonly d: number;
  private readonly layers2: number;
  private capacity = 0;
  /**
   * Per layer key then value: [rows, kv_heads, capacity, head_dim] at the start of each buffer. Slots
   * at or past a row's length hold zeros (never a stale NaN that a hidden slot's 0 weight would
   * still turn into NaN).
   */
  private cache: Float32Array[];
  /** [rows, capacity] at the start of the buffer. */
  private bias: Float32Array;
  /** Prompt row held at each batch index. */
  private rowAt: number[];
  /** Per batch index: tokens cached (the next slot, and the next token's position). */
  private length: number[] = [];
  /** Rows the previous decode call (or the prefill) returned. */
  private lastRows: number[];
  private closed = false;

  constructor(
    private readonly engine: Qwen3DecodeEngine,
    private readonly compact: boolean,
    private readonly chunk: number,
    rows: number,
    storage: CacheStorage,
    private readonly release: (storage: CacheStorage) => void,
  ) {
    const c = engine.config;
    this.kvh = c.numKeyValueHeads;
    this.d = c.headDim;
    this.layers2 = 2 * c.numHiddenLayers;
    this.rowAt = Array.from({ length: rows }, (_, b) => b);
    this.lastRows = [...this.rowAt];
    this.cache = storage.cache;
    this.bias = storage.bias;
  }

  /** Makes every buffer hold at least `floats` (and the bias `biasFloats`), keeping the first `keep`. */
  private reserve(floats: number, biasFloats: number, keep: number, keepBias: number): void {
    if (this.cache.length !== this.layers2 || this.cache[0].length < floats) {
      const size = Math.ceil(floats * 1.25);
      this.cache = Array.from({ length: this.layers2 }, (_, j) => {
        const next = new Float32Array(size);
        if (keep > 0) next.set(this.cache[j].subarray(0, keep));
        return next;
      });
    }
    if (this.bias.length < biasFloats) {
      const next = new Float32Array(Math.ceil(biasFloats * 1.25));
      if (keepBias > 0) next.set(this.bias.subarray(0, keepBias));
      this.bias = next;
    }
  }

  /** Copies each row's prompt keys/values out of the prefill's left-padded new_key_values. */
  fill(newKv: Float32Array, seq: number, lengths: number[], source: number[]): void {
    const { kvh, d, layers2 } = this;
    this.length = source.map((u) => lengths[u]);
    const n = source.length;
    const C = roundUp(Math.max(...this.length) + 1, this.chunk);
    this.capacity = C;
    this.reserve(n * kvh * C * d, n * C, 0, 0);
    source.forEach((u, k) => {
      const len = lengths[u];
      const pad = seq - len;
      for (let j = 0; j < layers2; j++)
        for (let h = 0; h < kvh; h++) {
          const from = ((u * layers2 + j) * kvh + h) * seq * d + pad * d;
          const to = (k * kvh + h) * C * d;
          this.cache[j].set(newKv.subarray(from, from + len * d), to);
          this.cache[j].fill(0, to + len * d, to + C * d);
        }
      this.bias.fill(0, k * C, k * C + len);
      this.bias.fill(HIDDEN_SLOT, k * C + len, (k + 1) * C);
    });
  }

  /** Grows every row to `capacity` slots in place (blocks moved from the last one down). */
  private grow(capacity: number): void {
    const { kvh, d } = this;
    const n = this.rowAt.length;
    const C = this.capacity;
    this.reserve(n * kvh * capacity * d, n * capacity, n * kvh * C * d, n * C);
    for (const buf of this.cache)
      for (let block = n * kvh - 1; block >= 0; block--) {
        const len = this.length[Math.floor(block / kvh)];
        buf.copyWithin(block * capacity * d, block * C * d, block * C * d + len * d);
        buf.fill(0, block * capacity * d + len * d, (block + 1) * capacity * d);
      }
    for (let k = n - 1; k >= 0; k--) {
      const len = this.length[k];
      this.bias.copyWithin(k * capacity, k * C, k * C + len);
      this.bias.fill(HIDDEN_SLOT, k * capacity + len, (k + 1) * capacity);
    }
    this.capacity = capacity;
  }

  /** Moves batch index `from` into `to` (cache, bias, bookkeeping). */
  private move(from: number, to: number): void {
    const { kvh, d, capacity: C } = this;
    const size = kvh * C * d;
    for (const buf of this.cache) buf.copyWithin(to * size, from * size, (from + 1) * size);
    this.bias.copyWithin(to * C, from * C, (from + 1) * C);
    this.rowAt[to] = this.rowAt[from];
    this.length[to] = this.length[from];
  }

  async decode(rows: readonly number[], tokens: readonly number[]): Promise<LogitsRow[]> {
    if (this.closed) throw new EngineInputError("decode after close");
    if (rows.length === 0 || rows.length !== tokens.length)
      throw new EngineInputError(`decode: ${rows.length} rows for ${tokens.length} tokens`);
    const previous = new Set(this.lastRows);
    const V = this.engine.config.vocabSize;
    rows.forEach((r, i) => {
      if (!previous.has(r) || (i > 0 && r <= rows[i - 1]))
        throw new EngineInputError(
          `decode: rows must be increasing and among the previous step's rows, got row ${r}`,
        );
      const t = tokens[i];
      if (!Number.isInteger(t) || t < 0 || t >= V)
        throw new EngineInputError(`decode: token ${t} of row ${r} is outside vocab_size ${V}`);
    });
    this.lastRows = [...rows];

    if (this.compact && rows.length < this.rowAt.length) {
      // Swap-remove: each finished row's batch index takes the last live row.
      const wanted = new Set(rows);
      let n = this.rowAt.length;
      for (let k = 0; k < n; ) {
        if (wanted.has(this.rowAt[k])) {
          k++;
          continue;
        }
        n--;
        if (k !== n) this.move(n, k);
        this.rowAt.length = n;
        this.length.length = n;
      }
    }

    const batch = this.rowAt.length;
    const longest = Math.max(...this.length);
    if (longest + 1 > this.engine.config.maxPositionEmbeddings)
      throw new EngineInputError(
        `decode: a row would reach ${longest + 1} tokens, more than max_position_embeddings ${this.engine.config.maxPositionEmbeddings}`,
      );
    if (longest >= this.capacity) this.grow(roundUp(longest + 1, this.chunk));
    const C = this.capacity;

    const tokenOf = new Map(rows.map((r, i) => [r, tokens[i]]));
    const inputIds = new BigInt64Array(batch);
    const positionIds = new BigInt64Array(batch);
    for (let k = 0; k < batch; k++) {
      // A finished row kept in the batch (compact off) gets a padding token whose result is dropped.
      inputIds[k] = BigInt(tokenOf.get(this.rowAt[k]) ?? 0);
      positionIds[k] = BigInt(this.length[k]);
    }
    const out = await this.engine.run({
      batch,
      seq: 1,
      inputIds,
      attentionMask: new BigInt64Array(batch).fill(1n),
      positionIds,
      capacity: C,
      cacheBias: this.bias.subarray(0, batch * C),
      cache: this.cache,
    });
    // The new token's keys/values go to slot length[k] of each row.
    const { kvh, d, layers2 } = this;
    const kv = out.newKeyValues;
    for (let k = 0; k < batch; k++) {
      const slot = this.length[k];
      for (let j = 0; j < layers2; j++) {
        const buf = this.cache[j];
        for (let h = 0; h < kvh; h++) {
          const from = ((k * layers2 + j) * kvh + h) * d;
          buf.set(kv.subarray(from, from + d), ((k * kvh + h) * C + slot) * d);
        }
      }
      this.bias[k * C + slot] = 0;
      this.length[k] = slot + 1;
    }
    const at = new Map(this.rowAt.map((r, k) => [r, k]));
    return rows.map((r) => {
      const k = at.get(r)!;
      return out.logits.subarray(k * V, (k + 1) * V);
    });
  }

  close(): void {
    if (this.closed) return;
    this.closed = true;
    this.release({ cache: this.cache, bias: this.bias });
    this.cache = [];
    this.bias = new Float32Array(0);
  }
}
