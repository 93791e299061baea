// `temper data pull gsm8k`: GSM8K from the Hub dataset openai/gsm8k (config main, parquet) into
// the Hub cache, converted to the jsonl Temper reads (kept beside the cache, or copied to --out).
import { copyFileSync, renameSync } from "node:fs";
import { join } from "node:path";
import { GSM8K_REPO, hubEnv, pullGsm8k } from "@temper/hub";
import { CliError, outputDir, parseFlags } from "../cli.ts";
import { hubAction, pullProgress } from "../hub-progress.ts";

export const DATA_PULL_USAGE = `temper data pull gsm8k [--revision REV] [--out DIR]

Fetches the Hub dataset ${GSM8K_REPO} (config main: train and test parquet files) into the Hugging
Face cache and converts each split to GSM8K jsonl ({"question", "answer"} a line), kept beside the
cache in $HF_HOME/temper (converted once per dataset commit). Prints one line per split: its
jsonl path and problem count. An experiment can name a split directly:
  data: { train: hf://datasets/openai/gsm8k@REV/main/train-00000-of-00001.parquet, ... }

options:
  --revision REV   a branch, tag or commit of the dataset (default main)
  --out DIR        also write DIR/train.jsonl and DIR/test.jsonl

environment: HF_ENDPOINT, HF_TOKEN, HF_HUB_OFFLINE=1, HF_HUB_CACHE, HF_HOME (as temper model pull)`;

export async function runDataPull(argv: string[]): Promise<void> {
  const { values, positionals } = parseFlags(
    argv,
    { revision: { type: "string" }, out: { type: "string" } },
    true,
  );
  if (positionals.length !== 1) throw new CliError(`usage: ${DATA_PULL_USAGE.split("\n")[0]}`);
  if (positionals[0] !== "gsm8k")
    throw new CliError(`unknown dataset "${positionals[0]}" (temper data pull knows: gsm8k)`);
  const env = hubEnv();
  const r = await hubAction(() =>
    pullGsm8k(values.revision ?? "main", { env, onProgress: pullProgress(`pull ${GSM8K_REPO}`) }),
  );
  if (values.out) outputDir("out", values.out);
  for (const s of r.splits) {
    let path = s.jsonl;
    if (values.out) {
      path = join(values.out, `${s.split}.jsonl`);
      const tmp = `${path}.tmp-${process.pid}`;
      copyFileSync(s.jsonl, tmp);
      renameSync(tmp, path);
    }
    process.stdout.write(
      `${s.split}: ${path} (${s.rows} problems, ${GSM8K_REPO}@${r.commit.slice(0, 12)} ${s.source})\n`,
    );
  }
}
