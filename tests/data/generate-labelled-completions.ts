// Generates labelled-completions.jsonl: completions to GSM8K test questions whose label (1 when
// the completion's final answer is the reference, else 0) comes from how each one is BUILT, never
// from the extractor under test. Deterministic (seeded). Run from the repo root:
//   node --import tsx tests/data/generate-labelled-completions.ts
// It reads the full test split (1,319 questions), which only development checkouts have.
import { readFileSync, writeFileSync } from "node:fs";
import { dirname, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { devGsm8kPath, devGsm8kSkip } from "@temper/fixtures";

const here = dirname(fileURLToPath(import.meta.url));
const missing = devGsm8kSkip("test");
if (missing) {
  process.stderr.write(`generate-labelled-completions: ${missing}\n`);
  process.exit(2);
}
const source = devGsm8kPath("test");
const out = resolve(here, "labelled-completions.jsonl");

let seed = 20240611;
function rand(): number {
  // mulberry32
  seed = (seed + 0x6d2b79f5) | 0;
  let t = seed;
  t = Math.imul(t ^ (t >>> 15), t | 1);
  t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
  return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
}
const pick = <T>(xs: readonly T[]): T => xs[Math.floor(rand() * xs.length)];

interface Row {
  question: string;
  reference: string;
  completion: string;
  finish_reason: "stop" | "length";
  label: 0 | 1;
  case: string;
}

const rows = readFileSync(source, "utf8")
  .split("\n")
  .filter((l) => l.trim() !== "")
  .map((l) => JSON.parse(l) as { question: string; answer: string });

function finalOf(answer: string): number {
  return Number(answer.split("####")[1].trim().replace(/,/g, ""));
}

function withCommas(n: number): string {
  const [i, f] = String(Math.abs(n)).split(".");
  const grouped = i.replace(/\B(?=(\d{3})+(?!\d))/g, ",");
  return `${n < 0 ? "-" : ""}${grouped}${f ? `.${f}` : ""}`;
}

/** A value that is certainly not y (by far more than the 1e-6 relative tolerance). */
function wrongOf(y: number): number {
  const candidates = [y + 1, y - 1, y * 2 + 3, y + 10, Math.round(y / 2) + 7].filter((w) => Math.abs(w - y) > 1e-3 * Math.max(1, Math.abs(y)));
  return pick(candidates);
}

/** The rationale without its final line and without calculator annotations: what a model would write. */
function work(answer: string): string {
  return answer.split("####")[0].replace(/<<[^>]*>>/g, "").trim();
}

type Template = (ctx: { y: number; v: number; w: number; rationale: string }) => { text: string; finish?: "stop" | "length"; label?: 0 | 1 };

// Each template writes v as the final answer; label = (v == y) unless the template says otherwise.
const templates: Record<string, Template> = {
  hash: ({ v, rationale }) => ({ text: `${rationale}\n#### ${v}` }),
  hash_commas: ({ v, rationale }) => ({ text: `${rationale}\n#### ${withCommas(v)}` }),
  boxed: ({ v, rationale }) => ({ text: `${rationale}\nTherefore the total is $\\boxed{${v}}$.` }),
  boxed_text: ({ v, rationale }) => ({ text: `${rationale}\n\\boxed{${withCommas(v)} \\text{ dollars}}` }),
  answer_is: ({ v, rationale }) => ({ text: `${rationale}\nThe answer is ${v}.` }),
  final_answer_is_units: ({ v, rationale }) => ({ text: `${rationale}\nThe final answer is $${withCommas(v)} dollars.` }),
  bold_answer_colon: ({ v, rationale }) => ({ text: `${rationale}\n\n**Answer: ${v}**` }),
  bold_value: ({ v, rationale }) => ({ text: `${rationale}\n\nThe answer is **${withCommas(v)}**.` }),
  bold_label: ({ v, rationale }) => ({ text: `${rationale}\n\n**Final Answer:** ${v} units` }),
  a_colon: ({ v, rationale }) => ({ text: `${rationale}\nA: ${v}` }),
  decimals: ({ v, rationale }) => ({ text: `${rationale}\nThe answer is ${v}.00` }),
  chatter_after: ({ v, rationale }) => ({
    text: `${rationale}\nThe answer is ${v}. I checked it twice, with 2 methods, in about 5 minutes; 3 other ways agree.`,
  }),
  hash_then_chatter: ({ v, rationale }) => ({ text: `${rationale}\n#### ${v}\n\nNote: step 3 used 12 and 7.` }),
  self_correction: ({ v, w, rationale }) => ({ text: `${rationale}\nThe answer is ${w}. Wait, I made an error. The answer is ${v}.` }),
  last_number: ({ v, rationale }) => ({ text: `${rationale}\nSo in the end there are ${withCommas(v)} of them.` }),
  think_then_answer: ({ v, w, rationale }) => ({ text: `<think>\nMaybe it is ${w}? Let me redo it.\n${rationale}\n</think>\n\nThe answer is ${v}.` }),
  think_marker_inside_only: ({ v, rationale }) => ({
    text: `<think>\n${rationale}\n#### ${v}\n</think>\n\nI am confident in my work.`,
    label: 0,
  }),
  truncated_no_marker: ({ v, rationale }) => ({ text: `${rationale}\nSo far we have ${v} and then we add`, finish: "length", label: 0 }),
  truncated_after_marker: ({ v, rationale }) => ({ text: `${rationale}\n#### ${v}\nTo double check, 2 + 2 = 4 and 1`, finish: "length" }),
  truncated_think: ({ v, rationale }) => ({ text: `<think>\n${rationale}\nso the total is ${v} and`, finish: "length", label: 0 }),
  negative_sign: ({ y, rationale }) => ({ text: `${rationale}\nThe answer is -${Math.abs(y) + 1}.`, label: 0 }),
  percent: ({ v, rationale }) => ({ text: `${rationale}\nThe answer is ${v}%.` }),
};

const out_rows: Row[] = [];
const names = Object.keys(templates);
const examples = rows.slice();
// 14 completions per template (7 right, 7 wrong where the template allows both), from random questions.
for (const name of names) {
  for (let k = 0; k < 14; k++) {
    const ex = pick(examples);
    const y = finalOf(ex.answer);
    const right = k % 2 === 0;
    const w = wrongOf(y);
    const v = right ? y : w;
    const t = templates[name]({ y, v, w: right ? wrongOf(y) : y, rationale: work(ex.answer) });
    const label = t.label ?? (v === y ? 1 : 0);
    out_rows.push({ question: ex.question, reference: ex.answer, completion: t.text, finish_reason: t.finish ?? "stop", label, case: name });
  }
}

// Hand-written tricky cases (question shortened; the reference carries the answer).
const hand: Array<[reference: string, completion: string, finish: "stop" | "length", label: 0 | 1, note: string]> = [
  ["#### 72", "48 + 24 = 72 clips. The answer is 72 clips.", "stop", 1, "units after"],
  ["#### 72", "The answer is 72. (I used 48 clips in April, 24 in May.)", "stop", 1, "numbers after"],
  ["#### 72", "April: 48, May: 24. Total 72. So 48 + 24", "stop", 0, "fallback takes trailing 24"],
  ["#### 1080", "Total = $1,080.", "stop", 1, "commas + $ fallback"],
  ["#### 1080", "Total = $1,080.50.", "stop", 0, "decimal off"],
  ["#### 18", "**Answer:** $18", "stop", 1, "bold label, dollar"],
  ["#### 18", "The answer is: **$18.00**", "stop", 1, "bold decimals"],
  ["#### 18", "\\boxed{18}", "length", 1, "marker wins even when cut"],
  ["#### 18", "We need 9 * 2 = 18", "length", 0, "truncated fallback refused"],
  ["#### 18", "We need 9 * 2 = 18", "stop", 1, "fallback"],
  ["#### 5", "#### 5\n#### 6", "stop", 0, "last marker wins"],
  ["#### 5", "Answer: 6\n\\boxed{5}", "stop", 1, "boxed after colon"],
  ["#### 5", "THE ANSWER IS 5", "stop", 1, "uppercase"],
  ["#### 5", "the final answer is five", "stop", 0, "word number is not read"],
  ["#### 0", "She has nothing left, so the answer is 0.", "stop", 1, "zero"],
  ["#### -3", "The temperature is −3 degrees. The answer is −3.", "stop", 1, "unicode minus"],
  ["#### -3", "The answer is 3.", "stop", 0, "sign matters"],
  ["#### 0.5", "The answer is 1/2.", "stop", 1, "fraction"],
  ["#### 0.5", "The answer is .5", "stop", 1, "leading-dot decimal"],
  ["#### 25", "That is a 25% increase. The answer is 25%.", "stop", 1, "percent"],
  ["#### 1000000", "The answer is 1,000,000.", "stop", 1, "millions"],
  ["#### 1000000", "The answer is 1,000,0000.", "stop", 0, "malformed commas"],
  ["#### 12", "<think>12? no, 13.</think>The answer is 12", "stop", 1, "think then answer"],
  ["#### 12", "<think>The answer is 12</think>The answer is 13", "stop", 0, "answer outside think wins"],
  ["#### 12", "<think>\nwork work 12", "length", 0, "unclosed think"],
  ["#### 12", "steps 3 and 4 </think>\nA: 12", "stop", 1, "orphan close tag"],
  ["#### 7", "Q: what is 3+4?\nA: 7", "stop", 1, "A: at line start"],
  ["#### 7", "DATA: 7 values then 9", "stop", 0, "DATA: is not A:"],
  ["#### 7", "answers: 7 and 9 are options", "stop", 0, "answers: is not a marker; fallback 9"],
  ["#### 42", "**The answer is 42**", "stop", 1, "whole bold"],
  ["#### 42", "The answer is \\(42\\).", "stop", 1, "latex inline"],
  ["#### 42", "The answer is $42$.", "stop", 1, "latex dollars"],
  ["#### 42", "\\boxed{\\$42}", "stop", 1, "boxed escaped dollar"],
  ["#### 0.75", "\\boxed{\\frac{3}{4}}", "stop", 1, "boxed frac"],
  ["#### 42", "42 apples\n41 pears", "stop", 0, "fallback takes last line"],
  ["#### 42", "Answer = 42", "stop", 1, "answer equals"],
  ["#### 42", "", "stop", 0, "empty"],
  ["#### 42", "I cannot solve this.", "stop", 0, "no number"],
  ["#### 3.5", "Each gets 7/2 = 3.5 cookies.\n#### 3.5", "stop", 1, "decimal hash"],
  ["#### 3.5", "#### 3.50", "stop", 1, "trailing zero"],
  ["#### 350", "#### 3.50", "stop", 0, "decimal point matters"],
  ["72", "The answer is 72", "stop", 1, "bare-number reference"],
  ["$1,080", "#### 1080", "stop", 1, "reference with commas and $"],
];
for (const [reference, completion, finish, label, note] of hand) {
  out_rows.push({ question: "(hand-written)", reference, completion, finish_reason: finish, label, case: `hand: ${note}` });
}

writeFileSync(out, `${out_rows.map((r) => JSON.stringify(r)).join("\n")}\n`);
console.log(`wrote ${out_rows.length} rows (${out_rows.filter((r) => r.label === 1).length} positive) to ${out}`);
