// A run's model named by the Hub (an id, or a snapshot in a Hub cache the orchestrator may not
// mount): the rollouts' own model is accepted when it is that repository's snapshot (at that commit
// when the spec names one), so the orchestrator checks the model by commit and content hash
// without needing its weights. spec.yaml records the repository and commit of such a model, and of
// data converted from a Hub dataset; hf:// data a client could not resolve is looked up in this
// service's Hub cache (never downloaded: `temper data pull` fills it).
import { existsSync } from "node:fs";
import {
  COMMIT,
  cachedHubJsonl,
  HubError,
  isHfUrl,
  looksLikeRepoId,
  parseHfUrl,
  parseRepoId,
  snapshotOf,
} from "@temper/hub";
import { failedPrecondition } from "@temper/kit";

/** The repository and (if pinned) commit a spec's model names, when it names one by the Hub. */
export function hubModelOf(model: string): { id: string; commit?: string } | undefined {
  const snap = snapshotOf(model);
  if (snap?.type === "model") return { id: snap.id, commit: snap.commit };
  if (existsSync(model) || !looksLikeRepoId(model)) return undefined;
  const ref = parseRepoId(model);
  return { id: ref.id, commit: COMMIT.test(ref.revision) ? ref.revision : undefined };
}

/** Whether a rollout's model directory is the Hub model `want`. */
export function servesHubModel(want: { id: string; commit?: string }, served: string): boolean {
  const got = snapshotOf(served);
  return (
    got?.type === "model" && got.id === want.id && (want.commit === undefined || want.commit === got.commit)
  );
}

/** spec.yaml's `model_source` for a model directory in a Hub cache, else undefined. */
export function modelSource(model: string): { hub: string; commit: string } | undefined {
  const snap = snapshotOf(model);
  return snap?.type === "model" ? { hub: snap.id, commit: snap.commit } : undefined;
}

/** spec.yaml's `data_source` for data converted from a Hub dataset snapshot, else undefined. */
export function dataSource(path: string): { hub: string; commit: string; file: string } | undefined {
  const snap = snapshotOf(path);
  return snap?.type === "dataset" ? { hub: snap.id, commit: snap.commit, file: snap.path } : undefined;
}

/** An hf:// data value → its converted jsonl in this machine's Hub cache (FAILED_PRECONDITION when absent). */
export function hubDataPath(value: string, field: string): string {
  if (!isHfUrl(value)) return value;
  try {
    return cachedHubJsonl(parseHfUrl(value));
  } catch (err) {
    if (err instanceof HubError) throw failedPrecondition(`${field}: ${err.message}`);
    throw err;
  }
}
