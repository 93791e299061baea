// Shared CLI plumbing: one-line errors with a non-zero exit, and a small flag parser.
import { type ParseArgsConfig, parseArgs } from "node:util";

/** An error meant for the user: printed as one line, exit code 2. */
export class CliError extends Error {
  constructor(
    message: string,
    readonly exitCode = 2,
  ) {
    super(message);
  }
}

export async function runCli(main: () => Promise<void>): Promise<void> {
  try {
    await main();
  } catch (err) {
    const e = err as Error & { exitCode?: number; code?: string };
    // parseArgs reports unknown or malformed flags with ERR_PARSE_ARGS_* codes.
    const isUsage =
      e instanceof CliError || (typeof e.code === "string" && e.code.startsWith("ERR_PARSE_ARGS"));
    const message = (e?.message ?? String(err)).split("\n")[0];
    process.stderr.write(`temper: ${message}\n`);
    if (!isUsage && process.env.TEMPER_DEBUG) process.stderr.write(`${e?.stack}\n`);
    process.exitCode = isUsage ? (e.exitCode ?? 2) : 1;
  }
}

/** parseArgs with strict checking; unknown flags become a CliError naming the flag. */
export function parseFlags<T extends NonNullable<ParseArgsConfig["options"]>>(
  argv: string[],
  options: T,
  allowPositionals = false,
) {
  try {
    return parseArgs({ args: argv, options, allowPositionals, strict: true });
  } catch (err) {
    throw new CliError((err as Error).message);
  }
}

/** Parses a number flag, naming the flag when the value is not a finite number. */
export function numberFlag(name: string, value: string | undefined, fallback?: number): number | undefined {
  if (value === undefined) return fallback;
  const n = Number(value);
  if (value.trim() === "" || !Number.isFinite(n))
    throw new CliError(`--${name}: expected a number, got "${value}"`);
  return n;
}

/** A flag that takes one of a fixed set of values; `fallback` when absent. */
export function choiceFlag<T extends string>(
  flag: string,
  value: string | undefined,
  allowed: readonly T[],
  fallback: T,
): T {
  if (value === undefined) return fallback;
  if (!(allowed as readonly string[]).includes(value))
    throw new CliError(`--${flag}: expected one of ${allowed.join(", ")}, got "${value}"`);
  return value as T;
}
