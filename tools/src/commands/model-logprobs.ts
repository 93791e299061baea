// `temper model logprobs`: per-token log-probabilities of a token sequence under a model directory,
// token t given tokens < t (no BOS added), optionally with each position's top-k.
import { checkProvider, type ExecutionProvider, type GraphBuilder } from "@temper/onnx";
import {
  type EngineDtype,
  EngineInputError,
  type LinearModule,
  type LoraAdapter,
  type LoraSource,
  loadAdapter,
  loadTokenizer,
  loraScale,
  loraTensorName,
  PeftError,
  Qwen3Engine,
  readConfig,
  type Tokenizer,
  TokenizerError,
} from "@temper/qwen3";
import { CliError, choiceFlag, numberFlag, parseFlags } from "../cli.ts";

export const LOGPROBS_USAGE =
  'temper model logprobs --model DIR [--adapter DIR] (--ids 1,2,3 | --text "...") [--top-k K] [--temperature T] [--json] [--provider cpu|webgpu|cuda] [--dtype float32|float64]';

const PROVIDERS: readonly ExecutionProvider[] = ["cpu", "webgpu", "cuda"];
const DTYPES: readonly EngineDtype[] = ["float32", "float64"];

/** The adapter's A/B as weights of the engine's graph (constants: scoring never changes them). */
function adapterSource(g: GraphBuilder, adapter: LoraAdapter, dtype: EngineDtype): LoraSource {
  const r = adapter.config.rank;
  const scale = loraScale(adapter.config);
  const host = (v: ArrayLike<number>) => (dtype === "float64" ? Float64Array.from(v) : Float32Array.from(v));
  const pairs = new Map(
    adapter.pairs.map((p) => [
      `${p.layer}/${p.module}`,
      {
        scale,
        a: g.weight(loraTensorName(p.layer, p.module, "A"), dtype, [r, p.inFeatures], host(p.a)),
        b: g.weight(loraTensorName(p.layer, p.module, "B"), dtype, [p.outFeatures, r], host(p.b)),
      },
    ]),
  );
  return (layer: number, module: LinearModule) => pairs.get(`${layer}/${module}_proj`);
}

function parseIds(text: string): number[] {
  const parts = text.split(",").map((p) => p.trim());
  return parts.map((p) => {
    const n = Number(p);
    if (p === "" || !Number.isSafeInteger(n) || n < 0)
      throw new CliError(`--ids: expected comma-separated non-negative integers, got "${text}"`);
    return n;
  });
}

export async function runLogprobs(argv: string[]): Promise<void> {
  const { values } = parseFlags(argv, {
    model: { type: "string" },
    adapter: { type: "string" },
    ids: { type: "string" },
    text: { type: "string" },
    "top-k": { type: "string" },
    temperature: { type: "string" },
    json: { type: "boolean" },
    provider: { type: "string" },
    dtype: { type: "string" },
  });
  const dir = values.model;
  if (!dir) throw new CliError("--model is required");
  if ((values.ids === undefined) === (values.text === undefined))
    throw new CliError("give exactly one of --ids or --text");
  const provider = choiceFlag("provider", values.provider, PROVIDERS, "cpu");
  const dtype = choiceFlag("dtype", values.dtype, DTYPES, "float32");
  const topK = values["top-k"] === undefined ? undefined : numberFlag("top-k", values["top-k"]);
  if (topK !== undefined && (!Number.isSafeInteger(topK) || topK < 1))
    throw new CliError(`--top-k: expected an integer ≥ 1, got "${values["top-k"]}"`);
  const temperature = numberFlag("temperature", values.temperature, 1)!;
  if (!(temperature > 0))
    throw new CliError(`--temperature: expected a positive number, got "${values.temperature}"`);
  try {
    checkProvider(provider);
  } catch (err) {
    throw new CliError(`--provider: ${(err as Error).message}`);
  }

  const config = readConfig(dir);
  let tokenizer: Tokenizer | undefined;
  let ids: number[];
  if (values.text !== undefined) {
    tokenizer = await loadTokenizer(dir);
    ids = tokenizer.encode(values.text);
    if (ids.length === 0) throw new CliError("--text encodes to no tokens");
  } else {
    ids = parseIds(values.ids!);
    // token strings are a courtesy: --ids works without tokenizer files
    tokenizer = await loadTokenizer(dir).catch((err) => {
      if (err instanceof TokenizerError) return undefined;
      throw err;
    });
  }
  for (const id of ids)
    if (id >= config.vocabSize)
      throw new CliError(`--ids: token id ${id} is outside vocab_size ${config.vocabSize}`);
  if (topK !== undefined && topK > config.vocabSize)
    throw new CliError(`--top-k: ${topK} exceeds vocab_size ${config.vocabSize}`);

  let adapter: LoraAdapter | undefined;
  if (values.adapter !== undefined) {
    try {
      adapter = loadAdapter(values.adapter, config, "float64");
    } catch (err) {
      if (err instanceof PeftError) throw new CliError(`--adapter: ${err.message}`);
      throw err;
    }
  }
  const lora = adapter && ((g: GraphBuilder) => adapterSource(g, adapter, dtype));
  const engine = await Qwen3Engine.load(dir, { dtype, provider, lora }).catch((err: Error) => {
    if (/Failed to get a WebGPU adapter/.test(err.message))
      throw new CliError("--provider webgpu: no WebGPU adapter here (it needs a GPU and the Vulkan loader)");
    throw err;
  });
  let result: Awaited<ReturnType<Qwen3Engine["logprobs"]>>;
  try {
    result = await engine.logprobs([ids], { temperature, topK });
  } catch (err) {
    if (err instanceof EngineInputError) throw new CliError(err.message);
    throw err;
  } finally {
    await engine.release();
  }
  const logprobs = result.logprobs[0];
  const top = result.topK?.[0];

  if (values.json) {
    const out: Record<string, unknown> = { logprobs };
    if (top) out.top_k = top.map((entries) => entries.map((e) => ({ id: e.id, logprob: e.logprob })));
    process.stdout.write(`${JSON.stringify(out)}\n`);
    return;
  }
  const piece = (id: number) =>
    tokenizer && id < tokenizer.vocabSize ? JSON.stringify(tokenizer.decode([id])) : "";
  const lines = [
    `${ids.length} tokens, ${logprobs.length} scored (token t given tokens < t), temperature ${temperature}`,
  ];
  logprobs.forEach((lp, i) => {
    const id = ids[i + 1];
    let line = `  t=${String(i + 1).padEnd(4)} id=${String(id).padEnd(7)} ${lp.toFixed(6).padStart(12)}  ${piece(id)}`;
    if (top)
      line += `\n         top: ${top[i].map((e) => `${e.id}${piece(e.id) ? ` ${piece(e.id)}` : ""} ${e.logprob.toFixed(4)}`).join(", ")}`;
    lines.push(line);
  });
  const sum = logprobs.reduce((a, b) => a + b, 0);
  lines.push(`sum ${sum.toFixed(6)}, mean ${(logprobs.length ? sum / logprobs.length : 0).toFixed(6)}`);
  process.stdout.write(`${lines.join("\n")}\n`);
}
