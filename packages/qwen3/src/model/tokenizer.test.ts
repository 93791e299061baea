import assert from "node:assert/strict";
import { mkdirSync, mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { devGsm8kPath, devGsm8kSkip, GSM8K_SAMPLE_ROWS, gsm8kSample } from "@temper/fixtures";
import { Rng } from "./prng.ts";
import {
  BYTE_SPECIAL_TOKENS,
  loadTokenizer,
  type Tokenizer,
  tokenizerIds,
  writeTokenizerFiles,
} from "./tokenizer.ts";

const root = mkdtempSync(join(tmpdir(), "qwen3-tok-"));
after(() => rmSync(root, { recursive: true, force: true }));

describe("qwen3 tokenizer", () => {
  let tok: Tokenizer;
  before(async () => {
    const dir = join(root, "qwen3");
    mkdirSync(dir, { recursive: true });
    writeTokenizerFiles(dir, "qwen3");
    tok = await loadTokenizer(dir);
  });

  it("is the real Qwen3 vocabulary: 151669 ids, Qwen's special ids", () => {
    assert.equal(tok.vocabSize, 151669);
    assert.equal(tok.tokenId("<|endoftext|>"), 151643);
    assert.equal(tok.tokenId("<|im_start|>"), 151644);
    assert.equal(tok.tokenId("<|im_end|>"), 151645);
    assert.equal(tok.tokenId("<think>"), 151667);
    assert.equal(tok.tokenId("</think>"), 151668);
    assert.equal(tok.eosTokenId, 151645);
    assert.equal(tok.padTokenId, 151643);
    assert.deepEqual(tokenizerIds("qwen3"), {
      vocabSize: 151669,
      bosTokenId: 151643,
      eosTokenId: 151645,
      padTokenId: 151643,
    });
  });

  it("encodes known text to Qwen3's ids and special strings to special ids", () => {
    assert.deepEqual(tok.encode("Hello, world!"), [9707, 11, 1879, 0]);
    assert.deepEqual(tok.encode("<|im_start|>user\n"), [151644, 872, 198]);
    assert.deepEqual(tok.encode(" 12345"), [220, 16, 17, 18, 19, 20]); // digits are single tokens
    assert.equal(tok.decode([151644, 872, 198, 151645], { skipSpecialTokens: true }), "user\n");
    assert.throws(
      () => tok.decode([151669]),
      /token id 151669 is outside the tokenizer's vocabulary \(0..151668\)/,
    );
  });

  const roundTrips = (file: string, count: number) => {
    const lines = readFileSync(file, "utf8").split("\n").filter(Boolean);
    assert.equal(lines.length, count);
    for (const [i, line] of lines.entries()) {
      const q = JSON.parse(line).question as string;
      const ids = tok.encode(q);
      assert.ok(ids.every((id) => id < tok.vocabSize));
      assert.equal(tok.decode(ids), q, `question ${i}`);
    }
  };
  it("round-trips every question of the GSM8K test sample", () => {
    roundTrips(gsm8kSample("test"), GSM8K_SAMPLE_ROWS);
  });
  it("round-trips every GSM8K test question", { skip: devGsm8kSkip("test") }, () => {
    roundTrips(devGsm8kPath("test"), 1319);
  });

  // Expected strings derived by hand from the chat template text in tokenizer_config.json.
  const system = { role: "system" as const, content: "You are a careful math tutor." };
  const user = { role: "user" as const, content: "What is 2 + 3?" };
  const prefix =
    "<|im_start|>system\nYou are a careful math tutor.<|im_end|>\n<|im_start|>user\nWhat is 2 + 3?<|im_end|>\n<|im_start|>assistant\n";

  it("renders the generation prompt with thinking on (default and explicit)", () => {
    assert.equal(tok.applyChatTemplate([system, user]), prefix);
    assert.equal(tok.applyChatTemplate([system, user], { enableThinking: true }), prefix);
  });

  it("renders an empty think block with thinking off", () => {
    assert.equal(
      tok.applyChatTemplate([system, user], { enableThinking: false }),
      `${prefix}<think>\n\n</think>\n\n`,
    );
    // <|im_start|> assistant \n <think> \n\n </think> \n\n
    const ids = tok.encode(tok.applyChatTemplate([user], { enableThinking: false }));
    assert.deepEqual(ids.slice(-7), [151644, 77091, 198, 151667, 271, 151668, 271]);
  });

  it("drops reasoning from earlier assistant turns and keeps it in the last", () => {
    const history = [
      { role: "user" as const, content: "Q1" },
      { role: "assistant" as const, content: "<think>\nr1\n</think>\n\nA1" },
      { role: "user" as const, content: "Q2" },
    ];
    assert.equal(
      tok.applyChatTemplate(history),
      "<|im_start|>user\nQ1<|im_end|>\n<|im_start|>assistant\nA1<|im_end|>\n<|im_start|>user\nQ2<|im_end|>\n<|im_start|>assistant\n",
    );
    const finished = [
      { role: "user" as const, content: "Q" },
      { role: "assistant" as const, content: "<think>\nR\n</think>\n\nA" },
    ];
    assert.equal(
      tok.applyChatTemplate(finished, { addGenerationPrompt: false }),
      "<|im_start|>user\nQ<|im_end|>\n<|im_start|>assistant\n<think>\nR\n</think>\n\nA<|im_end|>\n",
    );
    assert.equal(
      tok.applyChatTemplate([finished[0], { role: "assistant", content: "A" }], {
        addGenerationPrompt: false,
      }),
      "<|im_start|>user\nQ<|im_end|>\n<|im_start|>assistant\n<think>\n\n</think>\n\nA<|im_end|>\n",
    );
  });
});

describe("bytes tokenizer", () => {
  let tok: Tokenizer;
  before(async () => {
    const dir = join(root, "bytes");
    mkdirSync(dir, { recursive: true });
    writeTokenizerFiles(dir, "bytes");
    tok = await loadTokenizer(dir);
  });

  it("has 256 byte ids then Qwen's chat specials", () => {
    assert.equal(tok.vocabSize, 256 + BYTE_SPECIAL_TOKENS.length);
    assert.deepEqual(tok.encode("aé\n"), [97, 0xc3, 0xa9, 10]);
    assert.deepEqual(tok.encode("<|im_start|>user<think>"), [257, 117, 115, 101, 114, 259]);
    assert.equal(tok.eosTokenId, 258);
    assert.equal(tok.decode([104, 105, 258]), "hi<|im_end|>");
    assert.equal(tok.decode([104, 105, 258], { skipSpecialTokens: true }), "hi");
  });

  it("round-trips random Unicode text and special tokens", () => {
    const rng = new Rng(42);
    const alphabet = [
      "a",
      "Z",
      "7",
      " ",
      "\n",
      "\t",
      "é",
      "€",
      "😀",
      "中",
      "<",
      "|",
      "<|im_end|>",
      "</think>",
      "'s",
    ];
    for (let n = 0; n < 200; n++) {
      let s = "";
      const len = rng.nextU32() % 40;
      for (let i = 0; i < len; i++) s += alphabet[rng.nextU32() % alphabet.length];
      const ids = tok.encode(s);
      assert.equal(tok.decode(ids), s);
    }
    assert.equal(tok.decode([]), "");
  });

  it("renders the same chat template as Qwen3", () => {
    assert.equal(
      tok.applyChatTemplate([{ role: "user", content: "1+1" }], { enableThinking: false }),
      "<|im_start|>user\n1+1<|im_end|>\n<|im_start|>assistant\n<think>\n\n</think>\n\n",
    );
  });
});
