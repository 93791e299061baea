// What the Hub commands share: a pull's progress line (bytes, rate, ETA; plain lines off a
// terminal) on stderr, and HubError as the user's one-line error.
import { HubError, type PullProgress } from "@temper/hub";
import { CliError } from "./cli.ts";
import { bar, duration, Progress } from "./progress.ts";

/** 1536 → "1.5 KB"; decimal units, as the Hub shows sizes. */
export function bytes(n: number): string {
  const units = ["B", "KB", "MB", "GB", "TB"];
  let v = n;
  let u = 0;
  while (v >= 1000 && u < units.length - 1) {
    v /= 1000;
    u++;
  }
  return `${u === 0 ? v : v.toFixed(v < 10 ? 2 : 1)} ${units[u]}`;
}

/** A progress callback for pull(): `label: [bar] done/total, rate, ETA  file`. */
export function pullProgress(label: string, progress = new Progress()): (p: PullProgress) => void {
  const started = performance.now();
  return (p) => {
    if (p.total === 0) return;
    const elapsed = (performance.now() - started) / 1000;
    const rate = elapsed > 0 ? p.received / elapsed : 0;
    const eta = rate > 0 ? (p.total - p.done) / rate : Number.NaN;
    const file = p.file ? `  ${p.file}` : "";
    progress.update(p.done, p.total, (live) =>
      live
        ? `${label}: ${bar(p.done / p.total)} ${bytes(p.done)}/${bytes(p.total)}, ${bytes(rate)}/s, ETA ${duration(eta)}${file}`
        : `${label}: ${bytes(p.done)}/${bytes(p.total)} (${Math.floor((100 * p.done) / p.total)}%), ${bytes(rate)}/s, ETA ${duration(eta)}${file}`,
    );
    if (p.done >= p.total) progress.end();
  };
}

/** Runs a Hub action; a HubError becomes the command's one-line error (exit 2). */
export async function hubAction<T>(action: () => Promise<T>): Promise<T> {
  try {
    return await action();
  } catch (err) {
    if (err instanceof HubError) throw new CliError(err.message);
    throw err;
  }
}
