// learner: owns each run's LoRA adapter, AdamW moments and step (temper.learner.v1.LearnerService).
// Training runs in an engine worker thread; checkpoints live under CHECKPOINT_DIR; adapters are
// published to the JetStream object store (bucket temper_adapters) and announced by policy.updated.
import { resolve } from "node:path";
import { EngineWorker, env, runService, service } from "@temper/kit";
import { descriptorSetPath, learner } from "@temper/proto";
import { ADAPTER_BUCKET, readConfig } from "@temper/qwen3";
import type { LearnerWorker, WorkerInit } from "./engine-worker.ts";
import { Learner } from "./learner.ts";

const config = {
  MODEL_DIR: env.string({ doc: "the base model (Hugging Face layout directory)" }),
  CHECKPOINT_DIR: env.string({
    default: ".temper/learner/checkpoints",
    doc: "training checkpoints: <dir>/<run_id>/step-<N>/",
  }),
  EXPORT_DIR: env.string({
    default: ".temper/learner/exports",
    doc: "root of SaveCheckpoint's directories (a path outside it is INVALID_ARGUMENT)",
  }),
  DTYPE: env.enum(["float32", "float64"] as const, {
    default: "float32",
    doc: "compute precision of the training graph (float64 checkpoints hold F64 adapters)",
  }),
  THREADS: env.optional(
    env.int({ min: 1, max: 1024, doc: "ONNX Runtime intra-op threads (default: ORT's)" }),
  ),
  KEEP_CHECKPOINTS: env.int({ default: 3, min: 1, max: 1_000_000, doc: "step checkpoints kept per run" }),
  KEEP_ADAPTER_VERSIONS: env.int({
    default: 3,
    min: 1,
    max: 1_000_000,
    doc: "adapter versions kept per run in the object store",
  }),
  MAX_SEQUENCES: env.int({ default: 4096, min: 1, max: 1 << 20, doc: "most sequences in one Train" }),
  MAX_SEQUENCE_TOKENS: env.int({
    default: 32768,
    min: 2,
    max: 1 << 20,
    doc: "longest sequence (prompt + completion tokens) in a Train",
  }),
};

let worker: EngineWorker<LearnerWorker> | undefined;
let stopping = false;
await runService({
  name: "learner",
  version: "0.1.0",
  defaultPort: 50080,
  descriptorSet: descriptorSetPath,
  config,
  nats: true,
  services: async ({ config: c, bus, logger }) => {
    const modelDir = resolve(c.MODEL_DIR);
    let vocabSize: number;
    try {
      vocabSize = readConfig(modelDir).vocabSize;
    } catch (err) {
      process.stderr.write(
        `learner: invalid configuration: MODEL_DIR=${JSON.stringify(c.MODEL_DIR)}: ${(err as Error).message}\n`,
      );
      process.exit(2);
    }
    const init: WorkerInit = {
      modelDir,
      dtype: c.DTYPE,
      threads: c.THREADS,
      checkpointDir: resolve(c.CHECKPOINT_DIR),
      keepCheckpoints: c.KEEP_CHECKPOINTS,
    };
    worker = await EngineWorker.start<LearnerWorker>(new URL("./engine-worker.ts", import.meta.url), init, {
      name: "learner-engine",
      onExit: (code, err) => {
        if (stopping) return;
        logger.fatal({ code, err }, "engine worker died");
        process.exit(1);
      },
    });
    const store = await bus!.objectStore(ADAPTER_BUCKET);
    const impl = new Learner(
      {
        modelDir,
        vocabSize,
        checkpointDir: init.checkpointDir,
        exportDir: resolve(c.EXPORT_DIR),
        keepAdapterVersions: c.KEEP_ADAPTER_VERSIONS,
        maxSequences: c.MAX_SEQUENCES,
        maxSequenceTokens: c.MAX_SEQUENCE_TOKENS,
      },
      worker,
      bus!,
      store,
      logger,
    );
    await impl.start();
    // CreateRun, Train and SaveCheckpoint change state (a run, its adapter, files); GetState reads.
    return [
      service(
        learner.LearnerServiceService,
        {
          createRun: (req) => impl.createRun(req),
          train: (req, ctx) => impl.train(req, ctx),
          getState: (req) => impl.getState(req),
          saveCheckpoint: (req) => impl.saveCheckpoint(req),
        },
        { mutating: ["createRun", "train", "saveCheckpoint"] },
      ),
    ];
  },
  onShutdown: [
    {
      name: "engine worker",
      run: () => {
        stopping = true;
        return worker?.terminate();
      },
    },
  ],
});
