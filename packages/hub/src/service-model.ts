// A service's base model by Hub id: MODEL=ORG/NAME[@REVISION] beside MODEL_DIR (which wins when
// both are set). The id is answered from the Hub cache alone: a service never downloads; a one-shot
// `temper model pull` (compose's model-pull, the k8s model-pull Job) fills the cache first. The
// variables are VarSpecs of @temper/kit's env schema, declared in each service's declaration.ts.
import { cachedModelDir, isModelId } from "./models.ts";

export const MODEL_VAR = {
  doc: "base model as a Hub id, ORG/NAME[@REVISION], found in the Hub cache (filled beforehand by `temper model pull`; the service never downloads); MODEL_DIR wins when both are set",
  kind: "Hub model id or directory",
  optional: true as const,
  parse(raw: string): string {
    return isModelId(raw) ? cachedModelDir(raw) : raw;
  },
};

export const HF_HUB_CACHE_VAR = {
  doc: "the Hugging Face Hub cache MODEL is found in (default $HF_HOME/hub, else ~/.cache/huggingface/hub)",
  kind: "directory",
  optional: true as const,
  parse: (raw: string) => raw,
};

/** The model directory a service serves, from its MODEL_DIR or MODEL (resolved by MODEL_VAR). */
export function serviceModelDir(c: { MODEL_DIR?: string; MODEL?: string }): string {
  const dir = c.MODEL_DIR ?? c.MODEL;
  if (!dir)
    throw new Error("MODEL_DIR or MODEL is required (a model directory, or a Hub id in the Hub cache)");
  return dir;
}
