// Held-out evaluation: greedy accuracy on the first `eval.size` problems and, when asked, maj@k and
// pass@1 over k sampled completions. Correctness is scored by the correctness source itself: the
// scheduler's per-step state belongs to training.
import type { Gsm8kExample } from "@temper/gsm8k";
import type { PromiseClient } from "@temper/kit";
import { common, type orchestrator, type reward, type rollout } from "@temper/proto";
import { HARD_COMPONENT, isSolved } from "./batch.ts";
import { type Generation, promptOf } from "./generation.ts";
import { type Ballot, majorityCorrect } from "./majority.ts";
import { callRanges } from "./prompts.ts";
import type { RemoteCalls } from "./remote-calls.ts";
import type { EvalRecord } from "./run-store.ts";

export class Evaluator {
  private readonly e: orchestrator.EvalSpec | undefined;

  constructor(
    private readonly spec: orchestrator.RunSpec,
    private readonly problems: Gsm8kExample[],
    private readonly generation: Generation,
    private readonly correctness: PromiseClient<typeof reward.RewardServiceService>,
    private readonly calls: RemoteCalls,
    /** Most held-out groups in one Score. */
    private readonly callLimit: number,
  ) {
    this.e = spec.eval;
  }

  /** Whether the policy is evaluated once `stepsDone` steps have trained (0: the baseline). */
  due(stepsDone: number): boolean {
    const e = this.e;
    if (!e || e.size === 0 || this.problems.length === 0) return false;
    if (stepsDone === 0) return e.baseline;
    return stepsDone === this.spec.steps || (e.every > 0 && stepsDone % e.every === 0);
  }

  /** Evaluates the policy at `adapterVersion`; `elapsed()` is the run's wall time when it is done. */
  async evaluate(stepsDone: number, adapterVersion: string, elapsed: () => number): Promise<EvalRecord> {
    const e = this.e!;
    const t0 = performance.now();
    const problems = this.problems.slice(0, e.size);
    const prompts = problems.map((ex, i) => ({
      id: `eval-${i}`,
      prompt: promptOf(this.spec, ex),
      reference: ex.answer,
    }));
    const maxNewTokens = e.maxNewTokens || this.spec.sampling!.maxNewTokens;
    const greedy: rollout.SamplingParams = {
      temperature: 0,
      topK: 0,
      topP: 1,
      maxNewTokens,
      stop: this.spec.sampling!.stop,
      seed: this.spec.seed,
    };
    const at = { step: stepsDone, adapterVersion };
    const { groups } = await this.generation.generate(prompts, greedy, 1, { ...at, tag: "eval" });
    const results = await this.score(groups, "eval");
    // One answer per problem, in request order: "1" solved, "0" not. Kept so that two evaluations of
    // the same problems compare pairwise (the report's paired standard error of a gain).
    const solved = results.map((r) => (isSolved(r.components[HARD_COMPONENT]) ? "1" : "0")).join("");
    let correct = 0;
    for (const c of solved) if (c === "1") correct++;
    const n = problems.length;
    const p = n ? correct / n : 0;
    const votes = e.majK >= 2 ? await this.majorityVote(prompts, maxNewTokens, e.majK, at) : null;
    const pass1 = votes ? votes.sampledCorrect.map((c) => c / e.majK) : null;
    return {
      step: stepsDone,
      accuracy: p,
      stderr: n ? Math.sqrt((p * (1 - p)) / n) : 0,
      n,
      correct,
      solved,
      ...(votes
        ? {
            maj_k: e.majK,
            maj_accuracy: votes.solved / n,
            maj_stderr: Math.sqrt(((votes.solved / n) * (1 - votes.solved / n)) / n),
          }
        : {}),
      ...(pass1 !== null && votes
        ? { pass1: meanOf(pass1), pass1_stderr: stderrOf(pass1), sampled_correct: votes.sampledCorrect }
        : {}),
      elapsed: elapsed(),
      seconds: (performance.now() - t0) / 1000,
      policy_version: adapterVersion,
    };
  }

  /** correctness Score of held-out groups, in calls of at most callLimit groups. */
  private async score(groups: common.Group[], tag: string): Promise<reward.ScoreResponse["results"]> {
    const results: reward.ScoreResponse["results"] = [];
    for (const [a, b] of callRanges(0, groups.length, this.callLimit)) {
      const scored = await this.calls.retry(`correctness Score (${tag})`, (signal) =>
        this.correctness.score({ groups: groups.slice(a, b), params: undefined }, this.calls.options(signal)),
      );
      results.push(...scored.results);
    }
    return results;
  }

  /**
   * maj@k: k completions per problem at the run's sampling settings. Returns the problems the vote
   * solved and, per problem, how many of its k samples were correct (pass@1's counts).
   */
  private async majorityVote(
    prompts: rollout.PromptInput[],
    maxNewTokens: number,
    k: number,
    at: { step: number; adapterVersion: string },
  ): Promise<{ solved: number; sampledCorrect: number[] }> {
    const sampling: rollout.SamplingParams = { ...this.spec.sampling!, maxNewTokens, seed: this.spec.seed };
    const { groups } = await this.generation.generate(prompts, sampling, k, { ...at, tag: "eval-maj" });
    const results = await this.score(groups, "eval maj@k");
    let i = 0;
    let solved = 0;
    const sampledCorrect: number[] = [];
    for (const g of groups) {
      const ballots: Ballot[] = g.completions.map((c) => ({
        text: c.text,
        finishReason: finishReasonName(c.finishReason),
        correct: isSolved(results[i++]?.components[HARD_COMPONENT]),
      }));
      if (majorityCorrect(ballots)) solved++;
      sampledCorrect.push(ballots.filter((b) => b.correct).length);
    }
    return { solved, sampledCorrect };
  }
}

const meanOf = (xs: number[]) => xs.reduce((a, x) => a + x, 0) / Math.max(1, xs.length);

/** The standard error over problems of a mean of per-problem values (0 under two problems). */
function stderrOf(xs: number[]): number {
  if (xs.length < 2) return 0;
  const m = meanOf(xs);
  return Math.sqrt(xs.reduce((a, x) => a + (x - m) ** 2, 0) / (xs.length - 1) / xs.length);
}

function finishReasonName(r: common.FinishReason): Ballot["finishReason"] {
  if (r === common.FinishReason.FINISH_REASON_STOP) return "stop";
  if (r === common.FinishReason.FINISH_REASON_LENGTH) return "length";
  return "unspecified";
}
