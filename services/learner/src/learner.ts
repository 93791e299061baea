// The LearnerService logic on the service thread: request validation (field paths), runs and their
// exactly-once step bookkeeping, one call at a time per run, publishing adapters to the JetStream
// object store and policy.updated events. The engine thread (engine-worker.ts) does the training
// and writes checkpoints.
import { createHash } from "node:crypto";
import { lstat, readdir, readFile, stat } from "node:fs/promises";
import { basename, dirname, isAbsolute, join, relative, resolve, sep } from "node:path";
import { status } from "@grpc/grpc-js";
import type { ObjectStore } from "@nats-io/obj";
import {
  type Bus,
  type CallContext,
  checkRunId,
  checkSameRequest,
  type EngineWorker,
  EngineWorkerError,
  EVENT_WAIT_MS,
  failedPrecondition,
  fieldPath,
  GrpcError,
  invalidArgument,
  KeyedLock,
  type Logger,
  quote,
  resourceExhausted,
  retryNatsOutage,
  serviceMeter,
} from "@temper/kit";
import { machineInfo } from "@temper/onnx";
import { type common, events, type learner } from "@temper/proto";
import {
  ADAPTER_BUCKET,
  ADAPTER_CONFIG_FILE,
  ADAPTER_CONFIG_METADATA,
  ADAPTER_WEIGHTS_FILE,
  adapterObjectName,
  modelContentHash,
  type TrainSequence,
} from "@temper/qwen3";
import { cleanTemporary, listCheckpoints } from "@temper/training";
import type { LearnerWorker } from "./engine-worker.ts";
import { trainRequestHash } from "./hashing.ts";
import { firstDifference, resolveRunConfig, toProtoConfig } from "./run-config.ts";
import {
  listRuns,
  type Metrics,
  readTrainerState,
  resumeDir,
  runDir,
  type StoredResponse,
  type TrainerState,
} from "./store.ts";

/** Longest export path under EXPORT_DIR (characters) and path component (bytes, Linux's NAME_MAX). */
const MAX_EXPORT_PATH = 1024;

/** When a Train's publishing gives up on NATS: within the caller's deadline, at most EVENT_WAIT_MS. */
const eventDeadline = (ctx: CallContext | undefined) =>
  Date.now() + Math.min(ctx?.remainingMs() ?? EVENT_WAIT_MS, EVENT_WAIT_MS);
const MAX_NAME_BYTES = 255;
/** The bytes of the files directly in `dir` (0 where it cannot be read). */
async function directoryBytes(dir: string): Promise<number> {
  try {
    const sizes = await Promise.all(
      (await readdir(dir)).map((f) => stat(join(dir, f)).then((s) => (s.isFile() ? s.size : 0))),
    );
    return sizes.reduce((a, b) => a + b, 0);
  } catch {
    return 0;
  }
}

const gib = (bytes: number) => `${(bytes / 2 ** 30).toFixed(1)} GiB`;

export interface LearnerOptions {
  modelDir: string;
  vocabSize: number;
  /** The model's max_position_embeddings: a longer sequence has positions it cannot encode. */
  maxPositions: number;
  checkpointDir: string;
  exportDir: string;
  keepAdapterVersions: number;
  maxSequences: number;
  maxSequenceTokens: number;
  /**
   * A Train's budget beyond the weights, in bytes (MAX_TRAIN_BYTES): a batch whose micro-batch would
   * need more (trainActivationBytes) is refused before it starts, not killed by the kernel midway.
   */
  maxTrainBytes: number;
  /** What a micro-batch of `rows` sequences of `seq` tokens holds while it trains, in bytes. */
  trainBytes: (rows: number, seq: number, loraRank: number) => number;
  /** Intra-op threads of the engine (undefined: ORT's default), for the machine CreateRun reports. */
  threads?: number;
}

const metricsProto = (m: Metrics | null | undefined): learner.TrainMetrics | undefined =>
  m ? { ...m } : undefined;

export class Learner {
  private readonly runs = new Map<string, TrainerState>();
  private readonly lock = new KeyedLock();
  private modelHash: Promise<string> | undefined;

  private readonly machine: common.Machine;

  constructor(
    private readonly o: LearnerOptions,
    private readonly worker: EngineWorker<LearnerWorker>,
    private readonly bus: Bus,
    private readonly store: ObjectStore,
    private readonly logger: Logger,
  ) {
    this.machine = machineInfo(o.threads);
  }

  private readonly meter = serviceMeter("temper-learner");
  private readonly trainTime = this.meter.createHistogram("temper.learner.train.duration", {
    unit: "s",
    description: "engine seconds of one applied step (measured in the worker, recorded here)",
  });
  private readonly checkpointTime = this.meter.createHistogram("temper.learner.checkpoint.duration", {
    unit: "s",
    description: "seconds to write a step's checkpoint durably",
  });
  private readonly checkpointBytes = this.meter.createHistogram("temper.learner.checkpoint.size", {
    unit: "By",
    description: "bytes of a step's checkpoint (adapter, optimizer moments, state)",
  });
  /** Tokens trained on; its rate is the learner's tokens/s. */
  private readonly trainedTokens = this.meter.createCounter("temper.learner.tokens", {
    description: "tokens of the sequences of applied steps",
  });

  /** Loads every run from its newest complete checkpoint and re-publishes its latest adapter and event. */
  async start(): Promise<void> {
    for (const runId of listRuns(this.o.checkpointDir)) {
      const root = runDir(this.o.checkpointDir, runId);
      const removed = cleanTemporary(root);
      if (removed.length) this.logger.warn({ runId, removed }, "removed incomplete checkpoint directories");
      const state = readTrainerState(resumeDir(this.o.checkpointDir, runId)!);
      this.runs.set(runId, state);
      const last = state.history.at(-1);
      // in the background: NATS may be away at startup, and the service must come up regardless
      if (last)
        void this.publish(runId, last.response).catch((err) =>
          this.logger.error({ runId, err }, "latest adapter not re-published"),
        );
      this.logger.info({ runId, nextStep: state.nextStep, version: state.adapterVersion }, "resumed run");
    }
  }

  private async modelMatches(name: string): Promise<boolean> {
    if (resolve(name) === resolve(this.o.modelDir)) return true;
    const hex = name.replace(/^sha256:/, "").toLowerCase();
    if (!/^[0-9a-f]{64}$/.test(hex)) return false;
    this.modelHash ??= modelContentHash(this.o.modelDir);
    return (await this.modelHash) === hex;
  }

  private getRun(runId: string): TrainerState {
    checkRunId(runId);
    const state = this.runs.get(runId);
    if (!state) throw new GrpcError(status.NOT_FOUND, `run ${quote(runId)} does not exist (CreateRun first)`);
    return state;
  }

  async createRun(req: learner.CreateRunRequest): Promise<learner.CreateRunResponse> {
    checkRunId(req.runId);
    const config = await resolveRunConfig(req.config, this.o.modelDir, (n) => this.modelMatches(n));
    return this.lock.run(req.runId, async () => {
      const existing = this.runs.get(req.runId);
      if (existing) {
        const diff = firstDifference(existing.config, config);
        if (diff)
          throw failedPrecondition(
            `run ${req.runId} exists with a different configuration: ${diff} differs (runs are immutable; use a new run_id)`,
          );
        return {
          runId: req.runId,
          config: toProtoConfig(existing.config),
          created: false,
          adapterVersion: existing.adapterVersion,
          machine: this.machine,
        };
      }
      const state = await this.worker.call("create", { runId: req.runId, config });
      this.runs.set(req.runId, state);
      return {
        runId: req.runId,
        config: toProtoConfig(config),
        created: true,
        adapterVersion: "",
        machine: this.machine,
      };
    });
  }

  /** Checks every sequence against the run's loss and the limits; returns the engine's batch. */
  private checkSequences(req: learner.TrainRequest, state: TrainerState): TrainSequence[] {
    if (req.sequences.length > this.o.maxSequences)
      throw resourceExhausted(
        `sequences: ${req.sequences.length} sequences, at most ${this.o.maxSequences} (MAX_SEQUENCES)`,
      );
    const grpo = state.config.loss.type === "grpo";
    let withRef = 0;
    const out = req.sequences.map((s, i): TrainSequence => {
      const at = (field: string) => fieldPath("sequences", i, field);
      const n = s.inputIds.length;
      if (n < 2) throw invalidArgument(at("input_ids"), `needs at least 2 tokens, got ${n}`);
      if (n > this.o.maxPositions)
        throw invalidArgument(
          at("input_ids"),
          `${n} tokens, more than the model's max_position_embeddings ${this.o.maxPositions}`,
        );
      if (n > this.o.maxSequenceTokens)
        throw resourceExhausted(
          `${at("input_ids")}: ${n} tokens, at most ${this.o.maxSequenceTokens} (MAX_SEQUENCE_TOKENS)`,
        );
      s.inputIds.forEach((id, t) => {
        if (id < 0 || id >= this.o.vocabSize)
          throw invalidArgument(
            at("input_ids"),
            `entry ${t} = ${id} is outside the vocabulary [0, ${this.o.vocabSize})`,
          );
      });
      const perToken = (field: string, v: number[], required: boolean) => {
        if (v.length === 0 && !required) return;
        if (v.length !== n) throw invalidArgument(at(field), `has ${v.length} entries, input_ids has ${n}`);
        for (let t = 1; t < n; t++)
          if (!Number.isFinite(v[t]))
            throw invalidArgument(at(field), `entry ${t} = ${v[t]} is not a finite number`);
      };
      if (s.completionMask.length !== n)
        throw invalidArgument(
          at("completion_mask"),
          `has ${s.completionMask.length} entries, input_ids has ${n}`,
        );
      s.completionMask.forEach((m, t) => {
        if (m !== 0 && m !== 1)
          throw invalidArgument(at("completion_mask"), `entry ${t} = ${m}, expected 0 or 1`);
      });
      if (s.completionMask[0] !== 0)
        throw invalidArgument(at("completion_mask"), "entry 0 must be 0 (token 0 has no logprob)");
      if (grpo && !Number.isFinite(s.advantage))
        throw invalidArgument(at("advantage"), `must be a finite number, got ${s.advantage}`);
      perToken("old_logprobs", s.oldLogprobs, grpo);
      perToken("ref_logprobs", s.refLogprobs, false);
      if (s.refLogprobs.length > 0) withRef++;
      return {
        inputIds: s.inputIds,
        completionMask: s.completionMask,
        advantage: s.advantage,
        oldLogprobs: s.oldLogprobs.length ? s.oldLogprobs : undefined,
        refLogprobs: s.refLogprobs.length ? s.refLogprobs : undefined,
      };
    });
    // the batch is padded to its longest sequence and trained micro-batch by micro-batch
    const c = state.config;
    const rows = Math.min(out.length, c.microBatchSize || Math.ceil(out.length / c.miniBatches));
    const seq = Math.max(0, ...out.map((x) => x.inputIds.length));
    const need = this.o.trainBytes(rows, seq, c.lora.rank);
    if (need > this.o.maxTrainBytes)
      throw resourceExhausted(
        `sequences: a micro-batch of ${rows} × ${seq} tokens needs about ${gib(need)} to train, over the ${gib(this.o.maxTrainBytes)} budget (MAX_TRAIN_BYTES); send shorter or fewer sequences, or a smaller micro_batch_size`,
      );
    if (withRef !== 0 && withRef !== out.length) {
      const i = req.sequences.findIndex((s) => s.refLogprobs.length === 0);
      throw invalidArgument(
        fieldPath("sequences", i, "ref_logprobs"),
        `is missing while ${withRef} other sequences have it (give it for all or none)`,
      );
    }
    return out;
  }

  private respond(runId: string, r: StoredResponse, replayed: boolean): learner.TrainResponse {
    return {
      runId,
      step: r.step,
      adapterVersion: r.adapterVersion,
      metrics: metricsProto(r.metrics),
      skipped: r.skipped,
      skipReason: r.skipReason,
      replayed,
      engineSeconds: replayed ? 0 : r.engineSeconds,
      objectName: r.objectName,
    };
  }

  async train(req: learner.TrainRequest, ctx?: CallContext): Promise<learner.TrainResponse> {
    const state = this.getRun(req.runId);
    const sequences = this.checkSequences(req, state);
    const hash = trainRequestHash(req);
    return this.lock.run(req.runId, async () => {
      const st = this.runs.get(req.runId)!;
      if (req.step < st.nextStep) {
        const done = st.history.find((h) => h.step === req.step);
        if (!done)
          throw failedPrecondition(
            `step ${req.step} of run ${req.runId} was done but is older than the replay history (next step is ${st.nextStep})`,
          );
        checkSameRequest(
          `step ${req.step} of run ${req.runId}`,
          "trained",
          done.requestHash,
          hash,
          `the next step is ${st.nextStep}`,
        );
        await this.publish(req.runId, done.response, undefined, eventDeadline(ctx));
        return this.respond(req.runId, done.response, true);
      }
      if (req.step > st.nextStep)
        throw failedPrecondition(
          `step ${req.step} of run ${req.runId} is ahead: the expected step is ${st.nextStep}`,
        );
      let out: Awaited<ReturnType<LearnerWorker["train"]>>;
      try {
        // not cancellable: once started, a step finishes and is checkpointed (a retry replays it)
        out = await this.worker.call("train", {
          runId: req.runId,
          step: req.step,
          sequences,
          requestHash: hash,
        });
      } catch (err) {
        if (err instanceof EngineWorkerError && err.name === "TrainInputError") {
          const m = /^(sequences\[\d+\]\.\w+)[:\s]*(.*)$/s.exec(err.message);
          throw m ? invalidArgument(m[1], m[2]) : invalidArgument("sequences", err.message);
        }
        throw err;
      }
      this.runs.set(req.runId, out.state);
      this.trainTime.record(out.response.engineSeconds);
      this.checkpointTime.record(out.checkpointSeconds);
      void directoryBytes(out.dir).then((b) => this.checkpointBytes.record(b));
      this.trainedTokens.add(sequences.reduce((n, x) => n + x.inputIds.length, 0));
      const published = performance.now();
      await this.publish(req.runId, out.response, out.dir, eventDeadline(ctx));
      ctx?.logger.info(
        {
          runId: req.runId,
          step: req.step,
          skipped: out.response.skipped,
          engineSeconds: out.response.engineSeconds,
          checkpointSeconds: out.checkpointSeconds,
          publishSeconds: (performance.now() - published) / 1000,
        },
        out.response.skipped ? `step skipped: ${out.response.skipReason}` : "step applied",
      );
      return this.respond(req.runId, out.response, false);
    });
  }

  /**
   * Idempotent: puts the step's adapter version in the object store unless it is there whole, then
   * the event. Waits out a NATS outage until `untilMs` (then UNAVAILABLE: the caller's retry replays
   * the step and publishes again, and the event's msgId de-duplicates).
   */
  private async publish(runId: string, r: StoredResponse, dir?: string, untilMs?: number): Promise<void> {
    const retry = <T>(what: string, fn: () => Promise<T>) =>
      retryNatsOutage(what, fn, {
        untilMs,
        onRetry: (err) =>
          this.logger.warn(
            { runId, step: r.step, err: (err as Error).message },
            `NATS away; retrying ${what}`,
          ),
      });
    if (r.adapterVersion) {
      const name = adapterObjectName(runId, r.adapterVersion);
      const from = dir ?? this.checkpointWithVersion(runId, r.adapterVersion);
      if (!from)
        this.logger.warn(
          { runId, version: r.adapterVersion },
          "adapter version no longer in any checkpoint; not re-published",
        );
      else {
        const weights = new Uint8Array(await readFile(join(from, ADAPTER_WEIGHTS_FILE)));
        // A fresh step (dir given) puts without asking first: a put left by a killed attempt holds
        // the same bytes, and overwriting it is harmless. A replay checks what is stored: a put cut
        // short by NATS can leave an object whose metadata names chunks that are gone.
        if (dir !== undefined || !(await this.storedWhole(name, weights))) {
          const config = await readFile(join(from, ADAPTER_CONFIG_FILE), "utf8");
          await retry("the adapter put", () =>
            this.store.putBlob({ name, metadata: { [ADAPTER_CONFIG_METADATA]: config } }, weights),
          );
        }
        this.pruneLater(runId);
      }
    }
    const event: events.PolicyUpdated = {
      runId,
      step: r.step,
      adapterVersion: r.adapterVersion,
      objectName: r.objectName,
      metrics: metricsProto(r.metrics),
      skipped: r.skipped,
      skipReason: r.skipReason,
    };
    await retry("policy.updated", () =>
      this.bus.publish(`temper.${runId}.policy.updated`, events.PolicyUpdated.encode(event).finish(), {
        msgId: `${runId}.${r.step}.policy.updated`,
      }),
    );
  }

  /**
   * The object `name` holds exactly `weights`, every chunk of it stored: its metadata's digest is
   * theirs and the stream holds as many chunks under its id as the metadata names.
   */
  private async storedWhole(name: string, weights: Uint8Array): Promise<boolean> {
    const info = await this.store.info(name);
    if (!info || info.deleted || info.size !== weights.length) return false;
    const digest = `SHA-256=${createHash("sha256").update(weights).digest("base64url")}`;
    if (info.digest.replace(/=+$/, "") !== digest.replace(/=+$/, "")) return false;
    const chunks = `$O.${ADAPTER_BUCKET}.C.${info.nuid}`;
    const stream = await this.bus.jsm.streams.info(`OBJ_${ADAPTER_BUCKET}`, { subjects_filter: chunks });
    const stored = stream.state.subjects?.[chunks] ?? 0;
    if (stored !== info.chunks)
      this.logger.warn(
        { object: name, chunks: info.chunks, stored },
        "stored adapter is torn; putting it again",
      );
    return stored === info.chunks;
  }

  private checkpointWithVersion(runId: string, version: string): string | undefined {
    return listCheckpoints(runDir(this.o.checkpointDir, runId))
      .reverse()
      .find((c) => readTrainerState(c.dir).adapterVersion === version)?.dir;
  }

  /**
   * Pruning is off Train's path: the versions Train returns stay fetchable either way, and a
   * failed prune is retried after the next step. One prune at a time.
   */
  private pruning: Promise<void> = Promise.resolve();
  private pruneLater(runId: string): void {
    this.pruning = this.pruning
      .then(() => this.pruneObjects(runId))
      .catch((err) => this.logger.warn({ err, runId }, "old adapter versions not pruned"));
  }

  /** Keeps the newest KEEP_ADAPTER_VERSIONS versions of the run in the object store. */
  private async pruneObjects(runId: string): Promise<void> {
    const prefix = `${runId}/${runId}-`;
    const objects = (await this.store.list())
      .filter((o) => o.name.startsWith(prefix) && /^\d+$/.test(o.name.slice(prefix.length)))
      .sort((a, b) => Number(a.name.slice(prefix.length)) - Number(b.name.slice(prefix.length)));
    for (const o of objects.slice(0, Math.max(0, objects.length - this.o.keepAdapterVersions)))
      await this.store.delete(o.name);
  }

  getState(req: learner.GetStateRequest): learner.GetStateResponse {
    const s = this.getRun(req.runId);
    return {
      runId: req.runId,
      lastStep: s.lastStep ?? undefined,
      adapterVersion: s.adapterVersion,
      lastMetrics: metricsProto(s.lastMetrics),
      nextStep: s.nextStep,
      config: toProtoConfig(s.config),
      updates: s.updates,
    };
  }

  async saveCheckpoint(req: learner.SaveCheckpointRequest): Promise<learner.SaveCheckpointResponse> {
    this.getRun(req.runId);
    if (!req.directory) throw invalidArgument("directory", "must not be empty");
    if (isAbsolute(req.directory) || req.directory.includes("\0"))
      throw invalidArgument(
        "directory",
        `must be a path relative to EXPORT_DIR, got ${quote(req.directory)}`,
      );
    const root = resolve(this.o.exportDir);
    const target = resolve(root, req.directory);
    const rel = relative(root, target);
    if (rel === "" || rel.startsWith("..") || isAbsolute(rel))
      throw invalidArgument("directory", `must stay inside EXPORT_DIR, got ${quote(req.directory)}`);
    const name = basename(target);
    if (name.startsWith(".") || name.includes(".tmp-"))
      throw invalidArgument("directory", `its last component must not start with "." or contain ".tmp-"`);
    const parts = rel.split(sep);
    if (rel.length > MAX_EXPORT_PATH || parts.some((p) => Buffer.byteLength(p) > MAX_NAME_BYTES))
      throw invalidArgument(
        "directory",
        `must be at most ${MAX_EXPORT_PATH} characters with components of at most ${MAX_NAME_BYTES} bytes, got ${quote(req.directory)}`,
      );
    // A symbolic link on the way would let the export land outside EXPORT_DIR: every component that
    // exists must be a real directory.
    let at = root;
    for (const p of parts.slice(0, -1)) {
      at = join(at, p);
      const st = await lstat(at).catch(() => undefined);
      if (!st) break;
      if (!st.isDirectory())
        throw invalidArgument(
          "directory",
          `${quote(relative(root, at))} is ${st.isSymbolicLink() ? "a symbolic link" : "not a directory"}`,
        );
    }
    const last = await lstat(target).catch(() => undefined);
    if (last?.isSymbolicLink()) throw invalidArgument("directory", `${quote(rel)} is a symbolic link`);
    return this.lock.run(req.runId, async () => {
      const s = this.runs.get(req.runId)!;
      const from = resumeDir(this.o.checkpointDir, req.runId);
      if (!from || !(await stat(from).catch(() => null)))
        throw failedPrecondition(`run ${req.runId} has no checkpoint`);
      const files = [
        ADAPTER_CONFIG_FILE,
        ADAPTER_WEIGHTS_FILE,
        "optimizer.safetensors",
        "trainer_state.json",
      ];
      await this.worker.call("export", { from, files, root: dirname(target), name });
      return { directory: target, adapterVersion: s.adapterVersion, step: s.lastStep ?? 0 };
    });
  }
}
