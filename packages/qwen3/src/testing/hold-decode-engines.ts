// Test helper process: opens N decode engines over the mapped weight cache (no prepacking), runs one
// prefill on each so every weight page is touched, prints "ready" and waits to be killed (N = 0:
// converts the cache entry and exits). Usage: hold-decode-engines.ts MODEL_DIR CACHE_ROOT N
import { Qwen3DecodeEngine } from "../infer/engine-decode.ts";
import { openModelDir } from "../model/model-dir.ts";

const [dir, cacheRoot, count] = process.argv.slice(2);
const model = openModelDir(dir);
const engines: Qwen3DecodeEngine[] = [];
for (let i = 0; i < Math.max(1, Number(count)); i++) {
  const engine = await Qwen3DecodeEngine.fromCheckpoint(model.config, model.checkpoint, {
    threads: 1,
    weights: { mapped: true, prepack: false, cacheRoot },
  });
  await engine.run({
    batch: 1,
    seq: 3,
    inputIds: BigInt64Array.from([1n, 2n, 3n]),
    attentionMask: BigInt64Array.from([1n, 1n, 1n]),
    positionIds: BigInt64Array.from([0n, 1n, 2n]),
    capacity: 0,
    cacheBias: new Float32Array(0),
    cache: engine.emptyCache,
  });
  engines.push(engine);
}
if (Number(count) === 0) process.exit(0);
process.stdout.write("ready\n");
setInterval(() => {}, 1 << 30);
