// `temper run` / `compare` on bad experiment files: one line naming the file, the line and the
// field, exit code 2, before anything is started.
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, test } from "node:test";

const bin = join(import.meta.dirname, "..", "bin", "temper.mjs");
const dir = mkdtempSync(join(tmpdir(), "temper-run-cli-"));
after(() => rmSync(dir, { recursive: true, force: true }));

mkdirSync(join(dir, "model"));
writeFileSync(join(dir, "model", "config.json"), "{}");
const line = (q: string, n: number) => JSON.stringify({ question: q, answer: `${n}\n#### ${n}` });
writeFileSync(join(dir, "train.jsonl"), [line("a", 1), line("b", 2), line("c", 3)].join("\n"));
writeFileSync(join(dir, "eval.jsonl"), line("d", 4));
writeFileSync(join(dir, "bad.jsonl"), `${line("a", 1)}\nnot json\n`);

const good = `name: t
model: model
data: { train: train.jsonl, eval: eval.jsonl }
steps: 2
prompts_per_step: 2
reward: { structure: hard }
optimizer: { learning_rate: 1.0e-3 }
`;

function run(command: string, text: string): { status: number | null; stderr: string } {
  const file = join(dir, `exp-${Math.random().toString(36).slice(2)}.yaml`);
  writeFileSync(file, text);
  const r = spawnSync(process.execPath, [bin, command, file], { encoding: "utf8", timeout: 60_000 });
  return { status: r.status, stderr: r.stderr };
}

const cases: [string, string, RegExp][] = [
  ["missing field", good.replace("steps: 2\n", ""), /:\d+: steps: /],
  ["wrong type", good.replace("steps: 2", "steps: two"), /:4: steps: /],
  ["unknown key", `${good}colour: blue\n`, /:8: colour: /],
  ["unknown structure", good.replace("structure: hard", "structure: firm"), /:6: reward\.structure: /],
  ["negative steps", good.replace("steps: 2", "steps: -3"), /:4: steps: /],
  ["missing model", good.replace("model: model", "model: nowhere"), /:2: model: /],
  [
    "bad data line",
    good.replace("train: train.jsonl", "train: bad.jsonl"),
    /:3: data\.train: .*bad\.jsonl:2/,
  ],
  [
    "dataset smaller than a step",
    good.replace("prompts_per_step: 2", "prompts_per_step: 5"),
    /:3: data\.train: /,
  ],
];

for (const [i, [name, text, pattern]] of cases.entries())
  test(`temper run: ${name} → one line naming file:line: field, exit 2`, () => {
    // `compare` shares the loader; one case is enough to show it answers the same way
    for (const command of i === 0 ? ["run", "compare"] : ["run"]) {
      const r = run(command, text);
      assert.equal(r.status, 2, r.stderr);
      const lines = r.stderr.trim().split("\n");
      assert.equal(lines.length, 1, r.stderr);
      assert.match(lines[0], /^temper: .*exp-\w+\.yaml:\d+: /);
      assert.match(lines[0], pattern);
    }
  });
