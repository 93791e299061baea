// `temper model generate`: sample completions of one prompt from a model directory. Sampling
// parameters not given on the command line come from generation_config.json, as in transformers.
// The backend is opened by openDecodeBackend with the rollout's defaults (float32, engine "fast"),
// so a prompt decodes here as the rollout service decodes it.
import { machineMemory, memoryRefusal } from "@temper/kit";
import { checkProvider, type ExecutionProvider } from "@temper/onnx";
import {
  DECODE_DTYPES,
  DECODE_ENGINES,
  DEFAULT_DECODE_DTYPE,
  DEFAULT_DECODE_ENGINE,
  decodeLoadBytes,
  GenerateError,
  type GenerateOptions,
  generate,
  LoraError,
  loadAdapter,
  loadTokenizer,
  type OpenDecodeBackend,
  openDecodeBackend,
  openModelDir,
  type PeftAdapter,
  PeftError,
  SamplingError,
  type WeightCacheProgress,
} from "@temper/qwen3";
import { CliError, choiceFlag, numberFlag, parseFlags } from "../cli.ts";
import { bytes } from "../hub-progress.ts";
import { bar, duration, Progress } from "../progress.ts";

const DEFAULT_MAX_NEW_TOKENS = 128;

const PROVIDERS: readonly ExecutionProvider[] = ["cpu", "webgpu", "cuda"];

function integer(flag: string, value: string | undefined, min: number): number | undefined {
  const n = numberFlag(flag, value);
  if (n !== undefined && !(Number.isSafeInteger(n) && n >= min))
    throw new CliError(`--${flag}: expected an integer ≥ ${min}, got "${value}"`);
  return n;
}

export async function runGenerate(argv: string[]): Promise<void> {
  const { values } = parseFlags(argv, {
    model: { type: "string" },
    adapter: { type: "string" },
    prompt: { type: "string" },
    chat: { type: "boolean" },
    "no-thinking": { type: "boolean" },
    n: { type: "string", short: "n" },
    temperature: { type: "string" },
    "top-k": { type: "string" },
    "top-p": { type: "string" },
    "max-new-tokens": { type: "string" },
    stop: { type: "string", multiple: true },
    seed: { type: "string" },
    json: { type: "boolean" },
    engine: { type: "string" },
    dtype: { type: "string" },
    provider: { type: "string" },
  });
  const dir = values.model;
  if (!dir) throw new CliError("--model is required");
  const promptText = values.prompt;
  if (promptText === undefined) throw new CliError("--prompt is required");
  if (values["no-thinking"] && !values.chat) throw new CliError("--no-thinking only applies with --chat");
  const n = integer("n", values.n, 1) ?? 1;
  const maxNewTokens = integer("max-new-tokens", values["max-new-tokens"], 1) ?? DEFAULT_MAX_NEW_TOKENS;
  const seed = integer("seed", values.seed, 0) ?? 0;
  const temperatureFlag = numberFlag("temperature", values.temperature);
  if (temperatureFlag !== undefined && temperatureFlag < 0)
    throw new CliError(`--temperature: expected a number ≥ 0 (0 = greedy), got "${values.temperature}"`);
  const topKFlag = integer("top-k", values["top-k"], 0);
  const topPFlag = numberFlag("top-p", values["top-p"]);
  if (topPFlag !== undefined && !(topPFlag > 0 && topPFlag <= 1))
    throw new CliError(`--top-p: expected a number in (0, 1], got "${values["top-p"]}"`);
  const stop = values.stop ?? [];
  if (stop.some((s) => s === "")) throw new CliError("--stop: expected a non-empty string");

  const engine = choiceFlag("engine", values.engine, DECODE_ENGINES, DEFAULT_DECODE_ENGINE);
  const dtype = choiceFlag("dtype", values.dtype, DECODE_DTYPES, DEFAULT_DECODE_DTYPE);
  const provider = choiceFlag("provider", values.provider, PROVIDERS, "cpu");
  try {
    checkProvider(provider);
  } catch (err) {
    throw new CliError(`--provider: ${(err as Error).message}`);
  }

  const model = openModelDir(dir);
  // a refusal in one line rather than a kill by the kernel halfway through the load
  const weights = { machineBytes: machineMemory(), onProgress: weightCacheProgress(dir) };
  const refusal = memoryRefusal(
    decodeLoadBytes(model.config, dtype, engine, weights),
    `loading ${dir} in ${dtype}`,
    "use a smaller model, or free memory",
  );
  if (refusal) {
    model.checkpoint.close();
    throw new CliError(refusal);
  }
  let opened: OpenDecodeBackend;
  try {
    let adapter: PeftAdapter | null = null;
    if (values.adapter !== undefined) {
      try {
        adapter = loadAdapter(values.adapter, model.config);
      } catch (err) {
        if (err instanceof PeftError || err instanceof LoraError)
          throw new CliError(`--adapter: ${err.message}`);
        throw err;
      }
    }
    opened = await openDecodeBackend(model, { dtype, engine, provider, lora: adapter?.config, weights });
    opened.setAdapter(adapter);
  } finally {
    model.checkpoint.close();
  }
  const tokenizer = await loadTokenizer(dir);
  const text = values.chat
    ? tokenizer.applyChatTemplate([{ role: "user", content: promptText }], {
        addGenerationPrompt: true,
        enableThinking: values["no-thinking"] ? false : undefined,
      })
    : promptText;
  const promptIds = tokenizer.encode(text);
  if (promptIds.length === 0) throw new CliError("--prompt: encodes to no tokens");

  const gen = model.generationConfig;
  const options: GenerateOptions = {
    temperature: temperatureFlag ?? (gen.doSample === false ? 0 : (gen.temperature ?? 1)),
    topK: topKFlag ?? gen.topK ?? 0,
    topP: topPFlag ?? gen.topP ?? 1,
    maxNewTokens,
    n,
    eosTokenIds: model.eosTokenIds,
    stop,
    seed,
  };
  let completions: Awaited<ReturnType<typeof generate>>[number];
  try {
    [completions] = await generate(opened, tokenizer, [promptIds], options);
  } catch (err) {
    if (err instanceof GenerateError || err instanceof SamplingError) throw new CliError(err.message);
    throw err;
  } finally {
    await opened.release();
  }

  if (values.json) {
    const out = {
      model: dir,
      prompt: text,
      prompt_token_ids: promptIds,
      sampling: {
        temperature: options.temperature,
        top_k: options.topK,
        top_p: options.topP,
        max_new_tokens: maxNewTokens,
        n,
        seed,
        stop,
        eos_token_ids: model.eosTokenIds,
      },
      engine: opened.engine,
      dtype: opened.dtype,
      adapter: values.adapter ?? null,
      completions: completions.map((c) => ({
        text: c.text,
        token_ids: c.tokenIds,
        logprobs: c.logprobs,
        finish_reason: c.finishReason,
        stop_reason: c.stopReason,
      })),
    };
    process.stdout.write(`${JSON.stringify(out)}\n`);
    return;
  }
  for (const c of completions) {
    if (n > 1)
      process.stdout.write(
        `--- completion ${c.sampleIndex + 1}/${n} (${c.finishReason}, ${c.tokenIds.length} tokens)\n`,
      );
    process.stdout.write(`${c.text}\n`);
  }
}

/** Progress on stderr of a model's one-time conversion into the weight cache (a 4B model: minutes). */
function weightCacheProgress(dir: string): (event: WeightCacheProgress) => void {
  const progress = new Progress();
  const started = performance.now();
  return ({ stage, done, total }) => {
    if (stage === "hash") {
      if (done === 0) progress.line(`weight cache: hashing ${dir} (once per model)`);
    } else if (stage === "pack") {
      if (done === 0) progress.line("weight cache: packing the MatMul weights for this CPU (once per graph)");
    } else {
      const f = Math.min(1, done / total);
      const seconds = (performance.now() - started) / 1000;
      progress.update(
        Math.min(done, total),
        total,
        () =>
          `weight cache: converting to float32 ${bar(f)} ${bytes(Math.min(done, total))} / ${bytes(total)}, ETA ${duration(f > 0 ? (seconds * (1 - f)) / f : Number.NaN)}`,
      );
      if (done >= total) progress.end();
    }
  };
}
