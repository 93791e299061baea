// Number reading for answer extraction and equation checking. Everything here is a manual
// character scanner: one pass, constant look-ahead, so 1 MB of adversarial text stays linear.

/** A number found in text, with its normalised value and where it sat. */
export interface NumberToken {
  value: number;
  /** Index of the first character consumed (sign or "$" included). */
  start: number;
  /** Index one past the last character consumed ("%" included). */
  end: number;
  /** Whether a "%" followed the number. The value is NOT divided by 100 (GSM8K writes "#### 25" for 25%). */
  percent: boolean;
  /** Whether it was written as a fraction a/b. */
  fraction: boolean;
}

const MINUS = 0x2212; // "−", the Unicode minus sign

export function isDigitCode(c: number): boolean {
  return c >= 48 && c <= 57;
}

function isLetterCode(c: number): boolean {
  return (c >= 65 && c <= 90) || (c >= 97 && c <= 122);
}

function isMinus(c: number): boolean {
  return c === 45 || c === MINUS;
}

/** Reads a run of digits from i; returns the index after it. */
function digitsEnd(text: string, i: number): number {
  while (i < text.length && isDigitCode(text.charCodeAt(i))) i++;
  return i;
}

/**
 * Reads one number starting exactly at `i`, or returns null. Accepted forms: an optional sign
 * ("-", "−", "+") and "$" in either order ("-$5", "$-5", "$ 5"), integers with or without
 * thousands separators ("1,234,567": a comma counts only when exactly three digits follow),
 * decimals ("3.5", ".5"; a trailing period is sentence punctuation, not a decimal point),
 * fractions of integers ("3/4", a zero denominator leaves just the numerator) and a trailing "%".
 */
export function readNumberAt(text: string, i: number): NumberToken | null {
  const start = i;
  const n = text.length;
  let negative = false;
  let signSeen = false;
  let dollarSeen = false;
  // Sign and currency, in either order, at most one of each.
  for (let k = 0; k < 2 && i < n; k++) {
    const c = text.charCodeAt(i);
    if (!signSeen && (isMinus(c) || c === 43)) {
      signSeen = true;
      negative = c !== 43;
      i++;
    } else if (!dollarSeen && c === 36) {
      dollarSeen = true;
      i++;
      if (i < n && text.charCodeAt(i) === 32) i++; // "$ 5"
    } else break;
  }
  const intStart = i;
  let intEnd = digitsEnd(text, i);
  let intDigits = text.slice(intStart, intEnd);
  // Thousands separators: only after a leading group of 1-3 digits, each group exactly 3 digits.
  if (intDigits.length >= 1 && intDigits.length <= 3) {
    let groups = intDigits;
    let j = intEnd;
    while (
      j + 3 < n + 1 &&
      text.charCodeAt(j) === 44 &&
      isDigitCode(text.charCodeAt(j + 1)) &&
      isDigitCode(text.charCodeAt(j + 2)) &&
      isDigitCode(text.charCodeAt(j + 3)) &&
      !isDigitCode(text.charCodeAt(j + 4))
    ) {
      groups += text.slice(j + 1, j + 4);
      j += 4;
    }
    if (j !== intEnd) {
      intDigits = groups;
      intEnd = j;
    }
  }
  i = intEnd;
  let fracDigits = "";
  if (i + 1 < n && text.charCodeAt(i) === 46 && isDigitCode(text.charCodeAt(i + 1))) {
    const fEnd = digitsEnd(text, i + 1);
    fracDigits = text.slice(i + 1, fEnd);
    i = fEnd;
  }
  if (intDigits.length === 0 && fracDigits.length === 0) return null;
  let value = Number(`${intDigits || "0"}${fracDigits ? `.${fracDigits}` : ""}`);
  let fraction = false;
  if (
    fracDigits.length === 0 &&
    i + 1 < n &&
    text.charCodeAt(i) === 47 &&
    isDigitCode(text.charCodeAt(i + 1))
  ) {
    const dEnd = digitsEnd(text, i + 1);
    const denominator = Number(text.slice(i + 1, dEnd));
    if (denominator !== 0) {
      value = value / denominator;
      fraction = true;
      i = dEnd;
    }
  }
  let percent = false;
  if (i < n && text.charCodeAt(i) === 37) {
    percent = true;
    i++;
  }
  if (!Number.isFinite(value)) return null;
  return { value: negative ? -value : value, start, end: i, percent, fraction };
}

/**
 * Whether a number may start at i: a digit, a "." before a digit, or a sign/"$" that precedes
 * one. A "-" right after a digit, letter or ")" is a binary minus ("10-5" is 10 and 5).
 */
function mayStartNumber(text: string, i: number): boolean {
  const c = text.charCodeAt(i);
  if (isDigitCode(c)) return true;
  if (c === 46) return isDigitCode(text.charCodeAt(i + 1));
  if (c === 36) return true;
  if (isMinus(c)) {
    const p = i > 0 ? text.charCodeAt(i - 1) : 32;
    return !(isDigitCode(p) || isLetterCode(p) || p === 41);
  }
  return false;
}

/**
 * After a failed read (a sign without digits, or a number too large for a double), skips the
 * rest of its digit run so that no digit is read twice: keeps the scans linear.
 */
function skipDigits(text: string, i: number): number {
  while (i < text.length) {
    const c = text.charCodeAt(i);
    if (isDigitCode(c) || c === 44 || c === 46) i++;
    else break;
  }
  return i;
}

/** Every number in text[from, to), left to right, each character read at most a constant number of times. */
export function scanNumbers(text: string, from = 0, to = text.length): NumberToken[] {
  const out: NumberToken[] = [];
  const slice = from === 0 && to === text.length ? text : text.slice(0, to);
  let i = from;
  while (i < to) {
    if (mayStartNumber(slice, i)) {
      const tok = readNumberAt(slice, i);
      if (tok) {
        out.push(tok);
        i = tok.end;
        continue;
      }
      i = skipDigits(slice, i + 1);
      continue;
    }
    i++;
  }
  return out;
}

/** The last number in text, or null. */
export function lastNumber(text: string): NumberToken | null {
  // Scanning forward keeps token boundaries right ("1,234" is one number); only the last is kept.
  let last: NumberToken | null = null;
  let i = 0;
  const n = text.length;
  while (i < n) {
    if (mayStartNumber(text, i)) {
      const tok = readNumberAt(text, i);
      if (tok) {
        last = tok;
        i = tok.end;
        continue;
      }
      i = skipDigits(text, i + 1);
      continue;
    }
    i++;
  }
  return last;
}

/**
 * Parses a whole string as one number (surrounding whitespace, a trailing period and trailing
 * unit words allowed: "$18 dollars.", "1,234", "-3/4"), else null.
 */
export function parseNumber(text: string): number | null {
  let i = 0;
  while (i < text.length && /\s/.test(text[i])) i++;
  const tok = readNumberAt(text, i);
  if (!tok) return null;
  const rest = text.slice(tok.end).trim();
  // Units and punctuation may follow; another number may not.
  if (/[0-9]/.test(rest)) return null;
  return tok.value;
}

/** Canonical text of an extracted value: integers plainly, others to 12 significant digits. */
export function formatNumber(value: number): string {
  if (Object.is(value, -0)) return "0";
  if (Number.isInteger(value)) return String(value);
  return String(Number(value.toPrecision(12)));
}

/** The agreement test of correctness_hard: |x − y| ≤ 1e-6 · max(1, |y|). */
export function numbersMatch(x: number, y: number): boolean {
  return Math.abs(x - y) <= 1e-6 * Math.max(1, Math.abs(y));
}
