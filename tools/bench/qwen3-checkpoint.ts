// Checkpoint I/O and reference-forward figures for the `small` preset (byte tokenizer):
// model maker write rate, bf16 → float32/float64 load rate, float64 reference forward tokens/s,
// and peak RSS (streaming writes keep it near one chunk, not the model size).
// Run: node --import tsx tools/bench/qwen3-checkpoint.ts
import { mkdtempSync, rmSync, statSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import {
  initModel,
  loadWeights,
  openModelDir,
  parameterCount,
  presetConfig,
  referenceForward,
  tokenizerIds,
  type WeightDtype,
} from "@temper/qwen3";

const root = mkdtempSync(join(tmpdir(), "qwen3-bench-"));
const config = presetConfig("small", tokenizerIds("bytes"));
const params = parameterCount(config);
const mib = (bytes: number) => (bytes / 2 ** 20).toFixed(1);
const peakRss = () => process.resourceUsage().maxRSS * 1024;

try {
  console.log(`small preset: ${(params / 1e6).toFixed(2)}M parameters`);
  for (const dtype of ["bf16", "f32"] as WeightDtype[]) {
    const out = join(root, dtype);
    const t0 = performance.now();
    initModel({ config, tokenizer: "bytes", out, dtype, seed: 1 });
    const s = (performance.now() - t0) / 1000;
    const bytes = statSync(join(out, "model.safetensors")).size;
    console.log(
      `init ${dtype}: ${s.toFixed(2)} s, ${mib(bytes)} MiB, ${(params / s / 1e6).toFixed(1)}M params/s, ${mib(bytes / s)} MiB/s`,
    );
  }
  console.log(`peak RSS after writing (streamed): ${mib(peakRss())} MiB`);
  const model = openModelDir(join(root, "bf16"));
  for (const precision of ["float32", "float64"] as const) {
    const t0 = performance.now();
    loadWeights(model.config, model.checkpoint, precision as "float32");
    const s = (performance.now() - t0) / 1000;
    console.log(`load bf16 → ${precision}: ${s.toFixed(3)} s, ${(params / s / 1e6).toFixed(1)}M params/s`);
  }
  const weights = loadWeights(model.config, model.checkpoint, "float64");
  model.checkpoint.close();
  const T = 32;
  const ids = [Array.from({ length: T }, (_, i) => 32 + ((i * 7) % 90))];
  const t0 = performance.now();
  referenceForward(config, weights, ids);
  const s = (performance.now() - t0) / 1000;
  console.log(
    `reference forward (float64 loops), batch 1 × ${T} tokens: ${s.toFixed(2)} s, ${(T / s).toFixed(1)} tokens/s`,
  );
  console.log(`peak RSS after loading float32 + float64 weights: ${mib(peakRss())} MiB`);
} finally {
  rmSync(root, { recursive: true, force: true });
}
