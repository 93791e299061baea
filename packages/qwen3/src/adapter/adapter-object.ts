// Adapters in transit: the learner publishes every adapter version to the JetStream object store
// (bucket ADAPTER_BUCKET, object "<run_id>/<version>") and rollout fetches it by name. The object's
// bytes are exactly the PEFT adapter_model.safetensors; its adapter_config.json travels as the
// object's metadata entry ADAPTER_CONFIG_METADATA, so one object is one complete PEFT adapter.
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { Qwen3Config } from "../model/config.ts";
import type { Precision } from "../model/safetensors.ts";
import type { LoraAdapter } from "./lora.ts";
import {
  ADAPTER_CONFIG_FILE,
  ADAPTER_WEIGHTS_FILE,
  loadAdapter,
  type PeftAdapter,
  saveAdapter,
} from "./peft.ts";

export const ADAPTER_BUCKET = "temper_adapters";
export const ADAPTER_CONFIG_METADATA = "adapter_config";

/** The object name of a run's adapter version. */
export function adapterObjectName(runId: string, version: string): string {
  return `${runId}/${version}`;
}

export interface AdapterObject {
  /** adapter_model.safetensors bytes. */
  weights: Uint8Array;
  /** adapter_config.json text. */
  config: string;
}

/** Encodes an adapter as the object store holds it (F64 weights when `dtype` says so). */
export function encodeAdapterObject(
  adapter: LoraAdapter,
  options: { baseModel: string | null; dtype?: "F32" | "F64" },
): AdapterObject {
  const dir = mkdtempSync(join(tmpdir(), "temper-adapter-"));
  try {
    saveAdapter(dir, adapter, options);
    return {
      weights: new Uint8Array(readFileSync(join(dir, ADAPTER_WEIGHTS_FILE))),
      config: readFileSync(join(dir, ADAPTER_CONFIG_FILE), "utf8"),
    };
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

/** Decodes and validates an object against `model` (the same checks as loadAdapter). */
export function decodeAdapterObject(
  object: AdapterObject,
  model: Qwen3Config,
  precision: Precision,
): PeftAdapter {
  const dir = mkdtempSync(join(tmpdir(), "temper-adapter-"));
  try {
    writeFileSync(join(dir, ADAPTER_WEIGHTS_FILE), object.weights);
    writeFileSync(join(dir, ADAPTER_CONFIG_FILE), object.config);
    return precision === "float64" ? loadAdapter(dir, model, "float64") : loadAdapter(dir, model, "float32");
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}
