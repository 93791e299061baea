// A graph with > 2 GiB of float32 weights: written to a temp dir as one external-data file, loaded by
// path and run; the ModelProto stays a few KB. Prints sizes, timings and peak RSS; asserts nothing.
// Run: node --import tsx tools/bench/onnx-external-weights.ts [--in-memory]
//   --in-memory: also load the same weights through ORT's in-memory externalData (zero-copy views).
import { mkdtemp, open, rm, stat } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { GraphBuilder, Session, tensor } from "@temper/onnx";

const DIMS = [16384, 12288, 16384, 12288]; // three weights of 16384×12288 floats = 3 × 768 MiB
const BATCH = 8;

const mib = (bytes: number) => (bytes / 2 ** 20).toFixed(0);
const peakRss = () => process.resourceUsage().maxRSS * 1024;
const line = (label: string, value: string) => console.log(`${label.padEnd(40)} ${value}`);

/** Fills `out` with a cheap deterministic pattern scaled so activations stay O(1). */
function pattern(out: Float32Array, seed: number, scale: number) {
  let s = seed >>> 0;
  for (let i = 0; i < out.length; i++) {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    out[i] = ((s >>> 8) / 2 ** 24 - 0.5) * scale;
  }
}

async function writeWeights(dir: string): Promise<{ offsets: number[]; bytes: number }> {
  const fh = await open(join(dir, "weights.bin"), "w");
  const offsets: number[] = [];
  let pos = 0;
  const chunk = new Float32Array(1 << 24); // 64 MiB at a time: the weights never sit in JS memory whole
  for (let l = 0; l + 1 < DIMS.length; l++) {
    pos = Math.ceil(pos / 4096) * 4096;
    offsets.push(pos);
    let left = DIMS[l] * DIMS[l + 1];
    while (left > 0) {
      const n = Math.min(left, chunk.length);
      pattern(chunk, pos + l, 2 / Math.sqrt(DIMS[l]));
      await fh.write(new Uint8Array(chunk.buffer, 0, n * 4), 0, n * 4, pos);
      pos += n * 4;
      left -= n;
    }
  }
  await fh.close();
  return { offsets, bytes: pos };
}

function build(weight: (g: GraphBuilder, l: number) => ReturnType<GraphBuilder["weight"]>) {
  const g = new GraphBuilder("big");
  let h = g.floatInput("x", ["batch", DIMS[0]]);
  for (let l = 0; l + 1 < DIMS.length; l++) h = g.tanh(g.matmul(h, weight(g, l)));
  g.output(h, "y");
  return g;
}

async function runOnce(session: Session): Promise<number> {
  const x = new Float32Array(BATCH * DIMS[0]);
  pattern(x, 99, 2);
  const t = performance.now();
  const out = await session.run({ x: tensor("float32", x, [BATCH, DIMS[0]]) });
  const ms = performance.now() - t;
  const y = out.y.data as Float32Array;
  if (!y.every(Number.isFinite)) throw new Error("non-finite output");
  return ms;
}

const dir = await mkdtemp(join(tmpdir(), "temper-onnx-bench-"));
try {
  line("rss before", `${mib(process.memoryUsage().rss)} MiB`);
  let t = performance.now();
  const { offsets, bytes } = await writeWeights(dir);
  line("weights written (one file)", `${mib(bytes)} MiB in ${((performance.now() - t) / 1000).toFixed(1)} s`);

  const g = build((b, l) =>
    b.weightFromFile(`w${l}`, "float32", [DIMS[l], DIMS[l + 1]], {
      location: "weights.bin",
      offset: offsets[l],
    }),
  );
  const path = await g.build().save(dir);
  line("model protobuf size", `${(await stat(path)).size} bytes`);
  t = performance.now();
  const session = await Session.create(path);
  line("session create (by path)", `${((performance.now() - t) / 1000).toFixed(1)} s`);
  line("first run (batch 8)", `${(await runOnce(session)).toFixed(0)} ms`);
  line("second run (batch 8)", `${(await runOnce(session)).toFixed(0)} ms`);
  line("rss after run", `${mib(process.memoryUsage().rss)} MiB`);
  line("peak rss (maxRSS)", `${mib(peakRss())} MiB`);
  await session.release();

  if (process.argv.includes("--in-memory")) {
    // same weights as JS typed arrays, handed to ORT as zero-copy externalData views
    const arrays = DIMS.slice(0, -1).map((d, l) => {
      const a = new Float32Array(d * DIMS[l + 1]);
      pattern(a, l, 2 / Math.sqrt(d));
      return a;
    });
    const model = build((b, l) => b.weight(`w${l}`, "float32", [DIMS[l], DIMS[l + 1]], arrays[l])).build();
    line("in-memory: protobuf size", `${model.toBytes().byteLength} bytes`);
    t = performance.now();
    const s2 = await Session.create(model);
    line("in-memory: session create", `${((performance.now() - t) / 1000).toFixed(1)} s`);
    line("in-memory: run (batch 8)", `${(await runOnce(s2)).toFixed(0)} ms`);
    line("in-memory: peak rss (maxRSS)", `${mib(peakRss())} MiB`);
    await s2.release();
  }
} finally {
  await rm(dir, { recursive: true, force: true });
}
