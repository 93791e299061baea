// renderReport: one self-contained HTML page comparing runs. Tables and samples are rendered here
// as escaped HTML; the plots are drawn in the browser by browser/plots.js (inlined) from a JSON
// block of ready-made series (means, min and max over seeds). Nothing is fetched: a
// Content-Security-Policy forbids every load, and the page records script errors in
// document.body.dataset.errors.
import { readFileSync } from "node:fs";
import type { Run, SampleRow } from "./load.ts";
import {
  aggregate,
  type Comparison,
  downsample,
  evalSamples,
  groupVariants,
  MDE_FACTOR,
  metricSamples,
  type ReportSummary,
  type SeriesPoint,
  type Stat,
  seBoth,
  summarize,
  type Variant,
  type VariantSummary,
} from "./summary.ts";

/** One colour per variant, in order (Tableau 10); the same colour in every plot and table. */
export const PALETTE = [
  "#4e79a7",
  "#f28e2b",
  "#59a14f",
  "#e15759",
  "#b07aa1",
  "#76b7b2",
  "#edc948",
  "#ff9da7",
  "#9c755f",
  "#bab0ac",
];

/** Series longer than this are averaged into this many points. */
const MAX_POINTS = 1000;
/** Sample completions shown per variant. */
const SAMPLES_PER_VARIANT = 4;

export interface RenderOptions {
  title?: string;
}

/** What browser/plots.js draws: one entry per plot. */
export interface PlotSpec {
  id: string;
  group: "eval" | "reward" | "train";
  kind: "line" | "dots";
  title: string;
  xLabel: string;
  /** "seconds": the client picks s, min or h for the ticks. */
  xUnit: "step" | "seconds" | "variant";
  yLabel: string;
  /** Values are fractions: the y axis stays within [0, 1]. */
  unit: boolean;
  markers: boolean;
  series: { variant: string; points: SeriesPoint[] }[];
  dots: { variant: string; mean: number; se: number | null; values: number[] }[];
  baselines: { label: string; value: number; variant: string | null }[];
}

export interface ReportData {
  variants: { name: string; color: string; seeds: number }[];
  plots: PlotSpec[];
}

export function renderReport(runs: Run[], options: RenderOptions = {}): string {
  if (runs.length === 0) throw new Error("renderReport: no runs");
  const variants = groupVariants(runs);
  const summary = summarize(variants);
  const colors = new Map(variants.map((v, i) => [v.name, PALETTE[i % PALETTE.length]]));
  const data: ReportData = {
    variants: variants.map((v) => ({ name: v.name, color: colors.get(v.name)!, seeds: v.runs.length })),
    plots: buildPlots(variants, summary),
  };
  const title = options.title ?? `Temper report: ${variants.map((v) => v.name).join(" · ")}`;
  const models = [...new Set(runs.map((r) => r.spec.model).filter((m): m is string => m !== null))];
  const machines = [...new Set(runs.map((r) => r.spec.machine).filter((m): m is string => m !== null))];

  return `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta http-equiv="Content-Security-Policy" content="default-src 'none'; script-src 'unsafe-inline'; style-src 'unsafe-inline'; img-src data:">
<title>${esc(title)}</title>
<style>
${CSS}
</style>
</head>
<body data-errors="">
<script>
${browserScript("errors.js")}
</script>
<header>
<h1>${esc(title)}</h1>
<p class="meta">${runs.length} run${runs.length === 1 ? "" : "s"}, ${variants.length} variant${variants.length === 1 ? "" : "s"}${models.length > 0 ? ` · model ${models.map((m) => `<code>${esc(m)}</code>`).join(", ")}` : ""}</p>
${machines.length > 0 ? `<p class="meta machine">machine ${machines.map(esc).join(" | ")}</p>\n` : ""}<p class="legend">${variants.map((v) => swatch(colors.get(v.name)!, v.name)).join(" ")}</p>
</header>
<main>
<section id="summary">
<h2>Summary</h2>
${summaryTable(summary, colors)}
</section>
<section id="eval">
<h2>Held-out accuracy</h2>
<div class="grid" id="plots-eval"></div>
</section>
<section id="reward">
<h2>Reward</h2>
<div class="grid" id="plots-reward"></div>
</section>
<section id="train">
<h2>Training</h2>
<div class="grid" id="plots-train"></div>
</section>
<section id="samples">
<h2>Sample completions</h2>
${samplesSection(variants, colors)}
</section>
<section id="runs">
<h2>Runs</h2>
${runsTable(variants, colors)}
</section>
</main>
<script type="application/json" id="report-data">${jsonForScript(data)}</script>
<script>
${browserScript("plots.js")}
</script>
</body>
</html>
`;
}

/** Escapes text for HTML content and double-quoted attributes. */
export function esc(s: string): string {
  return s.replace(
    /[&<>"']/g,
    (c) => `&${{ "&": "amp", "<": "lt", ">": "gt", '"': "quot", "'": "#39" }[c]};`,
  );
}

/** JSON that cannot end its <script> element: every "<" is written as \u003c. */
function jsonForScript(value: unknown): string {
  return JSON.stringify(value)
    .replace(/</g, "\\u003c")
    .replace(/\u2028/g, "\\u2028")
    .replace(/\u2029/g, "\\u2029");
}

function browserScript(name: string): string {
  const code = readFileSync(new URL(`./browser/${name}`, import.meta.url), "utf8");
  if (/<\/script|<!--/i.test(code)) throw new Error(`browser/${name} must not contain "</script" or "<!--"`);
  return code.trimEnd();
}

function buildPlots(variants: Variant[], summary: ReportSummary): PlotSpec[] {
  const plots: PlotSpec[] = [];
  const base = {
    unit: false,
    markers: false,
    dots: [] as PlotSpec["dots"],
    baselines: [] as PlotSpec["baselines"],
    xLabel: "training step",
    xUnit: "step" as const,
  };
  const metricPlot = (group: PlotSpec["group"], key: string, title: string, yLabel: string, unit = false) =>
    plots.push({
      ...base,
      id: plotId(key),
      group,
      kind: "line",
      title,
      yLabel,
      unit,
      series: variants.map((v) => ({
        variant: v.name,
        points: rounded(downsample(aggregate(v.runs.map((r) => metricSamples(r, key))), MAX_POINTS)),
      })),
    });

  // Held-out accuracy against step and wall time, then the final value per variant.
  const warm = warmBaselines(summary.variants);
  for (const against of ["step", "time"] as const)
    plots.push({
      ...base,
      id: `eval-accuracy-${against}`,
      group: "eval",
      kind: "line",
      title: `Held-out accuracy against ${against === "step" ? "step" : "wall time"}`,
      xLabel: against === "step" ? "training steps applied" : "wall time",
      xUnit: against === "step" ? "step" : "seconds",
      yLabel: "accuracy",
      unit: true,
      markers: true,
      series: variants.map((v) => ({
        variant: v.name,
        points: rounded(aggregate(v.runs.map((r) => evalSamples(r, against)))),
      })),
      baselines: warm,
    });

  plots.push({
    ...base,
    id: "final-accuracy",
    group: "eval",
    kind: "dots",
    title: "Final held-out accuracy (mean ± SE; hollow: seeds)",
    xLabel: "variant",
    xUnit: "variant",
    yLabel: "accuracy",
    unit: true,
    series: [],
    dots: summary.variants.flatMap((s) =>
      s.final ? [{ variant: s.name, mean: s.final.mean, se: s.final.se, values: s.final.values }] : [],
    ),
    baselines: warm,
  });
  metricPlot("reward", "reward/mean", "Train reward (batch mean)", "reward");
  for (const key of componentKeys(variants))
    metricPlot("reward", key, `Reward component ${key.slice("reward/".length)}`, "batch mean");
  metricPlot("reward", "reward/std", "Reward std (batch)", "std");
  metricPlot("reward", "alpha", "α (hard/continuous mix)", "α", true);
  metricPlot(
    "reward",
    "zero_signal_fraction",
    "Zero-signal fraction (groups with no reward spread)",
    "fraction",
    true,
  );
  metricPlot("reward", "accuracy/train", "Train accuracy (batch correctness_hard)", "accuracy", true);
  metricPlot("train", "completions/mean_length", "Completion mean length", "tokens");
  metricPlot("train", "train/kl", "KL to the reference", "KL");
  metricPlot("train", "train/entropy", "Entropy", "nats / token");
  metricPlot("train", "train/clip_fraction", "Clip fraction", "fraction", true);
  return plots;
}

/** reward/<source>.<component> keys in order of first appearance (not reward/mean, reward/std). */
function componentKeys(variants: Variant[]): string[] {
  const keys = new Set<string>();
  for (const v of variants)
    for (const r of v.runs)
      for (const row of r.metrics)
        for (const k of Object.keys(row.values))
          if (k.startsWith("reward/") && k !== "reward/mean" && k !== "reward/std") keys.add(k);
  return [...keys];
}

/** One grey line when every variant starts from the same accuracy, else one line per variant. */
function warmBaselines(summaries: VariantSummary[]): PlotSpec["baselines"] {
  const warm = summaries.filter((s) => s.warm !== null);
  if (warm.length === 0) return [];
  const values = warm.map((s) => s.warm!.mean);
  if (Math.max(...values) - Math.min(...values) < 1e-9)
    return [{ label: `warm start ${fmt(values[0])}`, value: values[0], variant: null }];
  return warm.map((s) => ({ label: `${s.name} warm start`, value: s.warm!.mean, variant: s.name }));
}

function plotId(key: string): string {
  return key.replace(/[^A-Za-z0-9_]+/g, "-").toLowerCase();
}

/** Six significant digits: enough for a plot, and a smaller page. */
function rounded(points: SeriesPoint[]): SeriesPoint[] {
  const r = (v: number) => Number(v.toPrecision(6));
  return points.map(([x, m, lo, hi, n]) => [r(x), r(m), r(lo), r(hi), n]);
}

// --- tables -------------------------------------------------------------------------------------

const DASH = "—";

function summaryTable(summary: ReportSummary, colors: Map<string, string>): string {
  const withMaj = summary.variants.some((s) => s.finalMaj !== null);
  const withPass1 = summary.variants.some((s) => s.finalPass1 !== null);
  const rows = summary.variants.map((s) => {
    return `<tr>
<td>${swatch(colors.get(s.name)!, s.name)}</td>
<td>${s.structure === null ? DASH : esc(s.structure)}</td>
<td class="num">${s.seeds.length}</td>
<td class="num">${stat(s.warm, false)}</td>
<td class="num">${stat(s.final, true)}</td>
<td class="num">${stat(s.best, true)}</td>
${withMaj ? `<td class="num">${stat(s.warmMaj, false)} → ${stat(s.finalMaj, true)}</td>\n` : ""}${withPass1 ? `<td class="num">${stat(s.warmPass1, false)} → ${stat(s.finalPass1, true)}</td>\n` : ""}<td class="num">${gain(s.gain)}</td>
<td class="num">${s.halfway === null ? DASH : `${s.halfway.step}${s.halfway.elapsed === null ? "" : ` <span class="sub">(${duration(s.halfway.elapsed)})</span>`}`}</td>
<td class="num">${s.stability === null ? DASH : fmt(s.stability)}</td>
<td class="num">${steps(s)}</td>
<td class="num">${s.wallTime === null ? DASH : duration(s.wallTime)}</td>
</tr>`;
  });
  const target =
    summary.bestFinal === null
      ? "no evaluations"
      : `best final accuracy of any variant ${fmt(summary.bestFinal)}`;
  return `<table class="summary">
<thead><tr><th>variant</th><th>structure</th><th>seeds</th><th>warm start</th><th>final accuracy ± SE</th><th>best accuracy ± SE</th>${withMaj ? "<th>maj@k warm → final</th>" : ""}${withPass1 ? "<th>pass@1 warm → final</th>" : ""}<th>final − warm ± SE</th><th>halfway step</th><th>stability</th><th>steps</th><th>wall time</th></tr></thead>
<tbody>
${rows.join("\n")}
</tbody>
</table>
<p class="note">Accuracies are held-out evaluations, averaged over a variant's seeds (seed values in grey);
± is the standard error of that mean over the eval problems: the seeds answer the same problems, so
it is taken from each problem's mean over seeds (where runs kept no per-problem answers, from the
evaluations' own standard errors, √(Σ se²)/k, which treats the seeds as independent samples).
<b>seeds ±</b> is the standard error over the seeds, sd/√k: how far a result moves from one seed to
the next, which the per-problem SE leaves out; with one seed there is none, and a single seed's
result may not repeat.
<b>Final − warm</b>: its standard error is paired (the same problems answered at the warm start and at
the end; <span class="sub">unpaired</span> where a run kept no per-problem answers), and the gain is
marked <b>✓</b> when it exceeds two of the larger of its two SEs.
<b>Best</b> is each seed's highest evaluation, warm start included. <b>Halfway step</b>: the first
evaluation at which the seed-mean accuracy reaches halfway from the variant's warm start to the
${esc(target)} (wall time in brackets). <b>Stability</b>: standard deviation of the last
${summary.stabilityWindow} evaluation accuracies, averaged over seeds. <b>Steps</b>: training steps
done (of those planned, where fewer).${withMaj ? " <b>maj@k</b>: k completions per problem at the sampling temperature vote with their final answers." : ""}${withPass1 ? " <b>pass@1</b>: the fraction of those k completions that are correct, averaged over problems (± over problems: paired across seeds)." : ""}</p>
${comparisonTable(summary.comparisons)}`;
}

function comparisonTable(comparisons: Comparison[]): string {
  if (comparisons.length === 0) return "";
  const signed = (v: number) => `${v >= 0 ? "+" : "−"}${fmt(Math.abs(v))}`;
  const rows = comparisons.map(
    (c) => `<tr><td>${esc(c.name)}</td><td class="num">${c.seeds.length}</td>
<td class="num">${signed(c.mean)}${c.clear ? " ✓" : ""}${c.values.length > 1 ? `<br><span class="sub">${c.values.map(signed).join(", ")}</span>` : ""}</td>
<td class="num">${c.se === null ? DASH : fmt(c.se)}</td>
<td class="num">${c.seedSe === null ? DASH : fmt(c.seedSe)}</td>
<td class="num">${c.mde === null ? DASH : fmt(c.mde)}</td>
<td class="num">${c.auc === null ? DASH : `${signed(c.auc.mean)}${c.auc.clear ? " ✓" : ""} <span class="se">± ${fmt(seBoth(c.auc) ?? 0)}</span>`}</td>
<td class="num">${c.steps?.mean == null ? DASH : `${c.steps.mean >= 0 ? "+" : "−"}${Math.abs(c.steps.mean).toFixed(1)}${c.steps.seedSe === null ? "" : ` <span class="se">± ${c.steps.seedSe.toFixed(1)}</span>`} <span class="sub">(${c.steps.reached}/${c.steps.of})</span>`}</td></tr>`,
  );
  return `<table class="summary comparisons">
<thead><tr><th>against ${esc(comparisons[0].baseline)}</th><th>seeds</th><th>gain − ${esc(comparisons[0].baseline)}'s gain</th><th>SE (problems)</th><th>SE (seeds)</th><th>minimum detectable</th><th>mean gain over the run − ${esc(comparisons[0].baseline)}'s</th><th>steps to ${esc(comparisons[0].baseline)}'s halfway − ${esc(comparisons[0].baseline)}'s</th></tr></thead>
<tbody>
${rows.join("\n")}
</tbody>
</table>
<p class="note">Each variant's gain against ${esc(comparisons[0].baseline)}'s, paired by seed and problem:
per seed and problem, (final − warm) of the variant minus that of ${esc(comparisons[0].baseline)}, averaged.
<b>✓</b> where the difference exceeds two of the larger SE. <b>Minimum detectable</b>: ${MDE_FACTOR} × the
larger SE, the smallest true difference this comparison finds four times in five; a difference under
it that shows no ✓ is not evidence of no difference. <b>Mean gain over the run</b>: the area under the
accuracy curve above the warm start, per step (trapezoids between evaluations), the same pairing, ±
the larger SE: it rewards getting there sooner. <b>Steps to halfway</b>: per seed, the step (interpolated
between evaluations) at which the variant reaches ${esc(comparisons[0].baseline)}'s warm start plus half
${esc(comparisons[0].baseline)}'s gain, minus the step ${esc(comparisons[0].baseline)} does, ± its SE over
seeds (seeds that reached it / seeds).</p>`;
}

function stat(s: Stat | null, withSe: boolean): string {
  if (s === null) return DASH;
  const se = withSe && s.se !== null ? ` <span class="se">± ${fmt(s.se)}</span>` : "";
  const seedSe = withSe && s.seedSe !== null ? ` <span class="se">seeds ± ${fmt(s.seedSe)}</span>` : "";
  const seeds = s.values.length > 1 ? `<br><span class="sub">${s.values.map(fmt).join(", ")}</span>` : "";
  return `${fmt(s.mean)}${se}${seedSe}${seeds}`;
}

function gain(g: VariantSummary["gain"]): string {
  if (g === null) return DASH;
  const signed = (v: number) => `${v >= 0 ? "+" : "−"}${fmt(Math.abs(v))}`;
  const se = g.se === null ? "" : ` <span class="se">± ${fmt(g.se)}</span>`;
  const seedSe = g.seedSe === null ? "" : ` <span class="se">seeds ± ${fmt(g.seedSe)}</span>`;
  const kind = g.se !== null && !g.paired ? ` <span class="sub">unpaired</span>` : "";
  const clear = g.clear ? " ✓" : "";
  const seeds = g.values.length > 1 ? `<br><span class="sub">${g.values.map(signed).join(", ")}</span>` : "";
  return `${signed(g.mean)}${se}${seedSe}${clear}${kind}${seeds}`;
}

function steps(s: VariantSummary): string {
  const done = range(s.stepsDone);
  const planned = s.stepsPlanned.filter((p): p is number => p !== null);
  const short =
    planned.length > 0 && s.stepsDone.some((d, i) => s.stepsPlanned[i] !== null && d < s.stepsPlanned[i]!);
  return short ? `${done} <span class="sub">of ${range(planned)}</span>` : done;
}

function range(xs: number[]): string {
  const lo = Math.min(...xs);
  const hi = Math.max(...xs);
  return lo === hi ? String(lo) : `${lo}–${hi}`;
}

function runsTable(variants: Variant[], colors: Map<string, string>): string {
  const rows = variants.flatMap((v) =>
    v.runs.map(
      (r) => `<tr>
<td>${swatch(colors.get(v.name)!, v.name)}</td>
<td class="num">${r.spec.seed ?? DASH}</td>
<td><code>${esc(r.spec.runId)}</code></td>
<td><code>${esc(r.dir)}</code></td>
<td>${r.spec.model === null ? DASH : `<code>${esc(r.spec.model)}</code>`}</td>
<td>${r.spec.createdAt === null ? DASH : esc(r.spec.createdAt)}</td>
<td class="num">${r.metrics.length}${r.spec.steps === null ? "" : ` / ${r.spec.steps}`}</td>
<td class="num">${r.evals === null ? "no data" : r.evals.length}</td>
<td class="num">${r.samples === null ? "no data" : r.samples.length}</td>
</tr>`,
    ),
  );
  return `<table class="runs">
<thead><tr><th>variant</th><th>seed</th><th>run id</th><th>directory</th><th>model</th><th>created</th><th>steps done / planned</th><th>evaluations</th><th>samples</th></tr></thead>
<tbody>
${rows.join("\n")}
</tbody>
</table>`;
}

// --- samples ------------------------------------------------------------------------------------

interface PickedSample extends SampleRow {
  seed: number | null;
}

/** Up to SAMPLES_PER_VARIANT samples from the last steps: a correct and an incorrect one first. */
export function pickSamples(v: Variant, count = SAMPLES_PER_VARIANT): PickedSample[] {
  const all: PickedSample[] = v.runs.flatMap((r) =>
    (r.samples ?? []).map((s) => ({ ...s, seed: r.spec.seed })),
  );
  if (all.length === 0) return [];
  const steps = [...new Set(all.map((s) => s.step))].sort((a, b) => b - a).slice(0, 3);
  const recent = all.filter((s) => steps.includes(s.step)).sort((a, b) => b.step - a.step);
  const picked: PickedSample[] = [];
  const correct = recent.find((s) => s.correct === true);
  const wrong = recent.find((s) => s.correct === false);
  for (const s of [correct, wrong, ...recent]) {
    if (picked.length >= count) break;
    if (s && !picked.includes(s)) picked.push(s);
  }
  return picked.sort((a, b) => b.step - a.step);
}

function samplesSection(variants: Variant[], colors: Map<string, string>): string {
  return variants
    .map((v) => {
      const samples = pickSamples(v);
      const hasFile = v.runs.some((r) => r.samples !== null);
      const body =
        samples.length === 0
          ? `<p class="nodata">no data${hasFile ? "" : " (no samples.jsonl)"}</p>`
          : `<div class="samples">${samples.map(sampleCard).join("\n")}</div>`;
      return `<div class="variant-samples" data-variant="${esc(v.name)}">
<h3>${swatch(colors.get(v.name)!, v.name)}</h3>
${body}
</div>`;
    })
    .join("\n");
}

function sampleCard(s: PickedSample): string {
  const verdict =
    s.correct === null
      ? ""
      : s.correct
        ? `<span class="ok">✓ correct</span>`
        : `<span class="bad">✗ incorrect</span>`;
  const facts = [
    `step ${s.step}`,
    s.seed === null ? null : `seed ${s.seed}`,
    s.promptId === null ? null : `prompt <code>${esc(s.promptId)}</code>`,
    `reward ${s.reward === null ? DASH : fmt(s.reward)}`,
    s.advantage === null ? null : `advantage ${s.advantage >= 0 ? "+" : "−"}${fmt(Math.abs(s.advantage))}`,
  ].filter((f) => f !== null);
  return `<article class="sample">
<p class="facts">${facts.join(" · ")} ${verdict}</p>
<p class="label">prompt</p><pre>${esc(s.prompt)}</pre>
<p class="label">reference</p><pre class="ref">${esc(s.reference)}</pre>
<p class="label">completion</p><pre>${esc(s.completion)}</pre>
</article>`;
}

// --- formatting ---------------------------------------------------------------------------------

function fmt(v: number): string {
  if (!Number.isFinite(v)) return String(v);
  const a = Math.abs(v);
  if (a !== 0 && (a < 0.001 || a >= 1e5)) return v.toExponential(2);
  if (a >= 100) return v.toFixed(0);
  return v.toFixed(3);
}

/** 42 s, 12.5 min, 3.2 h. */
export function duration(seconds: number): string {
  if (seconds < 120) return `${seconds.toFixed(0)} s`;
  if (seconds < 7200) return `${(seconds / 60).toFixed(1)} min`;
  return `${(seconds / 3600).toFixed(1)} h`;
}

function swatch(color: string, name: string): string {
  return `<span class="variant"><span class="swatch" style="background:${color}"></span>${esc(name)}</span>`;
}

const CSS = `
:root { --fg: #1f2328; --muted: #656d76; --line: #d0d7de; --bg: #fff; --panel: #f6f8fa; }
* { box-sizing: border-box; }
body { margin: 0; color: var(--fg); background: var(--bg);
  font: 14px/1.45 system-ui, -apple-system, "Segoe UI", Roboto, "Helvetica Neue", Arial, sans-serif; }
header, main { max-width: 1360px; margin: 0 auto; padding: 0 20px; }
header { padding-top: 18px; }
h1 { font-size: 22px; margin: 0 0 4px; }
h2 { font-size: 18px; margin: 28px 0 10px; padding-bottom: 4px; border-bottom: 1px solid var(--line); }
h3 { font-size: 15px; margin: 16px 0 8px; }
.meta { color: var(--muted); margin: 0 0 6px; }
code { font: 12px/1.4 ui-monospace, SFMono-Regular, Menlo, Consolas, monospace; }
.variant { white-space: nowrap; margin-right: 10px; }
.swatch { display: inline-block; width: 12px; height: 12px; border-radius: 2px; margin-right: 5px;
  vertical-align: -1px; }
table { border-collapse: collapse; width: 100%; }
th, td { padding: 5px 8px; border-bottom: 1px solid var(--line); text-align: left; vertical-align: top; }
th { background: var(--panel); font-weight: 600; font-size: 13px; }
td.num { text-align: right; font-variant-numeric: tabular-nums; }
.se, .sub { color: var(--muted); }
.sub { font-size: 12px; }
.note { color: var(--muted); font-size: 12.5px; max-width: 1100px; }
.grid { display: grid; grid-template-columns: repeat(auto-fill, minmax(560px, 1fr)); gap: 14px; }
figure.plot { position: relative; margin: 0; padding: 8px 10px 4px; border: 1px solid var(--line);
  border-radius: 6px; background: var(--bg); }
figure.plot figcaption { font-weight: 600; font-size: 13.5px; margin: 0 0 2px 4px; }
figure.plot svg { display: block; width: 100%; height: auto; }
svg text { font-family: system-ui, -apple-system, "Segoe UI", Roboto, Arial, sans-serif; }
svg .tick text { fill: var(--muted); font-size: 11px; }
svg .grid-line { stroke: #eaeef2; }
svg .axis { stroke: #8c959f; }
.tooltip { position: absolute; pointer-events: none; display: none; background: rgba(255,255,255,0.96);
  border: 1px solid var(--line); border-radius: 4px; padding: 5px 8px; font-size: 12px;
  box-shadow: 0 2px 6px rgba(0,0,0,0.12); white-space: nowrap; }
.nodata { color: var(--muted); font-style: italic; }
.samples { display: grid; grid-template-columns: repeat(auto-fill, minmax(320px, 1fr)); gap: 10px; }
.sample { border: 1px solid var(--line); border-radius: 6px; padding: 6px 10px 8px; background: var(--panel);
  min-width: 0; }
.sample .facts { margin: 0 0 4px; font-size: 12.5px; color: var(--muted); }
.sample .label { margin: 6px 0 2px; font-size: 11px; text-transform: uppercase; letter-spacing: 0.04em;
  color: var(--muted); }
.sample pre { margin: 0; padding: 6px 8px; background: var(--bg); border: 1px solid var(--line);
  border-radius: 4px; white-space: pre-wrap; overflow-wrap: anywhere; max-height: 180px; overflow: auto;
  font: 12px/1.4 ui-monospace, SFMono-Regular, Menlo, Consolas, monospace; }
.sample pre.ref { max-height: 60px; }
.ok { color: #1a7f37; font-weight: 600; }
.bad { color: #cf222e; font-weight: 600; }
`.trim();
