// The learner's engine thread (served through EngineWorker): owns each run's trainable state in
// memory (the LoRA adapter and AdamW moments), runs the training graph (Qwen3Trainer, one session
// per LoRA layout and loss, cached), applies clipping, the schedule and AdamW, and writes every
// checkpoint. The service thread validates requests, keeps exactly-once bookkeeping and publishes.
import { copyFileSync, writeFileSync } from "node:fs";
import { join, resolve } from "node:path";
import { serveEngineWorker } from "@temper/kit";
import {
  type FloatArray,
  initLoraAdapter,
  type LoraAdapter,
  type LoraConfig,
  loadAdapter,
  loraTensorName,
  Qwen3Trainer,
  readConfig,
  saveAdapter,
  TrainInputError,
  type TrainSequence,
} from "@temper/qwen3";
import {
  type AdamWState,
  adamwStep,
  clipGradNorm,
  cloneAdamWState,
  initAdamWState,
  learningRateAt,
  loadAdamWState,
  OPTIMIZER_FILE,
  pruneCheckpoints,
  saveAdamWState,
  stepDirName,
  writeCheckpoint,
} from "@temper/training";
import type { ResolvedRunConfig } from "./run-config.ts";
import {
  HISTORY_LIMIT,
  INIT_DIR,
  type Metrics,
  readTrainerState,
  resumeDir,
  runDir,
  type StoredResponse,
  TRAINER_STATE_FILE,
  type TrainerState,
  versionOf,
} from "./store.ts";

export interface WorkerInit {
  modelDir: string;
  dtype: "float32" | "float64";
  provider: "cpu" | "webgpu" | "cuda";
  threads?: number;
  checkpointDir: string;
  keepCheckpoints: number;
}

interface RunMemory {
  state: TrainerState;
  adapter: LoraAdapter;
  opt: AdamWState;
}

export type LearnerWorker = {
  create(args: { runId: string; config: ResolvedRunConfig }): TrainerState;
  train(args: { runId: string; step: number; sequences: TrainSequence[]; requestHash: string }): Promise<{
    state: TrainerState;
    response: StoredResponse;
    dir: string;
    /** Time spent writing (and fsyncing) the checkpoint. */
    checkpointSeconds: number;
  }>;
  /**
   * Copies `files` of checkpoint directory `from` into `<root>/<name>`, written atomically: here
   * rather than on the service's event loop, which the copy and its fsyncs would hold.
   */
  export(args: { from: string; files: string[]; root: string; name: string }): void;
};

/** Names a trainer error by the request's field path (`sequences[3].old_logprobs`). */
function renameSequence(err: unknown, offset: number): unknown {
  if (!(err instanceof TrainInputError)) return err;
  const m = /^sequence (\d+): (\w+)(.*)$/s.exec(err.message);
  if (!m) return err;
  return new TrainInputError(`sequences[${Number(m[1]) + offset}].${m[2]}${m[3]}`);
}

/** Adapter tensors by PEFT name, sharing the adapter's arrays (AdamW updates the adapter in place). */
function paramMap(adapter: LoraAdapter): Map<string, FloatArray> {
  const out = new Map<string, FloatArray>();
  for (const p of adapter.pairs) {
    out.set(loraTensorName(p.layer, p.module, "A"), p.a);
    out.set(loraTensorName(p.layer, p.module, "B"), p.b);
  }
  return out;
}

function cloneAdapter(a: LoraAdapter, zeroB = false): LoraAdapter {
  return {
    config: a.config,
    pairs: a.pairs.map((p) => ({
      ...p,
      a: p.a.slice(),
      b: zeroB ? new (p.b.constructor as Float64ArrayConstructor)(p.b.length) : p.b.slice(),
    })),
  };
}

function loraConfigOf(c: ResolvedRunConfig): LoraConfig {
  return {
    rank: c.lora.rank,
    alpha: c.lora.alpha,
    useRslora: c.lora.useRslora,
    targetModules: [...c.lora.targetModules],
  };
}

const zeroMetrics = (tokens: number): Metrics => ({
  loss: 0,
  clipFraction: 0,
  kl: 0,
  entropy: 0,
  gradNorm: 0,
  tokens,
  learningRate: 0,
  logprobDiff: 0,
  updates: 0,
});

serveEngineWorker<LearnerWorker>(async (raw) => {
  const init = raw as WorkerInit;
  const model = readConfig(init.modelDir);
  const runs = new Map<string, RunMemory>();
  const trainers = new Map<string, Promise<Qwen3Trainer>>();
  const weightsDtype = init.dtype === "float64" ? "F64" : "F32";

  const trainerFor = (c: ResolvedRunConfig, evaluate = false): Promise<Qwen3Trainer> => {
    const loss = evaluate
      ? {
          kind: "grpo" as const,
          epsLow: c.loss.epsLow,
          epsHigh: c.loss.epsHigh,
          beta: 0,
          aggregation: c.loss.aggregation,
        }
      : {
          kind: c.loss.type,
          epsLow: c.loss.epsLow,
          epsHigh: c.loss.epsHigh,
          beta: c.loss.beta,
          aggregation: c.loss.aggregation,
        };
    const key = JSON.stringify({ lora: c.lora, loss, evaluate });
    let t = trainers.get(key);
    if (!t) {
      t = Qwen3Trainer.load(init.modelDir, {
        mode: "lora",
        lora: loraConfigOf(c),
        loss,
        dtype: init.dtype,
        provider: init.provider,
        threads: init.threads,
        evaluate,
      });
      t.catch(() => trainers.delete(key));
      trainers.set(key, t);
    }
    return t;
  };

  const writeStateDir = (dir: string, mem: RunMemory) => {
    // PEFT looks a relative base model up on the Hub: always the absolute path
    saveAdapter(dir, mem.adapter, { baseModel: resolve(init.modelDir), dtype: weightsDtype });
    saveAdamWState(join(dir, OPTIMIZER_FILE), mem.opt);
    writeFileSync(join(dir, TRAINER_STATE_FILE), `${JSON.stringify(mem.state, null, 1)}\n`);
  };

  const load = (runId: string): RunMemory => {
    const cached = runs.get(runId);
    if (cached) return cached;
    const dir = resumeDir(init.checkpointDir, runId);
    if (!dir) throw new Error(`run ${runId} has no checkpoint`);
    const state = readTrainerState(dir);
    const adapter =
      init.dtype === "float64" ? loadAdapter(dir, model, "float64") : loadAdapter(dir, model, "float32");
    const opt = loadAdamWState(join(dir, OPTIMIZER_FILE));
    const mem = { state, adapter, opt };
    runs.set(runId, mem);
    return mem;
  };

  return {
    create({ runId, config }) {
      const a32 = initLoraAdapter(model, loraConfigOf(config), { seed: config.seed });
      const adapter: LoraAdapter =
        init.dtype === "float64"
          ? {
              config: a32.config,
              pairs: a32.pairs.map((p) => ({ ...p, a: Float64Array.from(p.a), b: Float64Array.from(p.b) })),
            }
          : a32;
      const state: TrainerState = {
        format: 1,
        runId,
        lastStep: null,
        nextStep: 0,
        updates: 0,
        adapterVersion: "",
        lastMetrics: null,
        config,
        dtype: init.dtype,
        history: [],
      };
      const mem: RunMemory = { state, adapter, opt: initAdamWState(paramMap(adapter)) };
      writeCheckpoint(runDir(init.checkpointDir, runId), INIT_DIR, (dir) => writeStateDir(dir, mem));
      runs.set(runId, mem);
      return state;
    },

    async train({ runId, step, sequences, requestHash }) {
      const mem = load(runId);
      if (step !== mem.state.nextStep)
        throw new Error(`run ${runId}: worker expected step ${mem.state.nextStep}, got ${step}`);
      try {
        const c = mem.state.config;
        const started = performance.now();
        const tokens = sequences.reduce((n, s) => n + s.completionMask.reduce((a, b) => a + b, 0), 0);
        let skipReason = "";
        let metrics = zeroMetrics(tokens);
        if (sequences.length === 0) skipReason = "the batch has no sequences";
        else if (tokens === 0) skipReason = "the batch has no completion tokens";
        const adapterBefore = cloneAdapter(mem.adapter);
        const optBefore = cloneAdamWState(mem.opt);
        if (!skipReason) {
          const trainer = await trainerFor(c);
          const stepOptions = { temperature: c.temperature, microBatchSize: c.microBatchSize || undefined };
          let batch = sequences;
          if (c.loss.type === "grpo" && c.loss.beta > 0 && !sequences.some((s) => s.refLogprobs)) {
            // β > 0 without reference logprobs: the reference policy is the base model, i.e. this
            // adapter with B = 0 (its LoRA branch adds exactly zero).
            const ref = await trainerFor(c, true);
            const out = await ref
              .evaluate(sequences, cloneAdapter(mem.adapter, true), stepOptions)
              .catch((e) => {
                throw renameSequence(e, 0);
              });
            batch = sequences.map((s, b) => ({
              ...s,
              refLogprobs: out.logprobs[b].map((x, t) => (t === 0 ? 0 : x)),
            }));
          }
          const params = paramMap(mem.adapter);
          const M = c.miniBatches;
          const B = batch.length;
          const sum = { loss: 0, clip: 0, kl: 0, entropy: 0, norm: 0 };
          let updates = 0;
          let lr = 0;
          let logprobDiff = Number.NaN;
          outer: for (let it = 0; it < c.iterations; it++)
            for (let k = 0; k < M; k++) {
              // mini-batch k: sequences [⌊kB/M⌋, ⌊(k+1)B/M⌋), contiguous and deterministic
              const from = Math.floor((k * B) / M);
              const part = batch.slice(from, Math.floor(((k + 1) * B) / M));
              if (!part.some((s) => s.completionMask.some((m) => m === 1))) continue;
              const res = await trainer.step(part, mem.adapter, stepOptions).catch((e) => {
                throw renameSequence(e, from);
              });
              if (Number.isNaN(logprobDiff) && c.loss.type === "grpo") {
                let d = 0;
                let n = 0;
                part.forEach((s, b) => {
                  s.completionMask.forEach((m, t) => {
                    if (m !== 1) return;
                    d += Math.abs(res.logprobs[b][t] - s.oldLogprobs![t]);
                    n++;
                  });
                });
                logprobDiff = n > 0 ? d / n : 0;
              }
              if (!Number.isFinite(res.loss)) {
                skipReason = `non-finite loss (${res.loss}) at update ${updates + 1} (iteration ${it}, mini-batch ${k})`;
                break outer;
              }
              const clip = clipGradNorm(res.grads, c.optimizer.maxGradNorm);
              if (!clip.finite) {
                skipReason = `non-finite gradient norm (${clip.norm}) at update ${updates + 1} (iteration ${it}, mini-batch ${k})`;
                break outer;
              }
              lr = learningRateAt(
                {
                  kind: c.optimizer.schedule,
                  learningRate: c.optimizer.learningRate,
                  warmupSteps: c.optimizer.warmupSteps,
                  totalSteps: c.optimizer.totalSteps,
                  minLrRatio: c.optimizer.minLrRatio,
                },
                mem.opt.step,
              );
              adamwStep(params, res.grads, mem.opt, lr, c.optimizer);
              updates++;
              sum.loss += res.loss;
              sum.clip += res.clipFraction ?? 0;
              sum.kl += res.kl ?? 0;
              sum.entropy += res.entropy;
              sum.norm += clip.norm;
            }
          if (!skipReason && updates === 0) skipReason = "no mini-batch has completion tokens";
          if (!skipReason)
            metrics = {
              loss: sum.loss / updates,
              clipFraction: sum.clip / updates,
              kl: sum.kl / updates,
              entropy: sum.entropy / updates,
              gradNorm: sum.norm / updates,
              tokens,
              learningRate: lr,
              logprobDiff: Number.isNaN(logprobDiff) ? 0 : logprobDiff,
              updates,
            };
        }
        if (skipReason) {
          // the whole step is abandoned: weights and moments as before it
          mem.adapter = adapterBefore;
          mem.opt = optBefore;
        }
        const engineSeconds = (performance.now() - started) / 1000;
        const version = skipReason ? mem.state.adapterVersion : versionOf(runId, step);
        const response: StoredResponse = {
          step,
          adapterVersion: version,
          objectName: version ? `${runId}/${version}` : "",
          metrics,
          skipped: skipReason !== "",
          skipReason,
          engineSeconds,
        };
        mem.state = {
          ...mem.state,
          lastStep: step,
          nextStep: step + 1,
          updates: mem.opt.step,
          adapterVersion: version,
          lastMetrics: metrics,
          history: [...mem.state.history, { step, requestHash, response }].slice(-HISTORY_LIMIT),
        };
        const root = runDir(init.checkpointDir, runId);
        const written = performance.now();
        const dir = writeCheckpoint(root, stepDirName(step), (d) => writeStateDir(d, mem));
        pruneCheckpoints(root, init.keepCheckpoints);
        return { state: mem.state, response, dir, checkpointSeconds: (performance.now() - written) / 1000 };
      } catch (err) {
        // whatever happened, the next call starts again from the checkpoint on disk
        runs.delete(runId);
        throw err;
      }
    },
    export({ from, files, root, name }) {
      writeCheckpoint(root, name, (dir) => {
        for (const f of files) copyFileSync(join(from, f), join(dir, f));
      });
    },
  };
});
