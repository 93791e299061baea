// A run's model named by the Hub (an id, or a snapshot in a Hub cache the orchestrator may not
// mount): the rollouts' own model is accepted when it is that repository's snapshot (at that commit
// when the spec names one), so the orchestrator checks the model by commit and content hash
// without needing its weights. spec.yaml records the repository and commit of such a model.
import { existsSync } from "node:fs";
import { COMMIT, looksLikeRepoId, parseRepoId, snapshotOf } from "@temper/hub";

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
