import assert from "node:assert/strict";
import { describe, test } from "node:test";
import { type Ballot, majorityCorrect } from "./majority.ts";

const stop = (text: string, correct: boolean): Ballot => ({ text, finishReason: "stop", correct });

describe("majorityCorrect", () => {
  test("the most voted answer decides, whatever the minority says", () => {
    assert.equal(
      majorityCorrect([stop("#### 7", false), stop("#### 7", false), stop("#### 12", true)]),
      false,
    );
    assert.equal(majorityCorrect([stop("#### 12", true), stop("#### 7", false), stop("12", true)]), true);
  });

  test("answers that are the same number vote together (1,000 = 1000 = 1000.0)", () => {
    const ballots = [
      stop("#### 1,000", true),
      stop("#### 1000.0", true),
      stop("#### 5", false),
      stop("#### 6", false),
    ];
    assert.equal(majorityCorrect(ballots), true);
  });

  test("a tie goes to the answer voted for first", () => {
    assert.equal(majorityCorrect([stop("#### 3", true), stop("#### 4", false)]), true);
    assert.equal(majorityCorrect([stop("#### 4", false), stop("#### 3", true)]), false);
  });

  test("completions without an answer don't vote; none at all is wrong", () => {
    const noAnswer = stop("I am not sure", false);
    assert.equal(majorityCorrect([noAnswer, noAnswer, stop("#### 9", true)]), true);
    assert.equal(majorityCorrect([noAnswer, noAnswer]), false);
    assert.equal(majorityCorrect([]), false);
    // a truncated completion without a marker has no answer (its last number is not one)
    const cut: Ballot = { text: "3 + 4 = 7 and then 12", finishReason: "length", correct: false };
    assert.equal(majorityCorrect([cut, cut, stop("#### 7", true)]), true);
  });
});
