import assert from "node:assert/strict";
import { describe, test } from "node:test";
import { status } from "@grpc/grpc-js";
import type { GrpcError } from "./errors.ts";
import { check, fieldPath, invalidArgument } from "./validate.ts";

const rejectsWith = (fn: () => void, message: string) =>
  assert.throws(fn, (e: GrpcError) => e.code === status.INVALID_ARGUMENT && e.message === message);

describe("validation helpers", () => {
  test("fieldPath joins names and indices", () => {
    assert.equal(fieldPath("groups", 3, "completions", 0, "text"), "groups[3].completions[0].text");
    assert.equal(fieldPath("sources", "correctness"), "sources.correctness");
    assert.equal(invalidArgument("run_id", "bad").message, "run_id: bad");
  });

  test("maxBytes counts UTF-8 bytes, not UTF-16 units", () => {
    check.maxBytes("a".repeat(10), 10, "t");
    rejectsWith(() => check.maxBytes("a".repeat(11), 10, "t"), "t: exceeds 10 bytes");
    // "é" is one UTF-16 unit but two UTF-8 bytes; "😀" two units, four bytes.
    check.maxBytes("é".repeat(5), 10, "t");
    rejectsWith(() => check.maxBytes("é".repeat(6), 10, "t"), "t: exceeds 10 bytes");
    check.maxBytes("😀".repeat(2), 8, "t");
    rejectsWith(() => check.maxBytes("😀".repeat(3), 11, "x.y"), "x.y: exceeds 11 bytes");
  });

  test("the other checks name the field and the rule", () => {
    rejectsWith(() => check.nonEmpty("", "run_id"), "run_id: must not be empty");
    rejectsWith(() => check.maxItems([1, 2, 3], 2, "groups"), "groups: has 3 items, at most 2 allowed");
    rejectsWith(() => check.range(1.5, 0, 1, "alpha"), "alpha: must be in [0, 1], got 1.5");
    rejectsWith(() => check.range(Number.NaN, 0, 1, "alpha"), "alpha: must be in [0, 1], got NaN");
    rejectsWith(
      () => check.matches("a.b", /^[A-Za-z0-9_-]{1,64}$/, "run_id", "match [A-Za-z0-9_-]{1,64}"),
      'run_id: must match [A-Za-z0-9_-]{1,64}, got "a.b"',
    );
    rejectsWith(
      () => check.oneOf("x", ["skip", "fail"], "policy"),
      'policy: must be one of skip, fail, got "x"',
    );
    // a caller's value is quoted to 200 characters, with its length
    rejectsWith(
      () => check.oneOf("y".repeat(100_000), ["skip", "fail"], "policy"),
      `policy: must be one of skip, fail, got "${"y".repeat(200)}"… (100000 characters)`,
    );
    rejectsWith(() => check.unique(["a", "b", "a"], "ids"), 'ids[2]: duplicate value "a"');
    check.that(true, "x", "never");
    rejectsWith(() => check.that(false, "weights.format", "must be >= 0"), "weights.format: must be >= 0");
  });
});
