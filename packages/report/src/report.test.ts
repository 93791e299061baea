import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, describe, test } from "node:test";
import { bodyData, chromium, chromiumPath, consoleLines, plotsInDom } from "./chromium-testing.ts";
import { EXAMPLE_VARIANTS, TRICKY_COMPLETION, writeExampleRuns } from "./fixture.ts";
import {
  aucGain,
  esc,
  groupVariants,
  loadRun,
  ReportError,
  renderReport,
  stepsToTarget,
  summarize,
} from "./index.ts";

const repoRoot = join(import.meta.dirname, "..", "..", "..");
const tmp = mkdtempSync(join(tmpdir(), "temper-report-"));
after(() => rmSync(tmp, { recursive: true, force: true }));

let counter = 0;
/** A fresh directory of example runs: 4 variants × 2 seeds × 10 steps, evals at 0, 5, 10. */
function exampleRuns(options?: Parameters<typeof writeExampleRuns>[1]): string[] {
  const root = join(tmp, `runs-${counter++}`);
  return writeExampleRuns(root, options);
}

function loadError(dir: string): ReportError {
  try {
    loadRun(dir);
  } catch (err) {
    assert.ok(err instanceof ReportError, `expected a ReportError, got ${err}`);
    assert.ok(!err.message.includes("\n"), "one line");
    return err;
  }
  assert.fail("loadRun did not throw");
}

describe("loadRun", () => {
  test("reads spec, metrics, evals and samples; null and missing values are left out", () => {
    const [dir] = exampleRuns({ variants: ["adaptive"], seeds: [7] });
    const run = loadRun(dir);
    assert.equal(run.spec.name, "adaptive");
    assert.equal(run.spec.structure, "adaptive");
    assert.equal(run.spec.seed, 7);
    assert.equal(run.spec.steps, 10);
    assert.equal(run.spec.model, "models/qwen3-tiny");
    assert.equal(
      run.spec.machine,
      "AMD EPYC (avx2, avx512f) · onnxruntime 1.30.0 · threads: learner 2, rollout 2",
    );
    assert.match(
      renderReport([run]),
      /machine AMD EPYC \(avx2, avx512f\) · onnxruntime 1\.30\.0 · threads: learner 2, rollout 2/,
    );
    assert.equal(run.metrics.length, 10);
    assert.deepEqual(
      run.metrics.map((m) => m.step),
      [0, 1, 2, 3, 4, 5, 6, 7, 8, 9],
    );
    assert.equal(run.metrics[3].values["train/grad_norm"], undefined, "null left out");
    assert.equal(run.metrics[6].values["tokens/generated"], undefined, "missing key");
    assert.equal(typeof run.metrics[2].values["reward/perplexity.perplexity"], "number");
    assert.equal(run.metrics[1].policyVersion, "adaptive-s7-0001-0");
    assert.deepEqual(
      run.evals?.map((e) => e.step),
      [0, 5, 10],
    );
    assert.equal(run.evals?.[0].n, 500);
    assert.equal(run.samples?.length, 20);
  });

  test("a directory without metrics.jsonl is an error naming the file", () => {
    const [dir] = exampleRuns({ variants: ["hard"], seeds: [1] });
    rmSync(join(dir, "metrics.jsonl"));
    const err = loadError(dir);
    assert.match(err.message, /metrics\.jsonl: no such file/);
    assert.ok(err.message.startsWith(join(dir, "metrics.jsonl")));
    assert.match(loadError(join(tmp, "no-such-run")).message, /no-such-run: no such directory/);
  });

  test("a bad JSON line names the file and line", () => {
    const [dir] = exampleRuns({ variants: ["hard"], seeds: [1] });
    const file = join(dir, "metrics.jsonl");
    const lines = readFileSync(file, "utf8").split("\n");
    lines[2] = '{"step": 2, "reward/mean": 0.5,';
    writeFileSync(file, lines.join("\n"));
    assert.match(loadError(dir).message, new RegExp(`^${escapeRegExp(file)}:3: bad JSON: `));

    lines[2] = '{"step": 2, "train/kl": "high"}';
    writeFileSync(file, lines.join("\n"));
    assert.equal(loadError(dir).message, `${file}:3: "train/kl": expected a number or null, got "high"`);

    lines[2] = "[1, 2]";
    writeFileSync(file, lines.join("\n"));
    assert.equal(loadError(dir).message, `${file}:3: expected a JSON object, got an array`);
    lines[2] = '{"step": 2}';
    writeFileSync(file, lines.join("\n"));

    const evalFile = join(dir, "eval.jsonl");
    writeFileSync(evalFile, '{"step": 0, "accuracy": 0.4}\n\n{"step": 5, "accuracy": 1.4}\n');
    assert.equal(loadError(dir).message, `${evalFile}:3: "accuracy": expected a number in [0, 1], got 1.4`);
    writeFileSync(evalFile, '{"step": 0, "accuracy": 0.4}\nnot json\n');
    assert.match(loadError(dir).message, new RegExp(`^${escapeRegExp(evalFile)}:2: bad JSON`));
  });

  test("spec.yaml: syntax and type errors name the line", () => {
    const [dir] = exampleRuns({ variants: ["hard"], seeds: [1] });
    const file = join(dir, "spec.yaml");
    writeFileSync(file, "run_id: a\nname: [unclosed\nseed: 1\n");
    assert.match(loadError(dir).message, new RegExp(`^${escapeRegExp(file)}:\\d+: bad YAML: `));
    writeFileSync(file, "run_id: a\nname: hard\nseed: one\n");
    assert.equal(loadError(dir).message, `${file}:3: seed: expected an integer, got "one"`);
    writeFileSync(file, "run_id: a\nreward:\n  structure: [1, 2]\n");
    assert.equal(loadError(dir).message, `${file}:3: reward.structure: expected a string, got an array`);
    // Without `name` the variant is the structure.
    writeFileSync(file, "run_id: a\nreward:\n  structure: hybrid\n");
    assert.equal(loadRun(dir).spec.name, "hybrid");
  });

  test("eval.jsonl and samples.jsonl are optional", () => {
    const [dir] = exampleRuns({ variants: ["hard"], seeds: [1] });
    rmSync(join(dir, "eval.jsonl"));
    rmSync(join(dir, "samples.jsonl"));
    const run = loadRun(dir);
    assert.equal(run.evals, null);
    assert.equal(run.samples, null);
    const html = renderReport([run]);
    assert.match(html, /<p class="nodata">no data \(no samples\.jsonl\)<\/p>/);
    assert.match(html, /<td class="num">no data<\/td>/);
  });
});

describe("summary", () => {
  test("means over seeds, standard errors, halfway step, stability", () => {
    const runs = exampleRuns().map(loadRun);
    const variants = groupVariants(runs);
    assert.deepEqual(
      variants.map((v) => [v.name, v.runs.length]),
      EXAMPLE_VARIANTS.map((name) => [name, 2]),
    );
    const summary = summarize(variants);
    const byName = new Map(summary.variants.map((s) => [s.name, s]));
    const hard = byName.get("hard")!;
    close(hard.warm!.mean, 0.425);
    close(hard.final!.mean, 0.56);
    const se = (p: number) => Math.sqrt((p * (1 - p)) / 500);
    close(hard.final!.se!, Math.sqrt(se(0.55) ** 2 + se(0.57) ** 2) / 2, 1e-4);
    close(summary.bestFinal!, 0.61);
    // Halfway from 0.425 to 0.61 is 0.5175: hard's seed mean is 0.495 at step 5 and 0.56 at 10.
    close(hard.halfwayTarget!, 0.5175);
    assert.equal(hard.halfway?.step, 10);
    assert.ok(hard.halfway?.elapsed && hard.halfway.elapsed > 600);
    assert.equal(byName.get("continuous")!.halfway, null, "0.51 never reaches 0.5175");
    assert.deepEqual(hard.stepsDone, [10, 10]);
    // Stability: std (n−1) of the accuracies at steps 0, 5, 10, averaged over the two seeds.
    const std3 = (xs: number[]) => {
      const m = (xs[0] + xs[1] + xs[2]) / 3;
      return Math.sqrt(xs.reduce((a, x) => a + (x - m) ** 2, 0) / 2);
    };
    close(hard.stability!, (std3([0.42, 0.49, 0.55]) + std3([0.43, 0.5, 0.57])) / 2);
    assert.ok(hard.wallTime! > 600 && hard.wallTime! < 900, `wall time ${hard.wallTime}`);
  });
});

/** Rewrites a jsonl file's lines in place. */
function rewrite(file: string, edit: (lines: Record<string, unknown>[]) => void): void {
  const lines = readFileSync(file, "utf8")
    .trim()
    .split("\n")
    .map((l) => JSON.parse(l));
  edit(lines);
  writeFileSync(file, `${lines.map((l) => JSON.stringify(l)).join("\n")}\n`);
}

describe("final − warm", () => {
  test("paired standard error from per-problem answers; unpaired without them", () => {
    const [dir] = exampleRuns({ variants: ["hard"], seeds: [1] });
    const file = join(dir, "eval.jsonl");
    const plain = summarize(groupVariants([loadRun(dir)])).variants[0];
    const [w0, f0] = [plain.warm!, plain.final!];
    assert.equal(plain.gain!.paired, false);
    close(plain.gain!.mean, f0.mean - w0.mean);
    close(plain.gain!.se!, Math.sqrt(w0.se! ** 2 + f0.se! ** 2));

    // 500 problems: the warm start solves 200; the end solves 230 of them, having lost 10 and won 40
    const n = 500;
    const warm = Array.from({ length: n }, (_, i) => (i < 200 ? 1 : 0));
    const fin = warm.map((v, i) => (i < 10 ? 0 : i >= 200 && i < 240 ? 1 : v));
    rewrite(file, (lines) => {
      const last = lines[lines.length - 1];
      Object.assign(lines[0], { n, correct: 200, accuracy: 0.4, stderr: null, solved: warm.join("") });
      Object.assign(last, { n, correct: 230, accuracy: 0.46, stderr: null, solved: fin.join("") });
    });
    const g = summarize(groupVariants([loadRun(dir)])).variants[0].gain!;
    assert.equal(g.paired, true);
    close(g.mean, 0.06);
    // per-problem differences: 40 × +1, 10 × −1, 450 × 0
    const d = fin.map((v, i) => v - warm[i]);
    const m = d.reduce((a, x) => a + x, 0) / n;
    const variance = d.reduce((a, x) => a + (x - m) ** 2, 0) / (n - 1);
    close(g.se!, Math.sqrt(variance / n));
    assert.ok(
      g.se! < Math.hypot(Math.sqrt((0.4 * 0.6) / n), Math.sqrt((0.46 * 0.54) / n)),
      "pairing narrows it",
    );
    const html = renderReport([loadRun(dir)]);
    assert.match(html, /\+0\.060 <span class="se">± 0\.014<\/span> ✓/);

    rewrite(file, (lines) => {
      lines[0].solved = "01";
    });
    assert.throws(() => loadRun(dir), /eval\.jsonl:1: "solved": 2 answers for n 500/);
  });

  test("seeds answer the same problems: standard errors over the problems, not shrunk by √k", () => {
    const dirs = exampleRuns({ variants: ["hard"], seeds: [1, 2] });
    const n = 400;
    // both seeds start from the same warm start (the same 100 solved); seed 1 ends with 0..139
    // solved, seed 2 with 20..139 (lost 20 of the warm start's, won 40)
    const warm = Array.from({ length: n }, (_, i) => (i < 100 ? 1 : 0));
    const ends = [warm.map((_, i) => (i < 140 ? 1 : 0)), warm.map((_, i) => (i >= 20 && i < 140 ? 1 : 0))];
    for (const [k, dir] of dirs.entries())
      rewrite(join(dir, "eval.jsonl"), (lines) => {
        const last = lines[lines.length - 1];
        const acc = (a: number[]) => a.reduce((x, y) => x + y, 0) / n;
        Object.assign(lines[0], { n, correct: 100, accuracy: 0.25, solved: warm.join("") });
        Object.assign(last, {
          n,
          correct: acc(ends[k]) * n,
          accuracy: acc(ends[k]),
          solved: ends[k].join(""),
        });
      });
    const s = summarize(groupVariants(dirs.map(loadRun))).variants[0];
    // the two warm-start evaluations are one: their mean has the single evaluation's SE
    close(s.warm!.se!, Math.sqrt((0.25 * 0.75) / (n - 1)));
    // per problem, the seeds' mean: 1 on 20..99 and 100..139 (120 problems), 0.5 on 0..19, 0 elsewhere
    const perProblem = Array.from({ length: n }, (_, i) => (i < 20 ? 0.5 : i < 140 ? 1 : 0));
    const sdOverProblems = (xs: number[]) => {
      const m = xs.reduce((a, x) => a + x, 0) / xs.length;
      return Math.sqrt(xs.reduce((a, x) => a + (x - m) ** 2, 0) / (xs.length - 1) / xs.length);
    };
    close(s.final!.mean, (0.35 + 0.3) / 2);
    close(s.final!.se!, sdOverProblems(perProblem));
    // gain per problem: +1 on 100..139, −0.5 on 0..19
    const gain = perProblem.map((v, i) => v - warm[i]);
    assert.equal(s.gain!.paired, true);
    close(s.gain!.mean, 0.075);
    close(s.gain!.se!, sdOverProblems(gain));
  });
});

describe("standard errors over seeds, and comparisons with the baseline", () => {
  const sd = (xs: number[]) => {
    const m = xs.reduce((a, x) => a + x, 0) / xs.length;
    return Math.sqrt(xs.reduce((a, x) => a + (x - m) ** 2, 0) / (xs.length - 1));
  };

  test("seed SE = sd/√k of the seeds' values; ✓ rests on the larger of the two SEs", () => {
    const dirs = exampleRuns({ variants: ["hard"], seeds: [1, 2, 3] });
    const s = summarize(groupVariants(dirs.map(loadRun))).variants[0];
    close(s.final!.seedSe!, sd(s.final!.values) / Math.sqrt(3));
    close(s.gain!.seedSe!, sd(s.gain!.values) / Math.sqrt(3));
    const one = summarize(groupVariants([loadRun(dirs[0])])).variants[0];
    assert.equal(one.final!.seedSe, null, "one seed has no spread");
    // a gain whose per-problem SE is small but whose seeds disagree is not clear
    const n = 400;
    const warm = Array.from({ length: n }, (_, i) => (i < 100 ? 1 : 0));
    const gains = [0.1, -0.05, 0.02]; // per seed: problems 100.. gained (or 0.. lost)
    for (const [k, dir] of dirs.entries())
      rewrite(join(dir, "eval.jsonl"), (lines) => {
        const g = Math.round(gains[k] * n);
        const end = warm.map((v, i): number => (g >= 0 ? (i >= 100 && i < 100 + g ? 1 : v) : i < -g ? 0 : v));
        const acc = end.reduce((a, x) => a + x, 0) / n;
        Object.assign(lines[0], { n, correct: 100, accuracy: 0.25, solved: warm.join("") });
        Object.assign(lines[lines.length - 1], { n, correct: acc * n, accuracy: acc, solved: end.join("") });
      });
    const g = summarize(groupVariants(dirs.map(loadRun))).variants[0].gain!;
    close(g.mean, (0.1 - 0.05 + 0.02) / 3);
    close(g.seedSe!, sd(gains) / Math.sqrt(3));
    assert.ok(g.seedSe! > g.se!, "the seeds' spread is the larger here");
    assert.equal(g.clear, g.mean > 2 * g.seedSe!);
    assert.equal(g.clear, false);
  });

  test("a variant against hard: per seed and problem, its gain minus hard's; SEs, MDE = 2.8 × the larger", () => {
    const dirs = exampleRuns({ variants: ["hard", "continuous"], seeds: [1, 2, 3] });
    const n = 300;
    const warm = Array.from({ length: n }, (_, i) => (i % 3 === 0 ? 1 : 0));
    const rand = (() => {
      let x = 12345;
      return () => {
        x = (x * 1103515245 + 12345) % 2 ** 31;
        return x / 2 ** 31;
      };
    })();
    const ends = new Map<string, number[]>();
    for (const dir of dirs) {
      const end = warm.map((v): number => (rand() < 0.2 ? 1 - v : v));
      ends.set(dir, end);
      rewrite(join(dir, "eval.jsonl"), (lines) => {
        const acc = end.reduce((a, x) => a + x, 0) / n;
        const w = warm.reduce((a: number, x) => a + x, 0) / n;
        Object.assign(lines[0], { n, correct: w * n, accuracy: w, solved: warm.join("") });
        Object.assign(lines[lines.length - 1], { n, correct: acc * n, accuracy: acc, solved: end.join("") });
      });
    }
    const summary = summarize(groupVariants(dirs.map(loadRun)));
    assert.equal(summary.comparisons.length, 1);
    const c = summary.comparisons[0];
    assert.equal(c.baseline, "hard");
    assert.equal(c.name, "continuous");
    assert.deepEqual(c.seeds, [1, 2, 3]);
    // direct: d[s][i] = (cont_end − warm) − (hard_end − warm) = cont_end − hard_end
    const hard = dirs.filter((d) => d.includes("hard-")).map((d) => ends.get(d)!);
    const cont = dirs.filter((d) => d.includes("continuous-")).map((d) => ends.get(d)!);
    const d = [0, 1, 2].map((s) => cont[s].map((x, i) => x - hard[s][i]));
    const perSeed = d.map((row) => row.reduce((a, x) => a + x, 0) / n);
    const perProblem = Array.from({ length: n }, (_, i) => (d[0][i] + d[1][i] + d[2][i]) / 3);
    close(c.mean, perSeed.reduce((a, x) => a + x, 0) / 3);
    close(c.seedSe!, sd(perSeed) / Math.sqrt(3));
    close(c.se!, sd(perProblem) / Math.sqrt(n));
    close(c.mde!, 2.8 * Math.max(c.se!, c.seedSe!));
    assert.equal(c.clear, Math.abs(c.mean) > 2 * Math.max(c.se!, c.seedSe!));
    const html = renderReport(dirs.map(loadRun));
    assert.match(html, /<th>against hard<\/th>/);
    assert.match(html, /minimum detectable/);
  });
});

describe("the whole curve: area above the warm start and steps to hard's halfway mark, paired by seed", () => {
  test("aucGain and stepsToTarget by hand; the comparison pairs them by seed and problem", () => {
    close(
      aucGain([
        [0, 0.5],
        [10, 0.6],
        [30, 0.7],
      ])!,
      (10 * 1.1) / 2 / 30 + (20 * 1.3) / 2 / 30 - 0.5,
    );
    assert.equal(
      aucGain([
        [5, 0.5],
        [10, 0.6],
      ]),
      null,
      "no warm start",
    );
    close(
      stepsToTarget(
        [
          [0, 0.5],
          [10, 0.6],
          [20, 0.8],
        ],
        0.7,
      )!,
      15,
    );
    assert.equal(
      stepsToTarget(
        [
          [0, 0.5],
          [10, 0.6],
        ],
        0.7,
      ),
      null,
    );

    const dirs = exampleRuns({ variants: ["hard", "hybrid"], seeds: [1, 2] });
    // 4 problems, evaluations at steps 0, 10, 20: per (variant, seed) the solved strings
    const curves: Record<string, string[]> = {
      "hard-1": ["1000", "1000", "1110"],
      "hard-2": ["1000", "1100", "1110"],
      "hybrid-1": ["1000", "1110", "1110"],
      "hybrid-2": ["1000", "1100", "1111"],
    };
    const acc = (bits: string) => [...bits].filter((c) => c === "1").length / bits.length;
    const runs = dirs.map(loadRun);
    for (const r of runs) {
      const c = curves[`${r.spec.name}-${r.spec.seed}`];
      r.evals = c.map((solved, j) => ({
        step: 10 * j,
        accuracy: acc(solved),
        stderr: 0.1,
        n: 4,
        correct: acc(solved) * 4,
        elapsed: null,
        policyVersion: null,
        majAccuracy: null,
        solved,
        pass1: null,
        sampledFractions: null,
      }));
    }
    const c = summarize(groupVariants(runs)).comparisons[0];
    assert.equal(c.name, "hybrid");
    const auc = (name: string, seed: number) =>
      aucGain(curves[`${name}-${seed}`].map((b, j) => [10 * j, acc(b)] as const))!;
    const d = [1, 2].map((seed) => auc("hybrid", seed) - auc("hard", seed));
    assert.deepEqual(c.auc!.values, d);
    close(c.auc!.mean, (d[0] + d[1]) / 2);
    // per problem: its own 0/1 curve's area, hybrid's minus hard's, averaged over seeds
    const perProblem = [0, 1, 2, 3].map((i) => {
      const one = (name: string, seed: number) =>
        aucGain(curves[`${name}-${seed}`].map((b, j) => [10 * j, Number(b[i])] as const))!;
      return (one("hybrid", 1) - one("hard", 1) + one("hybrid", 2) - one("hard", 2)) / 2;
    });
    const m = perProblem.reduce((a, x) => a + x, 0) / 4;
    close(c.auc!.se!, Math.sqrt(perProblem.reduce((a, x) => a + (x - m) ** 2, 0) / (4 * 3)));
    // hard's halfway mark per seed: 0.25 + 0.5/2 = 0.5; seed 1: hard reaches it at 15 (0.25 → 0.75
    // between 10 and 20), hybrid at 5; seed 2: both at 10
    assert.deepEqual(c.steps, { values: [-10, 0], mean: -5, seedSe: 5, reached: 2, of: 2 });
  });
});

describe("maj@k", () => {
  test("where runs measured maj@k, the summary and the page carry it; elsewhere no column", () => {
    const dirs = exampleRuns({ variants: ["hard", "hybrid"], seeds: [1] });
    const plain = renderReport(dirs.map(loadRun));
    assert.doesNotMatch(plain, /maj@k/);
    // the hard run measured maj@8: 0.5 at the warm start, 0.7 at the end (n = 500)
    const file = join(dirs[0], "eval.jsonl");
    const lines = readFileSync(file, "utf8")
      .trim()
      .split("\n")
      .map((l) => JSON.parse(l));
    lines[0].maj_accuracy = 0.5;
    lines[lines.length - 1].maj_accuracy = 0.7;
    writeFileSync(file, lines.map((l) => JSON.stringify(l)).join("\n") + "\n");
    const runs = dirs.map(loadRun);
    const byName = new Map(summarize(groupVariants(runs)).variants.map((s) => [s.name, s]));
    close(byName.get("hard")!.warmMaj!.mean, 0.5);
    close(byName.get("hard")!.finalMaj!.mean, 0.7);
    close(byName.get("hard")!.finalMaj!.se!, Math.sqrt((0.7 * 0.3) / 500));
    assert.equal(byName.get("hybrid")!.finalMaj, null);
    const html = renderReport(runs);
    assert.match(html, /<th>maj@k warm → final<\/th>/);
    assert.match(html, /0\.500 → 0\.700 <span class="se">± 0\.020<\/span>/);
  });

  test("pass@1 from the maj@k samples' counts: its mean, and an SE over problems paired across seeds", () => {
    const dirs = exampleRuns({ variants: ["hard"], seeds: [1, 2] });
    const n = 500;
    const k = 4;
    const counts = [
      Array.from({ length: n }, (_, i) => i % (k + 1)),
      Array.from({ length: n }, (_, i) => (i * 3) % (k + 1)),
    ];
    for (const [s, dir] of dirs.entries()) {
      const file = join(dir, "eval.jsonl");
      const lines = readFileSync(file, "utf8")
        .trim()
        .split("\n")
        .map((l) => JSON.parse(l));
      const last = lines[lines.length - 1];
      Object.assign(last, {
        n,
        maj_k: k,
        maj_accuracy: 0.5,
        sampled_correct: counts[s],
        pass1: counts[s].reduce((a, c) => a + c / k, 0) / n,
      });
      writeFileSync(file, `${lines.map((l) => JSON.stringify(l)).join("\n")}\n`);
    }
    const v = summarize(groupVariants(dirs.map(loadRun))).variants[0];
    const perProblem = Array.from({ length: n }, (_, i) => (counts[0][i] + counts[1][i]) / (2 * k));
    const m = perProblem.reduce((a, x) => a + x, 0) / n;
    close(v.finalPass1!.mean, m);
    close(v.finalPass1!.se!, Math.sqrt(perProblem.reduce((a, x) => a + (x - m) ** 2, 0) / (n - 1) / n));
    assert.equal(v.warmPass1, null);
    assert.match(renderReport(dirs.map(loadRun)), /<th>pass@1 warm → final<\/th>/);
  });
});

describe("renderReport", () => {
  test("one self-contained page: no external references, samples escaped", () => {
    const runs = exampleRuns().map(loadRun);
    const html = renderReport(runs);
    for (const bad of [
      /src\s*=\s*["']?https?:/i,
      /href\s*=\s*["']?https?:/i,
      /@import/i,
      /<link\b/i,
      /url\(/i,
    ])
      assert.doesNotMatch(html, bad);
    assert.match(html, /Content-Security-Policy" content="default-src 'none'/);
    assert.ok(html.includes(esc(TRICKY_COMPLETION)), "the completion, escaped");
    assert.ok(
      html.includes("&lt;script&gt;alert(&quot;pwned&quot;)&lt;/script&gt; AT&amp;T said 3 &lt; 5 &amp; 7"),
    );
    assert.ok(!html.includes('<script>alert("pwned")'), "never raw");
    for (const name of EXAMPLE_VARIANTS) assert.ok(html.includes(`data-variant="${name}"`));
  });

  test("a variant name that closes a script element stays data", () => {
    const [dir] = exampleRuns({ variants: ["hard"], seeds: [1] });
    writeFileSync(join(dir, "spec.yaml"), 'run_id: r1\nname: "x</script><b>&"\nseed: 1\n');
    const html = renderReport([loadRun(dir)]);
    const scripts = html.match(/<script\b/g)!.length;
    assert.equal(html.match(/<\/script>/g)!.length, scripts, "every </script> closes one of ours");
    assert.ok(html.includes("x&lt;/script&gt;&lt;b&gt;&amp;"));
    assert.ok(html.includes("x\\u003c/script>\\u003cb>&"), "JSON with < escaped");
  });
});

describe("temper report (CLI)", () => {
  const cli = join(repoRoot, "tools", "bin", "temper.mjs");
  test("writes the page; a bad line is one error line with file:line, exit 2", () => {
    const dirs = exampleRuns({ variants: ["hard", "hybrid"], seeds: [1] });
    const out = join(tmp, "cli-report.html");
    const ok = spawnSync(process.execPath, [cli, "report", ...dirs, "--out", out], { encoding: "utf8" });
    assert.equal(ok.status, 0, ok.stderr);
    assert.match(ok.stdout, /wrote .*cli-report\.html \(2 runs, 2 variants, \d+ KiB\)/);
    assert.match(readFileSync(out, "utf8"), /^<!doctype html>/);

    const file = join(dirs[1], "samples.jsonl");
    writeFileSync(file, `${readFileSync(file, "utf8")}{"step": 3,\n`);
    const bad = spawnSync(process.execPath, [cli, "report", ...dirs, "--out", out], { encoding: "utf8" });
    assert.equal(bad.status, 2);
    assert.equal(bad.stderr.trim().split("\n").length, 1, bad.stderr);
    assert.ok(bad.stderr.startsWith(`temper report: ${file}:21: bad JSON: `), bad.stderr);

    const several = spawnSync(process.execPath, [cli, "report", ...dirs], { encoding: "utf8" });
    assert.equal(several.status, 2);
    assert.match(several.stderr, /^temper report: --out FILE is required/);
  });
});

// --- headless Chromium ----------------------------------------------------------------------------

/**
 * Added after the report's own scripts: hovers every plot (the tooltip's row count goes into
 * data-hover) and measures where the README figure should end (after the first row of reward plots).
 */
const PROBE = `<script>
(() => {
  const hover = [];
  for (const svg of document.querySelectorAll("svg[data-plot]")) {
    const tip = svg.closest("figure").querySelector(".tooltip");
    if (!tip) continue;
    const r = svg.getBoundingClientRect();
    svg.dispatchEvent(new MouseEvent("mousemove", { clientX: r.left + r.width * 0.7, clientY: r.top + r.height / 2 }));
    hover.push(svg.dataset.plot + "=" + (tip.style.display === "block" ? tip.children.length - 1 : -1));
  }
  document.body.dataset.hover = hover.join(";");
  const third = document.querySelectorAll("#plots-reward figure")[2];
  document.body.dataset.figureHeight = String(third ? third.offsetTop - 8 : 2400);
})();
</script>
</body>`;

describe("report in headless Chromium", {
  skip: chromiumPath ? false : "chromium not installed (apt-get install chromium)",
}, () => {
  test("every plot has one series per variant, no script or console errors; screenshot", () => {
    const runs = exampleRuns().map(loadRun);
    const html = renderReport(runs);
    const page = join(tmp, "report.html");
    writeFileSync(page, html);
    const probed = join(tmp, "report-probed.html");
    writeFileSync(probed, html.replace(/<\/body>\s*<\/html>\s*$/, `${PROBE}\n</html>\n`));

    const { stdout: dom, stderr } = chromium(["--window-size=1400,4000", "--dump-dom", `file://${probed}`]);
    assert.deepEqual(consoleLines(stderr), [], "console messages");
    assert.equal(bodyData(dom, "errors"), "", "data-errors");
    const plots = plotsInDom(dom);
    assert.equal(bodyData(dom, "plots"), String(plots.size), "every plot drawn");
    const expected = [
      "eval-accuracy-step",
      "eval-accuracy-time",
      "final-accuracy",
      "reward-mean",
      "reward-correctness-correctness_hard",
      "reward-correctness-correctness_soft",
      "reward-perplexity-perplexity",
      "reward-reasoning-reasoning",
      "reward-consistency-consistency",
      "reward-std",
      "alpha",
      "zero_signal_fraction",
      "accuracy-train",
      "completions-mean_length",
      "train-kl",
      "train-entropy",
      "train-clip_fraction",
    ];
    assert.deepEqual([...plots.keys()].sort(), [...expected].sort());
    for (const [id, series] of plots) {
      assert.deepEqual(
        series.map((s) => s.variant),
        [...EXAMPLE_VARIANTS],
        `${id}: one series per variant`,
      );
      // Variants without the metric (hard has no perplexity, only hybrid and adaptive log α) draw nothing.
      const empty = series.filter((s) => s.points === 0).map((s) => s.variant);
      const expectEmpty =
        id === "alpha"
          ? ["hard", "continuous"]
          : id === "reward-correctness-correctness_hard"
            ? ["continuous"]
            : id.startsWith("reward-") && !["reward-mean", "reward-std"].includes(id)
              ? ["hard"]
              : [];
      assert.deepEqual(empty, expectEmpty, `${id}: series without points`);
      const points = id.startsWith("eval-") ? 3 : id === "final-accuracy" ? 1 : 10;
      for (const s of series)
        if (!expectEmpty.includes(s.variant)) assert.equal(s.points, points, `${id} ${s.variant}`);
    }
    // Bands for two seeds, dashed warm-start baselines, the escaped sample as text.
    assert.ok((dom.match(/class="band"/g) ?? []).length >= 4 * 10);
    assert.ok((dom.match(/class="baseline"/g) ?? []).length >= 3);
    assert.ok(dom.includes('&lt;script&gt;alert("pwned")&lt;/script&gt; AT&amp;T'));

    // Hovering a step plot lists every variant that has data there.
    const hover = new Map(
      (bodyData(dom, "hover") ?? "").split(";").map((h) => h.split("=") as [string, string]),
    );
    assert.equal(hover.get("reward-mean"), "4");
    assert.equal(hover.get("eval-accuracy-step"), "4");
    assert.equal(hover.get("alpha"), "2");
    assert.ok(Number(hover.get("eval-accuracy-time")) >= 1);

    // Screenshots: the whole page into the temp dir; summary, held-out accuracy and the first
    // reward row into docs/ for the README (rewritten only when it changes).
    const height = Number(bodyData(dom, "height"));
    assert.ok(height > 2000 && height < 20000, `page height ${height}`);
    const full = join(tmp, "report-full.png");
    const shot = chromium([`--window-size=1400,${height}`, `--screenshot=${full}`, `file://${page}`]);
    assert.deepEqual(consoleLines(shot.stderr), []);
    assert.ok(readFileSync(full).subarray(1, 4).toString() === "PNG");
    const figure = join(tmp, "report-example.png");
    chromium([
      `--window-size=1400,${Number(bodyData(dom, "figure-height"))}`,
      `--screenshot=${figure}`,
      `file://${page}`,
    ]);
    const docs = join(repoRoot, "docs", "report-example.png");
    const bytes = readFileSync(figure);
    if (!existsSync(docs) || !readFileSync(docs).equals(bytes)) {
      mkdirSync(join(repoRoot, "docs"), { recursive: true });
      writeFileSync(docs, bytes);
    }
    process.stdout.write(`# screenshots: ${full} (1400x${height}), ${docs}\n`);
  });

  test("runs without eval.jsonl or samples.jsonl still render cleanly", () => {
    const dirs = exampleRuns({ variants: ["hard", "continuous"], seeds: [1] });
    for (const dir of dirs) {
      rmSync(join(dir, "eval.jsonl"));
      rmSync(join(dir, "samples.jsonl"));
    }
    const page = join(tmp, "report-nodata.html");
    writeFileSync(page, renderReport(dirs.map(loadRun)));
    const { stdout: dom, stderr } = chromium(["--window-size=1400,3000", "--dump-dom", `file://${page}`]);
    assert.deepEqual(consoleLines(stderr), []);
    assert.equal(bodyData(dom, "errors"), "");
    const plots = plotsInDom(dom);
    for (const [id, series] of plots) assert.equal(series.length, 2, id);
    assert.ok(plots.get("eval-accuracy-step")!.every((s) => s.points === 0));
    assert.ok(dom.includes(">no data</text>"), "empty plots say so");
  });
});

function close(actual: number, expected: number, tolerance = 1e-9): void {
  assert.ok(Math.abs(actual - expected) <= tolerance, `${actual} ≉ ${expected}`);
}

function escapeRegExp(s: string): string {
  return s.replace(/[.*+?^${}()|[\]\\]/g, "\\$&");
}
