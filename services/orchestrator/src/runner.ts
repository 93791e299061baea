// One run's loop: draw prompts → Generate → store → Score → Train → metrics → evaluate when due.
// Every remote call is retried on transient statuses within a bounded wait (remote-calls.ts); any
// other status fails the run. A resumed run starts at its next step: it reads the step's stored
// rollout, the scheduler replays the step's scores for the same groups, and the learner's
// exactly-once Train makes a repeated Train a replay.
import type { Gsm8kExample } from "@temper/gsm8k";
import { type Bus, type Logger, type PromiseClient, retryNatsOutage } from "@temper/kit";
import {
  type common,
  events,
  type learner,
  type orchestrator,
  type reward,
  rollout,
  type scheduler,
} from "@temper/proto";
import { trainingBatch } from "./batch.ts";
import { Evaluator } from "./evaluator.ts";
import { Generation, promptOf } from "./generation.ts";
import { drawStep, GENERATE_MAX_PROMPTS } from "./prompts.ts";
import { RemoteCalls, RunFailed, RunStopped } from "./remote-calls.ts";
import type { RolloutPool } from "./rollout-pool.ts";
import {
  decodeSpec,
  type EvalRecord,
  LeaseLostError,
  type RunDir,
  type RunRecord,
  type RunTable,
} from "./run-store.ts";
import { PhaseTimer, stepSamples, stepValues } from "./step-metrics.ts";
import { cached } from "./stored-step.ts";

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
  private detached = false;
  private readonly spec: orchestrator.RunSpec;
  private driveStarted = performance.now();
  private readonly calls: RemoteCalls;
  private readonly generation: Generation;
  private readonly evaluator: Evaluator;

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
    this.calls = new RemoteCalls({
      runId: rec.runId,
      retryWaitMs: options.retryWaitMs,
      callTimeoutMs: options.callTimeoutMs,
      stop: this.stop.signal,
      logger,
    });
    // most prompts (or held-out groups) in one call
    const callLimit = options.maxPromptsPerCall ?? GENERATE_MAX_PROMPTS;
    this.generation = new Generation(this.spec, clients.rollouts, this.calls, callLimit);
    this.evaluator = new Evaluator(
      this.spec,
      data.eval,
      this.generation,
      clients.correctness,
      this.calls,
      callLimit,
    );
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

  /** Evaluates the policy after `stepsDone` steps, once: eval.jsonl, its event, the record. */
  private async evaluate(stepsDone: number): Promise<void> {
    if (this.rec.evals.some((e) => e.step === stepsDone)) return;
    const rec = await this.evaluator.evaluate(stepsDone, this.rec.policyVersion, () => this.elapsed());
    await this.dir.append("eval.jsonl", rec);
    await this.publish(
      "metrics.eval",
      events.MetricsEval.encode({
        runId: this.rec.runId,
        step: stepsDone,
        accuracy: rec.accuracy,
        stderr: rec.stderr,
        n: rec.n,
        policyVersion: rec.policy_version,
        majAccuracy: rec.maj_accuracy,
      }).finish(),
      `${this.rec.runId}.${stepsDone}.metrics.eval`,
    );
    this.rec.evals.push(rec);
    await this.save();
    this.emit({ kind: "eval", eval: rec });
    this.logger.info(
      { run_id: this.rec.runId, step: stepsDone, accuracy: rec.accuracy, n: rec.n },
      "evaluated",
    );
  }

  /** One RL step: generate, score, train, evaluate when due, record. */
  private async step(step: number): Promise<void> {
    const spec = this.spec;
    const runId = this.rec.runId;
    const timer = new PhaseTimer();
    const prompts = drawStep(this.data.train.length, spec.promptsPerStep, spec.seed, step).map((i) => ({
      id: `p${i}`,
      prompt: promptOf(spec, this.data.train[i]),
      reference: this.data.train[i].answer,
    }));
    // a resumed step reads its stored rollout: the policy has moved on and would sample anew
    const rolled = await timer.time("rollout", () =>
      cached(this.dir, step, "rollout.bin", rollout.GenerateResponse, () =>
        this.generation.generate(prompts, { ...spec.sampling!, seed: spec.seed }, spec.completionsPerPrompt, {
          step,
          tag: "train",
          adapterVersion: this.rec.policyVersion,
        }),
      ),
    );
    const groups = rolled.groups;
    // the same groups again replay the scores the scheduler stored for this step
    const scored = await timer.time("reward", () =>
      this.calls.retry("scheduler Score", (signal) =>
        this.clients.scheduler.score({ runId, step, groups }, this.calls.options(signal)),
      ),
    );
    const batch = trainingBatch(groups, scored, spec.dropZeroSignalGroups);
    const trained = await timer.time("train", () =>
      this.calls.retry("learner Train", (signal) =>
        this.clients.learner.train({ runId, step, sequences: batch.sequences }, this.calls.options(signal)),
      ),
    );
    if (trained.adapterVersion) this.rec.policyVersion = trained.adapterVersion;
    // evaluation after this step belongs to this step's record (time/eval)
    if (this.evaluator.due(step + 1)) await timer.time("eval", () => this.evaluate(step + 1));
    const maxNewTokens = spec.sampling!.maxNewTokens;
    const values = stepValues({ rolled, scored, batch, trained, maxNewTokens }, timer, this.elapsed());
    await this.recordStep(step, values, groups, scored);
  }

  /**
   * A step's metrics line and samples, its event, then the record that counts it done. The event goes
   * before the record: a kill between the two redoes the step, whose event then repeats under the
   * same msgId and is dropped as a duplicate; the other order could lose it.
   */
  private async recordStep(
    step: number,
    values: Record<string, number>,
    groups: common.Group[],
    scored: scheduler.ScoreResponse,
  ): Promise<void> {
    const latestEval = this.rec.evals.find((e) => e.step === step + 1);
    const line = {
      step,
      policy_version: this.rec.policyVersion,
      ...values,
      ...(latestEval ? { "accuracy/eval": latestEval.accuracy } : {}),
    };
    await this.dir.append("metrics.jsonl", line);
    for (const sample of stepSamples(step, groups, scored, this.spec.samplesPerStep))
      await this.dir.append("samples.jsonl", sample);
    const { policy_version: _, ...lineValues } = line;
    const metrics: orchestrator.StepMetrics = {
      step,
      values: lineValues,
      policyVersion: this.rec.policyVersion,
    };
    await this.publish(
      "metrics.step",
      events.MetricsStep.encode({ runId: this.rec.runId, ...metrics }).finish(),
      `${this.rec.runId}.${step}.metrics.step`,
    );
    this.rec.stepsDone = step + 1;
    this.rec.latest = { step, values, policyVersion: this.rec.policyVersion };
    await this.save();
    await this.dir.pruneSteps(step);
    this.emit({ kind: "metrics", metrics });
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
      if (this.evaluator.due(0) && this.rec.stepsDone === 0) await this.evaluate(0);
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
