// @temper/qwen3/model: a model directory without the ONNX runtime — its config, checkpoint and
// safetensors files, content hash, tokenizer, the model maker and the seeded PRNG. A service that
// only identifies or describes a model imports this, not "@temper/qwen3" (which loads
// onnxruntime-node); model/model.test.ts checks that it stays so.
export * from "./checkpoint.ts";
export * from "./config.ts";
export * from "./half.ts";
export * from "./init.ts";
export * from "./load-memory.ts";
export * from "./model-dir.ts";
export * from "./model-hash.ts";
export * from "./prng.ts";
export * from "./safetensors.ts";
export * from "./tokenizer.ts";
export * from "./weights.ts";
