// Arithmetic claims in a solution: GSM8K calculator annotations `<<a*b=c>>` and plain-text
// "a op b = c" (chains like "3 * 4 = 12 + 2 = 14" included), each checked with the bounded
// evaluator. Scanning is manual and linear: each "=" looks back only to the previous "=".
import { type ArithLimits, evaluateArithmetic } from "./arith.ts";
import { readNumberAt } from "./numbers.ts";

export interface EquationCheck {
  /** The claim as written, e.g. "48/2=24". */
  text: string;
  /** Whether the left side evaluates to the stated value (see statedMatches). */
  valid: boolean;
  /** The evaluator's value of the left side; null when it could not be evaluated. */
  computed: number | null;
  /** The value the text states. */
  stated: number;
  source: "annotation" | "text";
  /** Why computed is null. */
  error?: string;
}

/**
 * Whether a computed value matches a stated one: relative 1e-6 as in correctness_hard, or,
 * when the stated value is written with d ≥ 1 decimals, within half a unit of its last
 * decimal ("10/3 = 3.33" is valid, "10/3 = 3" is not). A stated percentage also matches the
 * computed fraction ("0.25 = 25%").
 */
export function statedMatches(computed: number, stated: number, decimals: number, percent: boolean): boolean {
  const close = (a: number, b: number) =>
    Math.abs(a - b) <= 1e-6 * Math.max(1, Math.abs(b)) ||
    (decimals > 0 && Math.abs(a - b) <= 0.5 * 10 ** -decimals + 1e-12);
  return close(computed, stated) || (percent && close(computed * 100, stated));
}

interface Stated {
  value: number;
  decimals: number;
  percent: boolean;
}

function statedAt(text: string, i: number): Stated | null {
  while (text[i] === " " || text[i] === "\t") i++;
  const tok = readNumberAt(text, i);
  if (!tok) return null;
  const written = text.slice(tok.start, tok.end);
  const dot = written.indexOf(".");
  const decimals = dot === -1 || tok.fraction ? 0 : written.replace(/[^0-9.]/g, "").split(".")[1].length;
  return { value: tok.value, decimals, percent: tok.percent };
}

function timesNeighbour(ch: string | undefined): boolean {
  return ch !== undefined && (ch === " " || (ch >= "0" && ch <= "9") || ch === "(" || ch === ")");
}

/** Characters an arithmetic expression in running text may use ("x" only between digits/spaces). */
function isArithChar(text: string, i: number): boolean {
  const c = text[i];
  if ((c >= "0" && c <= "9") || " \t.,+-−*×÷/^()%$·".includes(c)) return true;
  if (c === "x" || c === "X") {
    const p = text[i - 1];
    const q = text[i + 1];
    return timesNeighbour(p) && timesNeighbour(q);
  }
  return false;
}

const BINARY_OP = /\d\s*[-−+*×x÷/^·]\s*[\d($.]|\d%\s*[-−+*×x÷/^·]|\)\s*[-−+*×x÷/^·(]|\d\s*\(/;

/** Trims junk a backwards scan may pick up and returns an expression that can be checked, or null. */
function cleanExpression(raw: string): string | null {
  let s = raw.trim();
  // Leading characters that cannot start an expression: ", 5 + 3" → "5 + 3".
  while (s.length > 0 && !/[0-9(.$\-−]/.test(s[0])) s = s.slice(1).trimStart();
  // Parentheses opened before the claim started: "(so 5 + 3" → "5 + 3".
  let open = 0;
  for (const ch of s) open += ch === "(" ? 1 : ch === ")" ? -1 : 0;
  while (open > 0 && s[0] === "(") {
    s = s.slice(1).trimStart();
    open--;
  }
  s = s.replace(/[\s,]+$/, "");
  if (!/\d/.test(s) || !BINARY_OP.test(s)) return null;
  return s;
}

/** A canonical key for de-duplicating a text claim against the annotation it repeats. */
function canonical(expr: string): string {
  return expr
    .replace(/[\s$,]/g, "")
    .replace(/[×xX·]/g, "*")
    .replace(/÷/g, "/")
    .replace(/−/g, "-");
}

function check(
  lhs: string,
  stated: Stated,
  rhsExpr: string | null,
  source: EquationCheck["source"],
  limits: Partial<ArithLimits>,
): EquationCheck {
  const r = evaluateArithmetic(lhs, limits);
  let text = `${lhs}=${stated.value}`;
  if (!r.ok) return { text, valid: false, computed: null, stated: stated.value, source, error: r.error };
  let valid = statedMatches(r.value, stated.value, stated.decimals, stated.percent);
  let statedValue = stated.value;
  if (!valid && rhsExpr !== null) {
    text = `${lhs}=${rhsExpr}`;
    // A chain "2*(3+4) = 2*7 = 14": the right side is itself an expression of equal value.
    const rr = evaluateArithmetic(rhsExpr, limits);
    if (rr.ok && statedMatches(r.value, rr.value, 0, false)) {
      valid = true;
      statedValue = rr.value;
    }
  }
  return { text, valid, computed: r.value, stated: statedValue, source };
}

export interface FindEquationsOptions {
  /** Evaluator limits (defaults: DEFAULT_ARITH_LIMITS). */
  limits?: Partial<ArithLimits>;
  /** At most this many claims are checked (default 256); later ones are ignored. */
  maxEquations?: number;
}

/**
 * Finds and checks every arithmetic claim, in text order. Annotations `<<lhs=rhs>>` come first
 * at their position; the text is then read with the annotations removed, so "48/2 =
 * <<48/2=24>>24" is one claim (a text claim repeating an annotation is dropped). A text claim
 * needs a left side with at least one binary operator ("x = 5" and "Total = 8" are not claims);
 * a left side the evaluator cannot parse is not a claim, while one it rejects for a limit
 * (division by zero, too many digits) is an invalid claim.
 */
export function findEquations(text: string, options: FindEquationsOptions = {}): EquationCheck[] {
  const limits = options.limits ?? {};
  const maxEquations = options.maxEquations ?? 256;
  const found: Array<{ pos: number; eq: EquationCheck; key: string }> = [];
  // 1. Annotations, building the annotation-free text as we go.
  let plain = "";
  let i = 0;
  for (;;) {
    const open = text.indexOf("<<", i);
    if (open === -1) break;
    const close = text.indexOf(">>", open + 2);
    if (close === -1) break;
    plain += text.slice(i, open);
    const body = text.slice(open + 2, close);
    const eqAt = body.lastIndexOf("=");
    if (eqAt > 0 && body.length <= 1024) {
      const lhs = body.slice(0, eqAt).trim();
      const stated = statedAt(body, eqAt + 1);
      if (stated && found.length < maxEquations) {
        const eq = check(lhs, stated, null, "annotation", limits);
        found.push({ pos: plain.length, eq, key: `${canonical(lhs)}=${stated.value}` });
      }
    }
    i = close + 2;
  }
  plain += text.slice(i);
  // 2. Text claims, line by line. A "=" right before an annotation ("2/3 = <<60*2/3=40>>40") is
  // the annotation's claim, however the prose abbreviates the left side: it is not read twice.
  const seen = new Set(found.map((f) => f.key));
  const annotationAt = new Set(found.map((f) => f.pos));
  // Walk the "=" signs left to right, tracking the line each sits on (both indices only move
  // forward, so the walk is linear however many lines have no "=").
  let lineStart = 0;
  let lineEnd = plain.indexOf("\n");
  if (lineEnd === -1) lineEnd = plain.length;
  // Text since the previous "=" on this line: a chain's left side never reaches past it.
  let segmentStart = 0;
  for (let p = plain.indexOf("="); p !== -1 && found.length < maxEquations; p = plain.indexOf("=", p + 1)) {
    if (p > lineEnd) {
      lineStart = plain.lastIndexOf("\n", p) + 1;
      lineEnd = plain.indexOf("\n", p);
      if (lineEnd === -1) lineEnd = plain.length;
      segmentStart = lineStart;
    }
    const before = plain[p - 1];
    const after = plain[p + 1];
    if (before === "=" || before === "<" || before === ">" || before === "!" || after === "=") {
      segmentStart = p + 1;
      continue;
    }
    // Left side: the whole segment since the previous "=" when it is all arithmetic (a chain),
    // else the arithmetic characters just before this "=".
    let k = p;
    while (k > segmentStart && isArithChar(plain, k - 1)) k--;
    const lhsRaw = plain.slice(k, p);
    const nextEq = plain.indexOf("=", p + 1);
    const segEnd = nextEq !== -1 && nextEq < lineEnd ? nextEq : lineEnd;
    let r = p + 1;
    while (r < segEnd && isArithChar(plain, r)) r++;
    const rhsSegment = plain.slice(p + 1, segEnd);
    const rhsIsExpression =
      r === segEnd && nextEq !== -1 && nextEq < lineEnd && cleanExpression(rhsSegment) !== null;
    let q = p + 1;
    while (plain[q] === " " || plain[q] === "$") q++;
    if (annotationAt.has(q)) {
      segmentStart = p + 1;
      continue;
    }
    const stated = statedAt(plain, p + 1);
    let lhs = lhsRaw.length <= 1024 ? cleanExpression(lhsRaw) : null;
    // "1+1=2 and 2+2=4" read as a chain gives "2 2+2": drop the previous claim's result.
    if (lhs !== null && k === segmentStart && segmentStart > lineStart && /^[\d.,$]+\s+\S/.test(lhs)) {
      const first = evaluateArithmetic(lhs, limits);
      if (!first.ok && /^unexpected/.test(first.error))
        lhs = cleanExpression(lhs.replace(/^[\d.,$]+\s+/, ""));
    }
    if (lhs !== null && stated !== null) {
      const rhsExpr = rhsIsExpression ? cleanExpression(rhsSegment) : null;
      const key = `${canonical(lhs)}=${stated.value}`;
      if (!seen.has(key)) {
        const eq = check(lhs, stated, rhsExpr, "text", limits);
        // A left side the grammar rejects outright is prose, not a claim.
        if (eq.computed !== null || !/^unexpected|^missing|^empty/.test(eq.error ?? "")) {
          seen.add(key);
          found.push({ pos: p, eq, key });
          if (found.length >= maxEquations) break;
        }
      }
    }
    segmentStart = p + 1;
  }
  found.sort((a, b) => a.pos - b.pos);
  return found.map((f) => f.eq);
}
