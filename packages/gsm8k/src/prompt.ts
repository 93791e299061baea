// Prompt templates: a plain completion-style prompt and chat templates (Qwen3's, or any
// Hugging Face chat_template) rendered with @huggingface/jinja.
import { readFileSync } from "node:fs";
import { Template } from "@huggingface/jinja";

export interface ChatMessage {
  role: "system" | "user" | "assistant";
  content: string;
}

/** What the model is asked to do; "#### N" matches the GSM8K references and the extractor's first marker. */
export const DEFAULT_INSTRUCTION =
  'Solve the problem step by step. Write the final answer on its own line as "#### <number>".';

/**
 * A completion-style prompt for base models: the instruction, the question, then "Answer:" for the
 * model to continue. An empty instruction gives just "Question: …\nAnswer:".
 */
export function plainPrompt(question: string, instruction = DEFAULT_INSTRUCTION): string {
  const q = `Question: ${question.trim()}\nAnswer:`;
  return instruction === "" ? q : `${instruction}\n\n${q}`;
}

export interface ChatRenderOptions {
  /** Append the assistant turn opener (default true). */
  addGenerationPrompt?: boolean;
  /**
   * Qwen3's thinking switch. Left undefined, the template's own default applies (Qwen3: thinking
   * on); false makes the Qwen3 template emit an empty `<think>\n\n</think>\n\n` block.
   */
  enableThinking?: boolean;
  /** Extra template variables (bos_token, eos_token, tools, ...). */
  variables?: Record<string, unknown>;
}

const compiled = new Map<string, Template>();

/** Renders a Hugging Face chat template (the `chat_template` string of tokenizer_config.json). */
export function renderChatTemplate(
  template: string,
  messages: ChatMessage[],
  options: ChatRenderOptions = {},
): string {
  let t = compiled.get(template);
  if (!t) {
    t = new Template(template);
    if (compiled.size > 16) compiled.clear();
    compiled.set(template, t);
  }
  const vars: Record<string, unknown> = {
    ...options.variables,
    messages,
    add_generation_prompt: options.addGenerationPrompt ?? true,
  };
  if (options.enableThinking !== undefined) vars.enable_thinking = options.enableThinking;
  return t.render(vars);
}

export interface ChatPromptOptions {
  /** The model's chat template string (e.g. from chatTemplateFromTokenizerConfig). */
  template: string;
  enableThinking?: boolean;
  system?: string;
  instruction?: string;
}

/** A GSM8K question as a one-turn chat prompt, ready for generation. */
export function chatPrompt(question: string, options: ChatPromptOptions): string {
  const messages: ChatMessage[] = [];
  if (options.system) messages.push({ role: "system", content: options.system });
  messages.push({
    role: "user",
    content: `${question.trim()}\n\n${options.instruction ?? DEFAULT_INSTRUCTION}`,
  });
  return renderChatTemplate(options.template, messages, { enableThinking: options.enableThinking });
}

/** The `chat_template` of a tokenizer_config.json file; a one-line error when it has none. */
export function chatTemplateFromTokenizerConfig(path: string): string {
  let config: unknown;
  try {
    config = JSON.parse(readFileSync(path, "utf8"));
  } catch (err) {
    throw new Error(`${path}: cannot read tokenizer config (${(err as Error).message.split("\n")[0]})`);
  }
  const t = (config as { chat_template?: unknown }).chat_template;
  if (typeof t === "string") return t;
  // Some configs list several named templates; the "default" one is the chat template.
  if (Array.isArray(t)) {
    const d = t.find((x) => x && typeof x === "object" && (x as { name?: unknown }).name === "default");
    if (d && typeof (d as { template?: unknown }).template === "string")
      return (d as { template: string }).template;
  }
  throw new Error(`${path}: no chat_template`);
}
