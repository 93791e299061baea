// A bounded arithmetic evaluator for checking the equations in a solution. Recursive descent
// over a token array; no eval, no Function. Every limit turns into an error value, never a throw.
//
// Grammar (precedence low → high):
//   expr    := term (("+" | "-") term)*
//   term    := unary (("*" | "x" | "×" | "·" | "/" | "÷") unary | implicit "(")*
//   unary   := ("-" | "+") unary | power
//   power   := postfix (("^" | "**") unary)?            right-associative
//   postfix := primary "%"*                              "%" divides by 100
//   primary := number | "(" expr ")"
// Numbers: digits with optional thousands commas, decimals, a "$" prefix (ignored).

export interface ArithLimits {
  /** Longest expression accepted, in characters. */
  maxLength: number;
  /** Most digits in one number literal. */
  maxDigits: number;
  /** Largest |exponent| of "^". */
  maxExponent: number;
  /** Deepest nesting of parentheses and unary signs. */
  maxDepth: number;
  /** Largest |value| of any intermediate result. */
  maxMagnitude: number;
}

export const DEFAULT_ARITH_LIMITS: ArithLimits = {
  maxLength: 512,
  maxDigits: 24,
  maxExponent: 64,
  maxDepth: 32,
  maxMagnitude: 1e100,
};

export type ArithResult = { ok: true; value: number } | { ok: false; error: string };

type Token = { kind: "num"; value: number } | { kind: "op"; op: string };

// Thrown inside the parser only and caught in evaluateArithmetic. Not an Error subclass: capturing
// a stack trace per rejected expression made prose-heavy text several times slower to scan.
class ArithError {
  constructor(readonly message: string) {}
}

function tokenize(expr: string, limits: ArithLimits): Token[] {
  const tokens: Token[] = [];
  let i = 0;
  const n = expr.length;
  while (i < n) {
    const c = expr[i];
    if (c === " " || c === "\t" || c === "$") {
      i++;
      continue;
    }
    if ((c >= "0" && c <= "9") || (c === "." && expr[i + 1] >= "0" && expr[i + 1] <= "9")) {
      let j = i;
      let digits = "";
      let dot = false;
      while (j < n) {
        const d = expr[j];
        if (d >= "0" && d <= "9") digits += d;
        else if (d === "." && !dot && expr[j + 1] >= "0" && expr[j + 1] <= "9") {
          dot = true;
          digits += d;
        } else if (d === "," && !dot && /^\d{3}(?!\d)/.test(expr.slice(j + 1, j + 5))) {
          // thousands separator: skip it
        } else break;
        j++;
      }
      if (digits.replace(".", "").length > limits.maxDigits)
        throw new ArithError(`number longer than ${limits.maxDigits} digits`);
      tokens.push({ kind: "num", value: Number(digits) });
      i = j;
      continue;
    }
    if (c === "*" && expr[i + 1] === "*") {
      tokens.push({ kind: "op", op: "^" });
      i += 2;
      continue;
    }
    const op =
      c === "×" || c === "·" || c === "x" || c === "X" || c === "*"
        ? "*"
        : c === "÷" || c === "/"
          ? "/"
          : c === "−" || c === "–"
            ? "-"
            : "+-^()%".includes(c)
              ? c
              : null;
    if (op === null) throw new ArithError(`unexpected character "${c}"`);
    tokens.push({ kind: "op", op });
    i++;
  }
  return tokens;
}

class Parser {
  private pos = 0;
  private depth = 0;
  constructor(
    private readonly tokens: Token[],
    private readonly limits: ArithLimits,
  ) {}

  parse(): number {
    if (this.tokens.length === 0) throw new ArithError("empty expression");
    const v = this.expr();
    if (this.pos !== this.tokens.length) throw new ArithError("unexpected trailing input");
    return v;
  }

  private peekOp(): string | null {
    const t = this.tokens[this.pos];
    return t && t.kind === "op" ? t.op : null;
  }

  private check(v: number): number {
    if (!Number.isFinite(v) || Math.abs(v) > this.limits.maxMagnitude)
      throw new ArithError("value out of range");
    return v;
  }

  private enter(): void {
    if (++this.depth > this.limits.maxDepth)
      throw new ArithError(`nesting deeper than ${this.limits.maxDepth}`);
  }

  private expr(): number {
    let v = this.term();
    for (let op = this.peekOp(); op === "+" || op === "-"; op = this.peekOp()) {
      this.pos++;
      const r = this.term();
      v = this.check(op === "+" ? v + r : v - r);
    }
    return v;
  }

  private term(): number {
    let v = this.unary();
    for (;;) {
      const op = this.peekOp();
      if (op === "*" || op === "/") {
        this.pos++;
        const r = this.unary();
        if (op === "/" && r === 0) throw new ArithError("division by zero");
        v = this.check(op === "*" ? v * r : v / r);
      } else if (op === "(") {
        v = this.check(v * this.unary()); // implicit multiplication: 2(3+4)
      } else return v;
    }
  }

  private unary(): number {
    const op = this.peekOp();
    if (op === "-" || op === "+") {
      this.pos++;
      this.enter();
      const v = this.unary();
      this.depth--;
      return op === "-" ? -v : v;
    }
    return this.power();
  }

  private power(): number {
    const base = this.postfix();
    if (this.peekOp() !== "^") return base;
    this.pos++;
    this.enter();
    const exponent = this.unary();
    this.depth--;
    if (Math.abs(exponent) > this.limits.maxExponent)
      throw new ArithError(`exponent beyond ±${this.limits.maxExponent}`);
    return this.check(base ** exponent);
  }

  private postfix(): number {
    let v = this.primary();
    while (this.peekOp() === "%") {
      this.pos++;
      v /= 100;
    }
    return v;
  }

  private primary(): number {
    const t = this.tokens[this.pos];
    if (!t) throw new ArithError("unexpected end of expression");
    if (t.kind === "num") {
      this.pos++;
      return t.value;
    }
    if (t.op === "(") {
      this.pos++;
      this.enter();
      const v = this.expr();
      this.depth--;
      if (this.peekOp() !== ")") throw new ArithError("missing )");
      this.pos++;
      return v;
    }
    throw new ArithError(`unexpected "${t.op}"`);
  }
}

/** Evaluates an arithmetic expression within `limits`; out-of-bounds or malformed input gives {ok: false, error}. */
export function evaluateArithmetic(expr: string, limits: Partial<ArithLimits> = {}): ArithResult {
  const lim = { ...DEFAULT_ARITH_LIMITS, ...limits };
  if (expr.length > lim.maxLength)
    return { ok: false, error: `expression longer than ${lim.maxLength} characters` };
  try {
    return { ok: true, value: new Parser(tokenize(expr, lim), lim).parse() };
  } catch (err) {
    if (err instanceof ArithError) return { ok: false, error: err.message };
    throw err;
  }
}
