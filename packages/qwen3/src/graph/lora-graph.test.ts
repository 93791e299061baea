// The Qwen3 forward graph with LoRA pairs from declareLoraInputs against the float64 reference
// forward on merged weights W + s·B·A: "LoRA logprobs equal merged-weights logprobs".
import assert from "node:assert/strict";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, describe, it } from "node:test";
import { GraphBuilder, Session, tensor } from "@temper/onnx";
import { initLoraAdapter, LORA_MODULES, type LoraConfig, mergeLora } from "../adapter/lora.ts";
import { presetConfig } from "../model/config.ts";
import { initModel } from "../model/init.ts";
import { openModelDir } from "../model/model-dir.ts";
import { tokenizerIds } from "../model/tokenizer.ts";
import { loadWeights } from "../model/weights.ts";
import { referenceForward } from "../reference/reference.ts";
import { leftPad } from "./engine-batch.ts";
import { declareLogprobsGraph } from "./forward-graph.ts";
import { checkpointWeights } from "./graph-weights.ts";
import { declareLoraInputs, loraFeeds } from "./lora-graph.ts";

const root = mkdtempSync(join(tmpdir(), "qwen3-lora-graph-"));
after(() => rmSync(root, { recursive: true, force: true }));

describe("LoRA in the forward graph", () => {
  it("logprobs equal the reference forward on merged weights, for two adapters in one session", async () => {
    const dir = join(root, "tiny");
    initModel({
      config: presetConfig("tiny", tokenizerIds("bytes")),
      tokenizer: "bytes",
      out: dir,
      seed: 2,
      dtype: "f32",
    });
    const model = openModelDir(dir);
    const config = model.config;
    const weights = loadWeights(config, model.checkpoint, "float64");
    const lora: LoraConfig = { rank: 4, alpha: 8, useRslora: true, targetModules: [...LORA_MODULES] };
    const g = new GraphBuilder("lora-logprobs", { dtype: "float64" });
    const inputs = declareLoraInputs(g, config, lora);
    declareLogprobsGraph(g, config, checkpointWeights(g, model.checkpoint), { lora: inputs.get });
    model.checkpoint.close();
    const session = await Session.create(g.build(), { threads: 1, optimization: "basic" });

    const sequences = [
      [1, 40, 41, 42, 7, 99],
      [3, 70, 71],
    ];
    const batch = leftPad(sequences);
    const dims = [batch.batch, batch.seq];
    try {
      for (const seed of [1, 2]) {
        const adapter = initLoraAdapter(config, lora, { seed, initB: "random" });
        const out = await session.run({
          ...loraFeeds(adapter, "float64"),
          input_ids: tensor("int64", batch.inputIds, dims),
          attention_mask: tensor("int64", batch.attentionMask, dims),
          position_ids: tensor("int64", batch.positionIds, dims),
          temperature: tensor("float64", [1], []),
        });
        const got = out.logprobs.data as Float64Array;
        const merged = mergeLora(weights, adapter);
        const base = referenceForward(config, weights, [sequences[0]]).logprobs[0];
        sequences.forEach((ids, b) => {
          const want = referenceForward(config, merged, [ids]).logprobs[0]; // entry t−1 ↔ token t
          const pad = batch.seq - ids.length;
          want.forEach((w, i) => {
            const v = got[b * batch.seq + pad + 1 + i];
            assert.ok(Math.abs(v - w) < 1e-9, `adapter ${seed}, sequence ${b}, token ${i + 1}: ${v} vs ${w}`);
          });
        });
        assert.ok(
          base.some((v, i) => Math.abs(v - got[1 + i]) > 1e-4),
          "the adapter changes the logprobs",
        );
      }
    } finally {
      await session.release();
    }
  });
});
