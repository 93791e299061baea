// The `temper` command: one subcommand per file under commands/, loaded on demand so that
// `temper score` never pays for loading ONNX Runtime.
import { CliError, runCli } from "./cli.ts";

const commands: Record<
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
  model: { summary: "make, inspect and run Qwen3-layout models", load: () => import("./commands/model.ts") },
  report: {
    summary: "one self-contained HTML page comparing run directories",
    load: () => import("./commands/report.ts"),
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

function usage(): string {
  const lines = Object.entries(commands).map(([name, c]) => `  ${name.padEnd(8)} ${c.summary}`);
  return [
    "usage: temper <command> [options]",
    "",
    "commands:",
    ...lines,
    "",
    "temper <command> --help for its options",
  ].join("\n");
}

await runCli(async () => {
  const [name, ...rest] = process.argv.slice(2);
  if (!name || name === "--help" || name === "-h") {
    process.stdout.write(`${usage()}\n`);
    return;
  }
  const command = commands[name];
  if (!command) throw new CliError(`unknown command "${name}"; run temper --help`);
  await (await command.load()).run(rest);
});
