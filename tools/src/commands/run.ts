// `temper run FILE`, `temper compare FILE`: run an experiment (or each run of a comparison, one
// after another so their wall times compare) through an orchestrator, following each with a
// progress line, then write the report and print the summary table. `temper runs`, `watch`,
// `stop`, `resume`: the orchestrator's runs. Without --orchestrator a local stack is started for
// the command's duration.
import { existsSync } from "node:fs";
import { join, resolve } from "node:path";
import { ExperimentError, type LoadedExperiment, loadComparison, pullHubRefs } from "@temper/experiment";
import { loadRun, writeTensorboard } from "@temper/report";
import { ROOT } from "@temper/stack";
import { CliError, numberFlag, outputFile, parseFlags } from "../cli.ts";
import { pullProgress } from "../hub-progress.ts";
import { connect, follow, requireRunId, statusName, writeReport } from "../runs-client.ts";

const COMMON_FLAGS = `  --orchestrator ADDR  an orchestrator's host:port (default: start a local stack for this command)
  --data-dir DIR       the local stack's store, logs, checkpoints and runs (default .temper/stack)
  --port-offset N      added to every port of the local stack`;

const USAGE: Record<string, string> = {
  run: `usage: temper run FILE [--out report.html] [--no-report] [--tensorboard]\n\nRuns an experiment file and writes its report (--tensorboard: also TensorBoard event files in the run\ndirectory's tensorboard/).\n\n${COMMON_FLAGS}`,
  compare: `usage: temper compare FILE [--out report.html] [--no-report] [--tensorboard]\n\nRuns every variant × seed of a comparison file, one after another, then writes one report\nand prints the summary table (--tensorboard: also TensorBoard event files in each run directory).\n\n${COMMON_FLAGS}`,
  runs: `usage: temper runs\n\nLists the orchestrator's runs.\n\n${COMMON_FLAGS}`,
  watch: `usage: temper watch RUN_ID\n\nFollows a run until it ends.\n\n${COMMON_FLAGS}`,
  stop: `usage: temper stop RUN_ID\n\nStops a run (it can be resumed).\n\n${COMMON_FLAGS}`,
  resume: `usage: temper resume RUN_ID\n\nContinues a stopped or failed run at its next step and follows it.\n\n${COMMON_FLAGS}`,
};

const say = (line: string) => process.stderr.write(`temper: ${line}\n`);

export interface ComparisonResult {
  dirs: string[];
  report?: string;
  table: string[];
  failed: string[];
}

/**
 * Runs each experiment in turn on one orchestrator (a local stack when `orchestrator` is unset);
 * every run's model must be the same (the stack serves one).
 */
export async function runComparison(
  runs: LoadedExperiment[],
  o: {
    orchestrator?: string;
    dataDir?: string;
    portOffset?: number;
    reportPath?: string;
    tensorboard?: boolean;
  },
): Promise<ComparisonResult> {
  const models = new Set(runs.map((r) => r.spec.model));
  if (models.size > 1 && !o.orchestrator)
    throw new CliError(
      `a local stack serves one model; this file names ${models.size}: ${[...models].join(", ")}`,
    );
  const conn = await connect({ ...o, model: runs[0].spec.model || undefined, say });
  const dirs: string[] = [];
  const failed: string[] = [];
  try {
    for (const [i, exp] of runs.entries()) {
      const label = `[${i + 1}/${runs.length}] ${exp.spec.name || "run"} seed ${exp.spec.seed}`;
      const { run } = await conn.client.startRun({ spec: exp.spec });
      say(`${label}: run ${run!.runId} started (${run!.directory})`);
      const ended = await follow(conn.client, run!.runId, label);
      dirs.push(ended.directory);
      const last = ended.evals[ended.evals.length - 1];
      say(
        `${label}: ${statusName(ended.status)} after ${ended.stepsDone} step(s)${last ? `, eval accuracy ${last.accuracy.toFixed(3)} ± ${last.stderr.toFixed(3)}` : ""}${ended.error ? `: ${ended.error}` : ""}`,
      );
      if (ended.status !== 3 /* SUCCEEDED */)
        failed.push(`${run!.runId}: ${statusName(ended.status)} ${ended.error}`);
    }
  } finally {
    await conn.close();
  }
  // a run that failed before its first step has nothing to plot; the failures say why
  const reportable = dirs.filter((d) => existsSync(join(d, "metrics.jsonl")));
  if (o.tensorboard)
    for (const d of reportable) say(`tensorboard: ${writeTensorboard(loadRun(d), join(d, "tensorboard"))}`);
  if (!o.reportPath || reportable.length === 0) return { dirs, table: [], failed };
  const { path, table } = writeReport(reportable, o.reportPath);
  return { dirs, report: path, table, failed };
}

function parse(argv: string[], command: string) {
  const { values, positionals } = parseFlags(
    argv,
    {
      orchestrator: { type: "string" },
      "data-dir": { type: "string" },
      "port-offset": { type: "string" },
      out: { type: "string" },
      "no-report": { type: "boolean" },
      tensorboard: { type: "boolean" },
      help: { type: "boolean", short: "h" },
    },
    true,
  );
  if (values.help) {
    process.stdout.write(`${USAGE[command]}\n`);
    return null;
  }
  const portOffset = numberFlag("port-offset", values["port-offset"], 0)!;
  if (!Number.isInteger(portOffset) || portOffset < 0 || portOffset > 10_000)
    throw new CliError(`--port-offset: expected an integer in [0, 10000], got ${portOffset}`);
  return { values, positionals, portOffset };
}

export async function runCommand(command: string, argv: string[]): Promise<void> {
  const p = parse(argv, command);
  if (!p) return;
  const { values, positionals, portOffset } = p;
  const conn = { orchestrator: values.orchestrator, dataDir: values["data-dir"], portOffset };

  if (command === "run" || command === "compare") {
    const file = positionals[0];
    if (!file) throw new CliError(USAGE[command].split("\n")[0]);
    let runs: LoadedExperiment[];
    try {
      // Hub models and data the file names are pulled here, on first use (a local stack only)
      if (!values.orchestrator) await pullHubRefs(file, pullProgress);
      runs = loadComparison(file, { checkFiles: !values.orchestrator }).runs;
    } catch (err) {
      if (err instanceof ExperimentError) throw new CliError(err.message, 2);
      throw err;
    }
    const stamp = new Date().toISOString().replace(/[-:]/g, "").replace("T", "-").slice(0, 15);
    const dataDir = resolve(values["data-dir"] ?? join(ROOT, ".temper", "stack"));
    const reportPath = values["no-report"]
      ? undefined
      : resolve(values.out ?? join(dataDir, "reports", `report-${stamp}.html`));
    // the report's directory is made (or found unusable) before the runs, not after them
    if (reportPath) outputFile(values.out ? "out" : "data-dir", reportPath);
    const res = await runComparison(runs, { ...conn, reportPath, tensorboard: values.tensorboard });
    if (res.report) {
      process.stdout.write(`${res.table.join("\n")}\n\nreport: ${res.report}\n`);
    }
    if (res.failed.length)
      throw new CliError(`${res.failed.length} run(s) did not succeed: ${res.failed.join("; ")}`, 1);
    return;
  }

  // a missing run id is a usage error, answered before any stack is started
  const runId = command === "runs" ? "" : requireRunId(positionals[0], command);
  const c = await connect({ ...conn, say });
  try {
    switch (command) {
      case "runs": {
        const { runs } = await c.client.listRuns({ pageSize: 1000, pageToken: "" });
        for (const r of runs) {
          const last = r.evals[r.evals.length - 1];
          process.stdout.write(
            `${r.runId}  ${statusName(r.status)}  ${r.stepsDone}/${r.spec?.steps ?? "?"} steps${last ? `  eval ${last.accuracy.toFixed(3)}` : ""}  ${r.directory}${r.error ? `  ${r.error}` : ""}\n`,
          );
        }
        if (runs.length === 0) process.stdout.write("no runs\n");
        return;
      }
      case "watch": {
        const r = await follow(c.client, runId, runId);
        process.stdout.write(`${runId}: ${statusName(r.status)}${r.error ? `: ${r.error}` : ""}\n`);
        return;
      }
      case "stop": {
        const { run } = await c.client.stopRun({ runId });
        process.stdout.write(`${run!.runId}: ${statusName(run!.status)} after ${run!.stepsDone} step(s)\n`);
        return;
      }
      case "resume": {
        await c.client.resumeRun({ runId });
        const r = await follow(c.client, runId, runId);
        process.stdout.write(`${runId}: ${statusName(r.status)}${r.error ? `: ${r.error}` : ""}\n`);
        return;
      }
    }
  } finally {
    await c.close();
  }
}
