// Forward and forward+backward of a 4-layer, 256-wide pre-norm transformer stack on ORT CPU, with
// achieved GFLOP/s (MatMul FLOPs counted from the graph's inferred shapes) next to a plain large
// MatMul's GFLOP/s measured in the same run. Prints figures; asserts nothing.
// Run: node --import tsx tools/bench/onnx-transformer.ts [--threads N]
import { availableParallelism } from "node:os";
import { GraphBuilder, gradients, type Node, Session, tensor, type Value } from "@temper/onnx";

const LAYERS = 4;
const WIDTH = 256;
const HEADS = 4;
const KV_HEADS = 2;
const FFN = 768;
const BATCH = 8;
const SEQ = 128;
const HEAD = WIDTH / HEADS;
const REPS = 5;

const argThreads = process.argv.indexOf("--threads");
const threads = argThreads > 0 ? Number(process.argv[argThreads + 1]) : undefined;

let seed = 1;
function randn(n: number, scale: number): Float32Array {
  const out = new Float32Array(n);
  for (let i = 0; i < n; i++) {
    seed = (Math.imul(seed, 1664525) + 1013904223) >>> 0;
    out[i] = ((seed >>> 8) / 2 ** 24 - 0.5) * 2 * scale;
  }
  return out;
}

/** 2·batch·m·k·n for every MatMul/Gemm node, from the builder's (static) shapes. */
function matmulFlops(nodes: readonly Node[]): number {
  let flops = 0;
  for (const n of nodes) {
    if (n.opType !== "MatMul" && n.opType !== "Gemm") continue;
    const a = n.inputs[0]!.shape as number[];
    const y = n.outputs[0].shape as number[];
    const k = n.opType === "Gemm" && n.attrs.transA ? a[0] : a[a.length - 1];
    flops += 2 * y.reduce((p, q) => p * q, 1) * k;
  }
  return flops;
}

function rmsNorm(g: GraphBuilder, x: Value, w: Value): Value {
  return g.mul(g.div(x, g.sqrt(g.add(g.reduceMean(g.mul(x, x), [-1], true), 1e-6))), w);
}

function buildStack() {
  const g = new GraphBuilder("stack");
  const x = g.floatInput("x", [BATCH, SEQ, WIDTH]);
  const weights: Value[] = [];
  const w = (name: string, dims: number[], scale = 1 / Math.sqrt(dims[0])) => {
    const v = g.weight(
      name,
      "float32",
      dims,
      randn(
        dims.reduce((p, q) => p * q, 1),
        scale,
      ),
    );
    weights.push(v);
    return v;
  };
  const allowed = g.cast(g.trilu(g.constant(Array(SEQ * SEQ).fill(1), "int64", [SEQ, SEQ]), false), "bool");
  const rep = HEADS / KV_HEADS;
  let h = x;
  for (let l = 0; l < LAYERS; l++) {
    h = g.scope(`layer${l}`, () => {
      const split = (t: Value, heads: number) =>
        g.transpose(g.reshape(t, [BATCH, SEQ, heads, HEAD]), [0, 2, 1, 3]);
      const repeat = (t: Value) =>
        g.reshape(g.expand(g.unsqueeze(t, [2]), [BATCH, KV_HEADS, rep, SEQ, HEAD]), [
          BATCH,
          HEADS,
          SEQ,
          HEAD,
        ]);
      const a = rmsNorm(g, h, w(`l${l}.attn_norm`, [WIDTH], 0));
      const q = split(g.matmul(a, w(`l${l}.q`, [WIDTH, WIDTH])), HEADS);
      const k = repeat(split(g.matmul(a, w(`l${l}.k`, [WIDTH, KV_HEADS * HEAD])), KV_HEADS));
      const v = repeat(split(g.matmul(a, w(`l${l}.v`, [WIDTH, KV_HEADS * HEAD])), KV_HEADS));
      const scores = g.where(
        allowed,
        g.div(g.matmul(q, g.transpose(k, [0, 1, 3, 2])), Math.sqrt(HEAD)),
        -1e9,
      );
      const ctx = g.matmul(g.softmax(g.sub(scores, g.reduceMax(scores, [-1], true)), -1), v);
      const merged = g.reshape(g.transpose(ctx, [0, 2, 1, 3]), [BATCH, SEQ, WIDTH]);
      const h1 = g.add(h, g.matmul(merged, w(`l${l}.o`, [WIDTH, WIDTH])));
      const m = rmsNorm(g, h1, w(`l${l}.mlp_norm`, [WIDTH], 0));
      const gate = g.matmul(m, w(`l${l}.gate`, [WIDTH, FFN]));
      const up = g.matmul(m, w(`l${l}.up`, [WIDTH, FFN]));
      return g.add(h1, g.matmul(g.mul(g.mul(gate, g.sigmoid(gate)), up), w(`l${l}.down`, [FFN, WIDTH])));
    });
  }
  return { g, x, y: h, weights };
}

async function timeRuns(session: Session, feeds: Parameters<Session["run"]>[0]): Promise<number> {
  await session.run(feeds); // warm-up
  const times: number[] = [];
  for (let i = 0; i < REPS; i++) {
    const t = performance.now();
    await session.run(feeds);
    times.push(performance.now() - t);
  }
  times.sort((p, q) => p - q);
  return times[Math.floor(REPS / 2)] / 1000;
}

const row = (label: string, flops: number, s: number) =>
  console.log(
    `${label.padEnd(34)} ${(flops / 1e9).toFixed(2).padStart(7)} GFLOP  ${(s * 1000).toFixed(1).padStart(8)} ms  ${(flops / s / 1e9).toFixed(1).padStart(6)} GFLOP/s`,
  );

console.log(
  `config: ${LAYERS} layers, width ${WIDTH}, ${HEADS} heads (${KV_HEADS} kv), ffn ${FFN}, batch ${BATCH} × seq ${SEQ}; ` +
    `threads ${threads ?? `ORT default (${availableParallelism()} cpus)`}; median of ${REPS}`,
);

// plain large MatMul reference: activation [n, n] times an [n, n] weight, as in the stack
{
  const n = 2048;
  const g = new GraphBuilder("mm");
  const a = g.floatInput("a", [n, n]);
  g.output(g.matmul(a, g.weight("b", "float32", [n, n], randn(n * n, 1))), "c");
  const s = await Session.create(g.build(), { threads });
  const secs = await timeRuns(s, { a: tensor("float32", randn(n * n, 1), [n, n]) });
  row(`plain MatMul ${n}×${n}×${n}`, 2 * n * n * n, secs);
  await s.release();
}

const { g, x, y, weights } = buildStack();
const loss = g.reduceMean(g.mul(y, y), undefined, false);
g.output(loss, "loss");
const forwardFlops = matmulFlops(g.nodes);
const forward = await Session.create(g.build(), { threads });
const feeds = { x: tensor("float32", randn(BATCH * SEQ * WIDTH, 1), [BATCH, SEQ, WIDTH]) };
row("forward", forwardFlops, await timeRuns(forward, feeds));
await forward.release();

gradients(g, loss, weights);
const totalFlops = matmulFlops(g.nodes);
const backward = await Session.create(g.build(), { threads });
row("forward + backward (all weights)", totalFlops, await timeRuns(backward, feeds));
await backward.release();
console.log(
  `graph: ${g.nodes.length} nodes (forward+backward), gradients of ${weights.length} weights (not of ${x.name})`,
);
