// What `temper run`, `compare`, `runs`, `watch`, `stop`, `resume` and the default experiment share:
// an orchestrator to talk to (given, or a local stack held for the command's duration), a live
// progress line per run, and the comparison's closing report and summary table.
import { mkdirSync, writeFileSync } from "node:fs";
import { join, resolve } from "node:path";
import { createClient, type PromiseClient } from "@temper/kit";
import { orchestrator } from "@temper/proto";
import {
  type Comparison,
  groupVariants,
  loadRun,
  renderReport,
  summarize,
  type VariantSummary,
} from "@temper/report";
import { NATS_DEFAULT_PORT, ROOT, type Stack, startStack } from "@temper/stack";
import { CliError } from "./cli.ts";
import { duration } from "./progress.ts";

export type OrchestratorClient = PromiseClient<typeof orchestrator.OrchestratorServiceService>;

export interface Connection {
  client: OrchestratorClient;
  /** The local stack started for this command, if any. */
  stack?: Stack;
  close(): Promise<void>;
}

export interface ConnectOptions {
  orchestrator?: string;
  dataDir?: string;
  portOffset?: number;
  /** The base model rollout and learner serve (a local stack only). */
  model?: string;
  say: (line: string) => void;
}

/** The orchestrator at `--orchestrator`, or a local stack's (started now, stopped by close()). */
export async function connect(o: ConnectOptions): Promise<Connection> {
  if (o.orchestrator) {
    const client = createClient(orchestrator.OrchestratorServiceService, o.orchestrator, {
      defaults: { timeoutMs: 60_000 },
    });
    return { client, close: async () => client.$close() };
  }
  const offset = o.portOffset ?? 0;
  const dataDir = resolve(o.dataDir ?? join(ROOT, ".temper", "stack"));
  o.say(`starting a local stack in ${dataDir}`);
  const t0 = Date.now();
  const stack = await startStack({
    dataDir,
    natsPort: NATS_DEFAULT_PORT + offset,
    portOffset: offset,
    model: o.model,
    onEvent: (line) => o.say(line),
  });
  o.say(`stack SERVING in ${((Date.now() - t0) / 1000).toFixed(1)} s`);
  // the local stack's own terms (plaintext), whatever GRPC_TLS_* the shell exported
  const client = createClient(orchestrator.OrchestratorServiceService, stack.address("orchestrator"), {
    defaults: { timeoutMs: 60_000 },
    security: stack.security?.client ?? {},
  });
  // Ctrl-C or SIGTERM stops the stack this command started (runs stay resumable), then exits.
  const onSignal = (signal: NodeJS.Signals) => {
    o.say(`${signal}: stopping the local stack (resume with temper resume RUN)`);
    client.$close();
    void stack.stop().finally(() => process.exit(130));
  };
  process.once("SIGINT", onSignal);
  process.once("SIGTERM", onSignal);
  return {
    client,
    stack,
    close: async () => {
      process.off("SIGINT", onSignal);
      process.off("SIGTERM", onSignal);
      client.$close();
      const problems = await stack.stop();
      for (const p of problems) o.say(p);
    },
  };
}

const STATUS_NAME: Record<number, string> = {
  [orchestrator.RunStatus.RUN_STATUS_PENDING]: "PENDING",
  [orchestrator.RunStatus.RUN_STATUS_RUNNING]: "RUNNING",
  [orchestrator.RunStatus.RUN_STATUS_SUCCEEDED]: "SUCCEEDED",
  [orchestrator.RunStatus.RUN_STATUS_FAILED]: "FAILED",
  [orchestrator.RunStatus.RUN_STATUS_STOPPED]: "STOPPED",
};
export const statusName = (s: orchestrator.RunStatus) => STATUS_NAME[s] ?? "UNSPECIFIED";

const fmt = (x: number | undefined, digits = 3) =>
  x === undefined || !Number.isFinite(x) ? "–" : x.toFixed(digits);

/**
 * Follows a run to its end, one progress line per step: a live line on a TTY, plain lines
 * otherwise. Returns the run as it ended.
 */
export async function follow(
  client: OrchestratorClient,
  runId: string,
  label: string,
  out: NodeJS.WriteStream = process.stdout,
): Promise<orchestrator.Run> {
  const tty = out.isTTY === true;
  const run = (await client.getRun({ runId })).run!;
  const total = run.spec?.steps ?? 0;
  let lastEval: orchestrator.EvalResult | undefined;
  let line = "";
  const show = (text: string, final = false) => {
    if (tty) out.write(`\r\x1b[2K${text}${final ? "\n" : ""}`);
    else out.write(`${text}\n`);
    line = text;
  };
  for await (const ev of client.watchRun(
    { runId, fromStep: run.stepsDone },
    { timeoutMs: 7 * 24 * 3600_000 },
  )) {
    if (ev.event?.$case === "eval") {
      lastEval = ev.event.value;
      if (!tty)
        show(
          `${label}  eval after ${lastEval.step} step(s): accuracy ${fmt(lastEval.accuracy)} ± ${fmt(lastEval.stderr)} (n ${lastEval.n})`,
        );
    }
    if (ev.event?.$case === "metrics") {
      const m = ev.event.value;
      const v = m.values;
      const done = m.step + 1;
      const perStep = (v["time/elapsed"] ?? 0) / Math.max(1, done);
      const eta = perStep * (total - done);
      show(
        `${label}  step ${done}/${total}  reward ${fmt(v["reward/mean"])}  train acc ${fmt(v["accuracy/train"], 2)}  eval acc ${lastEval ? fmt(lastEval.accuracy, 2) : "–"}  α ${fmt(v.alpha, 2)}  ${fmt(v["time/step"], 1)} s/step  ETA ${duration(eta)}`,
      );
    }
    if (ev.event === undefined && ev.status !== orchestrator.RunStatus.RUN_STATUS_RUNNING) break;
  }
  if (tty && line) out.write("\n");
  return (await client.getRun({ runId })).run!;
}

/** Writes the comparison's report; returns its path and the summary table's lines. */
export function writeReport(dirs: string[], outPath: string): { path: string; table: string[] } {
  const runs = dirs.map((d) => loadRun(d));
  const html = renderReport(runs);
  mkdirSync(resolve(outPath, ".."), { recursive: true });
  writeFileSync(outPath, html);
  const summary = summarize(groupVariants(runs));
  return {
    path: outPath,
    table: [...summaryTable(summary.variants), ...comparisonLines(summary.comparisons)],
  };
}

/** mean ± the SE over problems, then "s ± …", the SE over seeds, where there are several. */
function stat(s: { mean: number; se: number | null; seedSe: number | null } | null): string {
  if (!s) return "–";
  const seeds = s.seedSe === null ? "" : ` s ± ${s.seedSe.toFixed(3)}`;
  return s.se === null ? `${s.mean.toFixed(3)}${seeds}` : `${s.mean.toFixed(3)} ± ${s.se.toFixed(3)}${seeds}`;
}

const signed = (v: number) => `${v >= 0 ? "+" : "−"}${Math.abs(v).toFixed(3)}`;

/** The gain over the warm start ± its SEs (paired where the runs kept per-problem answers); ✓ past 2 of the larger. */
function gain(g: VariantSummary["gain"]): string {
  if (!g) return "–";
  const seeds = g.seedSe === null ? "" : ` s ± ${g.seedSe.toFixed(3)}`;
  if (g.se === null) return `${signed(g.mean)}${seeds}${g.clear ? " ✓" : ""}`;
  return `${signed(g.mean)} ± ${g.se.toFixed(3)}${seeds}${g.paired ? "" : " (unpaired)"}${g.clear ? " ✓" : ""}`;
}

/** One line per comparison with the baseline, and what a single seed cannot say. */
export function comparisonLines(comparisons: Comparison[]): string[] {
  if (comparisons.length === 0) return [];
  const base = comparisons[0].baseline;
  const lines = comparisons.map((c) => {
    const ses = [
      c.se === null ? "" : `problems ± ${c.se.toFixed(3)}`,
      c.seedSe === null ? "" : `seeds ± ${c.seedSe.toFixed(3)}`,
    ]
      .filter(Boolean)
      .join(", ");
    const line = `  ${c.name}: ${signed(c.mean)}${ses ? ` (${ses})` : ""}${c.mde === null ? "" : `, minimum detectable ${c.mde.toFixed(3)}`}${c.clear ? " ✓" : ""}`;
    return [line, ...curveLines(c, base)].join("\n");
  });
  const seeds = Math.min(...comparisons.map((c) => c.seeds.length));
  return [
    "",
    `gain against ${base}'s, paired by seed and problem (${seeds} seed${seeds === 1 ? "" : "s"}):`,
    ...lines,
    ...(seeds < 2
      ? ["  one seed: the SEs above leave out seed-to-seed spread; `temper default --seeds` measures it"]
      : []),
  ];
}

/** Where evaluations along the run allow it: the area under the curve, the steps to hard's halfway mark. */
function curveLines(c: Comparison, base: string): string[] {
  const out: string[] = [];
  const a = c.auc;
  if (a && c.values.length > 0) {
    const ses = [
      a.se === null ? "" : `problems ± ${a.se.toFixed(3)}`,
      a.seedSe === null ? "" : `seeds ± ${a.seedSe.toFixed(3)}`,
    ]
      .filter(Boolean)
      .join(", ");
    out.push(
      `    mean gain over the run (area under the curve): ${signed(a.mean)}${ses ? ` (${ses})` : ""}${a.mde === null ? "" : `, minimum detectable ${a.mde.toFixed(3)}`}${a.clear ? " ✓" : ""}`,
    );
  }
  const st = c.steps;
  if (st) {
    const spread = st.seedSe === null ? "" : ` ± ${st.seedSe.toFixed(1)} over seeds`;
    out.push(
      st.mean === null
        ? `    steps to ${base}'s halfway mark: not reached (${st.reached} of ${st.of} seeds)`
        : `    steps to ${base}'s halfway mark: ${st.mean >= 0 ? "+" : "−"}${Math.abs(st.mean).toFixed(1)}${spread} (${st.reached} of ${st.of} seeds reached it)`,
    );
  }
  return out;
}

/** One row per variant: warm start, final and best accuracy and the gain (± standard error), halfway step, wall time. */
export function summaryTable(variants: VariantSummary[]): string[] {
  const withMaj = variants.some((v) => v.finalMaj !== null);
  const withPass1 = variants.some((v) => v.finalPass1 !== null);
  const rows = [
    [
      "variant",
      "seeds",
      "warm start",
      "final acc ± se",
      "best acc ± se",
      "final − warm ± se",
      ...(withMaj ? ["maj@k warm", "maj@k final ± se"] : []),
      ...(withPass1 ? ["pass@1 warm", "pass@1 final ± se"] : []),
      "halfway step",
      "stability",
      "wall",
    ],
    ...variants.map((v) => [
      v.name,
      String(v.seeds.length),
      stat(v.warm),
      stat(v.final),
      stat(v.best),
      gain(v.gain),
      ...(withMaj ? [v.warmMaj ? v.warmMaj.mean.toFixed(3) : "–", stat(v.finalMaj)] : []),
      ...(withPass1 ? [v.warmPass1 ? v.warmPass1.mean.toFixed(3) : "–", stat(v.finalPass1)] : []),
      v.halfway ? String(v.halfway.step) : "–",
      v.stability === null ? "–" : v.stability.toFixed(3),
      v.wallTime === null ? "–" : duration(v.wallTime),
    ]),
  ];
  const widths = rows[0].map((_, c) => Math.max(...rows.map((r) => r[c].length)));
  return rows.map((r) =>
    r
      .map((cell, c) => cell.padEnd(widths[c]))
      .join("  ")
      .trimEnd(),
  );
}

export function requireRunId(id: string | undefined, command: string): string {
  if (!id) throw new CliError(`usage: temper ${command} RUN_ID [--orchestrator ADDR]`);
  return id;
}
