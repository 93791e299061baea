// Agreement of correctness_hard with the hand-built labels of tests/data/labelled-completions.jsonl.
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { dirname, resolve } from "node:path";
import { it } from "node:test";
import { fileURLToPath } from "node:url";
import { correctnessSource } from "./sources.ts";

const file = resolve(
  dirname(fileURLToPath(import.meta.url)),
  "../../../tests/data/labelled-completions.jsonl",
);

it("correctness_hard agrees with every label of the labelled set", () => {
  const rows = readFileSync(file, "utf8")
    .split("\n")
    .filter((l) => l.trim() !== "")
    .map(
      (l) =>
        JSON.parse(l) as {
          reference: string;
          completion: string;
          finish_reason: string;
          label: number;
          case: string;
        },
    );
  assert.ok(rows.length >= 300);
  const scores = correctnessSource.score(
    rows.map((r, i) => ({
      id: `${i}`,
      reference: r.reference,
      completions: [{ id: `${i}`, text: r.completion, finishReason: r.finish_reason }],
    })),
  );
  const disagreements = rows
    .map((r, i) => ({
      r,
      got: scores[i].components.correctness_hard.value,
      rule: scores[i].details.matchedRule,
    }))
    .filter((x) => x.got !== x.r.label);
  const agreement = 1 - disagreements.length / rows.length;
  console.log(
    `labelled set: ${rows.length} completions, agreement ${(100 * agreement).toFixed(2)}% (${disagreements.length} disagreements)`,
  );
  for (const d of disagreements.slice(0, 10))
    console.log(
      `  ${d.r.case}: label ${d.r.label}, got ${d.got} by ${d.rule}: ${JSON.stringify(d.r.completion.slice(-120))}`,
    );
  assert.equal(disagreements.length, 0);
});
