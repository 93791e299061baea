// Reverse-mode autodiff over a GraphBuilder: walks the nodes between `wrt` and `loss` backwards and
// appends their vector-Jacobian products as ordinary ONNX nodes (rules in grad-rules.ts).
import { isFloat } from "./dtype.ts";
import { GRAD_RULES, GradOps, NO_GRADIENT } from "./grad-rules.ts";
import type { GraphBuilder, Node, Value } from "./graph.ts";

export interface GradientOptions {
  /** Upstream gradient dL/dloss, shaped like `loss` (default: ones). */
  seed?: Value;
  /** Register each gradient as a graph output named `<wrt>.grad` (default true). */
  asOutputs?: boolean;
}

/**
 * Appends the backward pass of `loss` with respect to each of `wrt` to `g` and returns the gradients,
 * in `wrt` order, each shaped like its `wrt`. Only nodes on a path from some `wrt` to `loss` are
 * differentiated; a `wrt` that does not reach `loss` gets zeros.
 */
export function gradients(g: GraphBuilder, loss: Value, wrt: Value[], opts: GradientOptions = {}): Value[] {
  if (loss.graph !== g) throw new Error(`gradients: loss "${loss.name}" belongs to another graph`);
  if (!isFloat(loss.dtype))
    throw new Error(`gradients: loss "${loss.name}" must be float, got ${loss.dtype}`);
  for (const w of wrt) {
    if (w.graph !== g) throw new Error(`gradients: "${w.name}" belongs to another graph`);
    if (!isFloat(w.dtype))
      throw new Error(`gradients: cannot differentiate with respect to ${w.dtype} "${w.name}"`);
  }
  // values downstream of any wrt
  const fromWrt = new Set<Value>(wrt);
  for (const n of g.nodes)
    if (n.inputs.some((i) => i && fromWrt.has(i))) for (const o of n.outputs) fromWrt.add(o);
  // values upstream of loss
  const toLoss = new Set<Value>([loss]);
  for (let k = g.nodes.length - 1; k >= 0; k--) {
    const n = g.nodes[k];
    if (n.outputs.some((o) => toLoss.has(o))) for (const i of n.inputs) if (i) toLoss.add(i);
  }
  const path = g.nodes.filter((n) => n.outputs.some((o) => toLoss.has(o) && fromWrt.has(o)));

  const ops = new GradOps(g);
  const contributions = new Map<Value, Value[]>();
  const addGrad = (v: Value, d: Value) => {
    const list = contributions.get(v);
    if (list) list.push(d);
    else contributions.set(v, [d]);
  };
  const total = (v: Value): Value | null => {
    const list = contributions.get(v);
    if (!list) return null;
    const sum = list.reduce((a, b) => g.add(a, b));
    contributions.set(v, [sum]);
    return sum;
  };

  return g.scope("grad", () => {
    const seed =
      opts.seed ??
      (loss.shape?.length === 0 ? g.scalar(1, loss.dtype) : g.fill(ops.shape(loss), 1, loss.dtype));
    if (seed.dtype !== loss.dtype)
      throw new Error(`gradients: seed dtype ${seed.dtype} differs from loss ${loss.dtype}`);
    addGrad(loss, seed);
    for (let k = path.length - 1; k >= 0; k--) {
      const node = path[k];
      const dys = node.outputs.map((o) => total(o));
      if (dys.every((d) => d === null)) continue;
      const needs = node.inputs.map((i) => i !== null && fromWrt.has(i) && isFloat(i.dtype));
      if (!needs.some(Boolean)) continue;
      if (NO_GRADIENT.has(node.opType)) continue;
      const rule = GRAD_RULES[node.opType];
      if (!rule) throw new Error(`gradients: no gradient rule for ${node.opType} node "${node.name}"`);
      let dxs: (Value | null)[];
      try {
        dxs = g.scope(node.name, () => rule(ops, node, dys, needs));
      } catch (e) {
        throw new Error(
          `gradients: backward of ${node.opType} node "${node.name}" failed: ${(e as Error).message}`,
        );
      }
      node.inputs.forEach((input, i) => {
        const d = dxs[i];
        if (input && needs[i] && d) addGrad(input, d);
      });
    }
    return wrt.map((w) => {
      const d = total(w) ?? ops.zerosLike(w);
      const out = d === w ? g.identity(d) : d;
      return opts.asOutputs === false ? out : g.output(out, `${w.name}.grad`);
    });
  });
}

export type { Node };
