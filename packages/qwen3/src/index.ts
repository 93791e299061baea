// @temper/qwen3: Qwen3 checkpoints in Hugging Face layout, tokenizers, the model maker, LoRA
// adapters, the ONNX graphs and engines that score, generate and train, and the float64 reference
// forward pass. "@temper/qwen3/model" is the part that needs no ONNX runtime.

export * from "./adapter/adapter-object.ts";
export * from "./adapter/lora.ts";
export * from "./adapter/peft.ts";
export * from "./graph/engine-batch.ts";
export * from "./graph/forward-graph.ts";
export * from "./graph/graph-weights.ts";
export * from "./graph/lora-graph.ts";
export * from "./graph/train-graph.ts";
export * from "./graph/weight-cache.ts";
export * from "./infer/decode-backend.ts";
export * from "./infer/engine.ts";
export * from "./infer/engine-decode.ts";
export * from "./infer/engine-kv.ts";
export * from "./infer/generate.ts";
export * from "./infer/generate-decode.ts";
export * from "./infer/generate-kv.ts";
export * from "./infer/sampler.ts";
export * from "./model/index.ts";

export * from "./reference/generate-reference.ts";
export * from "./reference/loss-reference.ts";
export * from "./reference/reference.ts";

export * from "./train/loss.ts";
export * from "./train/train.ts";
export * from "./train/train-batch.ts";
export * from "./train/train-memory.ts";
