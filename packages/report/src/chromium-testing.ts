// Headless Chromium for tests that render a report: Debian's `chromium`, a fresh profile per call,
// the DOM after the page's scripts ran, and the page's console lines from Chromium's log.
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { mkdtempSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";

export const chromiumPath = spawnSync("sh", ["-c", "command -v chromium"], {
  encoding: "utf8",
}).stdout.trim();

/** Runs headless Chromium with a fresh profile; 60 s at most. */
export function chromium(args: string[]): { stdout: string; stderr: string } {
  const profile = mkdtempSync(join(tmpdir(), "temper-chromium-"));
  const r = spawnSync(
    chromiumPath,
    [
      "--headless",
      "--no-sandbox",
      "--disable-gpu",
      "--hide-scrollbars",
      "--no-first-run",
      `--user-data-dir=${profile}`,
      "--enable-logging=stderr",
      "--v=0",
      ...args,
    ],
    { encoding: "utf8", timeout: 60_000, killSignal: "SIGKILL", maxBuffer: 1 << 27 },
  );
  assert.equal(r.error, undefined, `chromium: ${r.error}`);
  assert.equal(r.status, 0, `chromium exit ${r.status}: ${r.stderr.slice(-2000)}`);
  return { stdout: r.stdout, stderr: r.stderr };
}

/** Chromium logs every console message of the page as "INFO:CONSOLE"; the report logs none. */
export function consoleLines(stderr: string): string[] {
  return stderr.split("\n").filter((l) => /:CONSOLE[(:]/.test(l));
}

/** Each plot's id → the variant of each data-series element inside its <svg>, and their point counts. */
export function plotsInDom(dom: string): Map<string, { variant: string; points: number }[]> {
  const plots = new Map<string, { variant: string; points: number }[]>();
  for (const m of dom.matchAll(/<svg\b([^>]*)>([\s\S]*?)<\/svg>/g)) {
    const id = /data-plot="([^"]*)"/.exec(m[1])?.[1];
    if (id === undefined) continue;
    const series = [...m[2].matchAll(/<g\b[^>]*data-series="([^"]*)"[^>]*>/g)].map((s) => ({
      variant: s[1],
      points: Number(/data-points="(\d+)"/.exec(s[0])?.[1] ?? "NaN"),
    }));
    plots.set(id, series);
  }
  return plots;
}

export function bodyData(dom: string, key: string): string | undefined {
  const body = /<body\b([^>]*)>/.exec(dom)?.[1] ?? "";
  return new RegExp(`data-${key}="([^"]*)"`).exec(body)?.[1];
}
