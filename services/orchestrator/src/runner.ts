// One run's loop: draw prompts → Generate (sharded) → store → Score → store → Train → metrics →
// evaluate when due. Every remote call is retried with backoff on transient statuses within a
// bounded wait; any other status fails the run. A resumed run starts at its next step and reuses
// what that step stored, and the learner's exactly-once Train makes a repeated Train a replay.
import { setTimeout as sleep } from "node:timers/promises";
import type { Gsm8kExample } from "@temper/gsm8k";
import { plainPrompt } from "@temper/gsm8k";
import { type Bus, GrpcError, type Logger, type PromiseClient, retryNatsOutage, Status } from "@temper/kit";
import {
  common,
  events,
  type learner,
  type orchestrator,
  type reward,
  rollout,
  scheduler,
} from "@temper/proto";
import { HARD, isSolved, rolloutMetrics, trainingBatch, trainMetrics } from "./batch.ts";
import { type Ballot, majorityCorrect } from "./majority.ts";
import { callRanges, drawStep, GENERATE_MAX_PROMPTS, shardRanges } from "./prompts.ts";
import type { RolloutPool } from "./rollout-pool.ts";
import {
  decodeSpec,
  type EvalRecord,
  LeaseLostError,
  type RunDir,
  type RunRecord,
  type RunTable,
} from "./run-store.ts";

export interface Clients {
  /** The rollout servers, resolved again for every Generate (rollout-pool.ts). */
  rollouts: RolloutPool;
  scheduler: PromiseClient<typeof scheduler.SchedulerServiceService>;
  learner: PromiseClient<typeof learner.LearnerServiceService>;
  correctness: PromiseClient<typeof reward.RewardServiceService>;
}

export interface RunnerOptions {
  /** How long a failing call is retried before the run fails. */
  retryWaitMs: number;
  /** Deadline of one Generate / Train / Score attempt. */
  callTimeoutMs: number;
  /**
   * Most prompts in one Generate, and groups in one held-out correctness Score; larger shards go out
   * in several calls (default GENERATE_MAX_PROMPTS, the rollout's own default MAX_PROMPTS).
   */
  maxPromptsPerCall?: number;
}

/** A run whose lease is older than this may be taken over by another orchestrator. */
export const LEASE_MS = 30_000;

const TRANSIENT = new Set([
  Status.UNAVAILABLE,
  Status.DEADLINE_EXCEEDED,
  Status.RESOURCE_EXHAUSTED,
  Status.ABORTED,
]);

export class RunStopped extends Error {
  override name = "RunStopped";
}

/** A failure that ends the run (FAILED with this message). */
export class RunFailed extends Error {
  override name = "RunFailed";
}

export type RunEvent =
  | { kind: "metrics"; metrics: orchestrator.StepMetrics }
  | { kind: "eval"; eval: EvalRecord }
  | { kind: "status"; status: RunRecord["status"]; error: string };

export interface Datasets {
  train: Gsm8kExample[];
  eval: Gsm8kExample[];
}

export class Runner {
  private readonly stop = new AbortController();
  private leaseLost = false;
  /** Most prompts (or held-out groups) in one call; see RunnerOptions.maxPromptsPerCall. */
  private get callLimit(): number {
    return this.options.maxPromptsPerCall ?? GENERATE_MAX_PROMPTS;
  }
  private detached = false;
  private readonly spec: orchestrator.RunSpec;
  private driveStarted = performance.now();

  constructor(
    private rec: RunRecord,
    private readonly table: RunTable,
    private readonly dir: RunDir,
    private readonly data: Datasets,
    private readonly clients: Clients,
    private readonly bus: Bus,
    private readonly options: RunnerOptions,
    private readonly logger: Logger,
    private readonly emit: (e: RunEvent) => void,
  ) {
    this.spec = decodeSpec(rec.spec);
  }

  get record(): RunRecord {
    return this.rec;
  }

  requestStop(): void {
    this.stop.abort();
  }

  /** Lets go of the run without changing its status (shutdown): another start resumes it. */
  detach(): void {
    this.detached = true;
    this.stop.abort();
    this.letGo.abort();
  }

  private elapsed(): number {
    return this.rec.elapsedSeconds + (performance.now() - this.driveStarted) / 1000;
  }

  private saving: Promise<void> = Promise.resolve();
  private savesPending = 0;
  /** Aborted when this process lets go of the run (shutdown): its saves stop waiting for NATS. */
  private readonly letGo = new AbortController();

  /**
   * Saves the record and extends the lease; saves are serialised (each is a compare-and-set) and
   * wait out a NATS outage, however long: a run whose state cannot be stored cannot go on, and
   * must not be left stored in a state nobody drives.
   */
  private save(): Promise<void> {
    this.savesPending++;
    const next = this.saving
      .then(() =>
        retryNatsOutage(
          `run ${this.rec.runId}: saving the record`,
          () => {
            this.rec.leaseUntilMs = Date.now() + LEASE_MS;
            return this.table.save(this.rec);
          },
          { signal: this.letGo.signal, onRetry: (err, n) => this.natsAway("saving the run record", err, n) },
        ),
      )
      .finally(() => this.savesPending--);
    this.saving = next.catch(() => {});
    return next;
  }

  /** Publishes an event, waiting out a NATS outage; its msgId makes a repeat after a restart harmless. */
  private publish(subject: string, data: Uint8Array, msgId: string): Promise<unknown> {
    return retryNatsOutage(
      `run ${this.rec.runId}: publishing ${subject}`,
      () => this.bus.publish(`temper.${this.rec.runId}.${subject}`, data, { msgId }),
      { signal: this.letGo.signal, onRetry: (err, n) => this.natsAway(`publishing ${subject}`, err, n) },
    );
  }

  private natsAway(what: string, err: unknown, attempt: number): void {
    if (attempt % 10 === 0)
      this.logger.warn(
        { run_id: this.rec.runId, what, err: (err as Error).message, attempt },
        "NATS away; waiting",
      );
  }

  /** Calls `fn` until it succeeds, retrying transient statuses with backoff within retryWaitMs. */
  private async retry<T>(what: string, fn: (signal: AbortSignal, attempt: number) => Promise<T>): Promise<T> {
    const until = Date.now() + this.options.retryWaitMs;
    let wait = 200;
    for (let attempt = 0; ; attempt++) {
      if (this.stop.signal.aborted) throw new RunStopped("stopped");
      try {
        return await fn(this.stop.signal, attempt);
      } catch (err) {
        if (this.stop.signal.aborted) throw new RunStopped("stopped");
        if (!(err instanceof GrpcError) || !TRANSIENT.has(err.code))
          throw new RunFailed(
            `${what}: ${err instanceof GrpcError ? `${err.codeName}: ${err.message}` : (err as Error).message}`,
          );
        if (Date.now() + wait > until)
          throw new RunFailed(
            `${what}: still ${err.codeName} after ${Math.round(this.options.retryWaitMs / 1000)} s of retries: ${err.message}`,
          );
        this.logger.warn({ run_id: this.rec.runId, what, code: err.codeName, attempt }, "retrying");
        await sleep(wait, undefined, { signal: this.stop.signal }).catch(() => {});
        wait = Math.min(wait * 2, 5000);
      }
    }
  }

  private prompt(ex: Gsm8kExample): string {
    return this.spec.chat ? ex.question : plainPrompt(ex.question, this.spec.instruction);
  }

  /**
   * Generate over the rollout servers as resolved now (every pod behind a headless Service): the
   * prompts in contiguous shards, one per server; shard k goes to server (k + attempt) mod servers.
   */
  private async generate(
    prompts: rollout.PromptInput[],
    sampling: rollout.SamplingParams,
    n: number,
    step: number,
    tag: string,
  ): Promise<{ groups: common.Group[]; engineSeconds: number }> {
    const endpoints = await this.retry(`rollout servers (${tag})`, () => this.clients.rollouts.endpoints());
    const shards = shardRanges(prompts.length, endpoints.length);
    const parts = await Promise.all(
      shards.map(async ([from, to], k) => {
        // a shard's calls one after another, so that each endpoint carries one call at a time
        const calls = callRanges(from, to, this.callLimit);
        const groups: common.Group[] = [];
        let engineSeconds = 0;
        for (const [j, [a, b]] of calls.entries()) {
          const where = [shards.length > 1 ? `shard ${k}` : "", calls.length > 1 ? `part ${j}` : ""].filter(
            Boolean,
          );
          const r = await this.retry(`rollout Generate (${[tag, ...where].join(", ")})`, (signal, attempt) =>
            endpoints[(k + attempt) % endpoints.length].generate(
              {
                prompts: prompts.slice(a, b),
                numCompletions: n,
                sampling,
                adapterVersion: this.rec.policyVersion,
                chat: this.spec.chat,
                enableThinking: this.spec.enableThinking,
                runId: this.rec.runId,
                step,
                callTag: [tag, ...where.map((w) => w.replace(" ", "-"))].join("."),
              },
              { timeoutMs: this.options.callTimeoutMs, attempts: 1, signal },
            ),
          );
          groups.push(...r.groups);
          engineSeconds += r.engineSeconds;
        }
        return { groups, engineSeconds };
      }),
    );
    // shards run side by side: the engine time of the step is the slowest shard's
    return {
      groups: parts.flatMap((p) => p.groups),
      engineSeconds: Math.max(0, ...parts.map((p) => p.engineSeconds)),
    };
  }

  /** correctness Score of held-out groups, in calls of at most maxPromptsPerCall groups. */
  private async scoreHeldOut(groups: common.Group[], tag: string): Promise<reward.ScoreResponse["results"]> {
    const results: reward.ScoreResponse["results"] = [];
    for (const [a, b] of callRanges(0, groups.length, this.callLimit)) {
      const scored = await this.retry(`correctness Score (${tag})`, (signal) =>
        this.clients.correctness.score(
          { groups: groups.slice(a, b), params: undefined },
          { timeoutMs: this.options.callTimeoutMs, attempts: 1, signal },
        ),
      );
      results.push(...scored.results);
    }
    return results;
  }

  private async evaluate(stepsDone: number): Promise<void> {
    if (this.rec.evals.some((e) => e.step === stepsDone)) return;
    const e = this.spec.eval!;
    const t0 = performance.now();
    const problems = this.data.eval.slice(0, e.size);
    const prompts = problems.map((ex, i) => ({
      id: `eval-${i}`,
      prompt: this.prompt(ex),
      reference: ex.answer,
    }));
    const sampling: rollout.SamplingParams = {
      temperature: 0,
      topK: 0,
      topP: 1,
      maxNewTokens: e.maxNewTokens || this.spec.sampling!.maxNewTokens,
      stop: this.spec.sampling!.stop,
      seed: this.spec.seed,
    };
    const { groups } = await this.generate(prompts, sampling, 1, stepsDone, "eval");
    // Scored by the correctness source itself: the scheduler's per-step state belongs to training.
    const results = await this.scoreHeldOut(groups, "eval");
    // One answer per problem, in request order: "1" solved, "0" not. Kept so that two evaluations of
    // the same problems compare pairwise (the report's paired standard error of a gain).
    const solved = results.map((r) => (isSolved(r.components.correctness_hard) ? "1" : "0")).join("");
    let correct = 0;
    for (const c of solved) if (c === "1") correct++;
    const n = problems.length;
    const p = n ? correct / n : 0;
    const votes =
      e.majK >= 2 ? await this.majorityVote(prompts, sampling.maxNewTokens, e.majK, stepsDone) : null;
    const maj = votes?.solved ?? null;
    const pass1 = votes ? votes.sampledCorrect.map((c) => c / e.majK) : null;
    const rec: EvalRecord = {
      step: stepsDone,
      accuracy: p,
      stderr: n ? Math.sqrt((p * (1 - p)) / n) : 0,
      n,
      correct,
      solved,
      ...(maj !== null
        ? { maj_k: e.majK, maj_accuracy: maj / n, maj_stderr: Math.sqrt(((maj / n) * (1 - maj / n)) / n) }
        : {}),
      ...(pass1 !== null && votes
        ? { pass1: meanOf(pass1), pass1_stderr: stderrOf(pass1), sampled_correct: votes.sampledCorrect }
        : {}),
      elapsed: this.elapsed(),
      seconds: (performance.now() - t0) / 1000,
      policy_version: this.rec.policyVersion,
    };
    await this.dir.append("eval.jsonl", rec);
    await this.publish(
      "metrics.eval",
      events.MetricsEval.encode({
        runId: this.rec.runId,
        step: stepsDone,
        accuracy: rec.accuracy,
        stderr: rec.stderr,
        n,
        policyVersion: rec.policy_version,
        majAccuracy: rec.maj_accuracy,
      }).finish(),
      `${this.rec.runId}.${stepsDone}.metrics.eval`,
    );
    this.rec.evals.push(rec);
    await this.save();
    this.emit({ kind: "eval", eval: rec });
    this.logger.info({ run_id: this.rec.runId, step: stepsDone, accuracy: p, n }, "evaluated");
  }

  /**
   * maj@k: k completions per problem at the run's sampling settings. Returns the problems the vote
   * solved and, per problem, how many of its k samples were correct (pass@1's counts).
   */
  private async majorityVote(
    prompts: rollout.PromptInput[],
    maxNewTokens: number,
    k: number,
    stepsDone: number,
  ): Promise<{ solved: number; sampledCorrect: number[] }> {
    const sampling: rollout.SamplingParams = { ...this.spec.sampling!, maxNewTokens, seed: this.spec.seed };
    const { groups } = await this.generate(prompts, sampling, k, stepsDone, "eval-maj");
    const results = await this.scoreHeldOut(groups, "eval maj@k");
    let i = 0;
    let solved = 0;
    const sampledCorrect: number[] = [];
    for (const g of groups) {
      const ballots: Ballot[] = g.completions.map((c) => {
        return {
          text: c.text,
          finishReason: finishReasonName(c.finishReason),
          correct: isSolved(results[i++]?.components.correctness_hard),
        };
      });
      if (majorityCorrect(ballots)) solved++;
      sampledCorrect.push(ballots.filter((b) => b.correct).length);
    }
    return { solved, sampledCorrect };
  }

  private evalDue(stepsDone: number): boolean {
    const e = this.spec.eval;
    if (!e || e.size === 0 || this.data.eval.length === 0) return false;
    if (stepsDone === 0) return e.baseline;
    return stepsDone === this.spec.steps || (e.every > 0 && stepsDone % e.every === 0);
  }

  private async step(step: number): Promise<void> {
    const spec = this.spec;
    const t0 = performance.now();
    const indices = drawStep(this.data.train.length, spec.promptsPerStep, spec.seed, step);
    const prompts = indices.map((i) => ({
      id: `p${i}`,
      prompt: this.prompt(this.data.train[i]),
      reference: this.data.train[i].answer,
    }));

    let groups: common.Group[];
    let rolloutEngine = 0;
    const storedRollout = await this.dir.readStep(step, "rollout.bin");
    const tRollout = performance.now();
    if (storedRollout) {
      const stored = rollout.GenerateResponse.decode(storedRollout);
      groups = stored.groups;
      rolloutEngine = stored.engineSeconds;
    } else {
      const out = await this.generate(
        prompts,
        { ...spec.sampling!, seed: spec.seed },
        spec.completionsPerPrompt,
        step,
        "train",
      );
      groups = out.groups;
      rolloutEngine = out.engineSeconds;
      const resp: rollout.GenerateResponse = {
        groups,
        adapterVersion: this.rec.policyVersion,
        engineSeconds: out.engineSeconds,
        generatedTokens: 0,
      };
      await this.dir.writeStep(step, "rollout.bin", rollout.GenerateResponse.encode(resp).finish());
    }
    const tReward = performance.now();
    let scored: scheduler.ScoreResponse;
    const storedScore = await this.dir.readStep(step, "scored.bin");
    if (storedScore) scored = scheduler.ScoreResponse.decode(storedScore);
    else {
      scored = await this.retry("scheduler Score", (signal) =>
        this.clients.scheduler.score(
          { runId: this.rec.runId, step, groups },
          { timeoutMs: this.options.callTimeoutMs, attempts: 1, signal },
        ),
      );
      await this.dir.writeStep(step, "scored.bin", scheduler.ScoreResponse.encode(scored).finish());
    }
    const tTrain = performance.now();
    const batch = trainingBatch(groups, scored, spec.dropZeroSignalGroups);
    const trained = await this.retry("learner Train", (signal) =>
      this.clients.learner.train(
        { runId: this.rec.runId, step, sequences: batch.sequences },
        { timeoutMs: this.options.callTimeoutMs, attempts: 1, signal },
      ),
    );
    const tDone = performance.now();
    if (trained.adapterVersion) this.rec.policyVersion = trained.adapterVersion;

    // Evaluation after this step belongs to this step's record (time/eval).
    let evalSeconds = 0;
    if (this.evalDue(step + 1)) {
      const e0 = performance.now();
      await this.evaluate(step + 1);
      evalSeconds = (performance.now() - e0) / 1000;
    }

    const values: Record<string, number> = {
      ...rolloutMetrics(groups, scored, spec.sampling!.maxNewTokens),
      ...trainMetrics(trained),
      "train/dropped_groups": batch.droppedGroups,
      "time/rollout": (tReward - tRollout) / 1000,
      "time/reward": (tTrain - tReward) / 1000,
      "time/train": (tDone - tTrain) / 1000,
      "time/eval": evalSeconds,
      // the services' own engine time: what the step's overhead is measured against
      "time/rollout_engine": rolloutEngine,
      "time/train_engine": trained.replayed ? 0 : trained.engineSeconds,
    };
    const stepSeconds = (performance.now() - t0) / 1000;
    values["time/other"] = Math.max(
      0,
      stepSeconds - values["time/rollout"] - values["time/reward"] - values["time/train"] - evalSeconds,
    );
    values["time/step"] = stepSeconds;
    values["time/elapsed"] = this.elapsed();
    const latestEval = this.rec.evals.find((e) => e.step === step + 1);
    const line = {
      step,
      policy_version: this.rec.policyVersion,
      ...values,
      ...(latestEval ? { "accuracy/eval": latestEval.accuracy } : {}),
    };
    await this.dir.append("metrics.jsonl", line);
    await this.writeSamples(step, groups, scored);
    const metrics: orchestrator.StepMetrics = {
      step,
      values: line as unknown as Record<string, number>,
      policyVersion: this.rec.policyVersion,
    };
    delete (metrics.values as Record<string, unknown>).policy_version;
    // the event before the record: a kill between the two redoes the step, whose event then repeats
    // under the same msgId and is dropped as a duplicate; the other order could lose it
    await this.publish(
      "metrics.step",
      events.MetricsStep.encode({
        runId: this.rec.runId,
        step,
        values: metrics.values,
        policyVersion: metrics.policyVersion,
      }).finish(),
      `${this.rec.runId}.${step}.metrics.step`,
    );
    this.rec.stepsDone = step + 1;
    this.rec.latest = { step, values, policyVersion: this.rec.policyVersion };
    await this.save();
    await this.dir.pruneSteps(step);
    this.emit({ kind: "metrics", metrics });
  }

  private async writeSamples(
    step: number,
    groups: common.Group[],
    scored: scheduler.ScoreResponse,
  ): Promise<void> {
    const k = this.spec.samplesPerStep;
    if (k === 0) return;
    const items = new Map(scored.items.map((it) => [it.completionId, it]));
    for (const g of groups.slice(0, k)) {
      const c = g.completions[0];
      if (!c) continue;
      const it = items.get(c.id);
      await this.dir.append("samples.jsonl", {
        step,
        prompt_id: g.id,
        prompt: g.prompt,
        reference: g.reference,
        completion: c.text,
        reward: it?.reward ?? null,
        advantage: it?.advantage ?? null,
        correct: isSolved(it?.components[HARD]),
      });
    }
  }

  /** Drives the run from its next step to the end (or a stop, a failure, a lost lease). */
  async drive(): Promise<void> {
    this.driveStarted = performance.now();
    const id = this.rec.runId;
    const heartbeat = setInterval(() => {
      if (this.savesPending > 0) return; // a save is on its way (or waiting for NATS): it renews the lease
      this.save().catch((err) => {
        if (!(err instanceof LeaseLostError)) return;
        this.leaseLost = true;
        this.requestStop();
      });
    }, LEASE_MS / 3);
    try {
      // a kill between a line's append and the record's save leaves lines of undone steps
      await this.dir.repair("metrics.jsonl", (s) => s < this.rec.stepsDone);
      await this.dir.repair("samples.jsonl", (s) => s < this.rec.stepsDone);
      await this.dir.rewrite("eval.jsonl", this.rec.evals);
      this.rec.status = "RUNNING";
      await this.save();
      this.emit({ kind: "status", status: "RUNNING", error: "" });
      if (this.evalDue(0) && this.rec.stepsDone === 0) await this.evaluate(0);
      while (this.rec.stepsDone < this.spec.steps) {
        if (this.stop.signal.aborted) throw new RunStopped("stopped");
        await this.step(this.rec.stepsDone);
        this.rec.elapsedSeconds = this.elapsed();
        this.driveStarted = performance.now();
      }
      await this.finish("SUCCEEDED", "");
    } catch (err) {
      if (err instanceof LeaseLostError || this.leaseLost) {
        this.logger.warn({ run_id: id }, "another orchestrator drives this run now; letting go");
        return;
      }
      if (err instanceof RunStopped && this.detached) {
        await this.saving;
        this.rec.leaseUntilMs = 0;
        await this.table.save(this.rec).catch(() => {});
      } else if (err instanceof RunStopped) await this.finish("STOPPED", "");
      else {
        const msg = err instanceof RunFailed ? err.message : `internal: ${(err as Error).message}`;
        this.logger.error({ run_id: id, err }, "run failed");
        await this.finish("FAILED", msg);
      }
    } finally {
      clearInterval(heartbeat);
    }
  }

  private async finish(status: RunRecord["status"], error: string): Promise<void> {
    this.rec.elapsedSeconds = this.elapsed();
    this.rec.status = status;
    this.rec.error = error;
    this.rec.endedAtMs = Date.now();
    try {
      await this.save(); // waits out NATS: a final state must be stored, or the run looks RUNNING
    } catch (err) {
      // shutdown while NATS is away, or another orchestrator took the run: it resumes it
      this.logger.error({ err, run_id: this.rec.runId }, "final state not saved");
    }
    this.emit({ kind: "status", status, error });
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
