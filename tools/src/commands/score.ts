// `temper score`: rewards for a jsonl file of completions, in-process through @temper/rewards.
// The scoring step sits behind BatchScorer (batch-scorer.ts) so that a scheduler client can replace it.
import { readFileSync, writeFileSync } from "node:fs";
import { referenceValue } from "@temper/gsm8k";
import { RUN_ID } from "@temper/kit";
import {
  type ComponentStat,
  type ComponentValue,
  type GroupInput,
  INITIAL_SCHEDULE_STATE,
  type PipelineResult,
  type ScheduleShape,
  type StructureInput,
} from "@temper/rewards";
import { type BatchScorer, inProcessScorer } from "../batch-scorer.ts";
import { CliError, numberFlag, outputFile, parseFlags } from "../cli.ts";
import { schedulerScorer } from "../scheduler-scorer.ts";

const USAGE = `usage: temper score --data FILE.jsonl [options]

Scores completions with a reward structure (in-process, or through a running scheduler with
--scheduler) and writes each input line with a
"rewards" field added: {reward, components {name: value or null}, rule, extracted, advantage, alpha_used}.

input lines: {"question", "reference" (answer text or number), "completion",
              optional "group" (string or number; lines without one are groups of one),
              "logprobs" (numbers), "token_ids" (numbers), "finish_reason" ("stop" | "length")}
              other fields are kept.

options:
  --data FILE          input jsonl (required)
  --out FILE           output jsonl (default: stdout)
  --scheduler H:P      score through a running scheduler (and the reward services it routes to)
  --run ID             the scheduler run to configure and score (default: a new one per call)
  --structure S        hard | continuous | hybrid | adaptive (default hard)
  --alpha A            hybrid alpha in [0, 1] (default 0.5)
  --weights k=v,...    continuous weights (default correctness_soft=0.4,reasoning=0.25,consistency=0.2,perplexity=0.15)
  --schedule S         adaptive: constant | linear | cosine | step | sigmoid | progress (default linear)
  --total-steps T      adaptive time schedule length (default 100)
  --milestones a,b     adaptive step-shape milestones
  --step T             the step the batch is scored at (default 0)
  --advantage S        group | batch | none (default group)
  --tau X              perplexity temperature (default 1)
  --min-tokens N, --max-tokens N   reasoning length window (defaults 10, 400)
summary on stderr.`;

interface InputLine {
  row: Record<string, unknown>;
  groupIndex: number;
  completionIndex: number;
}

function numberArray(v: unknown, where: string): number[] | undefined {
  if (v === undefined || v === null) return undefined;
  if (!Array.isArray(v) || v.some((x) => typeof x !== "number" || Number.isNaN(x)))
    throw new CliError(`${where}: must be an array of numbers`);
  return v as number[];
}

/** Parses the input file into groups (in order of first appearance) and per-line positions. */
export function readScoreInput(file: string): { groups: GroupInput[]; lines: InputLine[] } {
  let text: string;
  try {
    text = readFileSync(file, "utf8");
  } catch (err) {
    throw new CliError(
      `${file}: cannot read (${(err as NodeJS.ErrnoException).code ?? (err as Error).message})`,
    );
  }
  const groups: GroupInput[] = [];
  const byKey = new Map<string, number>();
  const lines: InputLine[] = [];
  const raw = text.split("\n");
  for (let i = 0; i < raw.length; i++) {
    const where = `${file}:${i + 1}`;
    if (raw[i].trim() === "") continue;
    let row: unknown;
    try {
      row = JSON.parse(raw[i]);
    } catch {
      throw new CliError(`${where}: not valid JSON`);
    }
    if (typeof row !== "object" || row === null || Array.isArray(row))
      throw new CliError(`${where}: expected a JSON object`);
    const r = row as Record<string, unknown>;
    if (typeof r.completion !== "string") throw new CliError(`${where}: "completion" must be a string`);
    if (r.question !== undefined && typeof r.question !== "string")
      throw new CliError(`${where}: "question" must be a string`);
    if (typeof r.reference !== "string" && typeof r.reference !== "number") {
      throw new CliError(`${where}: "reference" must be an answer text or a number`);
    }
    const reference = String(r.reference);
    if (referenceValue(reference) === null)
      throw new CliError(`${where}: "reference" is not a number or an answer ending in "#### N"`);
    if (r.group !== undefined && typeof r.group !== "string" && typeof r.group !== "number") {
      throw new CliError(`${where}: "group" must be a string or a number`);
    }
    if (r.finish_reason !== undefined && typeof r.finish_reason !== "string")
      throw new CliError(`${where}: "finish_reason" must be a string`);
    const logprobs = numberArray(r.logprobs, `${where}: "logprobs"`);
    const tokenIds = numberArray(r.token_ids, `${where}: "token_ids"`);
    // Lines without a group are groups of one; a group's reference is its first line's.
    const key = r.group === undefined ? `\u0000line ${i + 1}` : `group ${String(r.group)}`;
    let g = byKey.get(key);
    if (g === undefined) {
      g = groups.length;
      byKey.set(key, g);
      groups.push({
        id: r.group === undefined ? `line-${i + 1}` : String(r.group),
        prompt: (r.question as string) ?? "",
        reference,
        completions: [],
      });
    } else if (referenceValue(groups[g].reference) !== referenceValue(reference)) {
      throw new CliError(`${where}: "reference" differs from the rest of group ${String(r.group)}`);
    }
    const completions = groups[g].completions as GroupInput["completions"][number][];
    completions.push({
      id: `line-${i + 1}`,
      text: r.completion,
      logprobs,
      tokenIds,
      finishReason: r.finish_reason as string | undefined,
    });
    lines.push({ row: r, groupIndex: g, completionIndex: completions.length - 1 });
  }
  if (lines.length === 0) throw new CliError(`${file}: no input lines`);
  return { groups, lines };
}

function parseWeights(spec: string): Record<string, number> {
  const weights: Record<string, number> = {};
  for (const part of spec.split(",")) {
    const [k, v, extra] = part.split("=");
    if (!k || v === undefined || extra !== undefined)
      throw new CliError(`--weights: expected name=value pairs, got "${part}"`);
    weights[k.trim()] = numberFlag(`weights ${k.trim()}`, v) as number;
  }
  return weights;
}

function structureFrom(flags: Record<string, string | boolean | undefined>): StructureInput {
  const values = flags as Record<string, string | undefined>;
  const kind = values.structure ?? "hard";
  const weights = values.weights !== undefined ? parseWeights(values.weights) : undefined;
  const alpha = numberFlag("alpha", values.alpha);
  if (alpha !== undefined && kind !== "hybrid") throw new CliError("--alpha: only for --structure hybrid");
  if (weights && kind === "hard") throw new CliError("--weights: not used by --structure hard");
  switch (kind) {
    case "hard":
      return { kind: "hard" };
    case "continuous":
      return { kind: "continuous", weights };
    case "hybrid":
      return { kind: "hybrid", alpha, continuous: { weights } };
    case "adaptive": {
      const schedule = values.schedule ?? "linear";
      if (schedule === "progress")
        return { kind: "adaptive", schedule: { kind: "progress" }, continuous: { weights } };
      const milestones = values.milestones?.split(",").map((m) => numberFlag("milestones", m) as number);
      return {
        kind: "adaptive",
        schedule: {
          kind: "time",
          shape: schedule as ScheduleShape,
          totalSteps: numberFlag("total-steps", values["total-steps"], 100),
          milestones,
        },
        continuous: { weights },
      };
    }
    default:
      throw new CliError(`--structure: unknown structure "${kind}" (hard, continuous, hybrid, adaptive)`);
  }
}

function valuesOf(components: Record<string, ComponentValue>): Record<string, number | null> {
  const out: Record<string, number | null> = {};
  for (const [k, c] of Object.entries(components)) out[k] = c.status === "ok" ? c.value : null;
  return out;
}

function summary(result: PipelineResult, structure: string): string {
  const f = (x: number) => x.toFixed(4);
  const zero = result.groups.filter((g) => g.zeroSignal).length;
  const meanReward = result.items.reduce((s, i) => s + i.reward, 0) / result.items.length;
  const lines = [
    `temper score: ${result.items.length} completions in ${result.groups.length} groups, structure ${structure}, alpha ${f(result.alpha)}`,
    `  ${"mean reward".padEnd(22)}${f(meanReward)}`,
    `  ${"accuracy".padEnd(22)}${f(result.batchAccuracy)}`,
    `  ${"zero-signal groups".padEnd(22)}${zero}/${result.groups.length}`,
    `  ${"component".padEnd(22)}${"mean".padEnd(8)}present`,
  ];
  const stats: [string, ComponentStat][] = Object.entries(result.componentStats);
  for (const [name, s] of stats)
    lines.push(
      `  ${name.padEnd(22)}${(s.present > 0 ? f(s.mean) : "-").padEnd(8)}${s.present}/${s.present + s.absent}`,
    );
  return `${lines.join("\n")}\n`;
}

export async function run(argv: string[], backend: BatchScorer = inProcessScorer): Promise<void> {
  let scorer = backend;
  const { values } = parseFlags(argv, {
    data: { type: "string" },
    out: { type: "string" },
    structure: { type: "string" },
    alpha: { type: "string" },
    weights: { type: "string" },
    schedule: { type: "string" },
    "total-steps": { type: "string" },
    milestones: { type: "string" },
    step: { type: "string" },
    advantage: { type: "string" },
    tau: { type: "string" },
    "min-tokens": { type: "string" },
    "max-tokens": { type: "string" },
    scheduler: { type: "string" },
    run: { type: "string" },
    help: { type: "boolean", short: "h" },
  });
  if (values.help) {
    process.stdout.write(`${USAGE}\n`);
    return;
  }
  if (!values.data) throw new CliError("--data FILE.jsonl is required (temper score --help)");
  const advantage = values.advantage ?? "group";
  if (advantage !== "group" && advantage !== "batch" && advantage !== "none")
    throw new CliError(`--advantage: expected group, batch or none, got "${advantage}"`);
  const step = numberFlag("step", values.step, 0) as number;
  if (!Number.isInteger(step) || step < 0)
    throw new CliError(`--step: expected an integer ≥ 0, got "${values.step}"`);
  const structure = structureFrom(values);
  const { groups, lines } = readScoreInput(values.data);
  if (values.out) outputFile("out", values.out);
  if (values.run !== undefined && !values.scheduler) throw new CliError("--run: only with --scheduler");
  if (values.scheduler) {
    const runId = values.run ?? `score-${Date.now().toString(36)}-${process.pid}`;
    if (!RUN_ID.test(runId)) throw new CliError(`--run: must match [A-Za-z0-9_-]{1,64}, got "${runId}"`);
    scorer = schedulerScorer(values.scheduler, runId);
  }
  const result = await scorer.score({
    groups,
    structure,
    step,
    state: INITIAL_SCHEDULE_STATE,
    params: {
      perplexityTau: numberFlag("tau", values.tau),
      minTokens: numberFlag("min-tokens", values["min-tokens"]),
      maxTokens: numberFlag("max-tokens", values["max-tokens"]),
    },
    advantageScale: advantage,
  });
  // Results come back group by group; map each line to its (group, completion) slot.
  const offset: number[] = [];
  let n = 0;
  for (const g of groups) {
    offset.push(n);
    n += g.completions.length;
  }
  const out = lines.map(({ row, groupIndex, completionIndex }) => {
    const item = result.items[offset[groupIndex] + completionIndex];
    return JSON.stringify({
      ...row,
      rewards: {
        reward: item.reward,
        components: valuesOf(item.components),
        rule: item.details.matchedRule,
        extracted: item.details.extractedAnswer === "" ? null : item.details.extractedAnswer,
        advantage: item.advantage,
        alpha_used: item.alphaUsed,
      },
    });
  });
  const body = `${out.join("\n")}\n`;
  if (values.out) writeFileSync(values.out, body);
  else process.stdout.write(body);
  process.stderr.write(summary(result, structure.kind));
}
