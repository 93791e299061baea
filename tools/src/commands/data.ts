// `temper data <subcommand>`: datasets for training. `pull` fetches GSM8K from the Hub (data-pull.ts);
// `synth` writes synthetic grade-school arithmetic in GSM8K's jsonl format as three disjoint sets
// (see @temper/gsm8k synth.ts).
import { renameSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { SynthError, synthesizeSets } from "@temper/gsm8k";
import { CliError, choiceFlag, numberFlag, outputDir, parseFlags } from "../cli.ts";
import { DATA_PULL_USAGE } from "./data-pull.ts";

interface Subcommand {
  summary: string;
  usage: string;
  run(argv: string[]): Promise<void>;
}

const SYNTH_USAGE = `temper data synth --sft N --train N --eval N [--eval-extra N] [--dev N] --seed S [--min-steps A] [--max-steps B] [--max-operand M] [--max-result R] [--rationale terse|prose] [--disjoint chain|question] --out DIR

Writes DIR/sft.jsonl, DIR/train.jsonl and DIR/eval.jsonl: arithmetic word problems in GSM8K's
format ({"question", "answer"}, the answer a rationale with <<a op b=c>> annotations ending in
"#### N"), 1 to 3 steps of + − × ÷ with non-negative integer results. The three sets share no
question (and by default no arithmetic chain); the same flags give the same files.

options:
  --sft N, --train N, --eval N   set sizes (required; 0 allowed)
  --eval-extra N                 held-out problems appended to eval.jsonl, made after the other
                                 sets: a larger held-out set that leaves sft and train unchanged
  --dev N                        also DIR/dev.jsonl: N problems made last, disjoint from the
                                 rest, for temper sft's --dev (early stop); the others unchanged
  --seed S                       seed (required)
  --min-steps A, --max-steps B   steps per problem, within 1..3 (default 1, 3)
  --max-operand M                largest operand (default 20)
  --max-result R                 largest value any step reaches (default M²)
  --rationale S                  terse: lines "4*6 = <<4*6=24>>24" (default); prose: GSM8K-like
                                 sentences "Sam has 4*6 = <<4*6=24>>24 pencils."
  --disjoint D                   what the sets never share: chain (default) the question and its
                                 arithmetic chain, so held-out problems need unseen arithmetic;
                                 question only the question text, so facts recur in new wordings
  --out DIR                      output directory (created; existing files are replaced)`;

const subcommands: Record<string, Subcommand> = {
  pull: {
    summary: "fetch a dataset from the Hugging Face Hub as GSM8K jsonl (gsm8k: openai/gsm8k, config main)",
    usage: DATA_PULL_USAGE,
    run: async (argv) => (await import("./data-pull.ts")).runDataPull(argv),
  },
  synth: {
    summary: "write synthetic grade-school arithmetic problems (GSM8K format) as sft/train/eval jsonl",
    usage: SYNTH_USAGE,
    run: runSynth,
  },
};

function usage(): string {
  const lines = Object.entries(subcommands).map(([name, c]) => `  ${name.padEnd(8)} ${c.summary}`);
  return [
    "usage: temper data <subcommand> [options]",
    "",
    "subcommands:",
    ...lines,
    "",
    "temper data <subcommand> --help for its options",
  ].join("\n");
}

/** Errors for the user are one line, "temper data: ...", exit 2; anything else goes to runCli (exit 1). */
export async function run(argv: string[]): Promise<void> {
  try {
    await data(argv);
  } catch (err) {
    if (!(err instanceof CliError)) throw err;
    process.stderr.write(`temper data: ${err.message.split("\n")[0]}\n`);
    process.exitCode = err.exitCode;
  }
}

async function data(argv: string[]): Promise<void> {
  const [name, ...rest] = argv;
  if (!name || name === "--help" || name === "-h") {
    process.stdout.write(`${usage()}\n`);
    return;
  }
  const sub = subcommands[name];
  if (!sub) throw new CliError(`unknown data subcommand "${name}"; run temper data --help`);
  if (rest.includes("--help") || rest.includes("-h")) {
    process.stdout.write(`usage: ${sub.usage}\n`);
    return;
  }
  await sub.run(rest);
}

function integerFlag(name: string, value: string | undefined, min: number, fallback?: number): number {
  if (value === undefined && fallback === undefined) throw new CliError(`--${name} is required`);
  const n = numberFlag(name, value, fallback)!;
  if (!Number.isSafeInteger(n) || n < min)
    throw new CliError(`--${name}: expected an integer ≥ ${min}, got "${value}"`);
  return n;
}

async function runSynth(argv: string[]): Promise<void> {
  const { values } = parseFlags(argv, {
    sft: { type: "string" },
    train: { type: "string" },
    eval: { type: "string" },
    "eval-extra": { type: "string" },
    dev: { type: "string" },
    seed: { type: "string" },
    "min-steps": { type: "string" },
    "max-steps": { type: "string" },
    "max-operand": { type: "string" },
    "max-result": { type: "string" },
    rationale: { type: "string" },
    disjoint: { type: "string" },
    out: { type: "string" },
  });
  const sft = integerFlag("sft", values.sft, 0);
  const train = integerFlag("train", values.train, 0);
  const evalCount = integerFlag("eval", values.eval, 0);
  const evalExtra = integerFlag("eval-extra", values["eval-extra"], 0, 0);
  const dev = integerFlag("dev", values.dev, 0, 0);
  const seed = integerFlag("seed", values.seed, 0);
  const min = integerFlag("min-steps", values["min-steps"], 1, 1);
  const max = integerFlag("max-steps", values["max-steps"], 1, 3);
  const maxOperand = integerFlag("max-operand", values["max-operand"], 2, 20);
  const maxResult =
    values["max-result"] === undefined ? undefined : integerFlag("max-result", values["max-result"], 2);
  const rationale = choiceFlag("rationale", values.rationale, ["terse", "prose"] as const, "terse");
  const disjoint = choiceFlag("disjoint", values.disjoint, ["chain", "question"] as const, "chain");
  const out = values.out;
  if (!out) throw new CliError("--out is required");

  let sets: ReturnType<typeof synthesizeSets>;
  try {
    sets = synthesizeSets({
      sft,
      train,
      eval: evalCount,
      evalExtra,
      dev,
      seed,
      steps: { min, max },
      maxOperand,
      maxResult,
      rationale,
      disjoint,
    });
  } catch (err) {
    if (err instanceof SynthError) throw new CliError(err.message);
    throw err;
  }
  outputDir("out", out);
  for (const name of dev > 0
    ? (["sft", "train", "eval", "dev"] as const)
    : (["sft", "train", "eval"] as const)) {
    const rows = sets[name];
    const path = join(out, `${name}.jsonl`);
    const tmp = `${path}.tmp-${process.pid}`;
    writeFileSync(tmp, rows.map((r) => `${JSON.stringify(r)}\n`).join(""));
    renameSync(tmp, path);
    process.stdout.write(`wrote ${path}: ${rows.length} problems\n`);
  }
}
