// What the local Hub serves in tests: a tiny model made by `temper model init` (the tiny preset,
// byte tokenizer) and a tiny GSM8K in the Hub's parquet layout (config `main`).
import { mkdtempSync, readdirSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { initModel, presetConfig, tokenizerIds } from "@temper/qwen3";
import { parquetWriteBuffer } from "hyparquet-writer";

/** The files of a freshly initialised tiny model (seed 0), by name. */
export function tinyModelFiles(seed = 0): Record<string, Uint8Array> {
  const dir = mkdtempSync(join(tmpdir(), "temper-hub-model-"));
  try {
    const out = join(dir, "model");
    initModel({
      config: presetConfig("tiny", tokenizerIds("bytes")),
      tokenizer: "bytes",
      out,
      seed,
      dtype: "f32",
    });
    return Object.fromEntries(readdirSync(out).map((f) => [f, readFileSync(join(out, f))]));
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

export interface Gsm8kRow {
  question: string;
  answer: string;
}

/** `n` arithmetic problems in GSM8K's form, the i-th asking for i + 1 (offset by `from`). */
export function gsm8kRows(n: number, from = 1): Gsm8kRow[] {
  return Array.from({ length: n }, (_, k) => {
    const i = from + k;
    return { question: `What is ${i} + 1?`, answer: `${i} + 1 = <<${i}+1=${i + 1}>>${i + 1}\n#### ${i + 1}` };
  });
}

/** Rows as a parquet file with GSM8K's columns (question, answer: UTF-8 strings). */
export function gsm8kParquet(rows: Gsm8kRow[]): Uint8Array {
  return new Uint8Array(
    parquetWriteBuffer({
      columnData: [
        { name: "question", data: rows.map((r) => r.question), type: "STRING" },
        { name: "answer", data: rows.map((r) => r.answer), type: "STRING" },
      ],
    }),
  );
}

/** openai/gsm8k's files: README and the main config's train and test parquet. */
export function gsm8kRepoFiles(train = 12, test = 4): Record<string, Uint8Array | string> {
  return {
    "README.md": "---\nlicense: mit\n---\n# gsm8k (a tiny stand-in for tests)\n",
    "main/train-00000-of-00001.parquet": gsm8kParquet(gsm8kRows(train)),
    "main/test-00000-of-00001.parquet": gsm8kParquet(gsm8kRows(test, 1000)),
    "socratic/train-00000-of-00001.parquet": gsm8kParquet(gsm8kRows(2)),
  };
}
