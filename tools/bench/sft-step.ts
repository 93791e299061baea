// Time per full-parameter SFT step of the default experiment's warm start (the `mini` preset, byte
// tokenizer, batch 32 of its synthetic one-step problems, ~50 tokens a sequence, float32, ORT's own
// thread count unless --threads), before and after a change to the training graph:
//
//   before  --baseline (default adae6fd: the embedding gradient as a ScatterND add), from a git
//           worktree of that commit in a child process (its own @temper packages)
//   after   this checkout, in a child process too
//
// Each child runs runSft for --steps steps (the first two are warm-up and not counted) and prints
// each step's seconds, as SftStepInfo reports them: forward, backward and the AdamW update. The
// children alternate (before, after, after, before, …) over --repeats rounds, so a slow moment of
// the shared machine lands on both; the table gives each child's median and the median of those.
//
// Run: node --import tsx tools/bench/sft-step.ts [--repeats 4] [--steps 22] [--threads N]
//        [--baseline COMMIT]
// Internal: --worker --model DIR --out DIR runs one child's measurement.
import { copyFileSync, mkdtempSync, rmSync } from "node:fs";
import { cpus, tmpdir } from "node:os";
import { join } from "node:path";
import { parseArgs } from "node:util";
import { synthesizeSets } from "@temper/gsm8k";
import { initModel, presetConfig, tokenizerIds } from "@temper/qwen3";
import { runSft } from "@temper/training";
import { checkoutCommit, median, REPO_ROOT, runNodeJson } from "./baseline.ts";

const { values } = parseArgs({
  options: {
    repeats: { type: "string", default: "4" },
    steps: { type: "string", default: "22" },
    threads: { type: "string" },
    baseline: { type: "string", default: "adae6fd" },
    worker: { type: "boolean", default: false },
    model: { type: "string" },
    out: { type: "string" },
  },
});
const steps = Number(values.steps);
const threads = values.threads ? Number(values.threads) : undefined;
const WARMUP = 2;

async function worker(model: string, out: string): Promise<void> {
  // the default experiment's SFT knobs (packages/experiment/src/default-settings.ts)
  const data = synthesizeSets({
    sft: 3000,
    train: 0,
    eval: 0,
    seed: 1,
    steps: { min: 1, max: 1 },
    maxOperand: 10,
    maxResult: 100,
    disjoint: "question",
  });
  const seconds: number[] = [];
  await runSft(
    {
      modelDir: model,
      train: data.sft,
      out,
      steps,
      batchSize: 32,
      learningRate: 3e-3,
      schedule: "cosine",
      warmupSteps: 0,
      instruction: "",
      seed: 0,
      saveEvery: 0,
      threads,
    },
    { onStep: (i) => seconds.push(i.seconds) },
  );
  process.stdout.write(`${JSON.stringify(seconds.slice(WARMUP))}\n`);
}

if (values.worker) {
  await worker(values.model!, values.out!);
} else {
  const root = mkdtempSync(join(tmpdir(), "temper-sft-step-"));
  const base = checkoutCommit(values.baseline!);
  // the old commit has no copy of this bench: its child runs this file, placed in its worktree
  copyFileSync(import.meta.filename, join(base.dir, "tools/bench/sft-step.ts"));
  try {
    const model = join(root, "mini");
    initModel({
      config: presetConfig("mini", tokenizerIds("bytes")),
      tokenizer: "bytes",
      out: model,
      seed: 0,
      dtype: "f32",
    });
    console.log(
      `mini preset, full-parameter SFT, batch 32, float32, ${threads ?? "ORT's default"} threads, ${cpus()[0]?.model ?? "?"} × ${cpus().length}; ms per step (median of ${steps - WARMUP} after ${WARMUP} warm-up)`,
    );
    const medians: Record<"before" | "after", number[]> = { before: [], after: [] };
    let k = 0;
    for (let r = 0; r < Number(values.repeats); r++) {
      const order: ("before" | "after")[] = r % 2 === 0 ? ["before", "after"] : ["after", "before"];
      for (const which of order) {
        const cwd = which === "before" ? base.dir : REPO_ROOT;
        const args = [
          "--worker",
          "--model",
          model,
          "--out",
          join(root, `out-${k++}`),
          "--steps",
          String(steps),
        ];
        if (threads) args.push("--threads", String(threads));
        const s = await runNodeJson<number[]>(cwd, join(cwd, "tools/bench/sft-step.ts"), args);
        medians[which].push(median(s) * 1000);
        console.log(`  round ${r + 1} ${which.padEnd(6)} ${(median(s) * 1000).toFixed(1)} ms`);
      }
    }
    const b = median(medians.before);
    const a = median(medians.after);
    console.log(`before (${base.commit.slice(0, 7)})  ${b.toFixed(1)} ms per step`);
    console.log(`after                ${a.toFixed(1)} ms per step  (${(((a - b) / b) * 100).toFixed(1)}%)`);
  } finally {
    base.remove();
    rmSync(root, { recursive: true, force: true });
  }
}
