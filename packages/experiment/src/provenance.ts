// What a run was made from: the code's commit, the model's content hash and the data files'
// hashes, for the orchestrator to write into spec.yaml beside the resolved experiment.
import { execFile } from "node:child_process";
import { createHash } from "node:crypto";
import { createReadStream } from "node:fs";
import { dirname } from "node:path";
import { fileURLToPath } from "node:url";
import { promisify } from "node:util";
import type { orchestrator } from "@temper/proto";
import { modelContentHash } from "@temper/qwen3/model";

const run = promisify(execFile);

export interface Provenance {
  /** `git rev-parse HEAD` of the repository this package sits in, or "unknown". */
  commit: string;
  /** Tracked files differ from the commit (false when the commit is unknown). */
  dirty: boolean;
  /** modelContentHash of the model directory (config.json and weights). */
  model_hash: string;
  /** SHA-256 of each data file's bytes. */
  data_hashes: { train: string; eval: string };
}

export interface ProvenanceOptions {
  /** Where to ask git (default: this package's directory). */
  repoDir?: string;
}

/** SHA-256 (hex) of a file's bytes, read in chunks. */
export async function fileSha256(path: string): Promise<string> {
  const h = createHash("sha256");
  for await (const chunk of createReadStream(path, { highWaterMark: 4 << 20 })) h.update(chunk as Buffer);
  return h.digest("hex");
}

async function gitCommit(cwd: string): Promise<{ commit: string; dirty: boolean }> {
  try {
    const { stdout } = await run("git", ["rev-parse", "HEAD"], { cwd });
    const commit = stdout.trim();
    if (!/^[0-9a-f]{40,64}$/.test(commit)) return { commit: "unknown", dirty: false };
    const status = await run("git", ["status", "--porcelain", "--untracked-files=no"], { cwd }).catch(() => ({
      stdout: "",
    }));
    return { commit, dirty: status.stdout.trim() !== "" };
  } catch {
    return { commit: "unknown", dirty: false };
  }
}

/** The provenance of a resolved RunSpec (its model and data paths must exist here). */
export async function provenance(
  spec: orchestrator.RunSpec,
  opts: ProvenanceOptions = {},
): Promise<Provenance> {
  const repoDir = opts.repoDir ?? dirname(fileURLToPath(import.meta.url));
  const [git, model_hash, train, evalHash] = await Promise.all([
    gitCommit(repoDir),
    modelContentHash(spec.model),
    fileSha256(spec.trainData),
    fileSha256(spec.evalData),
  ]);
  return { ...git, model_hash, data_hashes: { train, eval: evalHash } };
}
