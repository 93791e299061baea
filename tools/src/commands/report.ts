// `temper report RUN_DIR... --out report.html`: one self-contained HTML page comparing runs
// (held-out accuracy, reward and training curves per variant, a summary table, sample completions).
// Errors are one line, "temper report: <file>:<line>: ...", exit 2.
import { renameSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { loadRun, ReportError, renderReport } from "@temper/report";
import { CliError, outputFile, parseFlags } from "../cli.ts";

const USAGE = `usage: temper report RUN_DIR... [--out FILE.html] [--title TEXT]

Writes one self-contained HTML file (no external loads) comparing the runs: held-out accuracy
against step and wall time, reward and training curves, one colour per variant (spec "name"),
seeds averaged with their min-max as a band; a summary table; sample completions.

Each RUN_DIR holds spec.yaml and metrics.jsonl, and optionally eval.jsonl and samples.jsonl.

options:
  --out FILE     output file (default RUN_DIR/report.html when there is one RUN_DIR)
  --title TEXT   page title (default "Temper report: <variants>")`;

export async function run(argv: string[]): Promise<void> {
  try {
    report(argv);
  } catch (err) {
    if (err instanceof ReportError || err instanceof CliError) {
      process.stderr.write(`temper report: ${err.message.split("\n")[0]}\n`);
      process.exitCode = err instanceof CliError ? err.exitCode : 2;
      return;
    }
    throw err;
  }
}

function report(argv: string[]): void {
  const { values, positionals } = parseFlags(
    argv,
    { out: { type: "string" }, title: { type: "string" }, help: { type: "boolean", short: "h" } },
    true,
  );
  if (values.help) {
    process.stdout.write(`${USAGE}\n`);
    return;
  }
  if (positionals.length === 0)
    throw new CliError("no run directories; usage: temper report RUN_DIR... --out FILE");
  let out = values.out;
  if (out === undefined) {
    if (positionals.length > 1) throw new CliError("--out FILE is required with several run directories");
    out = join(positionals[0], "report.html");
  }
  const runs = positionals.map((dir) => loadRun(dir));
  const html = renderReport(runs, values.title === undefined ? {} : { title: values.title });
  outputFile("out", out);
  // Written next to the target and renamed, so that a reader never sees half a page.
  const partial = `${out}.partial-${process.pid}`;
  try {
    writeFileSync(partial, html);
    renameSync(partial, out);
  } catch (err) {
    throw new ReportError(
      `${out}: cannot write: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`,
    );
  }
  const variants = new Set(runs.map((r) => r.spec.name)).size;
  process.stdout.write(
    `wrote ${out} (${runs.length} run${runs.length === 1 ? "" : "s"}, ${variants} variant${variants === 1 ? "" : "s"}, ${Math.round(html.length / 1024)} KiB)\n`,
  );
}
