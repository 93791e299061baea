// `temper model generate` end to end through the repository's CLI entry, checked against the
// in-process generation loop on the same model.
import assert from "node:assert/strict";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { initLoraAdapter, mergeLora } from "../adapter/lora.ts";
import { saveAdapter } from "../adapter/peft.ts";
import { openModelDir } from "../model/model-dir.ts";
import { loadTokenizer, type Tokenizer } from "../model/tokenizer.ts";
import { loadWeights } from "../model/weights.ts";
import { ReferenceBackend } from "../reference/generate-reference.ts";
import { referenceForward } from "../reference/reference.ts";
import { runTemper, runTemperWith } from "../testing/cli.ts";
import { type GenerateOptions, generate } from "./generate.ts";

const root = mkdtempSync(join(tmpdir(), "qwen3-generate-cli-"));
after(() => rmSync(root, { recursive: true, force: true }));

function temper(...args: string[]) {
  return runTemper("model", ...args);
}

interface JsonCompletion {
  text: string;
  token_ids: number[];
  logprobs: number[];
  finish_reason: string;
  stop_reason: number | string | null;
}

describe("temper model generate", () => {
  const dir = join(root, "tiny");
  let tokenizer: Tokenizer;
  let backend: ReferenceBackend;
  let eosTokenIds: number[];

  before(async () => {
    const init = temper("init", "--config", "tiny", "--tokenizer", "bytes", "--seed", "5", "--out", dir);
    assert.equal(init.code, 0, init.stderr);
    const model = openModelDir(dir);
    backend = new ReferenceBackend(model.config, loadWeights(model.config, model.checkpoint, "float64"));
    model.checkpoint.close();
    eosTokenIds = model.eosTokenIds;
    tokenizer = await loadTokenizer(dir);
  });

  const inProcess = async (promptIds: number[], options: GenerateOptions) =>
    (await generate(backend, tokenizer, [promptIds], { eosTokenIds, ...options }))[0];

  it("--chat --no-thinking --json: the chat prompt's greedy completion, as generated in process", async () => {
    const r = temper(
      "generate",
      ...["--model", dir, "--prompt", "What is 2+3?", "--chat", "--no-thinking"],
      ...["--temperature", "0", "--max-new-tokens", "6", "--json", "--engine", "reference"],
    );
    assert.equal(r.code, 0, r.stderr);
    const out = JSON.parse(r.stdout);
    const chat = tokenizer.applyChatTemplate([{ role: "user", content: "What is 2+3?" }], {
      enableThinking: false,
    });
    assert.ok(chat.endsWith("<think>\n\n</think>\n\n"));
    assert.equal(out.prompt, chat);
    assert.deepEqual(out.prompt_token_ids, tokenizer.encode(chat));
    const [expected] = await inProcess(out.prompt_token_ids, { temperature: 0, maxNewTokens: 6 });
    const [c] = out.completions as JsonCompletion[];
    assert.deepEqual(
      [c.text, c.token_ids, c.finish_reason],
      [expected.text, expected.tokenIds, expected.finishReason],
    );
    c.logprobs.forEach((lp, i) => {
      assert.ok(Math.abs(lp - expected.logprobs[i]) < 1e-12);
    });
  });

  it("sampling flags, -n, --seed and --stop reach the loop", async () => {
    const prompt = "Q: 7*6=";
    const ids = tokenizer.encode(prompt);
    const options: GenerateOptions = {
      temperature: 0.9,
      topK: 50,
      topP: 0.9,
      maxNewTokens: 8,
      n: 2,
      seed: 4,
    };
    const free = await inProcess(ids, options);
    // A stop string the first completion really produces: an ASCII character past its start.
    const at = [...free[0].text].findIndex((ch, i) => i >= 2 && /^[ -~]$/.test(ch));
    assert.ok(at >= 0, free[0].text);
    const stop = [...free[0].text][at];
    const expected = await inProcess(ids, { ...options, stop: [stop] });
    const args = [
      "generate",
      "--model",
      dir,
      "--prompt",
      prompt,
      "-n",
      "2",
      "--seed",
      "4",
      "--json",
      "--engine=reference",
    ];
    const flags = ["--temperature", "0.9", "--top-k", "50", "--top-p", "0.9", "--max-new-tokens", "8"];
    const r = temper(...args, ...flags, `--stop=${stop}`, "--stop", "never-produced");
    assert.equal(r.code, 0, r.stderr);
    const out = JSON.parse(r.stdout);
    assert.deepEqual(out.sampling.stop, [stop, "never-produced"]);
    const got = out.completions as JsonCompletion[];
    assert.equal(got.length, 2);
    assert.equal(got[0].finish_reason, "stop");
    assert.equal(got[0].stop_reason, stop);
    assert.ok(!got[0].text.includes(stop));
    assert.deepEqual(
      got.map((c) => [c.text, c.token_ids, c.finish_reason]),
      expected.map((c) => [c.text, c.tokenIds, c.finishReason]),
    );
  });

  it("defaults: the rollout's engine (fast, float32) and generation_config.json's sampling values", () => {
    const prompt = "Q: 7*6=";
    const r = temper("generate", "--model", dir, "--prompt", prompt, "--max-new-tokens", "4", "--json");
    assert.equal(r.code, 0, r.stderr);
    const out = JSON.parse(r.stdout);
    assert.deepEqual([out.engine, out.dtype], ["fast", "float32"]);
    const { sampling } = out;
    assert.deepEqual([sampling.temperature, sampling.top_k, sampling.top_p], [0.6, 20, 0.95]);
    assert.deepEqual(sampling.eos_token_ids, eosTokenIds);
    // Its logprobs are the float64 forward's (temperature 0.6) for the tokens it sampled.
    const [c] = out.completions as JsonCompletion[];
    const full = referenceForward(
      backend.config,
      backend.weights,
      [[...out.prompt_token_ids, ...c.token_ids]],
      {
        temperature: 0.6,
      },
    );
    c.logprobs.forEach((lp, i) => {
      const want = full.logprobs[0][out.prompt_token_ids.length - 1 + i];
      assert.ok(Math.abs(lp - want) < 1e-4, `${lp} vs ${want}`);
    });
    // Plain-text output is the completion's text.
    const plain = temper("generate", "--model", dir, "--prompt", prompt, "--max-new-tokens", "4");
    assert.equal(plain.code, 0, plain.stderr);
    assert.equal(plain.stdout, `${c.text}\n`);
  });

  it("--adapter: every engine and dtype generates with the merged-weights model", async () => {
    const adapterDir = join(root, "adapter");
    const lora = {
      rank: 4,
      alpha: 8,
      useRslora: false,
      targetModules: ["q_proj" as const, "down_proj" as const],
    };
    const adapter = initLoraAdapter(backend.config, lora, { seed: 9, initB: "random" });
    saveAdapter(adapterDir, adapter, { baseModel: dir });
    const merged = new ReferenceBackend(backend.config, mergeLora(backend.weights, adapter));
    const prompt = "Q: 7*6=";
    const ids = tokenizer.encode(prompt);
    const greedy = { temperature: 0, maxNewTokens: 6 };
    const [want] = (await generate(merged, tokenizer, [ids], { eosTokenIds, ...greedy }))[0];
    const [base] = await inProcess(ids, greedy);
    assert.notDeepEqual(want.tokenIds, base.tokenIds);
    const args = [
      "generate",
      "--model",
      dir,
      "--prompt",
      prompt,
      "--temperature",
      "0",
      "--max-new-tokens",
      "6",
    ];
    // [flags, the engine and dtype that run, largest |Δ logprob| from the float64 merged model]
    const cases: [string[], string, string, number][] = [
      [[], "fast", "float32", 1e-4],
      [["--engine", "kv"], "kv", "float32", 1e-4],
      [["--engine", "kv", "--dtype", "float64"], "kv", "float64", 1e-9],
      [["--dtype", "float64"], "kv", "float64", 1e-9],
      [["--engine", "reference"], "reference", "float64", 1e-9],
    ];
    for (const [flags, engine, dtype, tolerance] of cases) {
      const name = flags.join(" ") || "defaults";
      const r = temper(...args, "--json", "--adapter", adapterDir, ...flags);
      assert.equal(r.code, 0, r.stderr);
      const out = JSON.parse(r.stdout);
      assert.deepEqual([out.engine, out.dtype, out.adapter], [engine, dtype, adapterDir], name);
      const [c] = out.completions as JsonCompletion[];
      assert.deepEqual(c.token_ids, want.tokenIds, name);
      c.logprobs.forEach((lp, i) => {
        assert.ok(Math.abs(lp - want.logprobs[i]) < tolerance, `${name}: ${lp} vs ${want.logprobs[i]}`);
      });
    }
  });

  it("a model larger than the memory there is: refused in one line (exit 2); MEMORY_CHECK=off lets it through", () => {
    // the tiny model's weights as float32, twice (weightLoadBytes): ~1.1 MiB against a 100 kB limit
    const args = ["model", "generate", "--model", dir, "--prompt", "x", "--max-new-tokens", "2"];
    const refused = runTemperWith({ MEMORY_LIMIT: "100000" }, ...args);
    assert.equal(refused.code, 2, refused.stderr);
    assert.equal(refused.stdout, "");
    assert.match(
      refused.stderr,
      /^temper: loading .*tiny in float32 needs about 1\.\d MiB, and 97\.7 KiB is available \(MEMORY_LIMIT\): use a smaller model, or free memory; MEMORY_CHECK=off tries anyway\n$/,
    );
    const forced = runTemperWith({ MEMORY_LIMIT: "100000", MEMORY_CHECK: "off" }, ...args);
    assert.equal(forced.code, 0, forced.stderr);
    assert.ok(forced.stdout.length > 0);
  });

  it("bad input is one line on stderr with exit code 2", () => {
    const cases: [string[], RegExp][] = [
      [["--prompt", "x", "--adapter", join(root, "no-adapter")], /--adapter: .*no-adapter: not a directory/],
      [["--prompt", "x", "--top-p", "1.5"], /--top-p: expected a number in \(0, 1\], got "1.5"/],
      [["--prompt", "x", "-n", "0"], /--n: expected an integer ≥ 1, got "0"/],
      [["--max-new-tokens", "3"], /--prompt is required/],
      [["--prompt", "x", "--no-thinking"], /--no-thinking only applies with --chat/],
      [["--prompt", "x", "--engine", "gpu"], /--engine: expected one of fast, kv, reference, got "gpu"/],
      [["--prompt", "x", "--dtype", "float16"], /--dtype: expected one of float32, float64, got "float16"/],
    ];
    for (const [args, message] of cases) {
      const r = temper("generate", "--model", dir, ...args);
      assert.equal(r.code, 2, `${args.join(" ")}: ${r.stderr}`);
      assert.match(r.stderr, message);
      assert.equal(r.stderr.trim().split("\n").length, 1, r.stderr);
    }
    const missing = temper("generate", "--model", join(root, "nope"), "--prompt", "x");
    assert.equal(missing.code, 2);
    assert.match(missing.stderr, /nope: not a directory/);
  });
});
