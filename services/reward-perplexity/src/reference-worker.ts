// Engine worker of the reference-model mode (started by EngineWorker from reference-model.ts): loads
// the frozen model once, then scores batches of prompt + completion sequences off the event loop,
// checking for cancellation between engine runs.
import { serveEngineWorker } from "@temper/kit";
import { Qwen3Engine } from "@temper/qwen3";
import { planBatches, type ReferenceHandlers, type ReferenceInit } from "./reference.ts";

serveEngineWorker<ReferenceHandlers>(async (raw) => {
  const init = raw as ReferenceInit;
  const engine = await Qwen3Engine.load(init.dir, {
    dtype: init.dtype,
    provider: init.provider,
    threads: init.threads,
  });
  return {
    info: () => ({
      vocabSize: engine.config.vocabSize,
      maxPositionEmbeddings: engine.config.maxPositionEmbeddings,
    }),
    async score({ sequences }, ctx) {
      const out: Float64Array[] = new Array(sequences.length);
      for (const batch of planBatches(
        sequences.map((s) => s.ids.length),
        init.limits,
      )) {
        ctx.throwIfCancelled();
        // temperature 1, no top-k: plain log p(token | prefix)
        const { logprobs } = await engine.logprobs(batch.map((i) => sequences[i].ids));
        batch.forEach((i, row) => {
          const lp = logprobs[row];
          out[i] = Float64Array.from(lp.slice(lp.length - sequences[i].scored));
        });
      }
      return out;
    },
  };
});
