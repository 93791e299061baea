// Synthetic grade-school arithmetic in GSM8K's format: {"question", "answer"} where the answer is a
// rationale with `<<a op b=c>>` calculator annotations, one line per step, ending in "#### N":
// terse lines ("18*2 = <<18*2=36>>36", the default: short enough for a byte-level model's
// completion budget) or GSM8K-like sentences ("Nora has 18*2 = <<18*2=36>>36 shells.").
//
// A problem is a chain v0 → v1 → … → vk (k = 1..3 steps), v_i = v_{i−1} op_i b_i with op ∈ {+, −,
// ×, ÷}, every operand in [1, maxOperand] (× and ÷ by 2 or more) and every value a non-negative
// integer of at most maxResult (default maxOperand², so chained products stay grade-school sized).
// A scene (a person's things, a shop, a farm, a reader's pages) words each step; a step form may
// change who holds the quantity ("Leo has 3 times as many") or what it counts ("each box holds 6
// pencils"). The arithmetic chain (e.g. "4*6+5") is the problem's identity: the three sets of one
// synthesizeSets call never share a chain, nor a question text.
//
// Order of generation, for stability: eval first, then train, then sft, each from its own seeded
// stream and skipping what an earlier set holds, so the eval set does not depend on the sizes of
// the others (and a larger eval set extends a smaller one).

import type { Gsm8kExample } from "./data.ts";

/** mulberry32: a 32-bit seeded generator, enough for picking templates and numbers. */
export function mulberry32(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** One 32-bit seed from a seed and a stream name (splitmix-style mixing). */
function mixSeed(seed: number, stream: string): number {
  let h = (Math.floor(seed) ^ Math.floor(seed / 2 ** 32)) >>> 0;
  for (let i = 0; i < stream.length; i++) h = Math.imul(h ^ stream.charCodeAt(i), 0x9e3779b1) >>> 0;
  h = Math.imul(h ^ (h >>> 16), 0x85ebca6b);
  h = Math.imul(h ^ (h >>> 13), 0xc2b2ae35);
  return (h ^ (h >>> 16)) >>> 0;
}

export type SynthOp = "+" | "-" | "*" | "/";

export interface SynthOptions {
  /** Steps per problem, uniformly in [min, max] (default 1..3; both within 1..3). */
  steps?: { min: number; max: number };
  /** Largest operand (default 20; at least 2). */
  maxOperand?: number;
  /** Largest value any step may reach (default maxOperand²; at least maxOperand). */
  maxResult?: number;
  /**
   * Rationale lines: "terse" (default) just the calculation, "4*6 = <<4*6=24>>24", so a 2-step
   * answer fits in ~48 byte tokens; "prose" a GSM8K-like sentence, "Sam has 4*6 = <<4*6=24>>24
   * pencils."
   */
  rationale?: SynthRationale;
}

export type SynthRationale = "terse" | "prose";

/**
 * What no two problems of the three sets may share: "chain" (default) their question text and their
 * arithmetic chain, so held-out problems need arithmetic never seen in training; "question" only the
 * question text, so the arithmetic facts recur in new wordings, as a pretrained model's knowledge
 * recurs in GSM8K (the held-out skill is reading a new problem, not new arithmetic).
 */
export type SynthDisjointness = "chain" | "question";

export interface SynthSetsOptions extends SynthOptions {
  sft: number;
  train: number;
  eval: number;
  /**
   * Held-out problems appended to `eval`, made after the other sets (and disjoint from them) by
   * continuing the eval stream: a held-out set grown this way leaves the SFT and RL data as they
   * were, so a warm start made on them stays valid. Default 0.
   */
  evalExtra?: number;
  /**
   * Development problems (an SFT's early-stopping set), made last from their own stream and disjoint
   * from every set above, which stay as they were. Default 0.
   */
  dev?: number;
  seed: number;
  disjoint?: SynthDisjointness;
}

export interface SynthSets {
  sft: Gsm8kExample[];
  train: Gsm8kExample[];
  eval: Gsm8kExample[];
  dev: Gsm8kExample[];
}

/** Bad knobs, or more problems asked for than the knobs allow: one line. */
export class SynthError extends Error {
  override name = "SynthError";
}

/** A generated problem: its text, its chain, and its final value. */
export interface SynthProblem extends Gsm8kExample {
  /** The arithmetic chain, e.g. "4*6+5": the problem's identity. */
  key: string;
  value: number;
}

type Rand = () => number;
const pick = <T>(r: Rand, xs: readonly T[]): T => xs[Math.floor(r() * xs.length)];
const int = (r: Rand, lo: number, hi: number) => lo + Math.floor(r() * (hi - lo + 1));
const cap = (s: string) => s[0].toUpperCase() + s.slice(1);

interface Holder {
  /** As a sentence subject: "Mia", "the shop". */
  name: string;
  /** Subject pronoun: "she", "he", "it". */
  pron: string;
}

/** The running state while a problem is worded. */
interface State {
  holder: Holder;
  /** Plural noun of what is counted now. */
  items: string;
  /** The question once the chain ends; undefined: "How many X does H have now?". */
  question?: string;
}

/** A wording of one step `a op b`. */
interface Form {
  op: SynthOp;
  /** Only as the first step: its sentence introduces the start value `a` itself. */
  first?: boolean;
  /** Only as the last step (it ends the story, e.g. shares everything out). */
  last?: boolean;
  /** The step's sentence and rationale line (`eq` = "a op b = <<a op b=c>>c <items>"); may change `s`. */
  word(s: State, a: number, b: number, r: Rand): { say: string; line: (eq: string) => string };
}

interface Scene {
  /** A fresh state and the opening sentence for start value a (unless the first form opens). */
  start(r: Rand): { state: State; open: (a: number) => string };
  forms: Form[];
}

const SINGULAR: Record<string, string> = {
  apples: "apple",
  marbles: "marble",
  stickers: "sticker",
  cookies: "cookie",
  pencils: "pencil",
  shells: "shell",
  cards: "card",
  beads: "bead",
  toys: "toy",
  hats: "hat",
  lamps: "lamp",
  chairs: "chair",
  kites: "kite",
  mugs: "mug",
  balls: "ball",
  books: "book",
  cows: "cow",
  goats: "goat",
  hens: "hen",
  ducks: "duck",
  pigs: "pig",
  pages: "page",
  friends: "friend",
  stores: "store",
  fields: "field",
  days: "day",
  piles: "pile",
};

/** "1 apple", "5 apples". */
const noun = (n: number, plural: string) => (n === 1 ? (SINGULAR[plural] ?? plural) : plural);
const count = (n: number, plural: string) => `${n} ${noun(n, plural)}`;
/** "1 more apple", "5 more apples". */
const more = (n: number, plural: string) => `${n} more ${noun(n, plural)}`;

/** "<Holder> has <eq><tail>." (eq ends in the counted noun) */
const hasLine =
  (s: State, tail = "") =>
  (eq: string) =>
    `${cap(s.holder.name)} has ${eq}${tail}.`;

const PEOPLE: readonly Holder[] = [
  ...["Mia", "Ava", "Zoe", "Lily", "Emma", "Nora", "Ruth", "Sara"].map((name) => ({ name, pron: "she" })),
  ...["Leo", "Sam", "Ben", "Max", "Omar", "Jack", "Ivan", "Tom"].map((name) => ({ name, pron: "he" })),
];

function otherPerson(r: Rand, not: Holder): Holder {
  let h = pick(r, PEOPLE);
  while (h.name === not.name) h = pick(r, PEOPLE);
  return h;
}

// ---- scenes ------------------------------------------------------------------------------------

const THINGS: Record<string, readonly [string, string]> = {
  apples: ["baskets", "basket"],
  marbles: ["jars", "jar"],
  stickers: ["sheets", "sheet"],
  cookies: ["boxes", "box"],
  pencils: ["packs", "pack"],
  shells: ["buckets", "bucket"],
  cards: ["decks", "deck"],
  beads: ["bags", "bag"],
};

const person: Scene = {
  start(r) {
    const holder = pick(r, PEOPLE);
    const items = pick(r, Object.keys(THINGS));
    return { state: { holder, items }, open: (a) => `${holder.name} has ${count(a, items)}.` };
  },
  forms: [
    {
      op: "+",
      word: (s, _a, b, r) => ({
        say: pick(r, [
          `${cap(s.holder.pron)} buys ${more(b, s.items)}.`,
          `${cap(s.holder.pron)} finds ${more(b, s.items)}.`,
          `A friend gives ${s.holder.name} ${count(b, s.items)}.`,
        ]),
        line: hasLine(s, " now"),
      }),
    },
    {
      op: "-",
      word: (s, _a, b, r) => ({
        say: pick(r, [
          `${cap(s.holder.pron)} gives ${count(b, s.items)} away.`,
          `${cap(s.holder.pron)} loses ${count(b, s.items)}.`,
          `${cap(s.holder.pron)} uses ${count(b, s.items)}.`,
        ]),
        line: hasLine(s, " left"),
      }),
    },
    {
      op: "*",
      first: true,
      word: (s, a, b) => {
        const [many, one] = THINGS[s.items];
        return {
          say: `${s.holder.name} has ${a === 1 ? `1 ${one}` : `${a} ${many}`} of ${s.items}. Each ${one} holds ${b} ${s.items}.`,
          line: hasLine(s),
        };
      },
    },
    {
      op: "*",
      word: (s, _a, b, r) => {
        const other = otherPerson(r, s.holder);
        const say = `${other.name} has ${b} times as many ${s.items} as ${s.holder.name}.`;
        s.holder = other;
        return { say, line: hasLine(s) };
      },
    },
    {
      op: "/",
      last: true,
      word: (s, _a, b) => {
        s.question = `How many ${s.items} does each friend get?`;
        return {
          say: `${cap(s.holder.pron)} shares the ${s.items} equally among ${b} friends.`,
          line: (eq) => `Each friend gets ${eq}.`,
        };
      },
    },
    {
      op: "/",
      word: (s, _a, b) => ({
        say: `${cap(s.holder.pron)} splits the ${s.items} into ${b} equal piles and keeps one pile.`,
        line: (eq) => `${cap(s.holder.name)} keeps ${eq}.`,
      }),
    },
  ],
};

const GOODS = ["toys", "hats", "lamps", "chairs", "kites", "mugs", "balls", "books"];

const shop: Scene = {
  start(r) {
    const items = pick(r, GOODS);
    return {
      state: { holder: { name: "the shop", pron: "it" }, items },
      open: (a) => `A shop has ${count(a, items)}.`,
    };
  },
  forms: [
    {
      op: "+",
      word: (s, _a, b, r) => ({
        say: pick(r, [
          `A truck brings ${s.holder.name} ${more(b, s.items)}.`,
          `${cap(s.holder.name)} orders ${more(b, s.items)}.`,
        ]),
        line: hasLine(s, " now"),
      }),
    },
    {
      op: "-",
      word: (s, _a, b, r) => ({
        say: pick(r, [
          `${cap(s.holder.name)} sells ${count(b, s.items)}.`,
          `${cap(s.holder.name)} gives ${count(b, s.items)} away.`,
        ]),
        line: hasLine(s, " left"),
      }),
    },
    {
      op: "*",
      first: true,
      word: (s, a, b) => ({
        say: `A shop gets ${count(a, "crates")} of ${s.items}. Each crate holds ${b} ${s.items}.`,
        line: hasLine(s),
      }),
    },
    {
      op: "*",
      word: (s, _a, b) => {
        s.holder = { name: "the big shop", pron: "it" };
        return { say: `A big shop has ${b} times as many ${s.items}.`, line: hasLine(s) };
      },
    },
    {
      op: "/",
      last: true,
      word: (s, _a, b) => {
        s.question = `How many ${s.items} does each store get?`;
        return {
          say: `The ${s.items} are sent to ${b} stores in equal parts.`,
          line: (eq) => `Each store gets ${eq}.`,
        };
      },
    },
  ],
};

const ANIMALS = ["sheep", "cows", "goats", "hens", "ducks", "pigs"];

const farm: Scene = {
  start(r) {
    const items = pick(r, ANIMALS);
    return {
      state: { holder: { name: "the farm", pron: "it" }, items },
      open: (a) => `A farm has ${count(a, items)}.`,
    };
  },
  forms: [
    {
      op: "+",
      word: (s, _a, b, r) => ({
        say: pick(r, [
          `${cap(s.holder.name)} gets ${more(b, s.items)}.`,
          `${cap(s.holder.name)} buys ${more(b, s.items)}.`,
        ]),
        line: hasLine(s, " now"),
      }),
    },
    {
      op: "-",
      word: (s, _a, b, r) => ({
        say: pick(r, [
          `${cap(s.holder.name)} sells ${count(b, s.items)}.`,
          `${cap(count(b, s.items))} ${b === 1 ? "runs" : "run"} away from ${s.holder.name}.`,
        ]),
        line: hasLine(s, " left"),
      }),
    },
    {
      op: "*",
      first: true,
      word: (s, a, b) => ({
        say: `A farm has ${count(a, "pens")} with ${b} ${s.items} in each pen.`,
        line: hasLine(s),
      }),
    },
    {
      op: "*",
      word: (s, _a, b) => {
        s.holder = { name: "the next farm", pron: "it" };
        return { say: `The next farm has ${b} times as many ${s.items}.`, line: hasLine(s) };
      },
    },
    {
      op: "/",
      last: true,
      word: (s, _a, b) => {
        s.question = `How many ${s.items} are in each field?`;
        return {
          say: `The ${s.items} are split equally into ${b} fields.`,
          line: (eq) => `Each field has ${eq}.`,
        };
      },
    },
  ],
};

const pages: Scene = {
  start(r) {
    const holder = pick(r, PEOPLE);
    return {
      state: { holder, items: "pages" },
      open: (a) => `${holder.name} reads ${count(a, "pages")} on Monday.`,
    };
  },
  forms: [
    {
      op: "+",
      word: (s, _a, b, r) => {
        s.question = `How many pages has ${s.holder.name} read in all?`;
        return {
          say: pick(r, [
            `${cap(s.holder.pron)} reads ${more(b, "pages")} the next day.`,
            `Then ${s.holder.pron} reads ${more(b, "pages")}.`,
          ]),
          line: (eq) => `${s.holder.name} has read ${eq}.`,
        };
      },
    },
    {
      op: "*",
      first: true,
      word: (s, a, b) => {
        s.question = `How many pages has ${s.holder.name} read?`;
        return {
          say: `${s.holder.name} reads ${count(a, "chapters")}. Each chapter has ${b} pages.`,
          line: (eq) => `${s.holder.name} has read ${eq}.`,
        };
      },
    },
    {
      op: "*",
      word: (s, _a, b, r) => {
        const other = otherPerson(r, s.holder);
        const say = `${other.name} reads ${b} times as many pages as ${s.holder.name}.`;
        s.holder = other;
        s.question = `How many pages has ${other.name} read?`;
        return { say, line: (eq) => `${other.name} has read ${eq}.` };
      },
    },
    {
      op: "/",
      last: true,
      word: (s, _a, b) => {
        s.question = `How many pages does ${s.holder.name} read each day?`;
        return {
          say: `${cap(s.holder.pron)} reads them all again over ${b} days, the same number each day.`,
          line: (eq) => `${s.holder.name} reads ${eq} each day.`,
        };
      },
    },
  ],
};

const SCENES: readonly Scene[] = [person, shop, farm, pages];

// ---- generation --------------------------------------------------------------------------------

function apply(op: SynthOp, a: number, b: number): number {
  return op === "+" ? a + b : op === "-" ? a - b : op === "*" ? a * b : a / b;
}

/**
 * An operand for `op` on value v, or null when none fits: + and × must stay ≤ maxResult, − leaves
 * at least 1, ÷ by a divisor d with 2 ≤ d ≤ v/2 (a quotient of at least 2).
 */
function operand(r: Rand, op: SynthOp, v: number, max: number, maxResult: number): number | null {
  switch (op) {
    case "+": {
      const hi = Math.min(max, maxResult - v);
      return hi >= 1 ? int(r, 1, hi) : null;
    }
    case "-":
      // leave at least 1: answers of 0 (and 1 below) would be a guessable share of the set
      return v >= 2 ? int(r, 1, Math.min(v - 1, max)) : null;
    case "*": {
      const hi = Math.min(max, Math.floor(maxResult / Math.max(1, v)));
      return hi >= 2 ? int(r, 2, hi) : null;
    }
    case "/": {
      const divisors: number[] = [];
      for (let d = 2; d <= Math.min(v / 2, max); d++) if (v % d === 0) divisors.push(d);
      return divisors.length > 0 ? pick(r, divisors) : null;
    }
  }
}

interface Knobs {
  min: number;
  max: number;
  maxOperand: number;
  maxResult: number;
  rationale: SynthRationale;
}

function checkOptions(options: SynthOptions): Knobs {
  const min = options.steps?.min ?? 1;
  const max = options.steps?.max ?? 3;
  const maxOperand = options.maxOperand ?? 20;
  if (!Number.isSafeInteger(min) || min < 1 || min > 3)
    throw new SynthError(`min steps must be an integer in 1..3, got ${min}`);
  if (!Number.isSafeInteger(max) || max < min || max > 3)
    throw new SynthError(`max steps must be an integer in ${min}..3, got ${max}`);
  if (!Number.isSafeInteger(maxOperand) || maxOperand < 2 || maxOperand > 1_000_000)
    throw new SynthError(`max operand must be an integer in 2..1000000, got ${maxOperand}`);
  const maxResult = options.maxResult ?? maxOperand * maxOperand;
  if (!Number.isSafeInteger(maxResult) || maxResult < maxOperand || maxResult > 1e12)
    throw new SynthError(`max result must be an integer in ${maxOperand}..1e12, got ${maxResult}`);
  const rationale = options.rationale ?? "terse";
  if (rationale !== "terse" && rationale !== "prose")
    throw new SynthError(`rationale must be terse or prose, got ${rationale}`);
  return { min, max, maxOperand, maxResult, rationale };
}

/** One random problem (not checked against any set). */
export function synthesizeProblem(r: Rand, options: SynthOptions = {}): SynthProblem {
  const knobs = checkOptions(options);
  for (;;) {
    const p = tryProblem(r, int(r, knobs.min, knobs.max), knobs);
    if (p) return p;
  }
}

function tryProblem(r: Rand, steps: number, knobs: Knobs): SynthProblem | null {
  const scene = pick(r, SCENES);
  const { state, open } = scene.start(r);
  let v = int(r, 1, knobs.maxOperand);
  let key = String(v);
  const sentences: string[] = [];
  const lines: string[] = [];
  for (let i = 0; i < steps; i++) {
    const isFirst = i === 0;
    const isLast = i === steps - 1;
    // the operation first (uniformly among those the scene can word here), then its wording
    const forms = scene.forms.filter((f) => (!f.first || isFirst) && (!f.last || isLast));
    const op = pick(r, [...new Set(forms.map((f) => f.op))]);
    const form = pick(
      r,
      forms.filter((f) => f.op === op),
    );
    const b = operand(r, form.op, v, knobs.maxOperand, knobs.maxResult);
    if (b === null) return null;
    if (isFirst && !form.first) sentences.push(open(v));
    const { say, line } = form.word(state, v, b, r);
    sentences.push(say);
    const c = apply(form.op, v, b);
    const expr = `${v}${form.op}${b}`;
    lines.push(
      knobs.rationale === "prose"
        ? line(`${expr} = <<${expr}=${c}>>${count(c, state.items)}`)
        : `${expr} = <<${expr}=${c}>>${c}`,
    );
    key += `${form.op}${b}`;
    v = c;
  }
  const question = state.question ?? `How many ${state.items} does ${state.holder.name} have now?`;
  return {
    question: `${sentences.join(" ")} ${cap(question)}`,
    answer: `${lines.join("\n")}\n#### ${v}`,
    key,
    value: v,
  };
}

/**
 * Pairwise-disjoint sets (no shared question text, no shared arithmetic chain), deterministic
 * for a seed and the knobs. Throws SynthError when the knobs allow fewer distinct problems.
 */
export function synthesizeSets(options: SynthSetsOptions): SynthSets {
  const knobs = checkOptions(options);
  const evalExtra = options.evalExtra ?? 0;
  const dev = options.dev ?? 0;
  for (const [name, n] of [
    ["sft", options.sft],
    ["train", options.train],
    ["eval", options.eval],
    ["evalExtra", evalExtra],
    ["dev", dev],
  ] as const) {
    if (!Number.isSafeInteger(n) || n < 0)
      throw new SynthError(`${name} count must be an integer ≥ 0, got ${n}`);
  }
  if (!Number.isSafeInteger(options.seed))
    throw new SynthError(`seed must be an integer, got ${options.seed}`);
  const disjoint = options.disjoint ?? "chain";
  if (disjoint !== "chain" && disjoint !== "question")
    throw new SynthError(`disjoint must be chain or question, got ${disjoint}`);
  const keys = new Set<string>();
  const texts = new Set<string>();
  /** `count` problems from stream `r`, none sharing what `disjoint` forbids with any made before. */
  const make = (r: Rand, count: number): Gsm8kExample[] => {
    const out: Gsm8kExample[] = [];
    let misses = 0;
    while (out.length < count) {
      const p = synthesizeProblem(r, { ...knobs, steps: { min: knobs.min, max: knobs.max } });
      if ((disjoint === "chain" && keys.has(p.key)) || texts.has(p.question)) {
        if (++misses > 10_000 + 20 * count)
          throw new SynthError(
            `only ${disjoint === "chain" ? keys.size : texts.size} distinct problems found for ${knobs.min}..${knobs.max} steps and max operand ${knobs.maxOperand}; ask for fewer or widen the knobs`,
          );
        continue;
      }
      misses = 0;
      keys.add(p.key);
      texts.add(p.question);
      out.push({ question: p.question, answer: p.answer });
    }
    return out;
  };
  const stream = (name: "sft" | "train" | "eval" | "dev") => mulberry32(mixSeed(options.seed, name));
  const evalStream = stream("eval");
  const evalSet = make(evalStream, options.eval);
  const train = make(stream("train"), options.train);
  const sft = make(stream("sft"), options.sft);
  evalSet.push(...make(evalStream, evalExtra));
  return { sft, train, eval: evalSet, dev: make(stream("dev"), dev) };
}

/**
 * The completion SFT trains on (and the RL reward scores): the GSM8K rationale without its
 * `<<…>>` calculator annotations, keeping the "#### N" line, after one space (the plain prompt
 * ends in "Answer:").
 */
export function sftTarget(answer: string): string {
  return ` ${answer.replace(/<<[^<>]*>>/g, "").trim()}`;
}
