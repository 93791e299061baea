import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { findEquations } from "./equations.ts";

const brief = (text: string) => findEquations(text).map((e) => [e.text, e.valid, e.source]);

describe("findEquations", () => {
  it("reads annotations and drops the text claim that repeats one", () => {
    assert.deepEqual(brief("She sold 48/2 = <<48/2=24>>24 clips."), [["48/2=24", true, "annotation"]]);
    assert.deepEqual(brief("earned 0.2 x 50 = $<<0.2*50=10>>10."), [["0.2*50=10", true, "annotation"]]);
  });
  it("flags a wrong annotation", () => {
    assert.deepEqual(brief("<<3*4=13>>13"), [["3*4=13", false, "annotation"]]);
  });
  it("reads plain-text claims with x, ×, $ and commas", () => {
    assert.deepEqual(brief("So 3 x 4 = 12 and 2 × $1,500 = $3,000.\nThen 7 - 2 = 4."), [
      ["3 x 4=12", true, "text"],
      ["2 × $1,500=3000", true, "text"],
      ["7 - 2=4", false, "text"],
    ]);
  });
  it("reads chains both as running totals and as equal expressions", () => {
    assert.deepEqual(brief("3 * 4 = 12 + 2 = 14"), [
      ["3 * 4=12", true, "text"],
      ["12 + 2=14", true, "text"],
    ]);
    assert.deepEqual(brief("2*(3+4) = 2*7 = 14"), [
      ["2*(3+4)=2*7", true, "text"],
      ["2*7=14", true, "text"],
    ]);
  });
  it("a result followed by the next claim on the same line is not a chain", () => {
    assert.deepEqual(brief("1+1=2 2+2=5"), [
      ["1+1=2", true, "text"],
      ["2+2=5", false, "text"],
    ]);
  });
  it("accepts a value rounded to the decimals written, not to an integer", () => {
    assert.deepEqual(brief("10/3 = 3.33"), [["10/3=3.33", true, "text"]]);
    assert.deepEqual(brief("10/3 = 3"), [["10/3=3", false, "text"]]);
  });
  it("ignores definitions, comparisons and prose", () => {
    assert.deepEqual(brief("x = 5\nTotal = 8\n3 <= 4\na == b\nLet me think = hard"), []);
  });
  it("strips a parenthesis opened before the claim", () => {
    assert.deepEqual(brief("(so 5 + 3 = 8)"), [["5 + 3=8", true, "text"]]);
  });
  it("a claim past a limit is invalid, not dropped", () => {
    const [e] = findEquations("5 / 0 = 3");
    assert.equal(e.valid, false);
    assert.equal(e.computed, null);
    assert.match(e.error ?? "", /division by zero/);
  });
  it("percentages: stated 25% matches a computed 0.25", () => {
    assert.deepEqual(brief("1/4 = 25%"), [["1/4=25", true, "text"]]);
  });
  it("stays linear and bounded on 1 MB of equals signs and operators", () => {
    const eqs = findEquations("1+1=2 ".repeat(1 << 17));
    assert.equal(eqs.length, 1); // every repeat is the same claim, de-duplicated
    assert.equal(findEquations(`${"1+".repeat(1 << 19)}1 = 3`).length, 0);
    assert.ok(findEquations("=".repeat(1 << 20)).length === 0);
  });
});
