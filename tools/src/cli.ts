// Shared CLI plumbing: one-line errors with a non-zero exit, a small flag parser, output paths.
import { mkdirSync, statSync } from "node:fs";
import { dirname, resolve } from "node:path";
import { type ParseArgsConfig, parseArgs } from "node:util";
import { StackError } from "@temper/stack";

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
      e instanceof CliError ||
      e instanceof StackError ||
      (typeof e.code === "string" && e.code.startsWith("ERR_PARSE_ARGS"));
    const message = (e?.message ?? String(err)).split("\n")[0];
    process.stderr.write(`temper: ${message}\n`);
    if (!isUsage && process.env.TEMPER_DEBUG) process.stderr.write(`${e?.stack}\n`);
    process.exitCode = isUsage ? (e.exitCode ?? 2) : 1;
  }
}

const NEGATIVE_NUMBER = /^-(\d|\.\d|Infinity$)/;

/**
 * Joins `--flag -1` into `--flag=-1` for flags that take a value: node's parseArgs reads any value
 * that starts with a dash as a forgotten argument ("argument is ambiguous"), but a negative number
 * is a value (which the flag's own range check may then reject).
 */
export function joinNegativeValues(
  argv: readonly string[],
  options: NonNullable<ParseArgsConfig["options"]>,
) {
  const takesValue = (name: string) => options[name]?.type === "string";
  const shortNames = new Map(
    Object.entries(options).flatMap(([name, o]) => (o.short ? [[o.short, name] as const] : [])),
  );
  const out: string[] = [];
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i];
    if (arg === "--") {
      out.push(...argv.slice(i));
      break;
    }
    const next = argv[i + 1];
    const name = arg.startsWith("--")
      ? arg.slice(2)
      : /^-[^-]$/.test(arg)
        ? shortNames.get(arg[1])
        : undefined;
    if (name !== undefined && takesValue(name) && next !== undefined && NEGATIVE_NUMBER.test(next)) {
      out.push(`--${name}=${next}`);
      i++;
    } else out.push(arg);
  }
  return out;
}

/** parseArgs with strict checking; unknown flags become a CliError naming the flag. */
export function parseFlags<T extends NonNullable<ParseArgsConfig["options"]>>(
  argv: string[],
  options: T,
  allowPositionals = false,
) {
  try {
    return parseArgs({ args: joinNegativeValues(argv, options), options, allowPositionals, strict: true });
  } catch (err) {
    const e = err as Error & { code?: string };
    // "Option '--x' argument is ambiguous." spans three lines; say it in one.
    const ambiguous = /^Option '(-[^']+)' argument is ambiguous/.exec(e.message);
    if (ambiguous) {
      const given = ambiguous[1];
      const long = given.startsWith("--")
        ? given
        : `--${Object.entries(options).find(([, o]) => `-${o.short}` === given)?.[0] ?? given.slice(1)}`;
      throw new CliError(`${given}: missing value (a value that starts with "-" is written ${long}=VALUE)`);
    }
    throw new CliError(e.message.split("\n")[0]);
  }
}

function errnoText(err: unknown): string {
  const e = err as NodeJS.ErrnoException;
  const reasons: Record<string, string> = {
    EACCES: "permission denied",
    EPERM: "permission denied",
    ENOTDIR: "a parent is a file, not a directory",
    EEXIST: "a file of that name exists",
    EROFS: "read-only file system",
    ENOSPC: "no space left on the device",
  };
  return (e.code && reasons[e.code]) ?? e.code ?? e.message;
}

/**
 * An output file's path, its missing parent directories created (as `mkdir -p` would) before any
 * work is done; problems are a CliError naming the flag. Returns the path as given.
 */
export function outputFile(flag: string, path: string): string {
  let isDir = false;
  try {
    isDir = statSync(path).isDirectory();
  } catch {}
  if (isDir) throw new CliError(`--${flag}: ${path} is a directory; expected a file path`);
  outputDir(flag, dirname(resolve(path)));
  return path;
}

/** An output directory, created with its missing parents; problems are a CliError naming the flag. */
export function outputDir(flag: string, dir: string): string {
  try {
    mkdirSync(dir, { recursive: true });
  } catch (err) {
    throw new CliError(`--${flag}: cannot create ${dir} (${errnoText(err)})`);
  }
  return dir;
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
