// GSM8K jsonl loading. Each line: {"question": string, "answer": string}.
import { constants, readFileSync } from "node:fs";
import { open } from "node:fs/promises";
import { resolve } from "node:path";

export interface Gsm8kExample {
  question: string;
  /** The reference: rationale with `<<…>>` annotations, ending in "#### N". */
  answer: string;
}

/** A bad file or line; the message names the file and, for a line, its 1-based number. */
export class Gsm8kDataError extends Error {}

/** Parses GSM8K jsonl text; `file` only names the source in errors. Blank lines are skipped. */
export function parseGsm8k(text: string, file: string): Gsm8kExample[] {
  const out: Gsm8kExample[] = [];
  const lines = text.split("\n");
  for (let i = 0; i < lines.length; i++) {
    const line = lines[i].trim();
    if (line === "") continue;
    let row: unknown;
    try {
      row = JSON.parse(line);
    } catch {
      throw new Gsm8kDataError(`${file}:${i + 1}: not valid JSON`);
    }
    if (typeof row !== "object" || row === null || Array.isArray(row)) {
      throw new Gsm8kDataError(`${file}:${i + 1}: expected a JSON object`);
    }
    const { question, answer } = row as Record<string, unknown>;
    if (typeof question !== "string")
      throw new Gsm8kDataError(`${file}:${i + 1}: "question" must be a string`);
    if (typeof answer !== "string") throw new Gsm8kDataError(`${file}:${i + 1}: "answer" must be a string`);
    out.push({ question, answer });
  }
  return out;
}

/** Loads a GSM8K jsonl file. */
export function loadGsm8k(path: string): Gsm8kExample[] {
  const file = resolve(path);
  let text: string;
  try {
    text = readFileSync(file, "utf8");
  } catch (err) {
    throw new Gsm8kDataError(
      `${file}: cannot read (${(err as NodeJS.ErrnoException).code ?? (err as Error).message})`,
    );
  }
  return parseGsm8k(text, file);
}

/** The largest data file readGsm8kFile reads (GSM8K's train split is 4 MB). */
export const MAX_DATA_FILE_BYTES = 1 << 30;

/**
 * Reads a jsonl file without blocking the event loop, for services. Anything but a regular file (a
 * FIFO, a device, a directory) is refused before a byte is read: the open does not wait for a FIFO's
 * writer (O_NONBLOCK) and the check is on the opened file, so a path swapped in between is caught too.
 */
export async function readGsm8kFile(path: string): Promise<Gsm8kExample[]> {
  const file = resolve(path);
  const shown = file.length > 200 ? `${file.slice(0, 200)}… (${file.length} characters)` : file;
  let handle: Awaited<ReturnType<typeof open>>;
  try {
    handle = await open(file, constants.O_RDONLY | constants.O_NONBLOCK);
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    throw new Gsm8kDataError(
      `${shown}: ${code === "ENOENT" ? "does not exist" : `cannot read (${code ?? (err as Error).message})`}`,
    );
  }
  try {
    const st = await handle.stat();
    if (!st.isFile()) throw new Gsm8kDataError(`${shown}: not a regular file`);
    if (st.size > MAX_DATA_FILE_BYTES)
      throw new Gsm8kDataError(`${shown}: ${st.size} bytes, more than ${MAX_DATA_FILE_BYTES}`);
    return parseGsm8k(await handle.readFile("utf8"), shown);
  } finally {
    await handle.close();
  }
}
