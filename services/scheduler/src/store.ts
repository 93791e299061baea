// Scheduler state in JetStream KV, so a restarted scheduler resumes exactly: per run its
// configuration, its schedule state, and every scored step's response (for idempotency).
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

/** A scored step: the response returned, and the run state right after it. */
export interface StoredStep {
  response: scheduler.ScoreResponse;
  stateAfter: RunState;
}

export class RunStore {
  constructor(private readonly kv: KV) {}

  async getConfig(runId: string): Promise<scheduler.RunConfig | undefined> {
    const e = await this.kv.get(`${runId}.config`);
    return e && e.operation === "PUT" && e.value.length > 0 ? scheduler.RunConfig.decode(e.value) : undefined;
  }

  async putConfig(config: scheduler.RunConfig): Promise<void> {
    await this.kv.put(`${config.runId}.config`, scheduler.RunConfig.encode(config).finish());
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
    const e = await this.kv.get(`${runId}.step.${step}`);
    if (e?.operation !== "PUT" || e.value.length === 0) return undefined;
    // Layout: 4-byte big-endian length of the state JSON, the JSON, then the gzipped response.
    const bytes = e.value;
    const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
    const n = view.getUint32(0);
    const stateAfter = JSON.parse(Buffer.from(bytes.subarray(4, 4 + n)).toString("utf8")) as RunState;
    const response = scheduler.ScoreResponse.decode(gunzipSync(bytes.subarray(4 + n)));
    return { response, stateAfter };
  }

  async putStep(runId: string, step: number, stored: StoredStep): Promise<void> {
    const state = Buffer.from(JSON.stringify(stored.stateAfter), "utf8");
    const response = gzipSync(scheduler.ScoreResponse.encode(stored.response).finish(), { level: 1 });
    const out = Buffer.alloc(4 + state.length + response.length);
    out.writeUInt32BE(state.length, 0);
    state.copy(out, 4);
    response.copy(out, 4 + state.length);
    await this.kv.put(`${runId}.step.${step}`, out);
  }
}
