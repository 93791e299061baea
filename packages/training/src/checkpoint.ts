// Training checkpoints on disk: one directory per checkpoint under a root, written atomically.
//
//   <root>/<name>.tmp-<random>/   files are written here, each fsynced, then a manifest
//   <root>/<name>/                … and the directory is renamed into place (the root fsynced)
//
// A directory named `<name>` therefore always holds a complete checkpoint; a leftover `*.tmp-*`
// (a crash mid-write) is ignored by every reader and removed by cleanTemporary. The manifest
// (checkpoint.json: file names and sizes) lets a reader reject a directory damaged afterwards.
// Step checkpoints are named `step-<N>`; latestCheckpoint picks the highest complete one.
import { randomBytes } from "node:crypto";
import {
  closeSync,
  existsSync,
  fsyncSync,
  mkdirSync,
  openSync,
  readdirSync,
  readFileSync,
  renameSync,
  rmSync,
  statSync,
  writeFileSync,
} from "node:fs";
import { join } from "node:path";

export const MANIFEST_FILE = "checkpoint.json";
const STEP_DIR = /^step-(\d+)$/;
const TMP_MARK = ".tmp-";

export interface CheckpointManifest {
  /** The directory's name (step-N, or another name such as "init"). */
  name: string;
  /** Every file of the checkpoint except the manifest, with its size in bytes. */
  files: Record<string, number>;
  /** ISO time of writing (informational; not part of the state). */
  written: string;
}

/** Name of step N's checkpoint directory. */
export function stepDirName(step: number): string {
  return `step-${step}`;
}

function fsyncPath(path: string): void {
  const fd = openSync(path, "r");
  try {
    fsyncSync(fd);
  } finally {
    closeSync(fd);
  }
}

/**
 * Writes checkpoint `<root>/<name>` atomically: `write(dir)` fills a temporary directory (files
 * only, no subdirectories), then every file is fsynced, the manifest written, the directory
 * renamed into place and the root fsynced. An existing `<root>/<name>` is replaced. Returns the
 * final path. If `write` throws, the temporary directory is removed and nothing changes.
 */
export function writeCheckpoint(root: string, name: string, write: (dir: string) => void): string {
  if (!name || name.includes("/") || name.includes(TMP_MARK) || name.startsWith("."))
    throw new Error(`checkpoint name ${JSON.stringify(name)} is not a plain directory name`);
  mkdirSync(root, { recursive: true });
  const tmp = join(root, `${name}${TMP_MARK}${randomBytes(6).toString("hex")}`);
  mkdirSync(tmp);
  try {
    write(tmp);
    const files: Record<string, number> = {};
    for (const f of readdirSync(tmp).sort()) {
      if (f === MANIFEST_FILE) throw new Error(`${MANIFEST_FILE} is reserved for the manifest`);
      const path = join(tmp, f);
      const st = statSync(path);
      if (!st.isFile()) throw new Error(`checkpoint ${name}: ${f} is not a plain file`);
      files[f] = st.size;
      fsyncPath(path);
    }
    const manifest: CheckpointManifest = { name, files, written: new Date().toISOString() };
    const mpath = join(tmp, MANIFEST_FILE);
    writeFileSync(mpath, `${JSON.stringify(manifest, null, 2)}\n`);
    fsyncPath(mpath);
    fsyncPath(tmp);
  } catch (err) {
    rmSync(tmp, { recursive: true, force: true });
    throw err;
  }
  const final = join(root, name);
  if (existsSync(final)) {
    // rename(2) cannot replace a non-empty directory: move the old one aside first.
    const old = join(root, `${name}${TMP_MARK}old-${randomBytes(6).toString("hex")}`);
    renameSync(final, old);
    renameSync(tmp, final);
    rmSync(old, { recursive: true, force: true });
  } else renameSync(tmp, final);
  fsyncPath(root);
  return final;
}

/** True when `dir` has a manifest and every file it lists, with the listed size. */
export function isCompleteCheckpoint(dir: string): boolean {
  try {
    const manifest = JSON.parse(readFileSync(join(dir, MANIFEST_FILE), "utf8")) as CheckpointManifest;
    if (typeof manifest !== "object" || manifest === null || typeof manifest.files !== "object") return false;
    for (const [f, size] of Object.entries(manifest.files)) {
      const st = statSync(join(dir, f), { throwIfNoEntry: false });
      if (!st?.isFile() || st.size !== size) return false;
    }
    return true;
  } catch {
    return false;
  }
}

export interface StepCheckpoint {
  step: number;
  dir: string;
}

/** Complete `step-<N>` checkpoints under `root`, oldest first (temporary directories ignored). */
export function listCheckpoints(root: string): StepCheckpoint[] {
  if (!existsSync(root)) return [];
  const out: StepCheckpoint[] = [];
  for (const entry of readdirSync(root, { withFileTypes: true })) {
    const m = STEP_DIR.exec(entry.name);
    if (!m || !entry.isDirectory()) continue;
    const dir = join(root, entry.name);
    if (isCompleteCheckpoint(dir)) out.push({ step: Number(m[1]), dir });
  }
  return out.sort((a, b) => a.step - b.step);
}

/** The newest complete step checkpoint, or undefined. */
export function latestCheckpoint(root: string): StepCheckpoint | undefined {
  return listCheckpoints(root).at(-1);
}

/** Removes leftover temporary directories (crashes mid-write); returns their names. */
export function cleanTemporary(root: string): string[] {
  if (!existsSync(root)) return [];
  const removed: string[] = [];
  for (const entry of readdirSync(root)) {
    if (!entry.includes(TMP_MARK)) continue;
    rmSync(join(root, entry), { recursive: true, force: true });
    removed.push(entry);
  }
  return removed;
}

/**
 * Keeps the newest `keep` complete step checkpoints and removes older step directories (and any
 * incomplete step directory older than the newest kept one); returns the removed steps.
 */
export function pruneCheckpoints(root: string, keep: number): number[] {
  if (!Number.isSafeInteger(keep) || keep < 1)
    throw new RangeError(`keep must be an integer ≥ 1, got ${keep}`);
  const complete = listCheckpoints(root);
  const kept = complete.slice(-keep);
  const oldestKept = kept[0]?.step ?? Number.POSITIVE_INFINITY;
  const removed: number[] = [];
  if (!existsSync(root)) return removed;
  for (const entry of readdirSync(root)) {
    const m = STEP_DIR.exec(entry);
    if (!m) continue;
    const step = Number(m[1]);
    if (step < oldestKept) {
      rmSync(join(root, entry), { recursive: true, force: true });
      removed.push(step);
    }
  }
  return removed.sort((a, b) => a - b);
}
