// The rules whose gradients sum or scatter by index (Gather, GatherElements, Slice with run-time
// bounds), run at 2 intra-op threads on shapes large enough for ORT to split the work, with many
// repeated indices: every run gives the same bits, and they equal a direct float64 segment sum.
// (A ScatterND with reduction="add", the former Gather rule, lost updates here: its CPU kernel
// adds from several threads without synchronisation.)
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { gradients } from "./autodiff.ts";
import type { FloatDType } from "./dtype.ts";
import { makeRng } from "./gradcheck.ts";
import { GraphBuilder, type Value } from "./graph.ts";
import { Session, tensor } from "./session.ts";

const RUNS = 8;

interface Case {
  name: string;
  x: number[];
  /** The op on x; its output is weighted by `r` (same shape) and summed. */
  build: (g: GraphBuilder, x: Value) => Value;
  out: number[];
  /** ∂(Σ out·r)/∂x, accumulated in float64 in index order. */
  reference: (r: Float64Array) => Float64Array;
}

const rng = makeRng(29);
const ints = (n: number, below: number) => Array.from({ length: n }, () => Math.floor(rng.uniform() * below));
const size = (s: number[]) => s.reduce((a, b) => a * b, 1);

// 2048 token ids over 40 of 64 rows: every row picked ~50 times
const V = 64;
const H = 192; // the mini preset's hidden size
const ids = ints(2048, 40);
// [4, 16, 24] logits-like, 3 picks per row from 6 of the 24 places
const B = 4;
const T = 16;
const C = 24;
const picks = ints(B * T * 3, 6);

const CASES: Case[] = [
  {
    name: "Gather axis 0 (an embedding lookup)",
    x: [V, H],
    build: (g, x) => g.gather(x, g.constant(ids, "int64", [32, 64]), 0),
    out: [32, 64, H],
    reference: (r) => {
      const d = new Float64Array(V * H);
      ids.forEach((id, n) => {
        for (let h = 0; h < H; h++) d[id * H + h] += r[n * H + h];
      });
      return d;
    },
  },
  {
    name: "Gather axis 1",
    x: [2, V, H],
    build: (g, x) => g.gather(x, g.constant(ids, "int64", [ids.length]), 1),
    out: [2, ids.length, H],
    reference: (r) => {
      const d = new Float64Array(2 * V * H);
      for (let b = 0; b < 2; b++)
        ids.forEach((id, n) => {
          for (let h = 0; h < H; h++) d[(b * V + id) * H + h] += r[(b * ids.length + n) * H + h];
        });
      return d;
    },
  },
  {
    name: "GatherElements axis 2, 3 picks per row",
    x: [B, T, C],
    build: (g, x) => g.gatherElements(x, g.constant(picks, "int64", [B, T, 3]), 2),
    out: [B, T, 3],
    reference: (r) => {
      const d = new Float64Array(B * T * C);
      picks.forEach((p, i) => {
        d[Math.floor(i / 3) * C + p] += r[i];
      });
      return d;
    },
  },
  {
    name: "Slice with run-time bounds and a step",
    x: [512, 64],
    // rows 3, 5, …, 509: the end comes from a Size node, so the general (scatter) rule applies
    build: (g, x) =>
      g.op("Slice", [
        x,
        g.ints([3]),
        g.sub(g.op("Size", [g.constant(new Array(512).fill(0), "int64", [512])]), g.ints([2])),
        g.ints([0]),
        g.ints([2]),
      ]),
    out: [254, 64],
    reference: (r) => {
      const d = new Float64Array(512 * 64);
      for (let i = 0; i < 254; i++) for (let j = 0; j < 64; j++) d[(3 + 2 * i) * 64 + j] = r[i * 64 + j];
      return d;
    },
  },
];

async function gradientRuns(c: Case, dtype: FloatDType, xs: number[], r: number[]): Promise<Float64Array[]> {
  const g = new GraphBuilder("threads", { dtype });
  const x = g.floatInput("x", c.x);
  const w = g.floatInput("r", c.out);
  const loss = g.reduceSum(g.mul(c.build(g, x), w), undefined, false);
  g.output(loss, "loss");
  const [dx] = gradients(g, loss, [x]);
  const session = await Session.create(g.build(), { threads: 2 });
  const runs: Float64Array[] = [];
  try {
    for (let i = 0; i < RUNS; i++) {
      const out = await session.run({ x: tensor(dtype, xs, c.x), r: tensor(dtype, r, c.out) });
      runs.push(Float64Array.from(out[dx.name].data as Float32Array | Float64Array));
    }
  } finally {
    await session.release();
  }
  return runs;
}

describe("gradients that sum by index, at 2 threads", () => {
  for (const c of CASES)
    for (const dtype of ["float64", "float32"] as const)
      it(`${c.name}, ${dtype}: ${RUNS} runs bitwise equal, equal to a float64 segment sum`, async () => {
        const xs = Array.from({ length: size(c.x) }, () => rng.normal());
        // float32-representable weights, so both dtypes see the same r
        const r = Array.from({ length: size(c.out) }, () => Math.fround(rng.normal()));
        const runs = await gradientRuns(c, dtype, xs, r);
        for (let i = 1; i < runs.length; i++)
          assert.deepEqual(runs[i], runs[0], `run ${i} differs from run 0`);
        const want = c.reference(Float64Array.from(r));
        const tolerance = dtype === "float64" ? 1e-12 : 1e-5;
        let worst = 0;
        want.forEach((v, i) => {
          worst = Math.max(worst, Math.abs(runs[0][i] - v) / Math.max(1, Math.abs(v)));
        });
        assert.ok(worst <= tolerance, `largest relative error ${worst} (tolerance ${tolerance})`);
      });
});
