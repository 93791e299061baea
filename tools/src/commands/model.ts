// `temper model <subcommand>`: make, inspect and run Qwen3-layout models. Each subcommand is one
// entry of `subcommands`; add logprobs, generate, grads, init-adapter there.
import { existsSync, readFileSync } from "node:fs";
import { basename } from "node:path";
import {
  type Checkpoint,
  ConfigError,
  initModel,
  loadTokenizer,
  openModelDir,
  PRESET_NAMES,
  type PresetName,
  parameterCount,
  parseConfig,
  presetConfig,
  type Qwen3Config,
  SafetensorsError,
  TOKENIZER_KINDS,
  TokenizerError,
  type TokenizerKind,
  tokenizerIds,
  WEIGHT_DTYPES,
  type WeightDtype,
  WeightsError,
} from "@temper/qwen3";
import { CliError, numberFlag, outputDir, parseFlags } from "../cli.ts";
import { resolveModelFlag } from "../model-flag.ts";
import { bar, duration, Progress } from "../progress.ts";
import { GRADS_DETAILS, GRADS_USAGE } from "./model-grads.ts";
import { PULL_DETAILS, PULL_USAGE } from "./model-pull.ts";

interface Subcommand {
  summary: string;
  usage: string;
  /** More of `--help` after the usage line. */
  details?: string;
  run(argv: string[]): Promise<void>;
}

const subcommands: Record<string, Subcommand> = {
  init: {
    summary: "write a randomly initialised model in Hugging Face layout",
    usage:
      "temper model init --config tiny|mini|small|qwen3-0.6b|qwen3-4b|FILE.json --tokenizer qwen3|bytes [--seed N] [--dtype bf16|f16|f32] [--shards N] --out DIR",
    get details() {
      return presetSizes();
    },
    run: runInit,
  },
  pull: {
    summary: "fetch a model from the Hugging Face Hub into the Hub cache (prints its directory)",
    usage: PULL_USAGE,
    details: PULL_DETAILS,
    run: async (argv) => (await import("./model-pull.ts")).runPull(argv),
  },
  info: {
    summary: "print a model's config summary, parameter count and tokenizer",
    usage: "temper model info --model DIR [--json]",
    run: runInfo,
  },
  logprobs: {
    summary: "per-token log-probabilities of a token sequence (token t given tokens < t)",
    usage:
      'temper model logprobs --model DIR [--adapter DIR] (--ids 1,2,3 | --text "...") [--top-k K] [--temperature T] [--json] [--provider cpu|webgpu|cuda] [--dtype float32|float64]',
    run: async (argv) => (await import("./model-logprobs.ts")).runLogprobs(argv),
  },
  generate: {
    summary: "sample completions of a prompt (sampling defaults from generation_config.json)",
    usage:
      'temper model generate --model DIR [--adapter DIR] --prompt "..." [--chat] [--no-thinking] [-n N] [--temperature T] [--top-k K] [--top-p P] [--max-new-tokens M] [--stop S]... [--seed S] [--json] [--engine fast|kv|reference] [--dtype float32|float64] [--provider cpu|webgpu|cuda]',
    details:
      "engines, as the rollout service's ENGINE (same defaults, so the same tokens): fast (default): float32, KV cache read in place (float64 runs kv); kv: KV cache, float32 or float64 (exact); an adapter is fed as graph inputs to both; reference: the float64 plain-loop forward recomputing the whole sequence each step, an adapter merged into the weights (slow; for checks)",
    run: async (argv) => (await import("./model-generate.ts")).runGenerate(argv),
  },
  grads: {
    summary: "loss, per-token logprobs and LoRA gradients of one GRPO/SFT batch, written to safetensors",
    usage: GRADS_USAGE,
    details: GRADS_DETAILS,
    run: async (argv) => (await import("./model-grads.ts")).runGrads(argv),
  },
  "init-adapter": {
    summary: "write a fresh LoRA adapter for a model in PEFT format (B = 0 unless --init-b random)",
    usage:
      "temper model init-adapter --model DIR --rank R --alpha A --targets q,k,v,o,gate,up,down [--rslora] [--seed N] [--init-b zero|random] --out DIR",
    run: async (argv) => (await import("./model-adapter.ts")).runInitAdapter(argv),
  },
};

function usage(): string {
  const lines = Object.entries(subcommands).map(
    ([name, c]) => `  ${name.padEnd(8)} ${c.summary}\n           ${c.usage}`,
  );
  return [
    "usage: temper model <subcommand> [options]",
    "",
    "subcommands:",
    ...lines,
    "",
    "--model takes a directory or a Hub id, ORG/NAME[@REVISION] (pulled on first use)",
  ].join("\n");
}

export async function run(argv: string[]): Promise<void> {
  const [name, ...rest] = argv;
  if (!name || name === "--help" || name === "-h") {
    process.stdout.write(`${usage()}\n`);
    return;
  }
  const sub = subcommands[name];
  if (!sub) throw new CliError(`unknown model subcommand "${name}"; run temper model --help`);
  if (rest.includes("--help") || rest.includes("-h")) {
    process.stdout.write(`usage: ${sub.usage}\n${sub.details ? `\n${sub.details}\n` : ""}`);
    return;
  }
  try {
    await sub.run(await resolveModelFlag(rest));
  } catch (err) {
    // Bad input files and flags are the user's to fix: one line, exit 2.
    if (
      err instanceof ConfigError ||
      err instanceof SafetensorsError ||
      err instanceof WeightsError ||
      err instanceof TokenizerError
    ) {
      throw new CliError(err.message);
    }
    throw err;
  }
}

function required(flags: Record<string, unknown>, name: string): string {
  const v = flags[name];
  if (typeof v !== "string" || v === "") throw new CliError(`--${name} is required`);
  return v;
}

function oneOf<T extends string>(flag: string, value: string, allowed: readonly T[]): T {
  if (!(allowed as readonly string[]).includes(value)) {
    throw new CliError(`--${flag}: expected one of ${allowed.join(", ")}, got "${value}"`);
  }
  return value as T;
}

function integerFlag(name: string, value: string | undefined, fallback: number, min: number): number {
  const n = numberFlag(name, value, fallback)!;
  if (!Number.isSafeInteger(n) || n < min)
    throw new CliError(`--${name}: expected an integer ≥ ${min}, got "${value}"`);
  return n;
}

async function runInit(argv: string[]): Promise<void> {
  const { values } = parseFlags(argv, {
    config: { type: "string" },
    tokenizer: { type: "string" },
    seed: { type: "string" },
    dtype: { type: "string" },
    shards: { type: "string" },
    out: { type: "string" },
  });
  const configArg = required(values, "config");
  const tokenizer = oneOf<TokenizerKind>("tokenizer", required(values, "tokenizer"), TOKENIZER_KINDS);
  const out = required(values, "out");
  const seed = integerFlag("seed", values.seed, 0, 0);
  const shards = integerFlag("shards", values.shards, 1, 1);
  const dtype = oneOf<WeightDtype>("dtype", values.dtype ?? "bf16", WEIGHT_DTYPES);

  let config: Qwen3Config;
  if ((PRESET_NAMES as readonly string[]).includes(configArg)) {
    config = presetConfig(configArg as PresetName, tokenizerIds(tokenizer));
  } else if (configArg.endsWith(".json")) {
    if (!existsSync(configArg)) throw new CliError(`--config: ${configArg} does not exist`);
    let json: unknown;
    try {
      json = JSON.parse(readFileSync(configArg, "utf8"));
    } catch {
      throw new CliError(`--config: ${configArg} is not valid JSON`);
    }
    config = parseConfig(json, configArg);
  } else {
    throw new CliError(`--config: expected ${PRESET_NAMES.join(", ")} or a .json file, got "${configArg}"`);
  }

  outputDir("out", out);
  const started = Date.now();
  const progress = new Progress();
  const total = formatCount(parameterCount(config));
  const files = initModel({
    config,
    tokenizer,
    out,
    seed,
    dtype,
    shards,
    onProgress: (written, all) => {
      const elapsed = (Date.now() - started) / 1000;
      const eta = written > 0 ? (elapsed / written) * (all - written) : Number.NaN;
      progress.update(written, all, (live) =>
        live
          ? `init ${configArg}: ${bar(written / all)} ${formatCount(written)}/${total} parameters, ETA ${duration(eta)}`
          : `init ${configArg}: ${formatCount(written)}/${total} parameters written (${Math.floor((100 * written) / all)}%), elapsed ${duration(elapsed)}, ETA ${duration(eta)}`,
      );
    },
  });
  progress.end();
  const seconds = ((Date.now() - started) / 1000).toFixed(1);
  process.stdout.write(
    `wrote ${out}: ${formatCount(parameterCount(config))} parameters, ${dtype}, ${tokenizer} tokenizer, seed ${seed} (${seconds} s)\n`,
  );
  for (const f of files) process.stdout.write(`  ${f}\n`);
}

/** The presets' parameter counts with each tokenizer (the embedding's rows follow the tokenizer). */
export function presetSizes(): string {
  const sizes = PRESET_NAMES.map(
    (name) =>
      `${name} ${TOKENIZER_KINDS.map((t) => formatCount(parameterCount(presetConfig(name, tokenizerIds(t))))).join(" / ")}`,
  );
  return `presets, parameters with --tokenizer ${TOKENIZER_KINDS.join(" / ")}: ${sizes.join(", ")}\nprogress on stderr: a live line on a terminal, plain lines otherwise`;
}

function formatCount(n: number): string {
  if (n >= 1e9) return `${(n / 1e9).toFixed(2)}B`;
  if (n >= 1e6) return `${(n / 1e6).toFixed(2)}M`;
  if (n >= 1e3) return `${(n / 1e3).toFixed(1)}K`;
  return String(n);
}

function storedSummary(checkpoint: Checkpoint): { dtypes: string[]; files: string[]; bytes: number } {
  const dtypes = new Set<string>();
  const files = new Set<string>();
  let bytes = 0;
  for (const t of checkpoint.tensors.values()) {
    dtypes.add(t.dtype);
    files.add(basename(t.path));
    bytes += t.byteLength;
  }
  return { dtypes: [...dtypes].sort(), files: [...files].sort(), bytes };
}

async function runInfo(argv: string[]): Promise<void> {
  const { values } = parseFlags(argv, { model: { type: "string" }, json: { type: "boolean" } });
  const dir = required(values, "model");
  const model = openModelDir(dir);
  let tokenizerLine: string;
  let tokenizerInfo: Record<string, unknown> | null = null;
  try {
    const tok = await loadTokenizer(dir);
    tokenizerInfo = {
      class: tok.tokenizerClass,
      tokens: tok.vocabSize,
      eos_token: tok.eosToken,
      pad_token: tok.padToken,
      chat_template: tok.chatTemplate !== undefined,
    };
    tokenizerLine = `${tok.tokenizerClass}, ${tok.vocabSize} tokens (embedding rows ${model.config.vocabSize}), eos ${tok.eosToken}, chat template ${tok.chatTemplate !== undefined ? "yes" : "no"}`;
  } catch (err) {
    if (!(err instanceof TokenizerError)) throw err;
    tokenizerLine = `none (${err.message})`;
  }
  const stored = storedSummary(model.checkpoint);
  model.checkpoint.close();
  const c = model.config;
  const params = parameterCount(c);
  if (values.json) {
    const info = {
      model: dir,
      parameters: params,
      config: {
        hidden_size: c.hiddenSize,
        intermediate_size: c.intermediateSize,
        num_hidden_layers: c.numHiddenLayers,
        num_attention_heads: c.numAttentionHeads,
        num_key_value_heads: c.numKeyValueHeads,
        head_dim: c.headDim,
        vocab_size: c.vocabSize,
        rms_norm_eps: c.rmsNormEps,
        rope_theta: c.ropeTheta,
        tie_word_embeddings: c.tieWordEmbeddings,
        max_position_embeddings: c.maxPositionEmbeddings,
        torch_dtype: c.torchDtype,
      },
      eos_token_ids: model.eosTokenIds,
      weights: stored,
      tokenizer: tokenizerInfo,
    };
    process.stdout.write(`${JSON.stringify(info, null, 2)}\n`);
    return;
  }
  const lines = [
    `model       ${dir}`,
    `parameters  ${formatCount(params)} (${params})`,
    `layers      ${c.numHiddenLayers}, hidden ${c.hiddenSize}, intermediate ${c.intermediateSize}`,
    `attention   ${c.numAttentionHeads} heads, ${c.numKeyValueHeads} KV heads, head_dim ${c.headDim}, rope_theta ${c.ropeTheta}`,
    `vocab       ${c.vocabSize} rows, lm_head ${c.tieWordEmbeddings ? "tied" : "separate"}, rms_norm_eps ${c.rmsNormEps}`,
    `context     ${c.maxPositionEmbeddings} positions`,
    `weights     ${stored.dtypes.join("+")}, ${stored.files.length} file(s), ${(stored.bytes / 2 ** 20).toFixed(1)} MiB`,
    `eos ids     ${model.eosTokenIds.join(", ")}`,
    `tokenizer   ${tokenizerLine}`,
  ];
  process.stdout.write(`${lines.join("\n")}\n`);
}
