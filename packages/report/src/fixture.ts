// Example run directories in the orchestrator's format, for tests and the README figure: four
// reward structures, several seeds, plausible (made-up, deterministic) curves.
import { mkdirSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { stringify } from "yaml";

export const EXAMPLE_VARIANTS = ["hard", "continuous", "hybrid", "adaptive"] as const;

/** A completion that must come out escaped: markup, a script and ampersands. */
export const TRICKY_COMPLETION =
  'Let x be the apples. <script>alert("pwned")</script> AT&T said 3 < 5 & 7 > 2. <b>#### 18</b>';

interface Profile {
  /** Held-out accuracy at steps 5 and 10, per seed. */
  mid: [number, number];
  final: [number, number];
  stepSeconds: number;
  length: number;
  rewardStd: number;
}

const PROFILES: Record<(typeof EXAMPLE_VARIANTS)[number], Profile> = {
  hard: { mid: [0.49, 0.5], final: [0.55, 0.57], stepSeconds: 62, length: 150, rewardStd: 0.45 },
  continuous: { mid: [0.45, 0.47], final: [0.5, 0.52], stepSeconds: 78, length: 240, rewardStd: 0.12 },
  hybrid: { mid: [0.51, 0.5], final: [0.58, 0.6], stepSeconds: 80, length: 200, rewardStd: 0.26 },
  adaptive: { mid: [0.47, 0.49], final: [0.6, 0.62], stepSeconds: 81, length: 190, rewardStd: 0.2 },
};

const WARM = [0.42, 0.43];
const EVAL_N = 500;
const EVAL_SECONDS = 45;

/** mulberry32: a small seeded generator, so the example is the same on every machine. */
function random(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

const round = (v: number, digits = 4) => Number(v.toFixed(digits));
const jsonl = (rows: object[]) => rows.map((r) => JSON.stringify(r)).join("\n") + "\n";

const PROMPTS = [
  [
    "gsm8k-test-0012",
    "Natalia sold clips to 48 of her friends in April, and then she sold half as many clips in May. How many clips did Natalia sell altogether in April and May?",
    "72",
  ],
  [
    "gsm8k-test-0107",
    "Weng earns $12 an hour for babysitting. Yesterday, she just did 50 minutes of babysitting. How much did she earn?",
    "10",
  ],
  [
    "gsm8k-test-0233",
    "Betty is saving money for a new wallet which costs $100. Betty has only half of the money she needs. Her parents give her $15 and her grandparents twice as much. How much more money does Betty need?",
    "5",
  ],
  [
    "gsm8k-test-0318",
    "James writes a 3-page letter to 2 different friends twice a week. How many pages does he write a year?",
    "624",
  ],
] as const;

/**
 * Writes `variants` × `seeds` run directories under `root` (steps 0..steps−1, evaluations at 0,
 * steps/2 and steps) and returns their paths.
 */
export function writeExampleRuns(
  root: string,
  options: { variants?: readonly string[]; seeds?: readonly number[]; steps?: number } = {},
): string[] {
  const variants = options.variants ?? EXAMPLE_VARIANTS;
  const seeds = options.seeds ?? [1, 2];
  const steps = options.steps ?? 10;
  const dirs: string[] = [];
  variants.forEach((name, vi) => {
    const profile = PROFILES[name as keyof typeof PROFILES] ?? PROFILES.hard;
    seeds.forEach((seed, si) => {
      const rand = random(1000 * vi + seed);
      const noise = (scale: number) => (rand() - 0.5) * 2 * scale;
      const runId = `${name}-s${seed}-0001`;
      const dir = join(root, runId);
      mkdirSync(dir, { recursive: true });
      writeFileSync(
        join(dir, "spec.yaml"),
        stringify({
          run_id: runId,
          name,
          seed,
          steps,
          model: "models/qwen3-tiny",
          created_at: `2025-06-0${1 + si}T09:${String(10 + vi).padStart(2, "0")}:00Z`,
          reward: { structure: name, alpha: name === "hybrid" ? 0.5 : undefined },
          rollout: { group_size: 8, temperature: 1 },
          machine: {
            rollout: [
              {
                cpu_model: "AMD EPYC",
                cpu_flags: ["avx2", "avx512f"],
                intra_op_threads: 2,
                onnxruntime_version: "1.30.0",
              },
            ],
            learner: {
              cpu_model: "AMD EPYC",
              cpu_flags: ["avx2", "avx512f"],
              intra_op_threads: 2,
              onnxruntime_version: "1.30.0",
            },
          },
        }),
      );

      const warm = WARM[si % WARM.length];
      const mid = profile.mid[si % 2];
      const final = profile.final[si % 2];
      const accAt = (k: number) =>
        k <= steps / 2
          ? warm + ((mid - warm) * k) / (steps / 2)
          : mid + ((final - mid) * (k - steps / 2)) / (steps / 2);

      const metrics: object[] = [];
      const evals: object[] = [];
      const samples: object[] = [];
      let elapsed = 0;
      const evaluate = (k: number) => {
        elapsed += EVAL_SECONDS + noise(3);
        const correct = Math.round(accAt(k) * EVAL_N);
        const accuracy = correct / EVAL_N;
        evals.push({
          step: k,
          accuracy,
          stderr: round(Math.sqrt((accuracy * (1 - accuracy)) / EVAL_N), 5),
          n: EVAL_N,
          correct,
          elapsed: round(elapsed, 2),
          policy_version: k === 0 ? "base" : `${runId}-${k - 1}`,
        });
      };
      evaluate(0);
      for (let t = 0; t < steps; t++) {
        const p = t / Math.max(1, steps - 1);
        const alpha = name === "hybrid" ? 0.5 : name === "adaptive" ? round(p, 3) : null;
        const hard = Math.min(1, Math.max(0, accAt(t) + 0.03 + noise(0.05)));
        const soft = 0.55 + 0.2 * p + noise(0.03);
        const perplexity = 0.35 + 0.05 * p + noise(0.02);
        const reasoning = 0.6 + 0.15 * p + noise(0.03);
        const consistency = 0.5 + 0.1 * p + noise(0.04);
        const continuous = 0.4 * soft + 0.25 * reasoning + 0.2 * consistency + 0.15 * perplexity;
        const components: Record<string, number> =
          name === "hard"
            ? { "reward/correctness.correctness_hard": round(hard) }
            : {
                ...(name === "continuous" ? {} : { "reward/correctness.correctness_hard": round(hard) }),
                "reward/correctness.correctness_soft": round(soft),
                "reward/perplexity.perplexity": round(perplexity),
                "reward/reasoning.reasoning": round(reasoning),
                "reward/consistency.consistency": round(consistency),
              };
        const mean =
          name === "hard"
            ? hard
            : name === "continuous"
              ? continuous
              : alpha! * hard + (1 - alpha!) * continuous;
        const zeroSignal =
          name === "hard"
            ? 0.38 - 0.12 * p
            : name === "continuous"
              ? 0
              : name === "hybrid"
                ? 0.02
                : 0.3 * p * p;
        const timing = {
          rollout: profile.stepSeconds * 0.55 + noise(2),
          reward: profile.stepSeconds * (name === "hard" ? 0.02 : 0.2) + noise(0.5),
          train: profile.stepSeconds * 0.22 + noise(1),
          other: 1.5 + noise(0.3),
        };
        const stepSeconds = timing.rollout + timing.reward + timing.train + timing.other;
        elapsed += stepSeconds;
        // An evaluation due after this step runs inside it: its time is the step's time/eval.
        const before = elapsed;
        if ((t + 1) % Math.max(1, Math.floor(steps / 2)) === 0) evaluate(t + 1);
        const evalSeconds = elapsed - before;
        const lengthMean = profile.length + (name === "hard" ? -20 : 25) * p + noise(8);
        const line: Record<string, unknown> = {
          step: t,
          policy_version: t === 0 ? "base" : `${runId}-${t - 1}`,
          "reward/mean": round(mean),
          "reward/std": round(profile.rewardStd + noise(0.03)),
          ...components,
          alpha,
          "accuracy/train": round(hard),
          zero_signal_fraction: round(Math.max(0, zeroSignal + noise(0.03)), 3),
          "completions/mean_length": round(lengthMean, 1),
          "completions/max_length": 512,
          "completions/clipped_ratio": round(Math.max(0, 0.02 + noise(0.02)), 3),
          "train/loss": round(noise(0.05)),
          "train/clip_fraction": round(0.02 + 0.03 * p + noise(0.008)),
          "train/kl": t === 0 ? 0 : round(0.002 + 0.02 * p * (1 + 0.2 * vi) + noise(0.002), 5),
          "train/entropy": round(0.92 - 0.2 * p * (name === "hard" ? 1.3 : 0.8) + noise(0.02)),
          "train/logprob_diff": round(0.0004 + noise(0.0001), 6),
          "train/grad_norm": t === 3 ? null : round(0.8 + noise(0.3)),
          "train/learning_rate": 1e-5,
          "train/skipped": 0,
          "time/rollout": round(timing.rollout, 2),
          "time/reward": round(timing.reward, 2),
          "time/train": round(timing.train, 2),
          "time/eval": round(evalSeconds, 2),
          "time/other": round(timing.other, 2),
          "time/step": round(stepSeconds + evalSeconds, 2),
          "time/elapsed": round(elapsed, 2),
        };
        if (t !== 6) line["tokens/generated"] = Math.round(lengthMean * 64);
        metrics.push(line);

        for (let j = 0; j < 2; j++) {
          const [promptId, prompt, reference] = PROMPTS[(t * 2 + j + si) % PROMPTS.length];
          const correct = rand() < hard;
          const completion =
            t === steps - 1 && j === 0 && name === "hard" && si === 0
              ? TRICKY_COMPLETION
              : correct
                ? `Step by step: we work through the quantities in the question.\nThe total is ${reference}.\n#### ${reference}`
                : `First I add the numbers given.\nThat gives ${Number(reference) + 7}.\n#### ${Number(reference) + 7}`;
          samples.push({
            step: t,
            prompt_id: promptId,
            prompt,
            reference,
            completion,
            reward: round(correct ? Math.min(1, mean + 0.3) : Math.max(0, mean - 0.3), 3),
            advantage: round(correct ? 0.8 + noise(0.2) : -0.7 + noise(0.2), 3),
            correct,
          });
        }
      }
      writeFileSync(join(dir, "metrics.jsonl"), jsonl(metrics));
      writeFileSync(join(dir, "eval.jsonl"), jsonl(evals));
      writeFileSync(join(dir, "samples.jsonl"), jsonl(samples));
      dirs.push(dir);
    });
  });
  return dirs;
}
