// @temper/qwen3: Qwen3 checkpoints in Hugging Face layout, tokenizers, the model maker and the
// float64 reference forward pass.
export * from "./checkpoint.ts";
export * from "./config.ts";
export * from "./half.ts";
export * from "./init.ts";
export * from "./model-dir.ts";
export * from "./prng.ts";
export * from "./reference.ts";
export * from "./safetensors.ts";
export * from "./tokenizer.ts";
export * from "./weights.ts";
