// temper.orchestrator.v1.OrchestratorService: checks a run before it starts, keeps its record in
// JetStream KV, drives it (runner.ts) and streams its metrics. On start, every RUNNING run this
// orchestrator owns, or whose lease has expired, is resumed at its next step.
import { createHash } from "node:crypto";
import { EventEmitter } from "node:events";
import { readFile, stat } from "node:fs/promises";
import { join, resolve } from "node:path";
import { metrics } from "@opentelemetry/api";
import { completeRunSpec } from "@temper/experiment";
import { Gsm8kDataError, type Gsm8kExample, readGsm8kFile } from "@temper/gsm8k";
import {
  type Bus,
  type CallContext,
  check,
  checkRunId,
  failedPrecondition,
  GrpcError,
  invalidArgument,
  isGrpcError,
  type Logger,
  quote,
  RUN_ID,
  Status,
} from "@temper/kit";
import { type common, orchestrator, type rollout, scheduler } from "@temper/proto";
import { modelContentHash } from "@temper/qwen3/model";
import { stringify } from "yaml";
import { dataSource, hubDataPath, hubModelOf, modelSource, servesHubModel } from "./hub-model.ts";
import { RunMetrics } from "./run-metrics.ts";
import {
  decodeSpec,
  encodeSpec,
  RunDir,
  type RunRecord,
  type RunStatusName,
  type RunTable,
  writeAtomic,
} from "./run-store.ts";
import {
  type Clients,
  type Datasets,
  LEASE_MS,
  type RunEvent,
  Runner,
  type RunnerOptions,
} from "./runner.ts";

const STATUS: Record<RunStatusName, orchestrator.RunStatus> = {
  PENDING: orchestrator.RunStatus.RUN_STATUS_PENDING,
  RUNNING: orchestrator.RunStatus.RUN_STATUS_RUNNING,
  SUCCEEDED: orchestrator.RunStatus.RUN_STATUS_SUCCEEDED,
  FAILED: orchestrator.RunStatus.RUN_STATUS_FAILED,
  STOPPED: orchestrator.RunStatus.RUN_STATUS_STOPPED,
};
const TERMINAL = new Set<RunStatusName>(["SUCCEEDED", "FAILED", "STOPPED"]);

export interface OrchestratorOptions extends RunnerOptions {
  runsDir: string;
}

function toProto(rec: RunRecord): orchestrator.Run {
  return {
    runId: rec.runId,
    status: STATUS[rec.status],
    spec: decodeSpec(rec.spec),
    stepsDone: rec.stepsDone,
    latest: rec.latest
      ? { step: rec.latest.step, values: rec.latest.values, policyVersion: rec.latest.policyVersion }
      : undefined,
    error: rec.error,
    startedAtMs: rec.startedAtMs,
    endedAtMs: rec.endedAtMs,
    evals: rec.evals.map((e) => ({
      step: e.step,
      accuracy: e.accuracy,
      stderr: e.stderr,
      n: e.n,
      policyVersion: e.policy_version,
    })),
    directory: rec.directory,
  };
}

/** A data file of a spec, read off the event loop; anything but a regular file is refused. */
async function loadData(path: string, field: string): Promise<Gsm8kExample[]> {
  check.nonEmpty(path, field);
  try {
    return await readGsm8kFile(path);
  } catch (err) {
    if (err instanceof Gsm8kDataError) throw invalidArgument(field, err.message);
    throw err;
  }
}

/** "hard-20261202-113015-k3f9": the variant's name, the time, a random tail. */
function freshRunId(name: string): string {
  const base = (name || "run").replace(/[^A-Za-z0-9_-]/g, "-").slice(0, 32);
  const t = new Date().toISOString().replace(/[-:]/g, "").replace("T", "-").slice(0, 15);
  return `${base}-${t}-${Math.random().toString(36).slice(2, 6)}`;
}

export class Orchestrator {
  private readonly runners = new Map<string, Runner>();
  private readonly events = new EventEmitter();
  /** Each run's latest step as gauges (a no-op where the service exports no metrics). */
  private readonly runMetrics = new RunMetrics(metrics.getMeter("temper-orchestrator"));
  private readonly modelHashes = new Map<string, { mtimeMs: number; hash: Promise<string> }>();

  constructor(
    private readonly table: RunTable,
    private readonly clients: Clients,
    private readonly bus: Bus,
    private readonly options: OrchestratorOptions,
    private readonly logger: Logger,
  ) {
    this.events.setMaxListeners(0);
  }

  private async modelHash(dir: string): Promise<string> {
    const mtimeMs = (await stat(join(dir, "config.json"))).mtimeMs;
    const cached = this.modelHashes.get(dir);
    if (cached && cached.mtimeMs === mtimeMs) return cached.hash;
    const hash = modelContentHash(dir);
    this.modelHashes.set(dir, { mtimeMs, hash });
    return hash;
  }

  private async datasets(spec: orchestrator.RunSpec): Promise<Datasets> {
    return {
      train: await loadData(spec.trainData, "spec.train_data"),
      eval: spec.eval && spec.eval.size > 0 ? await loadData(spec.evalData, "spec.eval_data") : [],
    };
  }

  /** Checks the spec and fills in what the services need; INVALID_ARGUMENT / FAILED_PRECONDITION. */
  private async prepare(
    spec: orchestrator.RunSpec,
    ctx: CallContext,
  ): Promise<{ spec: orchestrator.RunSpec; data: Datasets; rolloutMachines: common.Machine[] }> {
    if (spec.runId !== "") checkRunId(spec.runId, "spec.run_id");
    check.that(spec.steps >= 1, "spec.steps", "must be at least 1");
    check.that(spec.promptsPerStep >= 1, "spec.prompts_per_step", "must be at least 1");
    check.that(spec.completionsPerPrompt >= 1, "spec.completions_per_prompt", "must be at least 1");
    if (!spec.sampling) throw invalidArgument("spec.sampling", "required (max_new_tokens at least)");
    check.that(spec.sampling.maxNewTokens >= 1, "spec.sampling.max_new_tokens", "must be at least 1");
    if (!spec.reward?.structure?.kind) throw invalidArgument("spec.reward.structure", "required");
    if (!spec.training?.optimizer)
      throw invalidArgument("spec.training.optimizer", "required (learning_rate at least)");
    // hf:// data (a client that could not resolve it): this orchestrator's Hub cache answers
    spec.trainData = hubDataPath(spec.trainData, "spec.train_data");
    spec.evalData = hubDataPath(spec.evalData, "spec.eval_data");
    const data = await this.datasets(spec);
    check.that(
      data.train.length >= spec.promptsPerStep,
      "spec.train_data",
      `${spec.trainData} holds ${data.train.length} problems, fewer than one step's ${spec.promptsPerStep} prompts`,
    );
    if (spec.eval && spec.eval.size > 0)
      check.that(data.eval.length > 0, "spec.eval_data", "holds no problems");

    // The rollout must serve the spec's model: same content hash on every endpoint.
    const servers = await this.clients.rollouts.endpoints();
    const infos = await Promise.all(
      servers.map((c) =>
        c.getModelInfo({}, { timeoutMs: 30_000, parent: ctx }).catch((err: GrpcError) => {
          throw new GrpcError(Status.UNAVAILABLE, `rollout ${c.$address}: ${err.message}`);
        }),
      ),
    );
    // what every rollout worker takes, checked here rather than at the run's first Generate
    const limit = (of: (i: rollout.GetModelInfoResponse) => number) => {
      const known = infos.map(of).filter((n) => n > 0);
      return known.length > 0 ? Math.min(...known) : Number.POSITIVE_INFINITY;
    };
    const maxCompletions = limit((i) => i.maxCompletions);
    check.that(
      spec.completionsPerPrompt <= maxCompletions,
      "spec.completions_per_prompt",
      `must be at most ${maxCompletions} (the rollout's limit), got ${spec.completionsPerPrompt}`,
    );
    const maxNewTokens = limit((i) => i.maxNewTokens);
    check.that(
      spec.sampling.maxNewTokens <= maxNewTokens,
      "spec.sampling.max_new_tokens",
      `must be at most ${maxNewTokens} (the rollout's limit), got ${spec.sampling.maxNewTokens}`,
    );
    if (spec.eval)
      check.that(
        spec.eval.maxNewTokens <= maxNewTokens,
        "spec.eval.max_new_tokens",
        `must be at most ${maxNewTokens} (the rollout's limit), got ${spec.eval.maxNewTokens}`,
      );
    let model = spec.model;
    let modelHash: string;
    const hub =
      model !== "" && !(await stat(join(resolve(model), "config.json")).catch(() => null))
        ? hubModelOf(model)
        : undefined;
    if (model === "" || (hub && infos.length > 0 && servesHubModel(hub, infos[0].model))) {
      // none named, or the Hub model the rollouts serve from their cache: theirs, by content hash
      model = infos[0].model;
      modelHash = infos[0].contentHash;
    } else {
      model = resolve(model);
      if (!(await stat(join(model, "config.json")).catch(() => null))?.isFile())
        throw invalidArgument("spec.model", `${quote(spec.model)} is not a model directory (no config.json)`);
      modelHash = await this.modelHash(model);
    }
    for (const [i, info] of infos.entries())
      if (info.contentHash !== modelHash)
        throw failedPrecondition(
          `spec.model: rollout ${servers[i].$address} serves ${info.model} (content ${info.contentHash.slice(0, 12)}), not ${model} (content ${modelHash.slice(0, 12)})`,
        );

    const runId = spec.runId || freshRunId(spec.name);
    const resolved = completeRunSpec({ ...spec, model }, { runId, modelHash });
    return { spec: resolved, data, rolloutMachines: infos.flatMap((i) => (i.machine ? [i.machine] : [])) };
  }

  /**
   * Configure the scheduler and create the learner's run (both idempotent). A resumed run whose
   * scheduler run exists keeps the scheduler's configuration: a source swapped at runtime (a
   * Configure with expected_version) stays swapped, and a spec that no longer matches the
   * scheduler's defaults does not stop the resume.
   */
  /** Returns the learner's machine (undefined when it does not say). */
  private async register(
    spec: orchestrator.RunSpec,
    ctx?: CallContext,
    resuming = false,
  ): Promise<common.Machine | undefined> {
    const opts = { timeoutMs: 30_000, ...(ctx ? { parent: ctx } : {}) };
    try {
      const existing = resuming
        ? await this.clients.scheduler.getState({ runId: spec.runId }, opts).catch((err) => {
            if (isGrpcError(err, Status.NOT_FOUND)) return undefined;
            throw err;
          })
        : undefined;
      if (!existing) await this.clients.scheduler.configure({ config: spec.reward }, opts);
    } catch (err) {
      throw prefixed(err, "spec.reward", "scheduler Configure");
    }
    try {
      return (await this.clients.learner.createRun({ runId: spec.runId, config: spec.training }, opts))
        .machine;
    } catch (err) {
      throw prefixed(err, "spec.training", "learner CreateRun");
    }
  }

  async startRun(
    req: orchestrator.StartRunRequest,
    ctx: CallContext,
  ): Promise<orchestrator.StartRunResponse> {
    if (!req.spec) throw invalidArgument("spec", "required");
    const { spec, data, rolloutMachines } = await this.prepare(req.spec, ctx);
    const directory = resolve(this.options.runsDir, spec.runId);
    const rec: RunRecord = {
      runId: spec.runId,
      status: "PENDING",
      spec: encodeSpec(spec),
      stepsDone: 0,
      policyVersion: "",
      evals: [],
      latest: null,
      error: "",
      startedAtMs: Date.now(),
      endedAtMs: 0,
      elapsedSeconds: 0,
      directory,
      owner: this.table.owner,
      leaseUntilMs: Date.now() + LEASE_MS,
    };
    // the sweep of orphans leaves the run alone until it is driven
    this.taking.add(spec.runId);
    try {
      if (!(await this.table.create(rec)))
        throw new GrpcError(
          Status.ALREADY_EXISTS,
          `spec.run_id: run ${spec.runId} exists (runs are immutable; ResumeRun continues one)`,
        );
      const learnerMachine = await this.register(spec, ctx).catch(async (err) => {
        rec.status = "FAILED";
        rec.error = err.message;
        rec.endedAtMs = Date.now();
        await this.table.save(rec).catch(() => {});
        throw err;
      });
      const dir = await RunDir.open(directory);
      await writeAtomic(
        dir.file("spec.yaml"),
        await this.specYaml(spec, { rollout: rolloutMachines, learner: learnerMachine }),
      );
      this.drive(rec, dir, data);
      return { run: toProto(rec) };
    } finally {
      this.taking.delete(spec.runId);
    }
  }

  private async specYaml(
    spec: orchestrator.RunSpec,
    machines: { rollout: common.Machine[]; learner: common.Machine | undefined },
  ): Promise<string> {
    const s = spec.reward?.structure?.kind;
    const json = orchestrator.RunSpec.toJSON(spec) as Record<string, unknown>;
    const doc = {
      run_id: spec.runId,
      name: spec.name,
      seed: spec.seed,
      steps: spec.steps,
      model: spec.model,
      ...(modelSource(spec.model) ? { model_source: modelSource(spec.model) } : {}),
      ...(dataSource(spec.trainData) ? { data_source: dataSource(spec.trainData) } : {}),
      created_at: new Date().toISOString(),
      reward: {
        structure: s?.$case ?? "",
        ...(spec.reward?.control === scheduler.RewardControl.REWARD_CONTROL_PERMUTE
          ? { control: "permute" }
          : {}),
      },
      provenance: {
        commit: process.env.TEMPER_COMMIT ?? "unknown",
        model_hash: spec.training?.model ?? "",
        train_data_sha256: await fileSha256(spec.trainData),
        // the eval file is read (and so known to exist) only when the spec evaluates
        eval_data_sha256: spec.eval && spec.eval.size > 0 ? await fileSha256(spec.evalData) : "",
      },
      // a run's numbers reproduce bitwise on the same machine: the same CPU features, thread counts
      // and ONNX Runtime (common.Machine)
      machine: {
        rollout: machines.rollout.map(machineYaml),
        learner: machines.learner ? machineYaml(machines.learner) : null,
      },
      spec: json,
    };
    return `# resolved run spec: every field as the services received it\n${stringify(doc)}`;
  }

  private drive(rec: RunRecord, dir: RunDir, data: Datasets): void {
    const spec = decodeSpec(rec.spec);
    const labels = { variant: spec.name || spec.runId, seed: spec.seed };
    const runner = new Runner(
      rec,
      this.table,
      dir,
      data,
      this.clients,
      this.bus,
      this.options,
      this.logger,
      (e) => {
        if (e.kind === "metrics") this.runMetrics.step(rec.runId, labels, e.metrics.values);
        if (e.kind === "status") this.runMetrics.status(rec.runId, e.status);
        this.events.emit(rec.runId, e);
      },
    );
    this.runners.set(rec.runId, runner);
    void runner.drive().finally(() => {
      if (this.runners.get(rec.runId) === runner) this.runners.delete(rec.runId);
    });
  }

  /** Resumes RUNNING/PENDING runs that are this orchestrator's or whose lease has expired. */
  /**
   * Takes every run that nobody drives: one of this orchestrator's own (a restart), or one whose
   * lease has run out. A run that cannot be taken now (the learner not back yet, NATS away) is
   * tried again at the next sweep.
   */
  async resumeOrphans(): Promise<void> {
    for (const rec of await this.table.list()) {
      if (TERMINAL.has(rec.status) || this.runners.has(rec.runId) || this.taking.has(rec.runId)) continue;
      if (rec.owner !== this.table.owner && rec.leaseUntilMs > Date.now()) continue;
      this.taking.add(rec.runId);
      await this.take(rec)
        .catch((err) =>
          this.logger.warn(
            { run_id: rec.runId, err: (err as Error).message },
            "cannot resume run yet; retrying",
          ),
        )
        .finally(() => this.taking.delete(rec.runId));
    }
  }

  private readonly taking = new Set<string>();
  private sweeper: NodeJS.Timeout | undefined;

  /** resumeOrphans now and every `everyMs`, so that an orphan is resumed whenever its services are back. */
  sweepOrphans(everyMs = LEASE_MS / 3): void {
    let running = false;
    const sweep = () => {
      if (running) return;
      running = true;
      this.resumeOrphans()
        .catch((err) => this.logger.warn({ err: (err as Error).message }, "cannot list runs to resume"))
        .finally(() => {
          running = false;
        });
    };
    sweep();
    this.sweeper = setInterval(sweep, everyMs);
    this.sweeper.unref();
  }

  private async take(rec: RunRecord): Promise<void> {
    const spec = decodeSpec(rec.spec);
    rec.owner = this.table.owner;
    rec.leaseUntilMs = Date.now() + LEASE_MS;
    await this.table.save(rec); // compare-and-set: only one orchestrator wins
    const data = await this.datasets(spec);
    await this.register(spec, undefined, true);
    this.logger.info({ run_id: rec.runId, next_step: rec.stepsDone }, "resuming run");
    this.drive(rec, await RunDir.open(rec.directory), data);
  }

  private async record(runId: string): Promise<RunRecord> {
    checkRunId(runId);
    const live = this.runners.get(runId);
    if (live) return live.record;
    const rec = await this.table.get(runId);
    if (!rec) throw new GrpcError(Status.NOT_FOUND, `run_id: no run ${runId}`);
    return rec;
  }

  async getRun(req: orchestrator.GetRunRequest): Promise<orchestrator.GetRunResponse> {
    return { run: toProto(await this.record(req.runId)) };
  }

  async listRuns(req: orchestrator.ListRunsRequest): Promise<orchestrator.ListRunsResponse> {
    const size = req.pageSize || 100;
    // a token is a run id: refuse any other before reading the table
    if (req.pageToken) check.matches(req.pageToken, RUN_ID, "page_token", "be a run id from next_page_token");
    const all = await this.table.list();
    const start = req.pageToken ? all.findIndex((r) => r.runId === req.pageToken) : 0;
    if (start < 0) throw invalidArgument("page_token", "unknown token");
    const page = all.slice(start, start + size);
    return {
      runs: page.map((r) => toProto(this.runners.get(r.runId)?.record ?? r)),
      nextPageToken: all[start + size]?.runId ?? "",
    };
  }

  async stopRun(req: orchestrator.StopRunRequest): Promise<orchestrator.StopRunResponse> {
    const rec = await this.record(req.runId);
    const live = this.runners.get(req.runId);
    if (live) {
      const ended = new Promise<void>((res) => {
        const on = (e: RunEvent) => {
          if (e.kind === "status" && TERMINAL.has(e.status)) {
            this.events.off(req.runId, on);
            res();
          }
        };
        this.events.on(req.runId, on);
      });
      live.requestStop();
      await ended;
      return { run: toProto(live.record) };
    }
    if (!TERMINAL.has(rec.status)) {
      rec.status = "STOPPED";
      rec.endedAtMs = Date.now();
      await this.table.save(rec);
    }
    return { run: toProto(rec) };
  }

  async resumeRun(req: orchestrator.ResumeRunRequest): Promise<orchestrator.ResumeRunResponse> {
    const rec = await this.record(req.runId);
    if (this.runners.has(req.runId) || this.taking.has(req.runId)) return { run: toProto(rec) };
    if (rec.status === "SUCCEEDED")
      throw failedPrecondition(`run_id: run ${req.runId} has already succeeded`);
    if (rec.status === "RUNNING" && rec.owner !== this.table.owner && rec.leaseUntilMs > Date.now())
      throw failedPrecondition(`run_id: run ${req.runId} is driven by another orchestrator`);
    rec.error = "";
    rec.endedAtMs = 0;
    this.taking.add(req.runId);
    try {
      await this.take(rec);
    } finally {
      this.taking.delete(req.runId);
    }
    return { run: toProto(rec) };
  }

  async *watchRun(
    req: orchestrator.WatchRunRequest,
    ctx: CallContext,
  ): AsyncIterable<orchestrator.WatchRunResponse> {
    const rec = await this.record(req.runId);
    const queue: RunEvent[] = [];
    let wake: (() => void) | null = null;
    const on = (e: RunEvent) => {
      queue.push(e);
      wake?.();
    };
    this.events.on(req.runId, on);
    try {
      const dir = await RunDir.open(rec.directory);
      let last = req.fromStep - 1;
      const evalsSent = new Set<number>();
      for (const line of await dir.readJsonl<Record<string, unknown>>("metrics.jsonl")) {
        const step = line.step as number;
        if (step < req.fromStep || step >= rec.stepsDone) continue;
        for (const e of rec.evals)
          if (e.step <= step + 1 && e.step >= req.fromStep && !evalsSent.has(e.step)) {
            evalsSent.add(e.step);
            yield { event: { $case: "eval", value: evalProto(e) }, status: STATUS[rec.status], error: "" };
          }
        yield {
          event: { $case: "metrics", value: metricsProto(line) },
          status: STATUS[rec.status],
          error: "",
        };
        last = step;
      }
      if (TERMINAL.has(rec.status) && !this.runners.has(req.runId)) return;
      while (!ctx.signal.aborted) {
        while (queue.length) {
          const e = queue.shift()!;
          if (e.kind === "metrics" && e.metrics.step > last) {
            last = e.metrics.step;
            yield { event: { $case: "metrics", value: e.metrics }, status: STATUS.RUNNING, error: "" };
          } else if (e.kind === "eval" && !evalsSent.has(e.eval.step)) {
            evalsSent.add(e.eval.step);
            yield { event: { $case: "eval", value: evalProto(e.eval) }, status: STATUS.RUNNING, error: "" };
          } else if (e.kind === "status" && TERMINAL.has(e.status)) {
            yield { event: undefined, status: STATUS[e.status], error: e.error };
            return;
          }
        }
        await new Promise<void>((r) => {
          wake = r;
          ctx.signal.addEventListener("abort", () => r(), { once: true });
        });
        wake = null;
      }
    } finally {
      this.events.off(req.runId, on);
    }
  }

  /** Shutdown: runs stay RUNNING and resume when an orchestrator starts again. */
  async close(): Promise<void> {
    clearInterval(this.sweeper);
    for (const r of this.runners.values()) r.detach();
  }
}

/** spec.yaml's form of a service's machine (the proto's field names). */
function machineYaml(m: common.Machine): Record<string, unknown> {
  return {
    cpu_model: m.cpuModel,
    cpu_flags: m.cpuFlags,
    intra_op_threads: m.intraOpThreads,
    onnxruntime_version: m.onnxruntimeVersion,
  };
}

/** SHA-256 of a file's bytes, read off the event loop. */
async function fileSha256(path: string): Promise<string> {
  return createHash("sha256")
    .update(await readFile(path))
    .digest("hex");
}

function evalProto(e: RunRecord["evals"][number]): orchestrator.EvalResult {
  return {
    step: e.step,
    accuracy: e.accuracy,
    stderr: e.stderr,
    n: e.n,
    majAccuracy: e.maj_accuracy,
    policyVersion: e.policy_version,
  };
}

function metricsProto(line: Record<string, unknown>): orchestrator.StepMetrics {
  const values: Record<string, number> = {};
  for (const [k, v] of Object.entries(line)) if (k !== "step" && typeof v === "number") values[k] = v;
  return { step: line.step as number, values, policyVersion: String(line.policy_version ?? "") };
}

/** A dependency's INVALID_ARGUMENT names the field under the spec; other errors say who failed. */
function prefixed(err: unknown, field: string, what: string): GrpcError {
  if (err instanceof GrpcError) {
    if (err.code === Status.INVALID_ARGUMENT || err.code === Status.FAILED_PRECONDITION)
      return new GrpcError(err.code, `${field}: ${err.message}`);
    return new GrpcError(err.code, `${what}: ${err.message}`);
  }
  return new GrpcError(Status.INTERNAL, `${what}: ${(err as Error).message}`);
}
