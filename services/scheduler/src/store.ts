// Scheduler state in JetStream KV, so a restarted scheduler resumes exactly: per run its
// configuration (whose KV revision is the run's config version), its schedule state, and every
// scored step's response with the content hash of the request that produced it (for idempotency).
// A step larger than NATS's max payload is stored in parts.
import { createHash } from "node:crypto";
import { gunzipSync, gzipSync } from "node:zlib";
import type { KV } from "@nats-io/kv";
import { scheduler } from "@temper/proto";

export const STATE_BUCKET = "temper_scheduler";

/** What a run carries from step to step. */
export interface RunState {
  stepsScored: number;
  lastStep: number | null;
  /** EMA of correctness_hard (progress mode); null before the first step. */
  accuracyEma: number | null;
}

export const INITIAL_RUN_STATE: RunState = { stepsScored: 0, lastStep: null, accuracyEma: null };

/** A scored step: the response returned, the run state right after it, and what it answered. */
export interface StoredStep {
  response: scheduler.ScoreResponse;
  stateAfter: RunState;
  /** sha256 of the request's canonical form; absent for steps stored before hashes were kept. */
  requestHash?: string;
  /** The run's config version the step was scored under; absent as above. */
  configVersion?: number;
  /** The step's reward.blended event, encoded: a replay publishes it again (its msgId de-duplicates). */
  event?: Uint8Array;
}

/** A run's configuration and its version (the KV revision it was stored at). */
export interface StoredConfig {
  config: scheduler.RunConfig;
  version: number;
}

/** First byte of a step entry that is a manifest of parts (a plain entry starts with 0x00). */
const MANIFEST = 0xff;
/** Room kept inside the server's max payload for the message's headers and subject. */
const HEADER_ROOM = 4096;

interface Manifest {
  parts: number;
  bytes: number;
  sha256: string;
}

export class RunStore {
  private readonly maxValueBytes: number;

  /** `maxPayload`: the NATS server's max_payload (larger steps are split into parts). */
  constructor(
    private readonly kv: KV,
    maxPayload = 1024 * 1024,
  ) {
    this.maxValueBytes = Math.max(1024, maxPayload - HEADER_ROOM);
  }

  async getConfig(runId: string): Promise<StoredConfig | undefined> {
    const e = await this.kv.get(`${runId}.config`);
    return e && e.operation === "PUT" && e.value.length > 0
      ? { config: scheduler.RunConfig.decode(e.value), version: e.revision }
      : undefined;
  }

  /**
   * Stores a configuration if the run's stored version is still `expected` (0: the run must not
   * exist); returns the new version, or undefined when someone else changed it first (a compare-
   * and-set in KV, so two schedulers sharing the bucket cannot overwrite each other either).
   */
  async putConfig(config: scheduler.RunConfig, expected: number): Promise<number | undefined> {
    const key = `${config.runId}.config`;
    const value = scheduler.RunConfig.encode(config).finish();
    try {
      return expected === 0 ? await this.kv.create(key, value) : await this.kv.update(key, value, expected);
    } catch (err) {
      // JetStream's "wrong last sequence" (10071, 10164): the key moved on, or already exists.
      const code = (err as { code?: unknown }).code;
      if (code === 10071 || code === 10164) return undefined;
      throw err;
    }
  }

  async getState(runId: string): Promise<RunState> {
    const e = await this.kv.get(`${runId}.state`);
    return e && e.operation === "PUT" && e.value.length > 0
      ? (e.json() as RunState)
      : { ...INITIAL_RUN_STATE };
  }

  async putState(runId: string, state: RunState): Promise<void> {
    await this.kv.put(`${runId}.state`, JSON.stringify(state));
  }

  async getStep(runId: string, step: number): Promise<StoredStep | undefined> {
    const key = `${runId}.step.${step}`;
    const e = await this.kv.get(key);
    if (e?.operation !== "PUT" || e.value.length === 0) return undefined;
    let bytes = e.value;
    if (bytes[0] === MANIFEST) bytes = await this.readParts(key, bytes);
    // Layout: 4-byte big-endian length of the JSON head, the head, then the gzipped response. The
    // head is {stateAfter, requestHash, configVersion, event}, or (older entries) the bare RunState.
    const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
    const n = view.getUint32(0);
    const head = JSON.parse(Buffer.from(bytes.subarray(4, 4 + n)).toString("utf8"));
    const response = scheduler.ScoreResponse.decode(gunzipSync(bytes.subarray(4 + n)));
    if (head && typeof head === "object" && "stateAfter" in head)
      return {
        response,
        stateAfter: head.stateAfter as RunState,
        requestHash: head.requestHash,
        configVersion: head.configVersion,
        ...(typeof head.event === "string"
          ? { event: new Uint8Array(Buffer.from(head.event, "base64")) }
          : {}),
      };
    return { response, stateAfter: head as RunState };
  }

  /**
   * Stores a step. An entry over the payload limit is written as parts first and a manifest last,
   * so a crash in between leaves no step (the parts are overwritten by the retry).
   */
  async putStep(runId: string, step: number, stored: StoredStep): Promise<void> {
    const key = `${runId}.step.${step}`;
    const head = Buffer.from(
      JSON.stringify({
        stateAfter: stored.stateAfter,
        requestHash: stored.requestHash,
        configVersion: stored.configVersion,
        ...(stored.event ? { event: Buffer.from(stored.event).toString("base64") } : {}),
      }),
      "utf8",
    );
    const response = gzipSync(scheduler.ScoreResponse.encode(stored.response).finish(), { level: 1 });
    const out = Buffer.alloc(4 + head.length + response.length);
    out.writeUInt32BE(head.length, 0);
    head.copy(out, 4);
    response.copy(out, 4 + head.length);
    if (out.length <= this.maxValueBytes) {
      await this.kv.put(key, out);
      return;
    }
    const parts = Math.ceil(out.length / this.maxValueBytes);
    for (let i = 0; i < parts; i++)
      await this.kv.put(
        `${key}.part.${i}`,
        out.subarray(i * this.maxValueBytes, (i + 1) * this.maxValueBytes),
      );
    const manifest: Manifest = {
      parts,
      bytes: out.length,
      sha256: createHash("sha256").update(out).digest("hex"),
    };
    await this.kv.put(key, Buffer.concat([Buffer.from([MANIFEST]), Buffer.from(JSON.stringify(manifest))]));
  }

  private async readParts(key: string, entry: Uint8Array): Promise<Uint8Array> {
    const manifest = JSON.parse(Buffer.from(entry.subarray(1)).toString("utf8")) as Manifest;
    const chunks: Uint8Array[] = [];
    for (let i = 0; i < manifest.parts; i++) {
      const part = await this.kv.get(`${key}.part.${i}`);
      if (part?.operation !== "PUT") throw new Error(`${key}: part ${i} of ${manifest.parts} is missing`);
      chunks.push(part.value);
    }
    const bytes = Buffer.concat(chunks);
    if (
      bytes.length !== manifest.bytes ||
      createHash("sha256").update(bytes).digest("hex") !== manifest.sha256
    )
      throw new Error(`${key}: stored parts do not match their manifest`);
    return bytes;
  }
}
