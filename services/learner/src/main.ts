// learner: owns each run's LoRA adapter, AdamW moments and step (temper.learner.v1.LearnerService).
// Training runs in an engine worker thread; checkpoints live under CHECKPOINT_DIR; adapters are
// published to the JetStream object store (bucket temper_adapters) and announced by policy.updated.

import { resolve } from "node:path";
import { serviceModelDir } from "@temper/hub";
import {
  EngineWorker,
  loadConfigOrExit,
  machineMemory,
  memoryRefusal,
  runService,
  service,
} from "@temper/kit";
import { checkProvider } from "@temper/onnx";
import { descriptorSetPath } from "@temper/proto";
import {
  ADAPTER_BUCKET,
  type Qwen3Config,
  readConfig,
  trainActivationBytes,
  weightLoadBytes,
} from "@temper/qwen3";
import { declaration } from "./declaration.ts";
import type { LearnerWorker, WorkerInit } from "./engine-worker.ts";
import { Learner } from "./learner.ts";

// The trainers load lazily (at a run's first Train): a provider this installation lacks is a
// configuration error now, not a failed Train later (runService reads the variables again).
const early = loadConfigOrExit(declaration.config, declaration.name);
try {
  serviceModelDir(early);
} catch (err) {
  process.stderr.write(`learner: invalid configuration: ${(err as Error).message}\n`);
  process.exit(2);
}
try {
  checkProvider(early.PROVIDER);
} catch (err) {
  process.stderr.write(
    `learner: invalid configuration: PROVIDER=${early.PROVIDER}: ${(err as Error).message}\n`,
  );
  process.exit(2);
}

let worker: EngineWorker<LearnerWorker> | undefined;
let stopping = false;
await runService({
  ...declaration,
  version: "0.1.0",
  descriptorSet: descriptorSetPath,
  services: async ({ config: c, bus, logger }) => {
    const modelDir = resolve(serviceModelDir(c));
    let model: Qwen3Config;
    try {
      model = readConfig(modelDir);
    } catch (err) {
      process.stderr.write(
        `learner: invalid configuration: ${c.MODEL_DIR ? "MODEL_DIR" : "MODEL"}=${JSON.stringify(c.MODEL_DIR ?? c.MODEL)}: ${(err as Error).message}\n`,
      );
      process.exit(2);
    }
    // the trainer loads at a run's first Train: refused now in one line, not killed then
    const refusal = memoryRefusal(
      weightLoadBytes(model, c.DTYPE),
      `learner: the model (${modelDir}, ${c.DTYPE})`,
      "give the learner a machine with more memory, or a smaller model",
    );
    if (refusal) {
      process.stderr.write(`${refusal}\n`);
      process.exit(2);
    }
    const init: WorkerInit = {
      modelDir,
      dtype: c.DTYPE,
      provider: c.PROVIDER,
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
        vocabSize: model.vocabSize,
        maxPositions: model.maxPositionEmbeddings,
        checkpointDir: init.checkpointDir,
        exportDir: resolve(c.EXPORT_DIR),
        keepAdapterVersions: c.KEEP_ADAPTER_VERSIONS,
        maxSequences: c.MAX_SEQUENCES,
        maxSequenceTokens: c.MAX_SEQUENCE_TOKENS,
        maxTrainBytes: c.MAX_TRAIN_BYTES ?? Math.floor(machineMemory() / 2),
        trainBytes: (rows, seq, rank) =>
          trainActivationBytes(model, rows, seq, c.DTYPE === "float64" ? 8 : 4, rank),
        threads: c.THREADS,
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
        declaration.api,
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
