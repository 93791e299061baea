import assert from "node:assert/strict";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { presetConfig } from "../model/config.ts";
import { initModel } from "../model/init.ts";
import { openModelDir } from "../model/model-dir.ts";
import {
  loadTokenizer,
  type Tokenizer,
  tokenizerFiles,
  tokenizerFromJson,
  tokenizerIds,
} from "../model/tokenizer.ts";
import { loadWeights, type Qwen3Weights } from "../model/weights.ts";
import { ReferenceBackend } from "../reference/generate-reference.ts";
import { referenceForward } from "../reference/reference.ts";
import {
  type Completion,
  type DecodeBackend,
  type DecodeSession,
  defaultPromptSeed,
  GenerateError,
  type GenerateOptions,
  generate,
} from "./generate.ts";
import type { LogitsRow } from "./sampler.ts";

const root = mkdtempSync(join(tmpdir(), "qwen3-generate-"));
after(() => rmSync(root, { recursive: true, force: true }));

async function bytesTokenizer(): Promise<Tokenizer> {
  const files = tokenizerFiles("bytes");
  return tokenizerFromJson(JSON.parse(files.tokenizerJson), JSON.parse(files.tokenizerConfig));
}

/** Argmax over ids < limit of one position's logits, lowest id on ties (written out independently). */
function argmaxAt(logits: Float64Array, position: number, V: number, limit: number): number {
  let best = 0;
  for (let i = 1; i < limit; i++) if (logits[position * V + i] > logits[position * V + best]) best = i;
  return best;
}

describe("generate with the float64 reference backend (tiny model)", () => {
  let backend: ReferenceBackend;
  let tokenizer: Tokenizer;
  let weights: Qwen3Weights<Float64Array>;
  const config = presetConfig("tiny", tokenizerIds("bytes"));
  let prompts: number[][];

  before(async () => {
    const dir = join(root, "tiny");
    initModel({ config, tokenizer: "bytes", out: dir, seed: 7, dtype: "f32" });
    const model = openModelDir(dir);
    weights = loadWeights(model.config, model.checkpoint, "float64");
    model.checkpoint.close();
    backend = new ReferenceBackend(model.config, weights);
    tokenizer = await loadTokenizer(dir);
    prompts = ["Hi", "What is 2+3?", "A:"].map((t) => tokenizer.encode(t));
  });

  /** referenceForward over prompt + completion, unpadded, one sequence. */
  const fullForward = (prompt: number[], c: Completion, temperature = 1) =>
    referenceForward(config, weights, [[...prompt, ...c.tokenIds]], { temperature, returnLogits: true });

  it("greedy equals, step by step, the argmax of the full forward pass", async () => {
    const out = await generate(backend, tokenizer, prompts, { temperature: 0, maxNewTokens: 6 });
    assert.equal(out.length, 3);
    out.forEach(([c], p) => {
      assert.equal(c.tokenIds.length, 6);
      assert.equal(c.finishReason, "length");
      assert.equal(c.stopReason, null);
      const full = fullForward(prompts[p], c);
      c.tokenIds.forEach((token, i) => {
        const position = prompts[p].length - 1 + i;
        assert.equal(token, argmaxAt(full.logits![0], position, config.vocabSize, tokenizer.vocabSize));
        // Greedy reports the temperature-1 logprob.
        assert.ok(Math.abs(c.logprobs[i] - full.logprobs[0][position]) < 1e-10);
      });
      assert.equal(c.text, tokenizer.decode(c.tokenIds));
    });
  });

  it("returned logprobs equal the full forward's temperature-scaled logprobs of the sampled tokens", async () => {
    const options: GenerateOptions = {
      temperature: 0.7,
      topK: 40,
      topP: 0.9,
      maxNewTokens: 5,
      n: 2,
      seed: 3,
    };
    const out = await generate(backend, tokenizer, prompts, options);
    for (const [p, group] of out.entries()) {
      assert.equal(group.length, 2);
      for (const c of group) {
        assert.deepEqual([c.promptIndex, c.logprobs.length], [p, c.tokenIds.length]);
        const full = fullForward(prompts[p], c, 0.7);
        c.tokenIds.forEach((token, i) => {
          assert.ok(token < tokenizer.vocabSize);
          const expected = full.logprobs[0][prompts[p].length - 1 + i];
          assert.ok(Math.abs(c.logprobs[i] - expected) < 1e-10, `${c.logprobs[i]} vs ${expected}`);
        });
      }
    }
  });

  it("the same seed gives the same completions, another seed other ones", async () => {
    const options: GenerateOptions = { temperature: 1, maxNewTokens: 5, n: 2, seed: 11 };
    const a = await generate(backend, tokenizer, prompts.slice(0, 2), options);
    const b = await generate(backend, tokenizer, prompts.slice(0, 2), options);
    const c = await generate(backend, tokenizer, prompts.slice(0, 2), { ...options, seed: 12 });
    assert.deepEqual(a, b);
    assert.notDeepEqual(
      a.flat().map((x) => x.tokenIds),
      c.flat().map((x) => x.tokenIds),
    );
    // The n samples of one prompt are different streams.
    assert.notDeepEqual(a[0][0].tokenIds, a[0][1].tokenIds);
  });

  it("a batch of prompts of different lengths gives each prompt's results generated alone", async () => {
    const options: GenerateOptions = { temperature: 1, topK: 100, maxNewTokens: 4, n: 2, seed: 5 };
    const batched = await generate(backend, tokenizer, prompts, options);
    const oneRowAtATime = await generate(backend, tokenizer, prompts, { ...options, batchSize: 1 });
    assert.deepEqual(oneRowAtATime, batched);
    for (const [p, prompt] of prompts.entries()) {
      const [alone] = await generate(backend, tokenizer, [prompt], {
        ...options,
        seeds: [defaultPromptSeed(5, p)],
      });
      assert.deepEqual(
        alone.map((c) => [c.tokenIds, c.logprobs, c.text]),
        batched[p].map((c) => [c.tokenIds, c.logprobs, c.text]),
      );
    }
  });

  it("stops on the first of several EOS ids and keeps it in token_ids, not in text", async () => {
    const options: GenerateOptions = { temperature: 1, maxNewTokens: 8, seed: 9 };
    const [[free]] = await generate(backend, tokenizer, [prompts[1]], options);
    assert.equal(free.tokenIds.length, 8);
    const eosTokenIds = [free.tokenIds[5], free.tokenIds[3]];
    const end = free.tokenIds.findIndex((t) => eosTokenIds.includes(t));
    assert.ok(end <= 3);
    const [[c]] = await generate(backend, tokenizer, [prompts[1]], { ...options, eosTokenIds });
    assert.deepEqual(c.tokenIds, free.tokenIds.slice(0, end + 1));
    assert.deepEqual(c.logprobs, free.logprobs.slice(0, end + 1));
    assert.equal(c.finishReason, "stop");
    assert.equal(c.stopReason, free.tokenIds[end]);
    assert.equal(c.text, tokenizer.decode(free.tokenIds.slice(0, end)));
  });

  it("rejects bad input with one line naming it", async () => {
    const base: GenerateOptions = { temperature: 1, maxNewTokens: 2 };
    const cases: [number[][], GenerateOptions, RegExp][] = [
      [prompts, { ...base, maxNewTokens: 0 }, /max_new_tokens must be an integer ≥ 1, got 0/],
      [prompts, { ...base, n: 0 }, /n must be/],
      [prompts, { ...base, topP: 2 }, /top_p must be in \(0, 1\], got 2/],
      [[[1], []], base, /prompt 1 has no tokens/],
      [[[1, 320]], base, /prompt 0 token 1 = 320 is outside the model's 320 ids/],
      [prompts, { ...base, seeds: [1] }, /seeds has 1 entries for 3 prompts/],
      [prompts, { ...base, stop: [""] }, /stop strings must be non-empty/],
      [
        [[1, 2, 3]],
        { ...base, maxNewTokens: 2046 },
        /prompt 0 has 3 tokens; .* exceeds the model's 2048 positions/,
      ],
      [[], base, /no prompts/],
    ];
    for (const [ps, options, message] of cases) {
      await assert.rejects(generate(backend, tokenizer, ps, options), (e: Error) => {
        assert.ok(e instanceof GenerateError, e.message);
        assert.match(e.message, message);
        assert.ok(!e.message.includes("\n"));
        return true;
      });
    }
  });
});

/**
 * A backend whose greedy continuation spells out a script per prompt: logit 10 on the next
 * scripted token and 20 on id 300, which the 261-token byte tokenizer lacks (so it must never be
 * chosen). Records every decode call to check the loop's side of the contract.
 */
class ScriptedBackend implements DecodeBackend {
  readonly vocabSize = 320;
  calls: { rows: number[]; tokens: number[] }[] = [];
  closed = 0;

  constructor(private readonly scripts: Map<string, number[]>) {}

  private row(prompt: readonly number[], generated: readonly number[]): LogitsRow {
    const script = this.scripts.get(prompt.join(","))!;
    const logits = new Float32Array(this.vocabSize);
    logits[300] = 20;
    logits[script[generated.length] ?? 65] = 10;
    return logits;
  }

  async prefill(prompts: readonly (readonly number[])[]) {
    const generated: number[][] = prompts.map(() => []);
    const session: DecodeSession = {
      decode: async (rows, tokens) => {
        this.calls.push({ rows: [...rows], tokens: [...tokens] });
        rows.forEach((r, i) => {
          generated[r].push(tokens[i]);
        });
        return rows.map((r) => this.row(prompts[r], generated[r]));
      },
      close: () => {
        this.closed++;
      },
    };
    return { session, logits: prompts.map((p) => this.row(p, [])) };
  }
}

describe("generate: stop strings, EOS, length (scripted backend, byte tokenizer)", () => {
  let tokenizer: Tokenizer;
  const imEnd = 258;
  before(async () => {
    tokenizer = await bytesTokenizer();
  });

  function scripted(texts: string[], tail: number[][] = []) {
    const prompts = texts.map((_, i) => [100 + i]);
    const scripts = new Map(
      prompts.map((p, i) => [p.join(","), [...tokenizer.encode(texts[i]), ...(tail[i] ?? [])]]),
    );
    return { prompts, backend: new ScriptedBackend(scripts), scripts };
  }

  it("cuts the text before the first stop string and keeps the stop string's tokens", async () => {
    const { prompts, backend, scripts } = scripted([
      "The answer is 42.\n\nQ: next",
      "Preis: 5€ danach",
      "no stop here",
    ]);
    const out = await generate(backend, tokenizer, prompts, {
      temperature: 0,
      maxNewTokens: 40,
      stop: ["next", "\n\nQ:", "€ d"],
    });
    const [[a], [b], [c]] = out;
    assert.equal(a.text, "The answer is 42.");
    assert.equal(a.stopReason, "\n\nQ:");
    // Every sampled token stays, through the one completing the stop string.
    assert.deepEqual(a.tokenIds, tokenizer.encode("The answer is 42.\n\nQ:"));
    assert.equal(a.finishReason, "stop");
    // A stop string spanning a multi-byte character (3 byte tokens for €).
    assert.equal(b.text, "Preis: 5");
    assert.deepEqual(b.tokenIds, tokenizer.encode("Preis: 5€ d"));
    assert.equal(c.finishReason, "length");
    assert.equal(c.tokenIds.length, 40);
    assert.deepEqual(c.tokenIds.slice(0, 12), scripts.get(prompts[2].join(","))!.slice(0, 12));
    assert.ok(c.tokenIds.every((t) => t !== 300));
  });

  it("EOS: any listed id stops, is kept in token_ids and left out of text", async () => {
    const { prompts, backend } = scripted(["ab", "abcd", "abcdef"], [[imEnd], [256], [imEnd]]);
    const out = await generate(backend, tokenizer, prompts, {
      temperature: 0,
      maxNewTokens: 5,
      eosTokenIds: [imEnd, 256],
    });
    const [[a], [b], [c]] = out;
    assert.deepEqual([a.text, a.tokenIds.at(-1), a.finishReason, a.stopReason], ["ab", imEnd, "stop", imEnd]);
    assert.deepEqual([b.text, b.tokenIds.at(-1), b.finishReason, b.stopReason], ["abcd", 256, "stop", 256]);
    assert.deepEqual([c.text, c.tokenIds.length, c.finishReason], ["abcde", 5, "length"]);
    // EOS exactly at max_new_tokens still counts as a stop.
    const [[d]] = await generate(backend, tokenizer, [prompts[1]], {
      temperature: 0,
      maxNewTokens: 5,
      eosTokenIds: [256],
    });
    assert.deepEqual([d.text, d.finishReason], ["abcd", "stop"]);
  });

  it("extends only unfinished rows, feeding back the sampled tokens, and closes every session", async () => {
    const { prompts, backend } = scripted(["a", "abc", "ab"], [[imEnd], [imEnd], [imEnd]]);
    await generate(backend, tokenizer, prompts, {
      temperature: 0,
      maxNewTokens: 9,
      eosTokenIds: [imEnd],
      batchSize: 2,
    });
    // Session 1 holds rows 0–1 ("a"+EOS, "abc"+EOS); session 2 holds row 2 of the batch.
    assert.deepEqual(
      backend.calls.map((c) => [c.rows, c.tokens]),
      [
        [
          [0, 1],
          [97, 97],
        ],
        [[1], [98]],
        [[1], [99]],
        [[0], [97]],
        [[0], [98]],
      ],
    );
    assert.equal(backend.closed, 2);
  });
});
