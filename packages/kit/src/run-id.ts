// A run id is part of NATS subjects, KV keys, object names and file names: one pattern for all.
import { check } from "./validate.ts";

export const RUN_ID = /^[A-Za-z0-9_-]{1,64}$/;

/** INVALID_ARGUMENT naming `path` unless `runId` is a run id. */
export function checkRunId(runId: string, path = "run_id"): void {
  check.matches(runId, RUN_ID, path, "match [A-Za-z0-9_-]{1,64}");
}
