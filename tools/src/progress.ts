// Progress of a long command: one live line redrawn in place when the stream is a terminal, plain
// lines otherwise (a log or a pipe gets a bounded number of them, never carriage returns).

export interface ProgressOptions {
  /** Where progress goes (default stderr, so that stdout stays the command's output). */
  out?: NodeJS.WritableStream & { isTTY?: boolean };
  /** Redraw in place (default: whether `out` is a terminal). */
  tty?: boolean;
  /** Plain lines per run, one per 1/plainLines of `total`, besides the first (default 20). */
  plainLines?: number;
  /** Least time between two redraws of the live line (default 100 ms). */
  redrawMs?: number;
  /** Clock (tests). */
  now?: () => number;
}

export class Progress {
  readonly tty: boolean;
  private readonly out: NodeJS.WritableStream;
  private readonly plainLines: number;
  private readonly redrawMs: number;
  private readonly now: () => number;
  private shown = false;
  private lastDraw = -Infinity;
  private lastPlain = -1;

  constructor(options: ProgressOptions = {}) {
    const out = options.out ?? process.stderr;
    this.out = out;
    this.tty = options.tty ?? (out as { isTTY?: boolean }).isTTY === true;
    this.plainLines = Math.max(1, options.plainLines ?? 20);
    this.redrawMs = options.redrawMs ?? 100;
    this.now = options.now ?? (() => performance.now());
  }

  /**
   * Reports `done` of `total`. `text` renders the line (told whether it is the live one). On a
   * terminal the line is redrawn (at most every redrawMs, and always at the end); otherwise a plain
   * line is written each time another 1/plainLines of the total is done, at the end, or when `force`.
   */
  update(done: number, total: number, text: (live: boolean) => string, force = false): void {
    const end = done >= total;
    if (this.tty) {
      const t = this.now();
      if (!end && !force && t - this.lastDraw < this.redrawMs) return;
      this.lastDraw = t;
      this.out.write(`\r\x1b[K${text(true)}`);
      this.shown = true;
      return;
    }
    const bucket =
      total > 0 ? Math.floor((Math.min(done, total) * this.plainLines) / total) : this.plainLines;
    if (bucket === this.lastPlain && !end && !force) return;
    if (end && this.lastPlain === this.plainLines + 1) return;
    this.lastPlain = end ? this.plainLines + 1 : bucket;
    this.out.write(`${text(false)}\n`);
  }

  /** A line that stays (the live line, if any, is cleared first and redrawn by the next update). */
  line(text: string): void {
    this.clear();
    this.out.write(`${text}\n`);
  }

  /** Ends the live line so that what follows starts on a line of its own. */
  end(): void {
    if (this.shown) this.out.write("\n");
    this.shown = false;
  }

  private clear(): void {
    if (this.shown) this.out.write("\r\x1b[K");
    this.shown = false;
    this.lastDraw = -Infinity;
  }
}

/** A bar of `width` cells for a fraction in [0, 1]: `[=====>    ]`. */
export function bar(fraction: number, width = 24): string {
  const filled = Math.max(0, Math.min(width, Math.round(width * fraction)));
  return `[${"=".repeat(filled)}${filled < width ? ">" : ""}${" ".repeat(Math.max(0, width - filled - 1))}]`;
}

/** 75s → "1m15s", 3700s → "1h01m"; "?" when unknown. */
export function duration(seconds: number): string {
  if (!Number.isFinite(seconds) || seconds < 0) return "?";
  const s = Math.round(seconds);
  if (s < 60) return `${s}s`;
  if (s < 3600) return `${Math.floor(s / 60)}m${String(s % 60).padStart(2, "0")}s`;
  return `${Math.floor(s / 3600)}h${String(Math.floor((s % 3600) / 60)).padStart(2, "0")}m`;
}
