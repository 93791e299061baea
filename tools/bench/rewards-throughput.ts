// Completions/s of the pure reward functions on batches of 64 groups × 8 GSM8K-like completions,
// plus the extractor's time on 1 MB adversarial inputs. Prints figures; asserts nothing.
//   node --import tsx tools/bench/rewards-throughput.ts
// Problems: the full GSM8K test split where the development copy is here, else the repository's
// 300-row sample (the line printed first says which; compare figures from the same one only).
import { existsSync } from "node:fs";
import { devGsm8kPath, gsm8kSample } from "@temper/fixtures";
import { extractAnswer, findEquations, loadGsm8k } from "@temper/gsm8k";
import {
  correctnessSource,
  type GroupInput,
  resolveStructure,
  scoreAllSources,
  scoreAndBlend,
} from "@temper/rewards";

const source = existsSync(devGsm8kPath("test")) ? devGsm8kPath("test") : gsm8kSample("test");
const test = loadGsm8k(source);
console.log(`problems: ${test.length} from ${source}`);
let seed = 1;
const rand = () => {
  seed = (seed * 1103515245 + 12345) % 2 ** 31;
  return seed / 2 ** 31;
};

// A completion as a model writes it: the rationale without annotations, then a marker; a third
// are wrong, some end in the fallback, some carry a think block.
function completion(answer: string): string {
  const [rationale, final] = answer.split("####");
  const work = rationale.replace(/<<[^>]*>>/g, "").trim();
  const y = Number(final.trim().replace(/,/g, ""));
  const v = rand() < 0.33 ? y + 1 + Math.floor(rand() * 5) : y;
  const r = rand();
  if (r < 0.4) return `${work}\nThe answer is ${v}.`;
  if (r < 0.6) return `${work}\n#### ${v}`;
  if (r < 0.8) return `<think>\nLet me work it out.\n${work}\n</think>\n\n**Answer: ${v}**`;
  return `${work}\nSo the result is ${v} in total.`;
}

function batch(offset: number): GroupInput[] {
  return Array.from({ length: 64 }, (_, g) => {
    const ex = test[(offset + g) % test.length];
    return {
      id: `g${g}`,
      reference: ex.answer,
      completions: Array.from({ length: 8 }, (_, c) => {
        const text = completion(ex.answer);
        const n = Math.ceil(text.length / 4);
        return {
          id: `c${c}`,
          text,
          logprobs: Array.from({ length: n }, () => -rand()),
          tokenIds: Array.from({ length: n }, (_, i) => i),
        };
      }),
    };
  });
}

const batches = Array.from({ length: 8 }, (_, i) => batch(i * 64));
const perBatch = 64 * 8;

function rate(name: string, fn: (b: GroupInput[]) => unknown, seconds = 2): void {
  for (const b of batches) fn(b); // warm-up
  let n = 0;
  const start = performance.now();
  let elapsed = 0;
  while (elapsed < seconds * 1000) {
    fn(batches[n % batches.length]);
    n++;
    elapsed = performance.now() - start;
  }
  const perSecond = (n * perBatch) / (elapsed / 1000);
  console.log(
    `${name.padEnd(44)} ${Math.round(perSecond).toLocaleString("en-US").padStart(10)} completions/s  (${(elapsed / n).toFixed(2)} ms per 512)`,
  );
}

const hybrid = resolveStructure({ kind: "hybrid" });
const adaptive = resolveStructure({ kind: "adaptive", schedule: { kind: "progress" } });
if (!hybrid.ok || !adaptive.ok) throw new Error("structure");
console.log(
  `batches of 64 groups × 8 completions; mean completion ${Math.round(
    batches
      .flat()
      .flatMap((g) => g.completions)
      .reduce((s, c) => s + c.text.length, 0) /
      (8 * perBatch),
  )} chars`,
);
rate("extraction only", (b) => {
  for (const g of b) for (const c of g.completions) extractAnswer(c.text);
});
rate("correctness source", (b) => correctnessSource.score(b));
rate("all four sources", (b) => scoreAllSources(b));
rate("all four sources + blend (hybrid)", (b) => scoreAndBlend({ groups: b, structure: hybrid.value }));
rate("all four sources + blend (adaptive progress)", (b) =>
  scoreAndBlend({ groups: b, structure: adaptive.value, step: 3 }),
);

const MB = 1 << 20;
const adversarial: Array<[string, string]> = [
  ["'the answer is ' × 75k", "the answer is ".repeat(MB / 14)],
  ["'\\n   A:   x' × 100k", "\n   A:   x".repeat(MB / 10)],
  ["'\\boxed{' × 150k (never closed)", "\\boxed{".repeat(MB / 7)],
  ["'1,' × 512k", "1,".repeat(MB / 2)],
  ["1 MB of digits", "9".repeat(MB)],
  ["'#### ' × 200k", "#### ".repeat(MB / 5)],
  ["'**' × 512k", "**".repeat(MB / 2)],
  ["'- ' × 512k", "- ".repeat(MB / 2)],
];
console.log("\n1 MB adversarial inputs (extractAnswer | findEquations):");
for (const [name, text] of adversarial) {
  let t = performance.now();
  extractAnswer(text);
  const ex = performance.now() - t;
  t = performance.now();
  findEquations(text);
  const eq = performance.now() - t;
  console.log(`  ${name.padEnd(36)} ${ex.toFixed(1).padStart(7)} ms | ${eq.toFixed(1).padStart(7)} ms`);
}
const eqs = [
  "1+1=2 ".repeat(MB / 6),
  `${"1+".repeat(MB / 2 - 4)}1 = 3`,
  "=".repeat(MB),
  "3 x ".repeat(MB / 4),
];
for (const text of eqs) {
  const t = performance.now();
  findEquations(text);
  console.log(
    `  findEquations ${JSON.stringify(text.slice(0, 12))}… ${(performance.now() - t).toFixed(1)} ms`,
  );
}
