// The learner's on-disk state, shared by the service thread and the engine worker:
//
//   <CHECKPOINT_DIR>/<run_id>/init/     written by CreateRun: the PEFT init adapter, zero moments
//   <CHECKPOINT_DIR>/<run_id>/step-<N>/ written before Train of step N returns
//
// each holding adapter_config.json + adapter_model.safetensors (PEFT), optimizer.safetensors (AdamW
// moments, float64) and trainer_state.json (below), written atomically (@temper/training). A run
// resumes from its newest complete step-<N>, else from init.
import { existsSync, readdirSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { isCompleteCheckpoint, latestCheckpoint } from "@temper/training";
import type { ResolvedRunConfig } from "./run-config.ts";

export const TRAINER_STATE_FILE = "trainer_state.json";
export const INIT_DIR = "init";

/** TrainMetrics as JSON (the proto message's fields). */
export interface Metrics {
  loss: number;
  clipFraction: number;
  kl: number;
  entropy: number;
  gradNorm: number;
  tokens: number;
  learningRate: number;
  logprobDiff: number;
  updates: number;
}

/** What Train returned for a step (replayed verbatim, with replayed = true). */
export interface StoredResponse {
  step: number;
  adapterVersion: string;
  objectName: string;
  metrics: Metrics;
  skipped: boolean;
  skipReason: string;
  engineSeconds: number;
}

export interface StepRecord {
  step: number;
  /** sha256 of the decoded request's canonical form (request-hash.ts). */
  requestHash: string;
  response: StoredResponse;
}

export interface TrainerState {
  format: 1;
  runId: string;
  /** The last step done (applied or skipped); null before the first. */
  lastStep: number | null;
  nextStep: number;
  /** Optimizer updates applied (the schedule's position and AdamW's t). */
  updates: number;
  /** `<run_id>-<step>` of the last applied step; "" before any (the base model). */
  adapterVersion: string;
  lastMetrics: Metrics | null;
  config: ResolvedRunConfig;
  /** float32 | float64: the learner's DTYPE when the run was created. */
  dtype: string;
  /** The most recent steps, oldest first (at most HISTORY_LIMIT): replays survive restarts. */
  history: StepRecord[];
}

/** Steps whose request hash and response every checkpoint carries. */
export const HISTORY_LIMIT = 1024;

export function runDir(root: string, runId: string): string {
  return join(root, runId);
}

/** The directory a run resumes from: newest complete step-<N>, else a complete init, else none. */
export function resumeDir(root: string, runId: string): string | undefined {
  const dir = runDir(root, runId);
  const latest = latestCheckpoint(dir);
  if (latest) return latest.dir;
  const init = join(dir, INIT_DIR);
  return isCompleteCheckpoint(init) ? init : undefined;
}

export function readTrainerState(dir: string): TrainerState {
  return JSON.parse(readFileSync(join(dir, TRAINER_STATE_FILE), "utf8")) as TrainerState;
}

/** Every run with a complete checkpoint under `root`. */
export function listRuns(root: string): string[] {
  if (!existsSync(root)) return [];
  return readdirSync(root, { withFileTypes: true })
    .filter((e) => e.isDirectory() && /^[A-Za-z0-9_-]{1,64}$/.test(e.name))
    .map((e) => e.name)
    .filter((id) => resumeDir(root, id) !== undefined)
    .sort();
}

export function versionOf(runId: string, step: number): string {
  return `${runId}-${step}`;
}
