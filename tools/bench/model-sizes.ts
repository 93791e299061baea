// Real model sizes on this machine: Qwen3-0.6B and Qwen3-4B shapes with random weights (bf16, as the
// Hub ships them). Each phase runs in a child process whose PSS and anonymous memory are sampled
// every second (a faster sampler takes a core: reading smaps_rollup walks the page tables); the bench prints and never asserts.
//
//   decode   the rollout's engine (openDecodeBackend, fast, float32) over the weights placed
//            "memory" (each session's heap), "packed" (mapped, ORT's prepacked weights mapped too)
//            or "unpacked" (mapped, session.disable_prepacking): open time, prefill and decode time
//   train    the learner's trainer: one LoRA GRPO step (r 16 on all seven projections) over the same
//            rows (prompt + completion), micro-batch --micro
//   score    the perplexity reward's reference forward (Qwen3Engine logprobs) over the same rows
//
// --size 0.6b: a GRPO step slice of --prompts prompts × --n completions of --new-tokens new tokens,
// extrapolated to 16 prompts × 8 in proportion to the rows (each phase's time on a CPU grows with its
// rows at these sizes; the open time is paid once per process and left out); the decode speed of each
// placement; and the three phases' processes up at once, their PSS summed.
// --size 4b: decode of 4 completions of 32 tokens and a train step of micro-batch 1 started together,
// each behind the memory check its service runs (a refusal is printed with its numbers).
//
// Run: node --import tsx tools/bench/model-sizes.ts --size 0.6b|4b [--model DIR] [--threads 2]
//        [--prompts 2] [--n 8] [--new-tokens 256] [--prompt-tokens 96] [--micro 1] [--skip-placements]
// (--micro: the trainer's micro-batch and the reference forward's chunk of rows; at Qwen3's
// 151,936-entry vocabulary each row of 352 tokens holds ~0.2 GB per vocabulary-wide tensor, and training keeps 10 to 16 of them)
// One phase alone (prints its JSON line): --phase decode|train|score --model DIR
//        [--weights memory|packed|unpacked] (train: unpacked = the trainer without prepacking)
// The weight cache is TEMPER_WEIGHT_CACHE (default ~/.cache/temper/weights); a 4B entry is 17.6 GB.
import { spawn } from "node:child_process";
import { existsSync, mkdtempSync, readFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { parseArgs } from "node:util";
import { formatBytes, machineMemory, memoryRefusal } from "@temper/kit";
import {
  decodeLoadBytes,
  generate,
  initLoraAdapter,
  initModel,
  LORA_MODULES,
  type LoraConfig,
  openDecodeBackend,
  openModelDir,
  presetConfig,
  Qwen3Engine,
  Qwen3Trainer,
  type TrainSequence,
  tokenizerIds,
  weightLoadBytes,
} from "@temper/qwen3";

const { values } = parseArgs({
  options: {
    size: { type: "string", default: "0.6b" },
    model: { type: "string" },
    threads: { type: "string", default: "2" },
    prompts: { type: "string", default: "2" },
    n: { type: "string", default: "8" },
    "new-tokens": { type: "string", default: "256" },
    "prompt-tokens": { type: "string", default: "96" },
    micro: { type: "string", default: "1" },
    "skip-placements": { type: "boolean", default: false },
    phase: { type: "string" },
    weights: { type: "string", default: "auto" },
  },
});
const THREADS = Number(values.threads);
const LORA: LoraConfig = { rank: 16, alpha: 32, useRslora: false, targetModules: [...LORA_MODULES] };

function rows(prompts: number, n: number, promptTokens: number, vocab: number): number[][] {
  let seed = 7;
  const next = () => {
    seed = (seed * 1103515245 + 12345) % 2 ** 31;
    return seed;
  };
  const ps = Array.from({ length: prompts }, () =>
    Array.from({ length: promptTokens }, () => next() % vocab),
  );
  return ps.flatMap((p) => Array.from({ length: n }, () => p));
}

/** One phase in this process; prints a JSON line of what it measured. */
async function phase(name: string, dir: string): Promise<void> {
  const model = openModelDir(dir);
  const { config } = model;
  const prompts = Number(values.prompts);
  const n = Number(values.n);
  const newTokens = Number(values["new-tokens"]);
  const promptTokens = Number(values["prompt-tokens"]);
  const out: Record<string, unknown> = { phase: name };
  const t0 = performance.now();
  const seconds = () => (performance.now() - t0) / 1000;
  if (name.startsWith("decode")) {
    const placement = values.weights;
    const weights = {
      machineBytes: machineMemory(),
      ...(placement === "memory" ? { mapped: false } : {}),
      ...(placement === "packed" ? { mapped: true, prepack: true } : {}),
      ...(placement === "unpacked" ? { mapped: true, prepack: false } : {}),
    };
    const refusal = memoryRefusal(decodeLoadBytes(config, "float32", "fast", weights), "decode", "-");
    if (refusal) return void console.log(JSON.stringify({ ...out, refusal }));
    const backend = await openDecodeBackend(model, { threads: THREADS, lora: LORA, weights });
    backend.setAdapter(initLoraAdapter(config, LORA, { seed: 1, initB: "random" }));
    out.open = seconds();
    const t1 = performance.now();
    const prompt = rows(prompts, 1, promptTokens, config.vocabSize);
    const tokenizer = { vocabSize: config.vocabSize, decode: (ids: readonly number[]) => ids.join(" ") };
    const done = await generate(backend, tokenizer, prompt, {
      maxNewTokens: newTokens,
      n,
      temperature: 1,
      seed: 1,
    });
    out.generate = (performance.now() - t1) / 1000;
    out.tokens = done.flat().reduce((s, c) => s + c.tokenIds.length, 0);
    await backend.release();
  } else if (name === "train") {
    const refusal = memoryRefusal(weightLoadBytes(config, "float32"), "train", "-");
    if (refusal) return void console.log(JSON.stringify({ ...out, refusal }));
    const trainer = await Qwen3Trainer.fromCheckpoint(config, model.checkpoint, {
      mode: "lora",
      lora: LORA,
      loss: { kind: "grpo", aggregation: "token", beta: 0 },
      dtype: "float32",
      threads: THREADS,
      // --weights unpacked: the training graph without ORT's prepacking (its speed against the default)
      ...(values.weights === "unpacked"
        ? { ortOptions: { extra: { session: { disable_prepacking: "1" } } } }
        : {}),
    });
    out.open = seconds();
    const seqs = rows(prompts, n, promptTokens + newTokens, config.vocabSize);
    const batch: TrainSequence[] = seqs.map((ids, i) => ({
      inputIds: ids,
      completionMask: ids.map((_, t) => (t >= promptTokens ? 1 : 0)),
      advantage: i % 2 ? 0.5 : -0.5,
      oldLogprobs: ids.map(() => -12),
    }));
    const t1 = performance.now();
    await trainer.step(batch, initLoraAdapter(config, LORA, { seed: 1, initB: "random" }), {
      microBatchSize: Number(values.micro),
    });
    out.step = (performance.now() - t1) / 1000;
    await trainer.release();
  } else if (name === "score") {
    const refusal = memoryRefusal(weightLoadBytes(config, "float32"), "score", "-");
    if (refusal) return void console.log(JSON.stringify({ ...out, refusal }));
    const engine = await Qwen3Engine.fromCheckpoint(config, model.checkpoint, { threads: THREADS });
    out.open = seconds();
    const seqs = rows(prompts, n, promptTokens + newTokens, config.vocabSize);
    const t1 = performance.now();
    const chunk = Number(values.micro);
    for (let i = 0; i < seqs.length; i += chunk) await engine.logprobs(seqs.slice(i, i + chunk));
    out.forward = (performance.now() - t1) / 1000;
    await engine.release();
  }
  console.log(JSON.stringify(out));
}

interface Sampled {
  result: Record<string, unknown>;
  peakPss: number;
  peakAnon: number;
  pid: number;
}

function sample(pid: number): { pss: number; anon: number } | null {
  try {
    const r = readFileSync(`/proc/${pid}/smaps_rollup`, "utf8");
    const kb = (k: string) => Number(new RegExp(`^${k}:\\s+(\\d+) kB`, "m").exec(r)![1]) * 1024;
    return { pss: kb("Pss"), anon: kb("Anonymous") };
  } catch {
    return null;
  }
}

/** Runs one phase in a child; `together` samples the summed PSS of all children running at once. */
function child(
  name: string,
  dir: string,
  extra: string[] = [],
  together?: { sum: number; live: Set<number> },
) {
  return new Promise<Sampled>((resolve, reject) => {
    const args = ["--import", "tsx", import.meta.filename, "--phase", name, "--model", dir];
    for (const k of ["threads", "prompts", "n", "new-tokens", "prompt-tokens", "micro"] as const)
      args.push(`--${k}`, String(values[k]));
    args.push(...extra); // later flags win
    const p = spawn(process.execPath, args, { stdio: ["ignore", "pipe", "inherit"] });
    let text = "";
    p.stdout.on("data", (d) => {
      text += d;
    });
    const s: Sampled = { result: {}, peakPss: 0, peakAnon: 0, pid: p.pid! };
    together?.live.add(p.pid!);
    const timer = setInterval(() => {
      const m = sample(p.pid!);
      if (m) {
        s.peakPss = Math.max(s.peakPss, m.pss);
        s.peakAnon = Math.max(s.peakAnon, m.anon);
      }
      if (together) {
        let sum = 0;
        for (const pid of together.live) sum += sample(pid)?.pss ?? 0;
        together.sum = Math.max(together.sum, sum);
      }
    }, 1000);
    p.on("exit", (code, signal) => {
      clearInterval(timer);
      together?.live.delete(p.pid!);
      const line = text.trim().split("\n").pop() ?? "";
      if (signal) s.result = { killed: signal };
      else if (code !== 0 || !line.startsWith("{")) return reject(new Error(`phase ${name} exited ${code}`));
      else s.result = JSON.parse(line);
      resolve(s);
    });
  });
}

const gib = (b: number) => formatBytes(b);

async function main(): Promise<void> {
  const size = values.size === "4b" ? "qwen3-4b" : "qwen3-0.6b";
  let dir = values.model;
  if (values.phase) return phase(values.phase, dir!);
  if (!dir || !existsSync(join(dir, "config.json"))) {
    dir ??= join(mkdtempSync(join(tmpdir(), "model-sizes-")), size);
    console.log(`initialising ${size} (random bf16) in ${dir}`);
    initModel({
      config: presetConfig(size, tokenizerIds("qwen3")),
      tokenizer: "qwen3",
      out: dir,
      seed: 1,
      dtype: "bf16",
    });
  }
  const config = openModelDir(dir).config;
  console.log(
    `${size}: machine ${gib(machineMemory())}, ${THREADS} threads; float32 weights ${gib(weightLoadBytes(config, "float32") / 2)}`,
  );
  if (size === "qwen3-0.6b") {
    const rowsN = Number(values.prompts) * Number(values.n);
    const scale = (16 * 8) / rowsN;
    // the cache entry and packed graphs exist before anything is timed
    await child("decode-warm", dir, ["--new-tokens", "2", "--weights", "packed"]);
    await child("decode-warm", dir, ["--new-tokens", "2", "--weights", "unpacked"]);
    for (const w of values["skip-placements"] ? [] : ["memory", "packed", "unpacked"]) {
      const r = await child("decode", dir, ["--weights", w]);
      const x = r.result as { open: number; generate: number; tokens: number };
      console.log(
        `decode ${w.padEnd(8)}: open ${x.open.toFixed(1)} s, ${rowsN} rows × ${values["new-tokens"]} tokens in ${x.generate.toFixed(1)} s (${(x.tokens / x.generate).toFixed(1)} tok/s), peak PSS ${gib(r.peakPss)}, anonymous ${gib(r.peakAnon)}`,
      );
    }
    const together = { sum: 0, live: new Set<number>() };
    const [decode, train, score] = await Promise.all([
      child("decode", dir, [], together),
      child("train", dir, [], together),
      child("score", dir, [], together),
    ]);
    const fixed = (x: unknown) => (typeof x === "number" ? x.toFixed(1) : "-");
    const d = { generate: fixed(decode.result.generate) };
    const t = { step: fixed(train.result.step) };
    const s = { forward: fixed(score.result.forward) };
    console.log(
      `the three at once: peak PSS summed ${gib(together.sum)} (decode ${gib(decode.peakPss)}, train ${gib(train.peakPss)}, score ${gib(score.peakPss)})`,
    );
    for (const [what, r] of [
      ["decode", decode],
      ["train", train],
      ["score", score],
    ] as const)
      if (r.result.refusal || r.result.killed)
        console.log(`${what}: ${r.result.refusal ?? `killed by ${r.result.killed}`}`);
    // alone, one at a time, for the step's split
    const seconds = async (name: string, field: string): Promise<number> => {
      const r = (await child(name, dir)).result;
      if (typeof r[field] !== "number") throw new Error(`phase ${name} alone: ${JSON.stringify(r)}`);
      return r[field] as number;
    };
    const alone = {
      rollout: await seconds("decode", "generate"),
      reward: await seconds("score", "forward"),
      train: await seconds("train", "step"),
    };
    console.log(
      `GRPO step slice, ${values.prompts} prompts × ${values.n}, alone: rollout ${alone.rollout.toFixed(1)} s, reward (reference forward) ${alone.reward.toFixed(1)} s, train ${alone.train.toFixed(1)} s (run together: ${d.generate} / ${s.forward} / ${t.step} s)`,
    );
    const total = (alone.rollout + alone.reward + alone.train) * scale;
    console.log(
      `extrapolated to 16 prompts × 8 (×${scale} the rows): rollout ${(alone.rollout * scale).toFixed(0)} s, reward ${(alone.reward * scale).toFixed(0)} s, train ${(alone.train * scale).toFixed(0)} s, ${(total / 60).toFixed(1)} min a step`,
    );
  } else {
    const together = { sum: 0, live: new Set<number>() };
    const args = ["--prompts", "1", "--n", "4", "--new-tokens", "32", "--micro", "1"];
    values.prompts = "1";
    values.n = "4";
    values["new-tokens"] = "32";
    values.micro = "1";
    const [decode, train] = await Promise.all([
      child("decode", dir, args, together),
      child("train", dir, args, together),
    ]);
    for (const [what, r] of [
      ["rollout (decode)", decode],
      ["learner (train)", train],
    ] as const) {
      const x = r.result;
      console.log(
        `${what}: ${x.refusal ? `refused: ${x.refusal}` : JSON.stringify(x)}, peak PSS ${gib(r.peakPss)}, anonymous ${gib(r.peakAnon)}`,
      );
    }
    console.log(`together: peak PSS summed ${gib(together.sum)}`);
  }
}

await main();
