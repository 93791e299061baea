import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { type ExtractionRule, extractAnswer } from "./extract.ts";

type Row = [text: string, value: number | null, rule: ExtractionRule, finish?: string];

const markers: Row[] = [
  ["work...\n#### 72", 72, "hash"],
  ["####72", 72, "hash"],
  ["#### $1,080", 1080, "hash"],
  ["so the total is \\boxed{18}.", 18, "boxed"],
  ["\\boxed{\\$18}", 18, "boxed"],
  ["\\boxed{18 \\text{ apples}}", 18, "boxed"],
  ["\\boxed{\\frac{3}{4}}", 0.75, "boxed"],
  ["\\boxed{-\\dfrac{1}{2}}", -0.5, "boxed"],
  ["\\boxed{1,234}", 1234, "boxed"],
  ["\\fbox{7}", 7, "boxed"],
  ["The answer is 42", 42, "answer_is"],
  ["the answer is: 42", 42, "answer_is"],
  ["THE FINAL ANSWER IS 42.", 42, "answer_is"],
  ["My final answer is $42.50.", 42.5, "answer_is"],
  ["The answer is **42**", 42, "answer_is"],
  ["**The answer is 42**", 42, "answer_is"],
  ["The answer is \\(42\\)", 42, "answer_is"],
  ["The answer is $42$", 42, "answer_is"],
  ["Answer: 42", 42, "answer_colon"],
  ["Final Answer: 42", 42, "answer_colon"],
  ["final answer:42", 42, "answer_colon"],
  ["**Answer: 42**", 42, "answer_colon"],
  ["**Answer:** 42", 42, "answer_colon"],
  ["**Final Answer**: 42", 42, "answer_colon"],
  ["Answer:\n42", 42, "answer_colon"],
  ["answer = 42", 42, "answer_colon"],
  ["A: 42", 42, "a_colon"],
  ["Q: how many?\nA: 42", 42, "a_colon"],
  ["**A:** 42", 42, "a_colon"],
  ["a: 42", 42, "a_colon"],
];

const numberForms: Row[] = [
  ["The answer is 1,234,567", 1234567, "answer_is"],
  ["The answer is $18", 18, "answer_is"],
  ["The answer is $18 dollars.", 18, "answer_is"],
  ["The answer is 42 apples", 42, "answer_is"],
  ["The answer is 25%", 25, "answer_is"],
  ["The answer is 42.", 42, "answer_is"],
  ["The answer is -7", -7, "answer_is"],
  ["The answer is −7", -7, "answer_is"],
  ["The answer is -$7", -7, "answer_is"],
  ["The answer is 3.75", 3.75, "answer_is"],
  ["The answer is .5", 0.5, "answer_is"],
  ["The answer is 3/4", 0.75, "answer_is"],
  ["The answer is 10/0", 10, "answer_is"],
  ["The answer is 18.00", 18, "answer_is"],
  ["The answer is 1,23", 1, "answer_is"],
  ["The answer is 12,3456", 12, "answer_is"],
  ["She has 5 apples, then 1,000 more.", 1000, "last_number"],
];

const priority: Row[] = [
  ["#### 5\nWait, the answer is 6", 6, "answer_is"],
  ["The answer is 6. So #### 5", 5, "hash"],
  ["Answer: 3. Later \\boxed{4}", 4, "boxed"],
  ["The answer is 42. That took 3 steps and 10 minutes.", 42, "answer_is"],
  ["#### 42\nI used 7 pens and 9 cups", 42, "hash"],
  ["The answer is 42. Double-check: the answer is not obvious", 42, "answer_is"],
  ["the answer is unclear, so 5 + 3 = 8", 8, "last_number"],
  ["We get 5 then 8", 8, "last_number"],
  ["We get 5 then 8", null, "none", "length"],
  ["The answer is 8 and then", 8, "answer_is", "length"],
  ["nothing here", null, "none"],
  ["", null, "none"],
  ["DATA: 5 rows, total 9", 9, "last_number"],
  ["Ask: 5", 5, "last_number"],
  ["answers: 5 or 7", 7, "last_number"],
  ["10-5 leaves", 5, "last_number"],
];

const think: Row[] = [
  ["<think>The answer is 5</think>The answer is 6", 6, "answer_is"],
  ["<think>#### 5</think>So it is 7", 7, "last_number"],
  ["<think>#### 5</think>", null, "none"],
  ["reasoning with 5 and 9 </think> The answer is 6", 6, "answer_is"],
  ["reasoning with 5 and 9 </think> nothing", null, "none"],
  ["The answer is 3 <think> maybe it is 4", 3, "answer_is"],
  ["<think> still thinking about 12", null, "none", "length"],
  ["<think> still thinking about 12", null, "none"],
  ["<think>a</think>#### 1<think>b</think>\n#### 2", 2, "hash"],
];

function table(name: string, rows: Row[]) {
  describe(name, () => {
    for (const [text, value, rule, finish] of rows) {
      it(`${JSON.stringify(text)}${finish ? ` (${finish})` : ""} → ${value} by ${rule}`, () => {
        const ex = extractAnswer(text, { finishReason: finish });
        assert.equal(ex.value, value);
        assert.equal(ex.rule, rule);
        assert.equal(ex.marker, rule !== "last_number" && rule !== "none");
      });
    }
  });
}

table("markers", markers);
table("number forms", numberForms);
table("priority: last marker wins, markers beat the fallback", priority);
table("think blocks", think);

describe("linear time on 1 MB adversarial text (correctness only; timings in tools/bench)", () => {
  const MB = 1 << 20;
  const cases: Array<[string, string, number | null]> = [
    ["answer-is with no number", "the answer is ".repeat(MB / 14), null],
    ["A: at line starts with spaces", "\n   A:   x".repeat(MB / 10), null],
    ["boxed never closed", "\\boxed{".repeat(MB / 7), null],
    ["digits with commas", "1,".repeat(MB / 2), 1],
    ["one huge number", "9".repeat(MB), 1e300 * 1e300],
    ["hashes", "#### ".repeat(MB / 5) + "7", 7],
    ["unclosed think", `<think>${"1 ".repeat(MB / 2)}`, null],
  ];
  for (const [name, text, expected] of cases) {
    it(name, () => {
      const ex = extractAnswer(text);
      if (expected === null) assert.equal(ex.value, null);
      else if (Number.isFinite(expected)) assert.equal(ex.value, expected);
      else assert.equal(ex.value, null); // a million nines overflows: not a number
    });
  }
});
