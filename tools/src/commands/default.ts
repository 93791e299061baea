// `temper default` (what `npm start` runs): the default experiment. Makes synthetic grade-school
// problems and a small model once, warm-starts it with `temper sft` once (both cached under the
// data dir), then runs the four reward structures of examples/default.yaml with one seed — so on
// the same prompts with the same random numbers — on a local stack, writes the report and prints
// the summary table. `--smoke` runs the same path on a tiny model in about a minute (CI runs it).
import { join, resolve } from "node:path";
import { loadComparison } from "@temper/experiment";
import {
  applySetting,
  DEFAULT_FULL,
  DEFAULT_LONG,
  DEFAULT_SEEDS,
  DEFAULT_SMOKE,
  DEFAULT_SPARSE,
  prepareDefault,
} from "@temper/experiment/default";
import { ROOT } from "@temper/stack";
import { CliError, numberFlag, outputDir, outputFile, parseFlags } from "../cli.ts";
import { runComparison } from "./run.ts";

const USAGE = `usage: temper default [--smoke|--long|--seeds|--sparse] [--data-dir DIR] [--port-offset N] [--orchestrator ADDR] [--prepare] [--out report.html]

The default experiment: GRPO with LoRA on a mini model (1.6M parameters) warm-started on synthetic
one-step grade-school arithmetic, under the hard, continuous, hybrid and adaptive reward structures (same seed, same
prompts), every service a process; then one HTML report and the summary table.

  --smoke          the same path on a tiny model, 2 steps per structure (about a minute)
  --long           examples/default-long.yaml: 120 steps per structure, seeds 1 and 2 (~40 min)
  --seeds          examples/default-seeds.yaml: the default comparison over seeds 1, 2 and 3, with
                   a control (hard with each step's rewards shuffled): spreads over seeds, each
                   structure against hard with its minimum detectable effect (~20 min after the
                   warm start)
  --sparse         examples/default-sparse.yaml: the sparse-reward regime, the same warm start on
                   one- and two-step problems it never saw (about half of hard's groups carry no
                   signal); hard against adaptive over seeds 1-3, evaluated every 10 steps (~45 min
                   after the warm start)
  --data-dir DIR   data, models, the stack's store and runs (default .temper/default, which
                   --long, --seeds and --sparse share, or .temper/smoke with --smoke); the data and the warm start
                   are made once
  --port-offset N  added to every port of the local stack
  --orchestrator ADDR  run on a running orchestrator (host:port) instead of a local stack: its
                   rollout and learner must serve DATA_DIR/model-warm, and DATA_DIR and the runs
                   must be at the same paths there (compose: deploy/compose.experiment.yaml)
  --prepare        make the data, the base model and the warm start (cached), then exit
  --out FILE       the report (default <data-dir>/report.html, report-long.html with --long,
                   report-seeds.html with --seeds, report-sparse.html with --sparse)`;

const say = (line: string) => process.stderr.write(`temper default: ${line}\n`);

export async function run(argv: string[]): Promise<void> {
  const { values } = parseFlags(argv, {
    smoke: { type: "boolean" },
    long: { type: "boolean" },
    seeds: { type: "boolean" },
    sparse: { type: "boolean" },
    "data-dir": { type: "string" },
    "port-offset": { type: "string" },
    orchestrator: { type: "string" },
    prepare: { type: "boolean" },
    out: { type: "string" },
    help: { type: "boolean", short: "h" },
  });
  if (values.help) {
    process.stdout.write(`${USAGE}\n`);
    return;
  }
  if ([values.smoke, values.long, values.seeds, values.sparse].filter(Boolean).length > 1)
    throw new CliError("--smoke, --long, --seeds and --sparse: pick one");
  if (
    values.orchestrator !== undefined &&
    !/^(\[[0-9a-fA-F:.]+\]|[A-Za-z0-9._-]+):\d{1,5}$/.test(values.orchestrator)
  )
    throw new CliError(`--orchestrator: expected host:port, got ${JSON.stringify(values.orchestrator)}`);
  const setting = values.smoke
    ? DEFAULT_SMOKE
    : values.long
      ? DEFAULT_LONG
      : values.seeds
        ? DEFAULT_SEEDS
        : values.sparse
          ? DEFAULT_SPARSE
          : DEFAULT_FULL;
  const portOffset = numberFlag("port-offset", values["port-offset"], 0)!;
  if (!Number.isInteger(portOffset) || portOffset < 0 || portOffset > 10_000)
    throw new CliError(`--port-offset: expected an integer in [0, 10000], got ${portOffset}`);
  // --long is the default setting's data and warm start run longer: one cache serves both
  const dir = resolve(values["data-dir"] ?? join(ROOT, ".temper", values.smoke ? "smoke" : "default"));
  const started = Date.now();
  outputDir("data-dir", dir);
  // the report's directory is made (or found unusable) now, not after an hour of training
  const reportPath = outputFile(
    "out",
    resolve(
      values.out ??
        join(
          dir,
          values.long
            ? "report-long.html"
            : values.seeds
              ? "report-seeds.html"
              : values.sparse
                ? "report-sparse.html"
                : "report.html",
        ),
    ),
  );
  const { rlData, warm } = await prepareDefault(dir, setting, say);
  const warmSeconds = (Date.now() - started) / 1000;
  if (values.prepare) {
    process.stdout.write(`prepared in ${warmSeconds.toFixed(0)} s: data ${rlData}, warm start ${warm}\n`);
    return;
  }

  const file = loadComparison(join(ROOT, "examples", setting.file), { checkFiles: false });
  const runs = file.runs;
  applySetting(runs, setting, {
    model: warm,
    trainData: join(rlData, "train.jsonl"),
    evalData: join(rlData, "eval.jsonl"),
  });
  const res = await runComparison(runs, {
    dataDir: join(dir, "stack"),
    portOffset,
    reportPath,
    orchestrator: values.orchestrator,
  });
  const total = (Date.now() - started) / 1000;
  if (res.report) process.stdout.write(`\n${res.table.join("\n")}\n\nreport: ${res.report}\n`);
  process.stdout.write(
    `wall time: ${total.toFixed(0)} s (data + warm start ${warmSeconds.toFixed(0)} s, RL ${(total - warmSeconds).toFixed(0)} s)\n`,
  );
  if (res.failed.length)
    throw new CliError(`${res.failed.length} run(s) did not succeed: ${res.failed.join("; ")}`, 1);
}
