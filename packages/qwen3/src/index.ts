// @temper/qwen3: Qwen3 checkpoints in Hugging Face layout, tokenizers, the model maker and the
// float64 reference forward pass.
export * from "./checkpoint.ts";
export * from "./config.ts";
export * from "./engine.ts";
export * from "./engine-batch.ts";
export * from "./engine-kv.ts";
export * from "./forward-graph.ts";
export * from "./generate.ts";
export * from "./generate-engine.ts";
export * from "./generate-kv.ts";
export * from "./generate-reference.ts";
export * from "./graph-weights.ts";
export * from "./half.ts";
export * from "./init.ts";
export * from "./lora.ts";
export * from "./lora-graph.ts";
export * from "./loss.ts";
export * from "./loss-reference.ts";
export * from "./model-dir.ts";
export * from "./peft.ts";
export * from "./prng.ts";
export * from "./reference.ts";
export * from "./safetensors.ts";
export * from "./sampler.ts";
export * from "./tokenizer.ts";
export * from "./weights.ts";
