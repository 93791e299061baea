// Test fixtures: a temporary directory with a model directory (config.json) and GSM8K jsonl files.
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";

export function gsm8kLines(n: number): string {
  let out = "";
  for (let i = 1; i <= n; i++)
    out += `${JSON.stringify({ question: `What is ${i} + 1?`, answer: `${i} + 1 = <<${i}+1=${i + 1}>>${i + 1}\n#### ${i + 1}` })}\n`;
  return out;
}

export interface Fixture {
  dir: string;
  write(rel: string, text: string): string;
  cleanup(): void;
}

/** model/config.json, data/train.jsonl (trainSize problems), data/eval.jsonl (3 problems). */
export function makeFixture(trainSize = 10): Fixture {
  const dir = mkdtempSync(join(tmpdir(), "temper-experiment-"));
  const write = (rel: string, text: string) => {
    const path = join(dir, rel);
    mkdirSync(join(path, ".."), { recursive: true });
    writeFileSync(path, text);
    return path;
  };
  write("model/config.json", "{}\n");
  write("data/train.jsonl", gsm8kLines(trainSize));
  write("data/eval.jsonl", gsm8kLines(3));
  return { dir, write, cleanup: () => rmSync(dir, { recursive: true, force: true }) };
}
