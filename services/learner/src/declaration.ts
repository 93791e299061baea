// learner's deployment declaration (ServiceDeclaration): its name, port, API and variables. main.ts
// runs from it and the deployment checks (tests/deploy-config.test.ts) read it.
import { HF_HUB_CACHE_VAR, MODEL_VAR } from "@temper/hub";
import { env, type ServiceDeclaration } from "@temper/kit";
import { learner } from "@temper/proto";

const config = {
  MODEL_DIR: env.optional(
    env.string({ doc: "the base model (Hugging Face layout directory); MODEL_DIR or MODEL is required" }),
  ),
  MODEL: MODEL_VAR,
  HF_HUB_CACHE: HF_HUB_CACHE_VAR,
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
  PROVIDER: env.enum(["cpu", "webgpu", "cuda"] as const, {
    default: "cpu",
    doc: "ONNX Runtime execution provider of the training graphs (cuda: the image's gpu target)",
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
  MAX_TRAIN_BYTES: env.optional(
    env.int({
      min: 1 << 20,
      max: Number.MAX_SAFE_INTEGER,
      doc: "memory a Train may take beyond the weights, in bytes (unset: half the machine's); a batch whose micro-batch would need more is refused (RESOURCE_EXHAUSTED) before it starts",
    }),
  ),
};

export const declaration = {
  name: "learner",
  defaultPort: 15080,
  api: learner.LearnerServiceService,
  config,
  nats: true,
} satisfies ServiceDeclaration<typeof config>;
