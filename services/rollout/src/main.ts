// rollout: generation with the policy (temper.rollout.v1.RolloutService). One base model, loaded
// once into an engine worker thread; LoRA adapters by version from the JetStream object store.
import { runService, service } from "@temper/kit";
import { descriptorSetPath } from "@temper/proto";
import { declaration } from "./declaration.ts";
import { Rollout } from "./rollout.ts";

let engine: Rollout | undefined;
await runService({
  ...declaration,
  version: "0.1.0",
  descriptorSet: descriptorSetPath,
  services: async ({ config: c, bus, logger }) => {
    const r = await Rollout.start(
      {
        modelDir: c.MODEL_DIR,
        dtype: c.DTYPE,
        provider: c.PROVIDER,
        engine: c.ENGINE,
        threads: c.THREADS,
        maxBatchRows: c.MAX_BATCH_ROWS,
        queueDepth: c.QUEUE_DEPTH,
        adapterCache: c.ADAPTER_CACHE,
        limits: {
          maxPrompts: c.MAX_PROMPTS,
          maxCompletions: c.MAX_COMPLETIONS,
          maxNewTokens: c.MAX_NEW_TOKENS,
          maxPromptTokens: c.MAX_PROMPT_TOKENS,
        },
      },
      bus,
      logger,
    );
    engine = r;
    // No mutating RPC: Generate is a function of its request (the model, an adapter version, seeds)
    // and changes no state; in a secure deployment mutual TLS still keeps unknown callers out.
    return [
      service(declaration.api, {
        generate: (req, ctx) => r.generate(req, ctx),
        getModelInfo: () => r.modelInfo(),
      }),
    ];
  },
  onShutdown: [{ name: "engine worker", run: () => engine?.close() }],
});
