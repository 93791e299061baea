// Symbolic shapes: a dim is a known size (number) or a name ("batch"); names starting with "?"
// are fresh unknowns the inference made up.

export type Dim = number | string;
/** `null` means the rank itself is unknown. */
export type Shape = Dim[] | null;

let freshCounter = 0;
export function freshDim(): string {
  freshCounter += 1;
  return `?${freshCounter}`;
}

export function isStatic(shape: Shape): shape is number[] {
  return shape?.every((d) => typeof d === "number") === true;
}

export function formatShape(shape: Shape): string {
  return shape === null ? "[?rank]" : `[${shape.join(", ")}]`;
}

export function normAxis(axis: number, rank: number, what = "axis"): number {
  const a = axis < 0 ? axis + rank : axis;
  if (!Number.isInteger(a) || a < 0 || a >= rank)
    throw new Error(`${what} ${axis} is out of range for rank ${rank}`);
  return a;
}

function broadcastDim(a: Dim, b: Dim): Dim {
  if (a === b) return a;
  if (a === 1) return b;
  if (b === 1) return a;
  if (typeof a === "number" && typeof b === "number") throw new Error(`cannot broadcast dims ${a} and ${b}`);
  if (typeof a === "number") return a;
  if (typeof b === "number") return b;
  return freshDim();
}

/** Numpy-style multidirectional broadcast of several shapes. */
export function broadcastShapes(shapes: Shape[]): Shape {
  if (shapes.some((s) => s === null)) return null;
  const ss = shapes as Dim[][];
  const rank = Math.max(...ss.map((s) => s.length));
  const out: Dim[] = [];
  for (let i = 0; i < rank; i++) {
    let d: Dim = 1;
    for (const s of ss) {
      const j = i - (rank - s.length);
      if (j >= 0) {
        try {
          d = broadcastDim(d, s[j]);
        } catch {
          throw new Error(`cannot broadcast shapes ${ss.map((x) => formatShape(x)).join(" and ")}`);
        }
      }
    }
    out.push(d);
  }
  return out;
}

/** Product of dims, or null when any is symbolic. */
export function staticSize(shape: Shape): number | null {
  if (!isStatic(shape)) return null;
  return shape.reduce((a, b) => a * b, 1);
}
