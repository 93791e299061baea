// The one error type of experiment files: one line, `file:line: field.path: problem`, that the CLI
// prints as it is (exit code 2).

export type PathSegment = string | number;

const IDENT = /^[A-Za-z_][A-Za-z0-9_]*$/;

/** `reward.weights["reasoning.reasoning"]`, `lora.target_modules[2]`; "(top level)" for the root. */
export function formatPath(path: readonly PathSegment[]): string {
  let out = "";
  for (const seg of path) {
    if (typeof seg === "number") out += `[${seg}]`;
    else if (IDENT.test(seg)) out += out === "" ? seg : `.${seg}`;
    else out += `[${JSON.stringify(seg)}]`;
  }
  return out === "" ? "(top level)" : out;
}

export class ExperimentError extends Error {
  override name = "ExperimentError";
  constructor(
    /** The file as the caller named it. */
    readonly file: string,
    /** 1-based line of the offending key or value (of the parent mapping for a missing field). */
    readonly line: number,
    /** Dotted field path in the file (`data.train`, `variants[1].reward.alpha`). */
    readonly field: string,
    readonly problem: string,
  ) {
    super(`${file}:${line}: ${field}: ${problem}`);
  }
}

/** The one-line message to print for an error from this package (any other error: its message). */
export function formatExperimentError(err: unknown): string {
  if (err instanceof Error) return err.message.split("\n")[0];
  return String(err);
}

/** A value as an error message shows it: strings quoted, long ones cut. */
export function show(v: unknown): string {
  if (v === undefined) return "nothing";
  if (v === null) return "null";
  if (Array.isArray(v)) return "a list";
  if (typeof v === "object") return "a mapping";
  if (typeof v === "string") return JSON.stringify(v.length > 60 ? `${v.slice(0, 57)}...` : v);
  return String(v);
}
