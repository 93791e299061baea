// reward-perplexity: the "perplexity" reward source over gRPC (temper.reward.v1.RewardService), from
// supplied logprobs or under a frozen reference model (REFERENCE_MODEL_DIR), see service.ts.
import { loadConfigOrExit, runService, service } from "@temper/kit";
import { descriptorSetPath } from "@temper/proto";
import { declaration } from "./declaration.ts";
import type { ReferenceModel } from "./reference-model.ts";
import { defaultMode, perplexityConfig, perplexityServiceImplementation, serviceVersion } from "./service.ts";

const NAME = declaration.name;

function exitWithConfigError(message: string): never {
  process.stderr.write(`${NAME}: invalid configuration: ${message}\n`);
  process.exit(2);
}

// Read once here for the version (runService reads and validates the same variables again).
const early = loadConfigOrExit(perplexityConfig, NAME);
const mode = defaultMode(early);
if (mode === "reference" && !early.REFERENCE_MODEL_DIR)
  exitWithConfigError("PERPLEXITY_MODE=reference needs REFERENCE_MODEL_DIR (a reference model directory)");

let model: ReferenceModel | undefined;

await runService({
  ...declaration,
  version: serviceVersion(mode, early.REFERENCE_MODEL_DIR ? early.REFERENCE_DTYPE : undefined),
  descriptorSet: descriptorSetPath,
  services: async ({ config, logger }) => {
    if (config.REFERENCE_MODEL_DIR) {
      // ONNX Runtime is only loaded (in the worker) when a reference model is configured.
      const { ReferenceModel } = await import("./reference-model.ts");
      const started = Date.now();
      model = await ReferenceModel.start(
        {
          dir: config.REFERENCE_MODEL_DIR,
          dtype: config.REFERENCE_DTYPE,
          provider: config.REFERENCE_PROVIDER,
          threads: config.REFERENCE_THREADS,
          limits: { maxRows: config.REFERENCE_BATCH_ROWS, maxTokens: config.REFERENCE_BATCH_TOKENS },
        },
        logger,
      ).catch((err: Error) =>
        exitWithConfigError(
          `REFERENCE_MODEL_DIR=${JSON.stringify(config.REFERENCE_MODEL_DIR)}: ${err.message}`,
        ),
      );
      logger.info(
        {
          dir: config.REFERENCE_MODEL_DIR,
          dtype: config.REFERENCE_DTYPE,
          provider: config.REFERENCE_PROVIDER,
          vocabSize: model.info.vocabSize,
          ms: Date.now() - started,
        },
        "reference model loaded",
      );
    }
    logger.info({ defaultMode: mode, reference: model !== undefined }, "perplexity modes");
    return [
      service(
        declaration.api,
        perplexityServiceImplementation({
          limits: {
            maxGroups: config.MAX_GROUPS,
            maxGroupSize: config.MAX_GROUP_SIZE,
            maxTextLength: config.MAX_TEXT_CHARS,
            rejectEmptyText: !config.ALLOW_EMPTY_TEXT,
          },
          defaultMode: mode,
          version: serviceVersion(mode, model ? config.REFERENCE_DTYPE : undefined),
          reference: model,
        }),
      ),
    ];
  },
  onShutdown: [{ name: "reference-model", run: () => model?.close() }],
});
