import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { evaluateArithmetic } from "./arith.ts";

describe("evaluateArithmetic", () => {
  const values: Array<[string, number]> = [
    ["1+2*3", 7],
    ["(1+2)*3", 9],
    ["10-4-3", 3],
    ["48/2", 24],
    ["2^3^2", 512],
    ["2**10", 1024],
    ["-3^2", -9],
    ["(-3)^2", 9],
    ["3 × 4 ÷ 2", 6],
    ["0.2 x 50", 10],
    ["$1,200 - $200", 1000],
    ["50%*80", 40],
    ["2(3+4)", 14],
    ["12/60", 0.2],
    ["--5", 5],
    ["100 − 1", 99],
    [".5+.25", 0.75],
  ];
  for (const [expr, v] of values) {
    it(`${expr} = ${v}`, () => {
      const r = evaluateArithmetic(expr);
      assert.ok(r.ok, JSON.stringify(r));
      assert.ok(Math.abs(r.value - v) < 1e-12, `${r.value}`);
    });
  }
  const errors: Array<[string, RegExp]> = [
    ["1/0", /division by zero/],
    ["2^65", /exponent/],
    ["9".repeat(30), /digits/],
    ["(".repeat(40) + "1" + ")".repeat(40), /nesting/],
    ["1+".repeat(300) + "1", /longer than/],
    ["10^60*10^60", /out of range/],
    ["", /empty/],
    ["1+", /end of expression/],
    ["(1+2", /missing \)/],
    ["1 2", /trailing/],
    ["alert(1)", /unexpected character/],
    ["1e5", /unexpected character/],
  ];
  for (const [expr, re] of errors) {
    it(`${expr.slice(0, 24)} → error ${re}`, () => {
      const r = evaluateArithmetic(expr);
      assert.equal(r.ok, false);
      if (!r.ok) assert.match(r.error, re);
    });
  }
  it("never throws on random junk", () => {
    let seed = 7;
    const rand = () => {
      seed = (seed * 1103515245 + 12345) % 2 ** 31;
      return seed / 2 ** 31;
    };
    const alphabet = "0123456789.,+-*/^()%$ x×÷a";
    for (let n = 0; n < 2000; n++) {
      let s = "";
      const len = Math.floor(rand() * 30);
      for (let i = 0; i < len; i++) s += alphabet[Math.floor(rand() * alphabet.length)];
      const r = evaluateArithmetic(s);
      if (r.ok) assert.ok(Number.isFinite(r.value), s);
    }
  });
});
