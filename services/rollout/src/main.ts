// rollout: generation with the policy (temper.rollout.v1.RolloutService). One base model, loaded
// once into an engine worker thread; LoRA adapters by version from the JetStream object store.
import { serviceModelDir } from "@temper/hub";
import { loadConfigOrExit, machineMemory, memoryRefusal, runService, service } from "@temper/kit";
import { descriptorSetPath } from "@temper/proto";
import { decodeLoadBytes, readConfig } from "@temper/qwen3/model";
import { declaration } from "./declaration.ts";
import { Rollout } from "./rollout.ts";

// MODEL_DIR or MODEL names the model: neither is a configuration error now, not at the first call
const early = loadConfigOrExit(declaration.config, declaration.name);
let modelDir: string;
try {
  modelDir = serviceModelDir(early);
} catch (err) {
  process.stderr.write(`rollout: invalid configuration: ${(err as Error).message}\n`);
  process.exit(2);
}
// a model too large for this machine is refused in one line, not killed by the kernel mid-load
let config: ReturnType<typeof readConfig> | undefined;
try {
  config = readConfig(modelDir);
} catch {
  // an unreadable config.json is reported by the engine's own start, with its path
}
const refusal =
  config &&
  memoryRefusal(
    decodeLoadBytes(config, early.DTYPE, early.ENGINE, { machineBytes: machineMemory() }),
    `rollout: the model (${modelDir}, ${early.DTYPE})`,
    "give the rollout a machine with more memory, or a smaller model",
  );
if (refusal) {
  process.stderr.write(`${refusal}\n`);
  process.exit(2);
}

let engine: Rollout | undefined;
await runService({
  ...declaration,
  version: "0.1.0",
  descriptorSet: descriptorSetPath,
  services: async ({ config: c, bus, logger }) => {
    const r = await Rollout.start(
      {
        modelDir: serviceModelDir(c),
        dtype: c.DTYPE,
        provider: c.PROVIDER,
        engine: c.ENGINE,
        threads: c.THREADS,
        weightCache: c.TEMPER_WEIGHT_CACHE,
        maxBatchRows: c.MAX_BATCH_ROWS,
        kvCacheBytes: c.KV_CACHE_BYTES ?? Math.floor(machineMemory() / 4),
        queueDepth: c.QUEUE_DEPTH,
        callsPerCaller: { default: c.MAX_CALLS_PER_CALLER, byName: c.CALLER_CALL_LIMITS },
        adapterCache: c.ADAPTER_CACHE,
        adapterFetchMs: c.ADAPTER_FETCH_MS,
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
    // Generate changes no state but holds the engine for up to minutes: where credentials are on,
    // it needs one (an AUTH_IDENTITIES name, the orchestrator, or a token) like a mutating RPC, and
    // each identity may have MAX_CALLS_PER_CALLER calls at once.
    return [
      service(
        declaration.api,
        {
          generate: (req, ctx) => r.generate(req, ctx),
          getModelInfo: () => r.modelInfo(),
        },
        { mutating: ["generate"] },
      ),
    ];
  },
  onShutdown: [{ name: "engine worker", run: () => engine?.close() }],
});
