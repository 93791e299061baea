import assert from "node:assert/strict";
import { existsSync, mkdirSync, mkdtempSync, readdirSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, describe, it } from "node:test";
import {
  adamwStep,
  checkSchedule,
  cleanTemporary,
  clipGradNorm,
  cloneAdamWState,
  initAdamWState,
  isCompleteCheckpoint,
  latestCheckpoint,
  learningRateAt,
  listCheckpoints,
  loadAdamWState,
  OptimizerError,
  pruneCheckpoints,
  ScheduleError,
  saveAdamWState,
  stepDirName,
  writeCheckpoint,
} from "./index.ts";

// ---- an independent float64 reference, written from the formulas (not from the code) ----------
type Ref = { p: number[]; m: number[]; v: number[] };

function refLr(kind: string, lr: number, warm: number, total: number, floor: number, pos: number): number {
  if (pos < warm) return (lr * pos) / warm;
  if (kind === "constant") return lr;
  const progress = Math.min(1, (pos - warm) / Math.max(1, total - warm));
  const shape = kind === "linear" ? 1 - progress : (1 + Math.cos(Math.PI * progress)) / 2;
  return lr * floor + lr * (1 - floor) * shape;
}

function refStep(
  params: Ref[],
  grads: number[][],
  t: number,
  lr: number,
  o: { b1: number; b2: number; eps: number; wd: number; maxNorm: number },
): number {
  let sq = 0;
  for (const g of grads) for (const x of g) sq += x * x;
  const norm = Math.sqrt(sq);
  const c = o.maxNorm > 0 && norm > o.maxNorm ? o.maxNorm / (norm + 1e-6) : 1;
  params.forEach((r, k) => {
    for (let i = 0; i < r.p.length; i++) {
      const g = grads[k][i] * c;
      r.p[i] = r.p[i] - lr * o.wd * r.p[i];
      r.m[i] = o.b1 * r.m[i] + (1 - o.b1) * g;
      r.v[i] = o.b2 * r.v[i] + (1 - o.b2) * g * g;
      const mh = r.m[i] / (1 - o.b1 ** t);
      const vh = r.v[i] / (1 - o.b2 ** t);
      r.p[i] = r.p[i] - (lr * mh) / (Math.sqrt(vh) + o.eps);
    }
  });
  return norm;
}

/** Deterministic pseudo-random values in [-1, 1). */
function noise(seed: number, n: number, scale = 1): number[] {
  let s = seed >>> 0 || 1;
  return Array.from({ length: n }, () => {
    s ^= s << 13;
    s >>>= 0;
    s ^= s >>> 17;
    s ^= s << 5;
    s >>>= 0;
    return scale * ((s / 2 ** 32) * 2 - 1);
  });
}

const close = (a: number, b: number, tol = 1e-12) =>
  assert.ok(Math.abs(a - b) <= tol * Math.max(1, Math.abs(b)), `${a} vs ${b}`);

describe("AdamW + schedule + clipping vs a float64 reference", () => {
  const shapes: [string, number][] = [
    ["layer.0.a", 12],
    ["layer.0.b", 7],
    ["scalar", 1],
    ["layer.1.big", 33],
  ];
  for (const kind of ["constant", "linear", "cosine"] as const)
    it(`${kind}: warm-up 2, floor 0.1, weight decay 0.05, clipping at 0.5, 8 updates`, () => {
      const o = { b1: 0.9, b2: 0.95, eps: 1e-8, wd: 0.05, maxNorm: 0.5 };
      const sched = { kind, learningRate: 3e-3, warmupSteps: 2, totalSteps: 6, minLrRatio: 0.1 };
      checkSchedule(sched);
      const params = new Map(shapes.map(([n, len], k) => [n, Float64Array.from(noise(11 + k, len))]));
      const ref: Ref[] = shapes.map(([, len], k) => ({
        p: noise(11 + k, len),
        m: Array(len).fill(0),
        v: Array(len).fill(0),
      }));
      const state = initAdamWState(params);
      for (let t = 1; t <= 8; t++) {
        // step 5's gradient is small (no clipping), the others are clipped
        const scale = t === 5 ? 1e-3 : 2;
        const gs = shapes.map(([, len], k) => noise(100 * t + k, len, scale));
        const grads = new Map(shapes.map(([n], k) => [n, Float64Array.from(gs[k])]));
        const lr = learningRateAt(sched, state.step);
        const refRate = refLr(kind, 3e-3, 2, 6, 0.1, t - 1);
        close(lr, refRate);
        const clip = clipGradNorm(grads, o.maxNorm);
        assert.ok(clip.finite);
        const refNorm = refStep(ref, gs, t, refRate, o);
        close(clip.norm, refNorm);
        if (t === 5) assert.equal(clip.scale, 1);
        else assert.ok(clip.scale < 1);
        adamwStep(params, grads, state, lr, {
          beta1: o.b1,
          beta2: o.b2,
          epsilon: o.eps,
          weightDecay: o.wd,
        });
        assert.equal(state.step, t);
        shapes.forEach(([n], k) => {
          const p = params.get(n)!;
          for (let i = 0; i < p.length; i++) {
            close(p[i], ref[k].p[i]);
            close(state.m.get(n)![i], ref[k].m[i]);
            close(state.v.get(n)![i], ref[k].v[i]);
          }
        });
      }
    });

  it("float32 parameters are updated in float64 and rounded once", () => {
    const p32 = new Map([["w", Float32Array.of(0.5, -0.25, 1)]]);
    const p64 = new Map([["w", Float64Array.of(0.5, -0.25, 1)]]);
    const s32 = initAdamWState(p32);
    const s64 = initAdamWState(p64);
    const g = new Map([["w", Float64Array.of(0.1, -2, 3)]]);
    adamwStep(p32, g, s32, 0.01);
    adamwStep(p64, g, s64, 0.01);
    for (let i = 0; i < 3; i++) assert.equal(p32.get("w")![i], Math.fround(p64.get("w")![i]));
  });

  it("errors name the parameter", () => {
    const p = new Map([["w", new Float64Array(3)]]);
    const s = initAdamWState(p);
    assert.throws(() => adamwStep(p, new Map(), s, 0.1), /no gradient for parameter w/);
    assert.throws(() => adamwStep(p, new Map([["w", new Float64Array(2)]]), s, 0.1), /gradient of w has 2/);
    assert.throws(
      () =>
        adamwStep(p, new Map([["w", new Float64Array(3)]]), s, 0.1, {
          beta1: 1,
          beta2: 0.9,
          epsilon: 0,
          weightDecay: 0,
        }),
      OptimizerError,
    );
  });
});

describe("schedules", () => {
  it("warm-up starts at 0, reaches the peak, then decays to the floor and stays there", () => {
    const s = { kind: "cosine" as const, learningRate: 1, warmupSteps: 4, totalSteps: 14, minLrRatio: 0.2 };
    assert.deepEqual(
      [0, 1, 2, 3].map((p) => learningRateAt(s, p)),
      [0, 0.25, 0.5, 0.75],
    );
    assert.equal(learningRateAt(s, 4), 1);
    close(learningRateAt(s, 9), 0.2 + 0.8 * 0.5);
    close(learningRateAt(s, 14), 0.2);
    close(learningRateAt(s, 100), 0.2);
    const lin = { ...s, kind: "linear" as const };
    close(learningRateAt(lin, 9), 0.6);
    close(learningRateAt(lin, 50), 0.2);
    assert.equal(learningRateAt({ kind: "constant", learningRate: 0.3 }, 7), 0.3);
  });
  it("checks its fields", () => {
    assert.throws(() => checkSchedule({ kind: "cosine", learningRate: 1 }), /totalSteps/);
    assert.throws(
      () => checkSchedule({ kind: "linear", learningRate: 1, totalSteps: 2, warmupSteps: 3 }),
      /warmupSteps/,
    );
    assert.throws(() => checkSchedule({ kind: "constant", learningRate: 0 }), ScheduleError);
    assert.throws(() => checkSchedule({ kind: "constant", learningRate: 1, minLrRatio: 2 }), /minLrRatio/);
  });
});

describe("clipping", () => {
  it("max 0 disables clipping but still reports the norm", () => {
    const g = new Map([["a", Float64Array.of(3, 4)]]);
    const r = clipGradNorm(g, 0);
    assert.equal(r.norm, 5);
    assert.deepEqual([...g.get("a")!], [3, 4]);
  });
  it("non-finite gradients are reported and left alone", () => {
    for (const bad of [Number.NaN, Number.POSITIVE_INFINITY, 1e200]) {
      const g = new Map([["a", Float64Array.of(1, bad)]]);
      const r = clipGradNorm(g, 1);
      assert.equal(r.finite, false);
      assert.equal(g.get("a")![0], 1);
    }
  });
});

describe("optimizer state and checkpoints on disk", () => {
  const root = mkdtempSync(join(tmpdir(), "temper-training-"));
  after(() => rmSync(root, { recursive: true, force: true }));

  it("AdamW state round-trips exactly and continues bitwise", () => {
    const p = new Map([
      ["x", Float64Array.from(noise(1, 9))],
      ["y", Float64Array.from(noise(2, 4))],
    ]);
    const s = initAdamWState(p);
    for (let t = 0; t < 3; t++)
      adamwStep(
        p,
        new Map([
          ["x", Float64Array.from(noise(3 + t, 9))],
          ["y", Float64Array.from(noise(9 + t, 4))],
        ]),
        s,
        0.01,
      );
    const path = join(root, "opt.safetensors");
    saveAdamWState(path, s);
    const loaded = loadAdamWState(path);
    assert.equal(loaded.step, 3);
    assert.deepEqual(loaded, cloneAdamWState(s));
  });

  it("writes atomically, ignores and cleans leftovers, lists, picks the newest and prunes", () => {
    const dir = join(root, "ckpt");
    for (const step of [0, 1, 2, 3])
      writeCheckpoint(dir, stepDirName(step), (d) =>
        writeFileSync(join(d, "state.json"), `{"step":${step}}`),
      );
    // a crash mid-write leaves a temporary directory, which readers ignore
    mkdirSync(join(dir, "step-4.tmp-abc123"));
    writeFileSync(join(dir, "step-4.tmp-abc123", "state.json"), "{");
    // a step directory without a manifest is not complete
    mkdirSync(join(dir, "step-9"));
    assert.equal(isCompleteCheckpoint(join(dir, "step-9")), false);
    assert.deepEqual(
      listCheckpoints(dir).map((c) => c.step),
      [0, 1, 2, 3],
    );
    assert.equal(latestCheckpoint(dir)?.step, 3);
    assert.deepEqual(cleanTemporary(dir), ["step-4.tmp-abc123"]);
    assert.deepEqual(pruneCheckpoints(dir, 2), [0, 1]);
    assert.deepEqual(
      listCheckpoints(dir).map((c) => c.step),
      [2, 3],
    );
    // a failing writer leaves nothing behind
    assert.throws(
      () =>
        writeCheckpoint(dir, "step-5", () => {
          throw new Error("disk full");
        }),
      /disk full/,
    );
    assert.ok(!readdirSync(dir).some((e) => e.includes(".tmp-")));
    // rewriting an existing checkpoint replaces it
    writeCheckpoint(dir, "step-3", (d) => writeFileSync(join(d, "other.json"), "{}"));
    assert.ok(existsSync(join(dir, "step-3", "other.json")));
    assert.ok(!existsSync(join(dir, "step-3", "state.json")));
  });
});
