// The `temper` command table and dispatch: one subcommand per file under commands/, loaded on
// demand so that `temper score` never pays for loading ONNX Runtime. main.ts runs it.
import { spawnSync } from "node:child_process";
import { readFileSync } from "node:fs";
import { join, resolve } from "node:path";
import { CliError } from "./cli.ts";

export const commands: Record<
  string,
  { summary: string; load: () => Promise<{ run(argv: string[]): Promise<void> }> }
> = {
  stack: {
    summary: "start nats-server and every service on loopback",
    load: () => import("./commands/stack.ts"),
  },
  score: { summary: "score completions with a reward structure", load: () => import("./commands/score.ts") },
  health: {
    summary: "check a service's gRPC health (exit 0 when SERVING)",
    load: () => import("./commands/health.ts"),
  },
  secrets: {
    summary: "make certificates, tokens and NATS users for a secure deployment (once)",
    load: () => import("./commands/secrets.ts"),
  },
  model: { summary: "make, inspect and run Qwen3-layout models", load: () => import("./commands/model.ts") },
  report: {
    summary: "one self-contained HTML page comparing run directories",
    load: () => import("./commands/report.ts"),
  },
  tensorboard: {
    summary: "TensorBoard event files from run directories",
    load: () => import("./commands/tensorboard.ts"),
  },
  data: {
    summary: "make training data (synthetic grade-school arithmetic)",
    load: () => import("./commands/data.ts"),
  },
  sft: {
    summary: "supervised full-parameter warm start of a model on GSM8K-format jsonl",
    load: () => import("./commands/sft.ts"),
  },
  default: {
    summary: "the default experiment: four reward structures on a warm-started mini model, one report",
    load: () => import("./commands/default.ts"),
  },
  ...Object.fromEntries(
    (
      [
        ["run", "run an experiment file through the orchestrator, then write its report"],
        ["compare", "run every variant × seed of a comparison file, one report"],
        ["runs", "list the orchestrator's runs"],
        ["watch", "follow a run until it ends"],
        ["stop", "stop a run"],
        ["resume", "continue a stopped or failed run"],
      ] as const
    ).map(([name, summary]) => [
      name,
      {
        summary,
        load: async () => {
          const m = await import("./commands/run.ts");
          return { run: (argv: string[]) => m.runCommand(name, argv) };
        },
      },
    ]),
  ),
};

export function usage(): string {
  const lines = Object.entries(commands).map(([name, c]) => `  ${name.padEnd(8)} ${c.summary}`);
  return [
    "usage: temper <command> [options]",
    "",
    "commands:",
    ...lines,
    "",
    "temper <command> --help for its options; temper --version for the version and git commit",
  ].join("\n");
}

const TOOLS_DIR = resolve(import.meta.dirname, "..");

/** `temper <version>`, plus the git commit (and "modified" for uncommitted changes) when the tools run from a checkout. */
export function versionLine(): string {
  const { version } = JSON.parse(readFileSync(join(TOOLS_DIR, "package.json"), "utf8")) as {
    version: string;
  };
  const git = (...args: string[]) => {
    const r = spawnSync("git", args, { cwd: TOOLS_DIR, encoding: "utf8", timeout: 5000 });
    return r.status === 0 ? r.stdout.trim() : undefined;
  };
  const top = git("rev-parse", "--show-toplevel");
  // only the repository these tools belong to (not one they happen to be installed inside)
  if (!top || resolve(top) !== resolve(TOOLS_DIR, "..")) return `temper ${version}`;
  const commit = git("rev-parse", "HEAD");
  if (!commit) return `temper ${version}`;
  const modified = git("status", "--porcelain", "--untracked-files=no");
  return `temper ${version} (commit ${commit}${modified ? ", modified" : ""})`;
}

/** Runs `temper <argv...>`. */
export async function dispatch(argv: readonly string[]): Promise<void> {
  const [name, ...rest] = argv;
  if (!name || name === "--help" || name === "-h") {
    process.stdout.write(`${usage()}\n`);
    return;
  }
  if (name === "--version") {
    process.stdout.write(`${versionLine()}\n`);
    return;
  }
  const command = commands[name];
  if (!command) throw new CliError(`unknown command "${name}"; run temper --help`);
  await (await command.load()).run(rest);
}
