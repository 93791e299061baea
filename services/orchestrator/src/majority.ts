// maj@k: k sampled completions per eval problem vote with their extracted final answers; the
// problem counts as solved when the winning answer is one the correctness source scored 1. The
// vote only groups answers: whether an answer is right stays the correctness source's call.
import { extractAnswer, numbersMatch } from "@temper/gsm8k";

export interface Ballot {
  text: string;
  finishReason: "stop" | "length" | "unspecified";
  /** correctness_hard of this completion (1 right, 0 wrong or unscorable). */
  correct: boolean;
}

/**
 * The winning answer's correctness for one problem. Completions without an answer don't vote; ties
 * go to the answer voted for first, so the result is a fixed function of the samples. No vote at
 * all: false.
 */
export function majorityCorrect(ballots: readonly Ballot[]): boolean {
  const tallies: { value: number; votes: number; correct: boolean }[] = [];
  for (const b of ballots) {
    const { value } = extractAnswer(b.text, { finishReason: b.finishReason });
    if (value === null) continue;
    const t = tallies.find((x) => numbersMatch(x.value, value));
    if (t) {
      t.votes++;
      t.correct ||= b.correct;
    } else tallies.push({ value, votes: 1, correct: b.correct });
  }
  let best: (typeof tallies)[number] | undefined;
  for (const t of tallies) if (!best || t.votes > best.votes) best = t;
  return best?.correct ?? false;
}
