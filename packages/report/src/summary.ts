// Runs grouped into variants (one per spec `name`), series averaged over seeds, and the summary
// table's numbers. Everything here is plain data; render.ts turns it into HTML.
import type { EvalRow, Run } from "./load.ts";

/** The runs of one variant (its seeds), in the order they were given. */
export interface Variant {
  name: string;
  runs: Run[];
}

/** Groups runs by variant name, variants in order of first appearance. */
export function groupVariants(runs: Run[]): Variant[] {
  const byName = new Map<string, Variant>();
  for (const run of runs) {
    const v = byName.get(run.spec.name);
    if (v) v.runs.push(run);
    else byName.set(run.spec.name, { name: run.spec.name, runs: [run] });
  }
  return [...byName.values()];
}

/** One point of a series over seeds: x, mean, min, max, and how many seeds had a value. */
export type SeriesPoint = [x: number, mean: number, min: number, max: number, n: number];

/** One value of one run, keyed by step; x is where it is drawn (the step, or seconds). */
export interface Sample {
  step: number;
  x: number;
  y: number;
}

/**
 * Mean, min and max over runs at each step (over the runs that have a value there); x is the mean
 * of the runs' x at that step.
 */
export function aggregate(perRun: Sample[][]): SeriesPoint[] {
  const bySteps = new Map<number, { xs: number[]; ys: number[] }>();
  for (const samples of perRun)
    for (const s of samples) {
      if (!Number.isFinite(s.y) || !Number.isFinite(s.x)) continue;
      let b = bySteps.get(s.step);
      if (!b) {
        b = { xs: [], ys: [] };
        bySteps.set(s.step, b);
      }
      b.xs.push(s.x);
      b.ys.push(s.y);
    }
  return [...bySteps.entries()]
    .sort((a, b) => a[0] - b[0])
    .map(
      ([, b]) => [mean(b.xs), mean(b.ys), Math.min(...b.ys), Math.max(...b.ys), b.ys.length] as SeriesPoint,
    );
}

/** A metric of one run against step. */
export function metricSamples(run: Run, key: string): Sample[] {
  const out: Sample[] = [];
  for (const row of run.metrics) {
    const y = row.values[key];
    if (y !== undefined) out.push({ step: row.step, x: row.step, y });
  }
  return out;
}

/** Eval accuracy of one run against step, or against wall time (evals without elapsed left out). */
export function evalSamples(run: Run, against: "step" | "time"): Sample[] {
  const out: Sample[] = [];
  for (const e of run.evals ?? []) {
    if (against === "step") out.push({ step: e.step, x: e.step, y: e.accuracy });
    else if (e.elapsed !== null) out.push({ step: e.step, x: e.elapsed, y: e.accuracy });
  }
  return out;
}

/** Averages long series into at most `max` points (mean of means, min of mins, max of maxes). */
export function downsample(points: SeriesPoint[], max: number): SeriesPoint[] {
  if (points.length <= max) return points;
  const stride = Math.ceil(points.length / max);
  const out: SeriesPoint[] = [];
  for (let i = 0; i < points.length; i += stride) {
    const chunk = points.slice(i, i + stride);
    out.push([
      mean(chunk.map((p) => p[0])),
      mean(chunk.map((p) => p[1])),
      Math.min(...chunk.map((p) => p[2])),
      Math.max(...chunk.map((p) => p[3])),
      Math.min(...chunk.map((p) => p[4])),
    ]);
  }
  return out;
}

/** A mean over seeds with its standard error. */
export interface Stat {
  mean: number;
  /**
   * Over the eval problems of the seeds' per-problem mean (problemStderr) when every run kept its
   * per-problem answers; otherwise sqrt(Σ se_i²) / k, as if the k evaluations were independent.
   */
  se: number | null;
  /**
   * Over the seeds: sd(values) / √k (k ≥ 2 seeds, else null). The per-problem SE leaves out how much
   * a result moves from one seed to the next, which dominates at this size; a claim rests on the
   * larger of the two (seBoth).
   */
  seedSe: number | null;
  /** The seeds' own values, in run order. */
  values: number[];
}

/** The larger of a Stat's two standard errors: what a ✓ and a minimum detectable effect rest on. */
export function seBoth(s: { se: number | null; seedSe: number | null }): number | null {
  if (s.se === null && s.seedSe === null) return null;
  return Math.max(s.se ?? 0, s.seedSe ?? 0);
}

/** The SE of a mean over seeds from the seeds' spread: sd / √k; null under two seeds. */
export function seedStderr(values: number[]): number | null {
  const sd = std(values);
  return sd === null ? null : sd / Math.sqrt(values.length);
}

/** A ≈ 80% power, two-sided 5% test detects a true difference of 2.8 standard errors. */
export const MDE_FACTOR = 2.8;

/**
 * One variant's gain against the baseline's (the hard structure where there is one), paired by seed
 * and problem: per seed, per problem, (final − warm) of the variant minus that of the baseline.
 */
export interface Comparison {
  name: string;
  baseline: string;
  /** The seeds both ran. */
  seeds: number[];
  /** Mean over those seeds of the difference of gains. */
  mean: number;
  /** Over the problems of the per-problem mean difference (null where runs kept no answers). */
  se: number | null;
  /** Over the seeds of the per-seed mean difference (null under two seeds). */
  seedSe: number | null;
  /** MDE_FACTOR × seBoth: the smallest true difference this comparison would detect. */
  mde: number | null;
  /** |mean| exceeds two of seBoth. */
  clear: boolean;
  /** The per-seed differences. */
  values: number[];
  /**
   * The same for the area under the accuracy curve above the warm start (aucGain): how much more the
   * variant gained over the whole run, not only at its end. Null where the runs' evaluations are not
   * at the same steps.
   */
  auc: PairedDifference | null;
  /**
   * Steps to the baseline's halfway mark (per seed: its warm start plus half its gain), the variant's
   * minus the baseline's, per seed where both reach it (stepsToTarget). Null where the baseline
   * gained nothing.
   */
  steps: { values: number[]; mean: number | null; seedSe: number | null; reached: number; of: number } | null;
}

/** A difference paired by seed and problem, with both standard errors. */
export interface PairedDifference {
  mean: number;
  se: number | null;
  seedSe: number | null;
  mde: number | null;
  clear: boolean;
  values: number[];
}

export interface VariantSummary {
  name: string;
  structure: string | null;
  seeds: (number | null)[];
  warm: Stat | null;
  final: Stat | null;
  best: Stat | null;
  /**
   * Final − warm start, mean over seeds. Its SE is paired (the same problems answered before and
   * after, differences averaged over seeds per problem; much smaller than the two accuracies' own
   * SEs) when every run kept its per-problem answers, otherwise that of independent evaluations.
   */
  gain: (Stat & { paired: boolean /** The mean exceeds two standard errors. */; clear: boolean }) | null;
  /** maj@k at the warm start and the final evaluation, where the runs measured it. */
  warmMaj: Stat | null;
  finalMaj: Stat | null;
  /** pass@1 at the sampling temperature (from the maj@k samples), warm start and final. */
  warmPass1: Stat | null;
  finalPass1: Stat | null;
  /** Step of each run's final evaluation (normally equal). */
  finalSteps: number[];
  /** First eval step at which the seed-mean accuracy reaches the halfway target; null if never. */
  halfway: { step: number; elapsed: number | null } | null;
  /** The accuracy `halfway` looks for (null when there is no improvement over the warm start to halve). */
  halfwayTarget: number | null;
  /** Std (n−1) of each run's last N eval accuracies, averaged over runs. */
  stability: number | null;
  /** Training steps done per run (distinct steps in metrics.jsonl), and planned (spec steps). */
  stepsDone: number[];
  stepsPlanned: (number | null)[];
  /** Mean over runs of the wall time (seconds). */
  wallTime: number | null;
}

export interface ReportSummary {
  variants: VariantSummary[];
  /** The best final accuracy of any variant (mean over its seeds). */
  bestFinal: number | null;
  stabilityWindow: number;
  /** Every other variant against the baseline, paired by seed and problem. */
  comparisons: Comparison[];
}

export const STABILITY_WINDOW = 3;

export function summarize(variants: Variant[], stabilityWindow = STABILITY_WINDOW): ReportSummary {
  const partial = variants.map((v) => {
    const withEvals = v.runs.filter((r) => r.evals && r.evals.length > 0);
    const statOf = (pick: (evals: EvalRow[]) => EvalRow | undefined): Stat | null => {
      const rows = withEvals.map((r) => pick(r.evals!)).filter((e): e is EvalRow => e !== undefined);
      if (rows.length === 0) return null;
      const answers = sameProblems(rows.map((e) => e.solved));
      const ses = rows.map((e) => e.stderr);
      const se = answers ? problemStderr(answers.map(bits)) : independentStderr(ses);
      const values = rows.map((e) => e.accuracy);
      return { mean: mean(values), se, seedSe: seedStderr(values), values };
    };
    const majOf = (pick: (evals: EvalRow[]) => EvalRow | undefined): Stat | null => {
      const rows = withEvals.map((r) => pick(r.evals!)).filter((e): e is EvalRow => e?.majAccuracy != null);
      if (rows.length === 0) return null;
      const values = rows.map((e) => e.majAccuracy!);
      const ses = rows.map((e) => (e.n ? Math.sqrt((e.majAccuracy! * (1 - e.majAccuracy!)) / e.n) : null));
      return { mean: mean(values), se: independentStderr(ses), seedSe: seedStderr(values), values };
    };
    const pass1Of = (pick: (evals: EvalRow[]) => EvalRow | undefined): Stat | null => {
      const rows = withEvals.map((r) => pick(r.evals!)).filter((e): e is EvalRow => e?.pass1 != null);
      if (rows.length === 0) return null;
      const values = rows.map((e) => e.pass1!);
      const fractions = rows.map((e) => e.sampledFractions);
      const paired = fractions.every((f) => f !== null && f.length === fractions[0]!.length);
      return {
        mean: mean(values),
        se: paired ? problemStderr(fractions as number[][]) : null,
        seedSe: seedStderr(values),
        values,
      };
    };
    const gainOf = (): VariantSummary["gain"] => {
      const pairs = withEvals
        .map((r) => [r.evals!.find((e) => e.step === 0), r.evals![r.evals!.length - 1]] as const)
        .filter((p): p is readonly [EvalRow, EvalRow] => p[0] !== undefined && p[1].step > 0);
      if (pairs.length === 0) return null;
      const values = pairs.map(([w, f]) => f.accuracy - w.accuracy);
      const answers = sameProblems(pairs.flatMap(([w, f]) => [w.solved, f.solved]));
      if (answers) {
        // per problem, each run's after − before, averaged over runs
        const diffs = pairs.map((_, k) => {
          const [w, f] = [bits(answers[2 * k]), bits(answers[2 * k + 1])];
          return f.map((x, i) => x - w[i]);
        });
        return gainStat(values, problemStderr(diffs), true);
      }
      const se = independentStderr(
        pairs.map(([w, f]) =>
          w.stderr === null || f.stderr === null ? null : Math.hypot(w.stderr, f.stderr),
        ),
      );
      return gainStat(values, se, false);
    };
    const stabilities = withEvals
      .map((r) => std(r.evals!.slice(-stabilityWindow).map((e) => e.accuracy)))
      .filter((s): s is number => s !== null);
    const walls = v.runs.map(wallTime).filter((w): w is number => w !== null);
    return {
      name: v.name,
      structure: v.runs[0].spec.structure,
      seeds: v.runs.map((r) => r.spec.seed),
      warm: statOf((evals) => evals.find((e) => e.step === 0)),
      final: statOf((evals) => evals[evals.length - 1]),
      best: statOf((evals) => evals.reduce((b, e) => (e.accuracy > b.accuracy ? e : b))),
      gain: gainOf(),
      warmMaj: majOf((evals) => evals.find((e) => e.step === 0)),
      finalMaj: majOf((evals) => evals[evals.length - 1]),
      warmPass1: pass1Of((evals) => evals.find((e) => e.step === 0)),
      finalPass1: pass1Of((evals) => evals[evals.length - 1]),
      finalSteps: withEvals.map((r) => r.evals![r.evals!.length - 1].step),
      stability: stabilities.length > 0 ? mean(stabilities) : null,
      stepsDone: v.runs.map((r) => r.metrics.length),
      stepsPlanned: v.runs.map((r) => r.spec.steps),
      wallTime: walls.length > 0 ? mean(walls) : null,
      evalCurve: aggregate(v.runs.map((r) => evalSamples(r, "step"))),
      runs: withEvals,
    };
  });

  const finals = partial.map((p) => p.final?.mean).filter((m): m is number => m !== undefined);
  const bestFinal = finals.length > 0 ? Math.max(...finals) : null;

  const summaries: VariantSummary[] = partial.map(({ evalCurve, runs, ...p }) => {
    let halfway: VariantSummary["halfway"] = null;
    let halfwayTarget: number | null = null;
    if (p.warm && bestFinal !== null && bestFinal > p.warm.mean) {
      halfwayTarget = p.warm.mean + (bestFinal - p.warm.mean) / 2;
      // Compare with a little slack so that an exact hit in decimal is not lost to rounding.
      const hit = evalCurve.find((pt) => pt[1] >= halfwayTarget! - 1e-12);
      if (hit) {
        const step = hit[0];
        const times = runs
          .map((r) => r.evals!.find((e) => e.step === step)?.elapsed)
          .filter((t): t is number => typeof t === "number");
        halfway = { step, elapsed: times.length > 0 ? mean(times) : null };
      }
    }
    return { ...p, halfway, halfwayTarget };
  });
  return { variants: summaries, bestFinal, stabilityWindow, comparisons: compareVariants(variants) };
}

/** A run's wall time: the later of the last step's time/elapsed and the last eval's elapsed. */
export function wallTime(run: Run): number | null {
  let t: number | null = null;
  let summed = 0;
  let anyStepTime = false;
  for (const row of run.metrics) {
    const e = row.values["time/elapsed"];
    if (e !== undefined) t = Math.max(t ?? 0, e);
    const s = row.values["time/step"];
    if (s !== undefined) {
      summed += s;
      anyStepTime = true;
    }
  }
  if (t === null && anyStepTime) t = summed;
  for (const e of run.evals ?? []) if (e.elapsed !== null) t = Math.max(t ?? 0, e.elapsed);
  return t;
}

/** √(Σ se²)/k: the standard error of a mean of k independent evaluations (null if one has none). */
function independentStderr(ses: (number | null)[]): number | null {
  return ses.every((x) => x !== null) ? Math.sqrt(ses.reduce((a, x) => a + x! * x!, 0)) / ses.length : null;
}

/** A gain's Stat from its per-seed values and its SE over problems (paired or not). */
function gainStat(values: number[], se: number | null, paired: boolean): NonNullable<VariantSummary["gain"]> {
  const seedSe = seedStderr(values);
  const m = mean(values);
  return { mean: m, se, seedSe, values, paired, clear: clears(m, se, seedSe) };
}

function clears(gain: number, se: number | null, seedSe: number | null): boolean {
  const both = seBoth({ se, seedSe });
  return both !== null && both > 0 && gain > 2 * both;
}

/** Each run's warm-start and final evaluation, by seed (runs without both are left out). */
function gainRows(v: Variant): Map<number | null, readonly [EvalRow, EvalRow]> {
  const out = new Map<number | null, readonly [EvalRow, EvalRow]>();
  for (const r of v.runs) {
    const w = r.evals?.find((e) => e.step === 0);
    const f = r.evals?.[r.evals.length - 1];
    if (w && f && f.step > 0 && !out.has(r.spec.seed)) out.set(r.spec.seed, [w, f]);
  }
  return out;
}

/** The baseline: the variant under the hard structure (the first such, not a control), else the first variant. */
function baselineOf(variants: Variant[]): Variant | undefined {
  return (
    variants.find((v) => v.runs[0]?.spec.structure === "hard" && !v.runs[0]?.spec.control) ?? variants[0]
  );
}

/** Every other variant's gain against the baseline's, paired by seed and, where kept, by problem. */
export function compareVariants(variants: Variant[]): Comparison[] {
  const base = baselineOf(variants);
  if (!base) return [];
  const baseRows = gainRows(base);
  const out: Comparison[] = [];
  for (const v of variants) {
    if (v === base) continue;
    const pairs = [...gainRows(v)].flatMap(([seed, rows]) => {
      const b = baseRows.get(seed);
      return b && seed !== null ? [{ seed, a: b, b: rows }] : [];
    });
    if (pairs.length === 0) continue;
    const values = pairs.map(({ a, b }) => b[1].accuracy - b[0].accuracy - (a[1].accuracy - a[0].accuracy));
    const answers = sameProblems(
      pairs.flatMap(({ a, b }) => [a[0].solved, a[1].solved, b[0].solved, b[1].solved]),
    );
    const se = answers
      ? problemStderr(
          pairs.map((_, k) => {
            const [aw, af, bw, bf] = answers.slice(4 * k, 4 * k + 4).map(bits);
            return bf.map((x, i) => x - bw[i] - (af[i] - aw[i]));
          }),
        )
      : null;
    const d = pairedDifference(values, se);
    out.push({
      name: v.name,
      baseline: base.name,
      seeds: pairs.map((p) => p.seed),
      ...d,
      auc: aucDifference(base, v),
      steps: stepsDifference(base, v),
    });
  }
  return out;
}

function pairedDifference(values: number[], se: number | null): PairedDifference {
  const seedSe = seedStderr(values);
  const both = seBoth({ se, seedSe });
  const m = mean(values);
  return {
    mean: m,
    se,
    seedSe,
    mde: both === null ? null : MDE_FACTOR * both,
    clear: both !== null && both > 0 && Math.abs(m) > 2 * both,
    values,
  };
}

/**
 * The area under an accuracy curve above its start, per step: ∫₀ᵀ (y(t) − y(0)) dt / T with
 * trapezoids between the evaluations at steps t₀ = 0 < … < T. The mean gain over the run: a variant
 * that gets there sooner scores higher though both end at the same accuracy. Null without an
 * evaluation at step 0 and one after it.
 */
export function aucGain(points: readonly (readonly [step: number, value: number])[]): number | null {
  if (points.length < 2 || points[0][0] !== 0) return null;
  const T = points[points.length - 1][0];
  if (T <= 0) return null;
  let area = 0;
  for (let j = 1; j < points.length; j++)
    area += ((points[j][0] - points[j - 1][0]) * (points[j][1] + points[j - 1][1])) / 2;
  return area / T - points[0][1];
}

/**
 * The first step at which a curve reaches `target`, between evaluations by linear interpolation; null
 * if it never does.
 */
export function stepsToTarget(
  points: readonly (readonly [step: number, value: number])[],
  target: number,
): number | null {
  for (let j = 0; j < points.length; j++) {
    if (points[j][1] < target - 1e-12) continue;
    if (j === 0) return points[0][0];
    const [t0, y0] = points[j - 1];
    const [t1, y1] = points[j];
    return t0 + ((target - y0) / (y1 - y0)) * (t1 - t0);
  }
  return null;
}

/** Each seed's evaluations (the first run of that seed), ordered by step. */
function evalsBySeed(v: Variant): Map<number, EvalRow[]> {
  const out = new Map<number, EvalRow[]>();
  for (const r of v.runs)
    if (r.spec.seed !== null && r.evals && !out.has(r.spec.seed))
      out.set(
        r.spec.seed,
        [...r.evals].sort((a, b) => a.step - b.step),
      );
  return out;
}

const curve = (evals: EvalRow[]) => evals.map((e) => [e.step, e.accuracy] as const);

/** aucGain of the variant minus the baseline's, paired by seed and, where kept, by problem. */
function aucDifference(base: Variant, v: Variant): PairedDifference | null {
  const baseEvals = evalsBySeed(base);
  const pairs = [...evalsBySeed(v)].flatMap(([seed, evals]) => {
    const b = baseEvals.get(seed);
    const steps = (es: EvalRow[]) => es.map((e) => e.step).join(",");
    return b && steps(b) === steps(evals) && aucGain(curve(evals)) !== null ? [{ a: b, b: evals }] : [];
  });
  if (pairs.length === 0) return null;
  const values = pairs.map(({ a, b }) => aucGain(curve(b))! - aucGain(curve(a))!);
  const answers = sameProblems(pairs.flatMap(({ a, b }) => [...a, ...b].map((e) => e.solved)));
  let se: number | null = null;
  if (answers) {
    // per problem, the area of its own 0/1 curve: the variant's minus the baseline's
    const n = answers[0].length;
    let at = 0;
    const perSeed = pairs.map(({ a }) => {
      const rows = answers.slice(at, at + 2 * a.length).map(bits);
      at += 2 * a.length;
      const [ra, rb] = [rows.slice(0, a.length), rows.slice(a.length)];
      return Array.from({ length: n }, (_, i) => {
        const ya = a.map((e, j) => [e.step, ra[j][i]] as const);
        const yb = a.map((e, j) => [e.step, rb[j][i]] as const);
        return aucGain(yb)! - aucGain(ya)!;
      });
    });
    se = problemStderr(perSeed);
  }
  return pairedDifference(values, se);
}

/** Steps to the baseline's halfway mark, the variant's minus the baseline's, per seed. */
function stepsDifference(base: Variant, v: Variant): Comparison["steps"] {
  const baseEvals = evalsBySeed(base);
  const values: number[] = [];
  let reached = 0;
  let of = 0;
  for (const [seed, evals] of evalsBySeed(v)) {
    const b = baseEvals.get(seed);
    if (!b || b.length < 2 || b[0].step !== 0) continue;
    const gain = b[b.length - 1].accuracy - b[0].accuracy;
    if (gain <= 0) continue;
    of++;
    const target = b[0].accuracy + gain / 2;
    const [sb, sv] = [stepsToTarget(curve(b), target), stepsToTarget(curve(evals), target)];
    if (sv === null || sb === null) continue;
    reached++;
    values.push(sv - sb);
  }
  if (of === 0) return null;
  return {
    values,
    mean: values.length > 0 ? mean(values) : null,
    seedSe: seedStderr(values),
    reached,
    of,
  };
}

/** Every run's per-problem answers, when all have them for the same number of problems; else null. */
function sameProblems(solved: (string | null)[]): string[] | null {
  if (solved.length === 0 || solved.some((x) => x === null || x.length !== solved[0]!.length)) return null;
  return solved as string[];
}

function bits(solved: string): number[] {
  return Array.from(solved, (c) => (c === "1" ? 1 : 0));
}

/**
 * The standard error, over the eval problems, of a mean over runs that all answered the same n
 * problems: perRun[k][i] is run k's value on problem i (1/0 solved, or a before/after difference).
 * The problems are the sample: each problem's mean over runs is one draw, and the SE is
 * sqrt(Σ(v̄ᵢ − v̄)² / (n (n − 1))). Treating the runs' own SEs as independent (√(Σ se²)/k) would
 * shrink it by √k although every run answered the same problems.
 */
export function problemStderr(perRun: readonly (readonly number[])[]): number | null {
  const n = perRun[0]?.length ?? 0;
  if (n < 2) return null;
  const perProblem = Array.from({ length: n }, (_, i) => mean(perRun.map((r) => r[i])));
  const m = mean(perProblem);
  return Math.sqrt(perProblem.reduce((a, v) => a + (v - m) ** 2, 0) / (n * (n - 1)));
}

export function mean(xs: number[]): number {
  return xs.reduce((a, b) => a + b, 0) / xs.length;
}

/** Sample standard deviation (n − 1); null for fewer than two values. */
export function std(xs: number[]): number | null {
  if (xs.length < 2) return null;
  const m = mean(xs);
  return Math.sqrt(xs.reduce((a, x) => a + (x - m) ** 2, 0) / (xs.length - 1));
}
