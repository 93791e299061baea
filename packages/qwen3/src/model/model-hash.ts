// A model directory's identity: SHA-256 over config.json and its weight files, so a service can
// say which model it serves and an orchestrator can refuse a run whose spec names another one.
// Tokenizer files are left out: they do not change what the weights compute.
import { createHash } from "node:crypto";
import { createReadStream, existsSync, readFileSync, statSync } from "node:fs";
import { join } from "node:path";
import { INDEX_FILE, SINGLE_FILE } from "./checkpoint.ts";
import { CONFIG_FILE } from "./model-dir.ts";

/** The weight files of a model directory, sorted: the index's shards, else model.safetensors. */
function weightFiles(dir: string): string[] {
  const index = join(dir, INDEX_FILE);
  if (existsSync(index)) {
    const map = JSON.parse(readFileSync(index, "utf8")).weight_map as Record<string, string>;
    return [...new Set(Object.values(map))].sort();
  }
  return [SINGLE_FILE];
}

/** The files the content hash covers: config.json, then the weight files. */
export function modelFiles(dir: string): string[] {
  return [CONFIG_FILE, ...weightFiles(dir)];
}

/**
 * SHA-256 over config.json and the weight files, each preceded by its name and size, read in
 * chunks so the event loop keeps running.
 */
export async function modelContentHash(dir: string): Promise<string> {
  const h = createHash("sha256");
  for (const name of modelFiles(dir)) {
    const path = join(dir, name);
    h.update(`${name}\0${statSync(path).size}\0`);
    for await (const chunk of createReadStream(path, { highWaterMark: 4 << 20 })) h.update(chunk as Buffer);
  }
  return h.digest("hex");
}
