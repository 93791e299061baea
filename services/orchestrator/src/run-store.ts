// Where a run's state lives, so that a SIGKILL at any moment loses nothing:
// - JetStream KV (bucket temper_orchestrator, key run.<id>): status, spec, steps done, policy
//   version, evaluations, elapsed time and the lease (owner + expiry). Writes are compare-and-set
//   on the revision this process last saw, so two orchestrators never both drive a run.
// - the run directory <RUNS_DIR>/<id>/: spec.yaml, metrics.jsonl, eval.jsonl, samples.jsonl, and
//   steps/<N>/{rollout,scored}.bin — a step's rollout and its scores, stored before training, so a
//   resumed step reuses them and never regenerates or rescores.
import { access, appendFile, mkdir, open, readdir, readFile, rename, rm } from "node:fs/promises";
import { dirname, join } from "node:path";
import type { KV } from "@nats-io/kv";
import { orchestrator } from "@temper/proto";

export const RUNS_BUCKET = "temper_orchestrator";

export type RunStatusName = "PENDING" | "RUNNING" | "SUCCEEDED" | "FAILED" | "STOPPED";

export interface EvalRecord {
  step: number;
  accuracy: number;
  stderr: number;
  n: number;
  correct: number;
  /** Problem i solved: character i is "1", else "0" (n characters, in the eval set's order). */
  solved?: string;
  /** maj@k, when the spec asks for it (EvalSpec.maj_k ≥ 2). */
  maj_k?: number;
  maj_accuracy?: number;
  maj_stderr?: number;
  /**
   * pass@1 at the sampling temperature: the mean over problems of the fraction of the maj@k samples
   * that are correct, with its SE over problems; `sampled_correct[i]` is how many of problem i's k
   * samples were (kept so that two evaluations can be paired).
   */
  pass1?: number;
  pass1_stderr?: number;
  sampled_correct?: number[];
  elapsed: number;
  seconds: number;
  policy_version: string;
}

export interface RunRecord {
  runId: string;
  status: RunStatusName;
  /** RunSpec, protobuf, base64: exact. */
  spec: string;
  stepsDone: number;
  policyVersion: string;
  evals: EvalRecord[];
  latest: { step: number; values: Record<string, number>; policyVersion: string } | null;
  error: string;
  startedAtMs: number;
  endedAtMs: number;
  /** Wall seconds spent driving the run before the current drive began. */
  elapsedSeconds: number;
  directory: string;
  owner: string;
  leaseUntilMs: number;
}

export class LeaseLostError extends Error {
  override name = "LeaseLostError";
}

export const encodeSpec = (s: orchestrator.RunSpec) =>
  Buffer.from(orchestrator.RunSpec.encode(s).finish()).toString("base64");
export const decodeSpec = (b64: string) => orchestrator.RunSpec.decode(Buffer.from(b64, "base64"));

const key = (runId: string) => `run.${runId}`;

/** The run records in KV, with the revision each was last read or written at. */
export class RunTable {
  private readonly revisions = new Map<string, number>();

  /** `owner` names this orchestrator; a restarted one with the same name takes its runs back at once. */
  constructor(
    private readonly kv: KV,
    readonly owner: string,
  ) {}

  async get(runId: string): Promise<RunRecord | null> {
    const e = await this.kv.get(key(runId));
    if (e?.operation !== "PUT" || e.value.length === 0) return null;
    this.revisions.set(runId, e.revision);
    return JSON.parse(e.string()) as RunRecord;
  }

  async list(): Promise<RunRecord[]> {
    const out: RunRecord[] = [];
    const keys = await this.kv.keys("run.>");
    for await (const k of keys) {
      const r = await this.get(k.slice(4));
      if (r) out.push(r);
    }
    return out.sort((a, b) => a.startedAtMs - b.startedAtMs || a.runId.localeCompare(b.runId));
  }

  /** A new run; false when the id exists. */
  async create(rec: RunRecord): Promise<boolean> {
    try {
      this.revisions.set(rec.runId, await this.kv.create(key(rec.runId), JSON.stringify(rec)));
      return true;
    } catch {
      return false;
    }
  }

  /**
   * Writes of ours whose answer never came (a NATS timeout): each may have landed. A compare-and-set
   * that then fails finds one of them stored, and knows the run is still its own.
   */
  private readonly unanswered = new Map<string, Set<string>>();

  /** Compare-and-set against the revision this process last saw; LeaseLostError otherwise. */
  async save(rec: RunRecord): Promise<void> {
    const rev = this.revisions.get(rec.runId);
    if (rev === undefined) throw new LeaseLostError(`run ${rec.runId} was never read here`);
    const json = JSON.stringify(rec);
    const unanswered = this.unanswered.get(rec.runId) ?? new Set<string>();
    try {
      this.revisions.set(rec.runId, await this.kv.update(key(rec.runId), json, rev));
      this.unanswered.delete(rec.runId);
    } catch (err) {
      if (!/wrong last sequence|revision/i.test((err as Error).message)) {
        unanswered.add(json);
        this.unanswered.set(rec.runId, unanswered);
        throw err;
      }
      const stored = await this.kv.get(key(rec.runId));
      if (stored?.operation === "PUT" && unanswered.has(stored.string())) {
        this.unanswered.delete(rec.runId);
        this.revisions.set(rec.runId, stored.revision);
        return this.save(rec);
      }
      throw new LeaseLostError(`run ${rec.runId} was changed by another orchestrator`);
    }
  }
}

/**
 * Writes a file whole or not at all: temporary file, fsync, rename. Asynchronous, as is every file
 * operation of a run directory: they run on the thread that answers RPCs.
 */
export async function writeAtomic(path: string, data: string | Uint8Array): Promise<void> {
  await mkdir(dirname(path), { recursive: true });
  const tmp = `${path}.tmp-${process.pid}`;
  const fh = await open(tmp, "w");
  try {
    await fh.writeFile(data);
    await fh.sync();
  } finally {
    await fh.close();
  }
  await rename(tmp, path);
}

const exists = (p: string) =>
  access(p).then(
    () => true,
    () => false,
  );

/** The files of one run directory. */
export class RunDir {
  private constructor(readonly path: string) {}

  static async open(path: string): Promise<RunDir> {
    await mkdir(join(path, "steps"), { recursive: true });
    return new RunDir(path);
  }

  file(name: string): string {
    return join(this.path, name);
  }

  private stepFile(step: number, name: string): string {
    return join(this.path, "steps", String(step), name);
  }

  async readStep(step: number, name: string): Promise<Uint8Array | null> {
    const p = this.stepFile(step, name);
    return (await exists(p)) ? new Uint8Array(await readFile(p)) : null;
  }

  writeStep(step: number, name: string, bytes: Uint8Array): Promise<void> {
    return writeAtomic(this.stepFile(step, name), bytes);
  }

  /** Keeps the stored steps from `from` on (older ones are trained on and no longer needed). */
  async pruneSteps(from: number): Promise<void> {
    for (const d of await readdir(join(this.path, "steps")))
      if (/^\d+$/.test(d) && Number(d) < from)
        await rm(join(this.path, "steps", d), { recursive: true, force: true });
  }

  append(name: string, record: object): Promise<void> {
    return appendFile(this.file(name), `${JSON.stringify(record)}\n`);
  }

  /**
   * Keeps the lines of a jsonl file whose `step` passes `keep` (and drops a torn last line), so a
   * resumed run appends each step's line exactly once.
   */
  async repair(name: string, keep: (step: number) => boolean): Promise<void> {
    const p = this.file(name);
    if (!(await exists(p))) return;
    const kept = (await this.readLines(name)).filter((line) => {
      const r = JSON.parse(line) as { step?: unknown };
      return typeof r.step === "number" && keep(r.step);
    });
    await writeAtomic(p, kept.length ? `${kept.join("\n")}\n` : "");
  }

  rewrite(name: string, records: object[]): Promise<void> {
    return writeAtomic(this.file(name), records.map((r) => `${JSON.stringify(r)}\n`).join(""));
  }

  async readJsonl<T>(name: string): Promise<T[]> {
    return (await this.readLines(name)).map((line) => JSON.parse(line) as T);
  }

  /** The file's lines that parse as JSON (a line torn by a kill mid-append does not). */
  private async readLines(name: string): Promise<string[]> {
    const p = this.file(name);
    if (!(await exists(p))) return [];
    return (await readFile(p, "utf8")).split("\n").filter((line) => {
      if (!line.trim()) return false;
      try {
        JSON.parse(line);
        return true;
      } catch {
        return false;
      }
    });
  }
}
