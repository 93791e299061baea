// Gradient check: the derived backward graph against central finite differences of the forward
// graph, both run on ORT CPU. Used by this package's tests and available to model code.

import { gradients } from "./autodiff.ts";
import type { FloatDType } from "./dtype.ts";
import { GraphBuilder, type Value } from "./graph.ts";
import { Session, tensor } from "./session.ts";
import { isStatic } from "./shape.ts";

export type InitKind = "normal" | "positive" | "uniform";

export interface GradCheckInput {
  shape: number[];
  /** normal: N(0,1); positive: U(0.5, 2); uniform: U(-1, 1); or explicit values. */
  init?: InitKind | number[];
  /** Differentiate with respect to this input (default true). */
  wrt?: boolean;
}

export interface GradCheckSpec {
  name: string;
  /** Default float64. */
  dtype?: FloatDType;
  /** Graph inputs: a shape (normal init, differentiated) or a full description. */
  inputs: Record<string, number[] | GradCheckInput>;
  /**
   * Builds the function. "weighted" (default): loss = Σ_i Σ out_i·r_i with random r_i;
   * "scalar": the single returned value is the loss itself.
   */
  build: (g: GraphBuilder, x: Record<string, Value>) => Value | Value[];
  loss?: "weighted" | "scalar";
  /** Finite-difference step (default 1e-5 for float64, 3e-3 for float32). */
  step?: number;
  seed?: number;
}

export interface GradCheckResult {
  /** Per wrt input: ‖g − g_fd‖∞ / max(‖g_fd‖∞, 1e-8). */
  relError: Record<string, number>;
  worst: number;
  /** Largest |g_fd| seen (a check on all-zero gradients is vacuous). */
  fdScale: number;
}

/** Deterministic PRNG (mulberry32) so failures reproduce. */
export function makeRng(seed: number): { uniform: () => number; normal: () => number } {
  let s = seed >>> 0;
  const uniform = () => {
    s = (s + 0x6d2b79f5) >>> 0;
    let t = s;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
  const normal = () => Math.sqrt(-2 * Math.log(1 - uniform())) * Math.cos(2 * Math.PI * uniform());
  return { uniform, normal };
}

function fill(n: number, init: InitKind | number[], rng: ReturnType<typeof makeRng>): number[] {
  if (Array.isArray(init)) {
    if (init.length !== n) throw new Error(`explicit init has ${init.length} values, needs ${n}`);
    return init;
  }
  return Array.from({ length: n }, () =>
    init === "normal"
      ? rng.normal()
      : init === "positive"
        ? 0.5 + 1.5 * rng.uniform()
        : 2 * rng.uniform() - 1,
  );
}

export async function gradCheck(spec: GradCheckSpec): Promise<GradCheckResult> {
  const dtype = spec.dtype ?? "float64";
  const rng = makeRng(spec.seed ?? 1234);
  const g = new GraphBuilder(spec.name.replace(/\W+/g, "_"), { dtype });
  const descs = Object.entries(spec.inputs).map(([name, d]) => {
    const desc: GradCheckInput = Array.isArray(d) ? { shape: d } : d;
    const n = desc.shape.reduce((a, b) => a * b, 1);
    return { name, desc, data: fill(n, desc.init ?? "normal", rng) };
  });
  const values: Record<string, Value> = {};
  for (const { name, desc } of descs) values[name] = g.input(name, dtype, desc.shape);

  const built = spec.build(g, values);
  const outs = Array.isArray(built) ? built : [built];
  const weights: { name: string; shape: number[]; data: number[] }[] = [];
  const feeds: Record<string, ReturnType<typeof tensor>> = {};
  for (const d of descs) feeds[d.name] = tensor(dtype, d.data, d.desc.shape);
  // outputs whose shape is only known at run time: run the graph once to learn it
  const outShapes = outs.map((o) => (isStatic(o.shape) ? o.shape : null));
  if (spec.loss !== "scalar" && outShapes.some((s) => s === null)) {
    const probeOuts = outs.map((o) => g.output(g.identity(o)));
    const probe = await Session.create(g.build(), { threads: 1, optimization: "basic" });
    const res = await probe.run(feeds);
    await probe.release();
    probeOuts.forEach((p, i) => {
      outShapes[i] = [...res[p.name].dims];
    });
    g.outputs.length = 0;
  }
  let loss: Value;
  if (spec.loss === "scalar") {
    loss = g.reduceSum(outs[0], undefined, false);
  } else {
    const terms = outs.map((o, i) => {
      const shape = outShapes[i]!;
      const r = g.input(`r${i}`, dtype, shape);
      weights.push({
        name: r.name,
        shape,
        data: fill(
          shape.reduce((a, b) => a * b, 1),
          "normal",
          rng,
        ),
      });
      return g.reduceSum(g.mul(o, r), undefined, false);
    });
    loss = terms.reduce((a, b) => g.add(a, b));
  }
  g.output(loss, "loss");
  const forward = g.build();
  const wrt = descs.filter((d) => d.desc.wrt !== false);
  const grads = gradients(
    g,
    loss,
    wrt.map((d) => values[d.name]),
  );
  const backward = g.build();

  for (const w of weights) feeds[w.name] = tensor(dtype, w.data, w.shape);

  const fwd = await Session.create(forward, { threads: 1, optimization: "basic" });
  const bwd = await Session.create(backward, { threads: 1, optimization: "basic" });
  try {
    const analytic = await bwd.run(feeds);
    const h = spec.step ?? (dtype === "float64" ? 1e-5 : 3e-3);
    const relError: Record<string, number> = {};
    let fdScale = 0;
    for (const [k, d] of wrt.entries()) {
      const gA = analytic[grads[k].name].data as Float64Array | Float32Array;
      let maxDiff = 0;
      let maxFd = 0;
      for (let i = 0; i < d.data.length; i++) {
        const lossAt = async (x: number) => {
          const shifted = [...d.data];
          shifted[i] = x;
          const out = await fwd.run({ ...feeds, [d.name]: tensor(dtype, shifted, d.desc.shape) });
          return Number((out.loss.data as Float64Array)[0]);
        };
        // float32 feeds round the shifted points; divide by the step actually taken
        const round = dtype === "float32" ? Math.fround : (v: number) => v;
        const [xp, xm] = [round(d.data[i] + h), round(d.data[i] - h)];
        const fd = ((await lossAt(xp)) - (await lossAt(xm))) / (xp - xm);
        maxDiff = Math.max(maxDiff, Math.abs(gA[i] - fd));
        maxFd = Math.max(maxFd, Math.abs(fd));
      }
      relError[d.name] = maxDiff / Math.max(maxFd, 1e-8);
      fdScale = Math.max(fdScale, maxFd);
    }
    return { relError, worst: Math.max(0, ...Object.values(relError)), fdScale };
  } finally {
    await fwd.release();
    await bwd.release();
  }
}

/** Runs gradCheck and throws unless every relative error is below `tol` and the gradient is non-trivial. */
export async function assertGradients(spec: GradCheckSpec, tol?: number): Promise<GradCheckResult> {
  const limit = tol ?? ((spec.dtype ?? "float64") === "float64" ? 1e-6 : 1e-3);
  const r = await gradCheck(spec);
  const bad = Object.entries(r.relError).filter(([, e]) => !(e < limit));
  if (bad.length)
    throw new Error(
      `${spec.name}: gradient mismatch ${bad.map(([k, e]) => `${k}: ${e.toExponential(2)}`).join(", ")} (tol ${limit})`,
    );
  if (!(r.fdScale > 0))
    throw new Error(`${spec.name}: finite-difference gradient is all zero; the check is vacuous`);
  return r;
}
