// `temper tensorboard RUN_DIR...`: TensorBoard event files from run directories, one scalar per
// metric per step (metrics.jsonl) and per evaluation (eval.jsonl), written to RUN_DIR/tensorboard/
// so that TensorBoard, pointed at the runs directory, shows every run side by side.
import { join } from "node:path";
import { loadRun, ReportError, writeTensorboard } from "@temper/report";
import { CliError, parseFlags } from "../cli.ts";

const USAGE = `usage: temper tensorboard RUN_DIR...

Writes RUN_DIR/tensorboard/events.out.tfevents.<time>.temper for each run directory: every
metrics.jsonl value under its own name (reward/mean, train/kl, time/step, ...) at its step, and
accuracy/eval (with accuracy/eval_maj and accuracy/eval_pass1 where measured) at each evaluation.
TensorBoard shows every run side by side when its log directory is the runs directory.`;

export async function run(argv: string[]): Promise<void> {
  const { values, positionals } = parseFlags(argv, { help: { type: "boolean", short: "h" } }, true);
  if (values.help) {
    process.stdout.write(`${USAGE}\n`);
    return;
  }
  if (positionals.length === 0)
    throw new CliError("no run directories; usage: temper tensorboard RUN_DIR...");
  for (const dir of positionals) {
    try {
      const file = writeTensorboard(loadRun(dir), join(dir, "tensorboard"));
      process.stdout.write(`${file}\n`);
    } catch (err) {
      if (err instanceof ReportError) throw new CliError(err.message.split("\n")[0]);
      throw err;
    }
  }
}
