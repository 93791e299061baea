// Reading and validating one run directory written by the orchestrator: spec.yaml, metrics.jsonl
// (required), eval.jsonl and samples.jsonl (optional). Every error names the file and, where there
// is one, the line: "<dir>/metrics.jsonl:7: bad JSON: ...".
import { readFileSync, statSync } from "node:fs";
import { basename, join } from "node:path";
import { LineCounter, parseDocument } from "yaml";

/** An error in a run directory's files, one line, naming the file and line. */
export class ReportError extends Error {}

/** The keys of spec.yaml the report uses. */
export interface RunSpec {
  runId: string;
  /** The variant label ("hard", "continuous", ...): spec `name`, else `reward.structure`, else the run id. */
  name: string;
  seed: number | null;
  /** Planned training steps. */
  steps: number | null;
  structure: string | null;
  /** spec.yaml `reward.control` ("permute" for a control run); null for none. */
  control: string | null;
  model: string | null;
  createdAt: string | null;
  /**
   * Where the services computed (spec.yaml `machine`): CPU, its kernel flags, ONNX Runtime and the
   * intra-op threads, e.g. "AMD EPYC (avx2, avx512f) · onnxruntime 1.30.0 · threads: learner 2,
   * rollout 2"; null for runs written before it was recorded.
   */
  machine: string | null;
}

/** One line of metrics.jsonl: the numeric metrics present in it (null and missing values left out). */
export interface MetricRow {
  step: number;
  policyVersion: string | null;
  values: Record<string, number>;
}

export interface EvalRow {
  /** Training steps applied before the evaluation (0 = the warm start). */
  step: number;
  accuracy: number;
  /** Standard error; computed from accuracy and n when the line has none. */
  stderr: number | null;
  n: number | null;
  correct: number | null;
  /** Seconds since the run started. */
  elapsed: number | null;
  policyVersion: string | null;
  majAccuracy: number | null;
  /** Per problem, in eval-set order: "1" solved, "0" not (older runs have none). */
  solved: string | null;
  /** pass@1 at the sampling temperature (mean correct fraction of the maj@k samples), where measured. */
  pass1: number | null;
  /** Per problem, the fraction of its k samples that were correct (sampled_correct / maj_k). */
  sampledFractions: number[] | null;
}

export interface SampleRow {
  step: number;
  promptId: string | null;
  prompt: string;
  reference: string;
  completion: string;
  reward: number | null;
  advantage: number | null;
  correct: boolean | null;
}

export interface Run {
  dir: string;
  spec: RunSpec;
  /** Sorted by step; a repeated step keeps its last line. */
  metrics: MetricRow[];
  /** Sorted by step; null when the directory has no eval.jsonl. */
  evals: EvalRow[] | null;
  /** In file order; null when the directory has no samples.jsonl. */
  samples: SampleRow[] | null;
}

/** Metric keys whose values are text, not numbers. */
const TEXT_METRICS = new Set(["policy_version"]);
/** Key prefixes that must hold numbers (or null); other non-numeric keys are ignored. */
const NUMERIC_PREFIXES = ["reward/", "train/", "time/", "completions/", "accuracy/", "tokens/"];
const NUMERIC_KEYS = new Set(["alpha", "zero_signal_fraction"]);

/** Reads and validates the run directory `dir`. Throws ReportError on the first problem. */
export function loadRun(dir: string): Run {
  let isDir = false;
  try {
    isDir = statSync(dir).isDirectory();
  } catch {
    throw new ReportError(`${dir}: no such directory`);
  }
  if (!isDir) throw new ReportError(`${dir}: not a directory`);

  const spec = readSpec(join(dir, "spec.yaml"), dir);
  const metricsFile = join(dir, "metrics.jsonl");
  const metricsText = readText(metricsFile, true)!;
  const metrics = parseMetrics(metricsFile, metricsText);

  const evalFile = join(dir, "eval.jsonl");
  const evalText = readText(evalFile, false);
  const evals = evalText === null ? null : parseEvals(evalFile, evalText);

  const samplesFile = join(dir, "samples.jsonl");
  const samplesText = readText(samplesFile, false);
  const samples = samplesText === null ? null : parseSamples(samplesFile, samplesText);

  return { dir, spec, metrics, evals, samples };
}

/** The file's text; null when it is absent and not required. */
function readText(file: string, required: boolean): string | null {
  try {
    return readFileSync(file, "utf8");
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code === "ENOENT") {
      if (!required) return null;
      throw new ReportError(`${file}: no such file (a run directory needs ${basename(file)})`);
    }
    throw new ReportError(`${file}: cannot read: ${code ?? (err as Error).message}`);
  }
}

function readSpec(file: string, dir: string): RunSpec {
  const text = readText(file, true)!;
  const lineCounter = new LineCounter();
  const doc = parseDocument(text, { lineCounter, prettyErrors: false });
  if (doc.errors.length > 0) {
    const e = doc.errors[0];
    const line = lineCounter.linePos(e.pos[0]).line;
    throw new ReportError(`${file}:${line}: bad YAML: ${firstLine(e.message)}`);
  }
  const root = doc.toJS() as unknown;
  if (root === null || typeof root !== "object" || Array.isArray(root))
    throw new ReportError(`${file}:1: expected a mapping at the top level`);
  const spec = root as Record<string, unknown>;

  const lineOf = (path: string[]): number => {
    const node = doc.getIn(path, true) as { range?: [number, number, number] } | undefined;
    return node?.range ? lineCounter.linePos(node.range[0]).line : 1;
  };
  const fail = (path: string[], what: string): never => {
    throw new ReportError(`${file}:${lineOf(path)}: ${path.join(".")}: ${what}`);
  };
  const optString = (path: string[]): string | null => {
    let v: unknown = spec;
    for (const k of path)
      v = v !== null && typeof v === "object" ? (v as Record<string, unknown>)[k] : undefined;
    if (v === undefined || v === null) return null;
    if (typeof v === "string") return v;
    if (typeof v === "number" || typeof v === "boolean") return String(v);
    if (v instanceof Date) return v.toISOString();
    return fail(path, `expected a string, got ${describe(v)}`);
  };
  const optInteger = (key: string): number | null => {
    const v = spec[key];
    if (v === undefined || v === null) return null;
    if (typeof v !== "number" || !Number.isInteger(v))
      return fail([key], `expected an integer, got ${describe(v)}`);
    return v;
  };

  const reward = spec.reward;
  if (reward !== undefined && reward !== null && (typeof reward !== "object" || Array.isArray(reward)))
    fail(["reward"], `expected a mapping, got ${describe(reward)}`);
  const structure = optString(["reward", "structure"]);
  const runId = optString(["run_id"]) ?? basename(dir);
  const steps = optInteger("steps");
  if (steps !== null && steps < 0) fail(["steps"], "expected a non-negative integer");
  return {
    runId,
    name: optString(["name"]) ?? structure ?? runId,
    seed: optInteger("seed"),
    steps,
    structure,
    control: optString(["reward", "control"]),
    model: modelLabel(spec.model, () => fail(["model"], `expected a string or a mapping`)),
    createdAt: optString(["created_at"]),
    machine: machineLabel(spec.machine),
  };
}

/** One line for spec.yaml's `machine: {learner: M, rollout: [M...]}` (see RunSpec.machine). */
function machineLabel(v: unknown): string | null {
  if (v === null || typeof v !== "object" || Array.isArray(v)) return null;
  const m = v as Record<string, unknown>;
  const entries: [string, Record<string, unknown>][] = [];
  if (m.learner && typeof m.learner === "object")
    entries.push(["learner", m.learner as Record<string, unknown>]);
  if (Array.isArray(m.rollout))
    for (const r of m.rollout)
      if (r && typeof r === "object") entries.push(["rollout", r as Record<string, unknown>]);
  if (entries.length === 0) return null;
  const hosts = new Set(
    entries.map(([, e]) => {
      const flags = Array.isArray(e.cpu_flags) ? e.cpu_flags.map(String).join(", ") : "";
      return `${String(e.cpu_model ?? "unknown CPU")}${flags ? ` (${flags})` : ""} · onnxruntime ${String(e.onnxruntime_version ?? "?")}`;
    }),
  );
  const threads = [...new Set(entries.map(([who, e]) => `${who} ${String(e.intra_op_threads ?? "?")}`))];
  return `${[...hosts].join("; ")} · threads: ${threads.join(", ")}`;
}

/** `model` may be a path or a mapping (path, name, content hash...): a short label either way. */
function modelLabel(v: unknown, fail: () => never): string | null {
  if (v === undefined || v === null) return null;
  if (typeof v === "string") return v;
  if (typeof v === "object" && !Array.isArray(v)) {
    const m = v as Record<string, unknown>;
    for (const k of ["name", "path", "id", "dir"]) if (typeof m[k] === "string") return m[k] as string;
    return JSON.stringify(m);
  }
  return fail();
}

/** Each non-blank line parsed as a JSON object, with its 1-based line number. */
function* jsonLines(file: string, text: string): Generator<[number, Record<string, unknown>]> {
  const lines = text.split("\n");
  for (let i = 0; i < lines.length; i++) {
    const line = lines[i].trim();
    if (line === "") continue;
    let value: unknown;
    try {
      value = JSON.parse(line);
    } catch (err) {
      throw new ReportError(`${file}:${i + 1}: bad JSON: ${firstLine((err as Error).message)}`);
    }
    if (value === null || typeof value !== "object" || Array.isArray(value))
      throw new ReportError(`${file}:${i + 1}: expected a JSON object, got ${describe(value)}`);
    yield [i + 1, value as Record<string, unknown>];
  }
}

function parseMetrics(file: string, text: string): MetricRow[] {
  const byStep = new Map<number, MetricRow>();
  let previous = -1;
  for (const [line, obj] of jsonLines(file, text)) {
    const at = `${file}:${line}`;
    // A line without a step follows the one before it.
    const step = obj.step === undefined || obj.step === null ? previous + 1 : stepOf(at, obj.step);
    previous = step;
    const values: Record<string, number> = {};
    let policyVersion: string | null = null;
    for (const [key, v] of Object.entries(obj)) {
      if (key === "step" || v === null || v === undefined) continue;
      if (TEXT_METRICS.has(key)) {
        policyVersion = String(v);
        continue;
      }
      if (typeof v === "number") values[key] = v;
      else if (typeof v === "boolean") values[key] = v ? 1 : 0;
      else if (NUMERIC_KEYS.has(key) || NUMERIC_PREFIXES.some((p) => key.startsWith(p)))
        throw new ReportError(`${at}: "${key}": expected a number or null, got ${describe(v)}`);
    }
    byStep.set(step, { step, policyVersion, values });
  }
  return [...byStep.values()].sort((a, b) => a.step - b.step);
}

function parseEvals(file: string, text: string): EvalRow[] {
  const byStep = new Map<number, EvalRow>();
  for (const [line, obj] of jsonLines(file, text)) {
    const at = `${file}:${line}`;
    if (obj.step === undefined || obj.step === null) throw new ReportError(`${at}: "step" is missing`);
    const step = stepOf(at, obj.step);
    const accuracy = optNumber(at, obj, "accuracy");
    if (accuracy === null) throw new ReportError(`${at}: "accuracy" is missing`);
    if (accuracy < 0 || accuracy > 1)
      throw new ReportError(`${at}: "accuracy": expected a number in [0, 1], got ${accuracy}`);
    const n = optNumber(at, obj, "n");
    let stderr = optNumber(at, obj, "stderr");
    if (stderr === null && n !== null && n > 0) stderr = Math.sqrt((accuracy * (1 - accuracy)) / n);
    byStep.set(step, {
      step,
      accuracy,
      stderr,
      n,
      correct: optNumber(at, obj, "correct"),
      elapsed: optNumber(at, obj, "elapsed"),
      policyVersion:
        obj.policy_version === undefined || obj.policy_version === null ? null : String(obj.policy_version),
      majAccuracy: optNumber(at, obj, "maj_accuracy"),
      solved: solvedOf(at, obj.solved, n),
      pass1: optNumber(at, obj, "pass1"),
      sampledFractions: fractionsOf(at, obj.sampled_correct, optNumber(at, obj, "maj_k"), n),
    });
  }
  return [...byStep.values()].sort((a, b) => a.step - b.step);
}

function fractionsOf(at: string, v: unknown, k: number | null, n: number | null): number[] | null {
  if (v === undefined || v === null) return null;
  if (!Array.isArray(v) || k === null || k < 1 || v.some((c) => !Number.isInteger(c) || c < 0 || c > k))
    throw new ReportError(`${at}: "sampled_correct": expected integers in [0, maj_k] per problem`);
  if (n !== null && v.length !== n)
    throw new ReportError(`${at}: "sampled_correct": ${v.length} counts for n ${n}`);
  return v.map((c: number) => c / k);
}

function solvedOf(at: string, v: unknown, n: number | null): string | null {
  if (v === undefined || v === null) return null;
  if (typeof v !== "string" || !/^[01]*$/.test(v))
    throw new ReportError(`${at}: "solved": expected a string of 0s and 1s`);
  if (n !== null && v.length !== n) throw new ReportError(`${at}: "solved": ${v.length} answers for n ${n}`);
  return v;
}

function parseSamples(file: string, text: string): SampleRow[] {
  const rows: SampleRow[] = [];
  for (const [line, obj] of jsonLines(file, text)) {
    const at = `${file}:${line}`;
    if (obj.step === undefined || obj.step === null) throw new ReportError(`${at}: "step" is missing`);
    const correct = obj.correct;
    if (
      correct !== undefined &&
      correct !== null &&
      typeof correct !== "boolean" &&
      typeof correct !== "number"
    )
      throw new ReportError(`${at}: "correct": expected a boolean, got ${describe(correct)}`);
    rows.push({
      step: stepOf(at, obj.step),
      promptId: obj.prompt_id === undefined || obj.prompt_id === null ? null : String(obj.prompt_id),
      prompt: optText(at, obj, "prompt"),
      reference: optText(at, obj, "reference"),
      completion: optText(at, obj, "completion"),
      reward: optNumber(at, obj, "reward"),
      advantage: optNumber(at, obj, "advantage"),
      correct: correct === undefined || correct === null ? null : Boolean(correct),
    });
  }
  return rows;
}

function stepOf(at: string, v: unknown): number {
  if (typeof v !== "number" || !Number.isInteger(v) || v < 0)
    throw new ReportError(`${at}: "step": expected a non-negative integer, got ${describe(v)}`);
  return v;
}

function optNumber(at: string, obj: Record<string, unknown>, key: string): number | null {
  const v = obj[key];
  if (v === undefined || v === null) return null;
  if (typeof v !== "number") throw new ReportError(`${at}: "${key}": expected a number, got ${describe(v)}`);
  return v;
}

/** Text fields: strings, or numbers (a numeric reference) written as text. */
function optText(at: string, obj: Record<string, unknown>, key: string): string {
  const v = obj[key];
  if (v === undefined || v === null) return "";
  if (typeof v === "string") return v;
  if (typeof v === "number") return String(v);
  throw new ReportError(`${at}: "${key}": expected a string, got ${describe(v)}`);
}

function describe(v: unknown): string {
  if (v === null) return "null";
  if (Array.isArray(v)) return "an array";
  if (typeof v === "string") return JSON.stringify(v.length > 40 ? `${v.slice(0, 40)}…` : v);
  if (typeof v === "object") return "an object";
  return `${typeof v} ${String(v)}`;
}

function firstLine(s: string): string {
  return s.split("\n")[0];
}
