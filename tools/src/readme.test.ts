// docs/cli.md's `temper` table against the CLI's own `--help`: every command and flag the README shows
// exists in the usage, and every flag a usage prints is in the README row; the model sizes, the
// generate engines and the grads batch fields the README states are what the code does.
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, describe, it } from "node:test";
import { checkTrainBatch, parameterCount, presetConfig, tokenizerIds } from "@temper/qwen3";
import { errorOf } from "./cli-testing.ts";
import { BATCH_FIELDS, parseBatchFile } from "./commands/model-grads.ts";
import { commands } from "./dispatch.ts";

const readme = readFileSync(new URL("../../docs/cli.md", import.meta.url), "utf8");
/** The model presets' table lives with the models, in docs/architecture.md. */
const models = readFileSync(new URL("../../docs/architecture.md", import.meta.url), "utf8");
const tmp = mkdtempSync(join(tmpdir(), "temper-readme-"));
after(() => rmSync(tmp, { recursive: true, force: true }));

const dispatchUrl = new URL("./dispatch.ts", import.meta.url).href;

/**
 * What `temper <argv...>` prints on stdout for each argv, through the CLI's dispatch in one child
 * process (the commands write to process.stdout, which this test process must leave alone).
 */
function stdoutsOf(argvs: string[][]): string[] {
  const script = `
    import { dispatch } from ${JSON.stringify(dispatchUrl)};
    const write = process.stdout.write.bind(process.stdout);
    const outs = [];
    for (const argv of ${JSON.stringify(argvs)}) {
      let text = "";
      process.stdout.write = (chunk) => ((text += String(chunk)), true);
      try { await dispatch(argv); } catch (err) { text += "ERROR " + err.message; }
      outs.push(text);
    }
    process.stdout.write = write;
    write(JSON.stringify(outs));`;
  const r = spawnSync(process.execPath, ["--import", "tsx", "--input-type=module", "-e", script], {
    encoding: "utf8",
    timeout: 120_000,
  });
  assert.equal(r.status, 0, r.stderr);
  return JSON.parse(r.stdout);
}

let helpTexts: Map<string, string> | undefined;

/**
 * `temper <argv...> --help`. The first call fetches, in one child process, the top-level help, every
 * command's and every command the README shows.
 */
function help(argv: string[]): string {
  if (!helpTexts) {
    const argvs = [[], ...Object.keys(commands).map((n) => [n]), ...readmeRows().flatMap((r) => r.commands)];
    const outs = stdoutsOf(argvs.map((a) => [...a, "--help"]));
    helpTexts = new Map(argvs.map((a, i) => [a.join(" "), outs[i]]));
  }
  const text = helpTexts.get(argv.join(" "));
  assert.ok(text !== undefined, `no help fetched for temper ${argv.join(" ")}`);
  return text;
}

/** Flags written as `--name` or `-n` after a space, bracket, parenthesis or pipe. */
function flagsIn(text: string): Set<string> {
  const flags = [...text.matchAll(/(?:^|[\s[(|])(--?[a-zA-Z][a-zA-Z0-9-]*)/g)].map((m) => m[1]);
  return new Set(flags.filter((f) => f !== "--help" && f !== "-h"));
}

interface Row {
  commands: string[][];
  flags: Set<string>;
  text: string;
  description: string;
}

/** The rows of the README's `temper` table: the commands (word paths) and flags of the first cell. */
function readmeRows(): Row[] {
  const rows = readme.split("\n").filter((l) => l.startsWith("| `temper "));
  assert.ok(rows.length >= 15, `README's temper table: ${rows.length} rows`);
  return rows.map((line) => {
    const cells = line.split(/(?<!\\)\|/).map((c) => c.trim().replaceAll("\\|", "|"));
    const first = cells[1];
    const spans = [...first.matchAll(/`([^`]*)`/g)].map((m) => m[1]);
    const commands: string[][] = [];
    spans.forEach((span, i) => {
      const words = span.split(/\s+/);
      const continues = i > 0 && /\/\s*$/.test(first.slice(0, first.indexOf(`\`${span}\``)));
      if (words[0] !== "temper" && !(continues && /^[a-z]/.test(words[0]))) return;
      const path: string[] = [];
      for (const w of words[0] === "temper" ? words.slice(1) : words) {
        if (!/^[a-z][a-z0-9-]*$/.test(w)) break;
        path.push(w);
      }
      commands.push(path);
    });
    return { commands, flags: flagsIn(spans.join(" ")), text: first, description: cells[2] ?? "" };
  });
}

/** Leaf commands of the CLI, from its own --help (a command whose help lists subcommands is expanded). */
function cliCommands(): string[][] {
  const names = (text: string) =>
    [...text.split("commands:\n")[1].matchAll(/^ {2}([a-z][a-z0-9-]*) /gm)].map((m) => m[1]);
  const out: string[][] = [[]];
  for (const name of names(help([]))) {
    const text = help([name]);
    if (text.includes("\nsubcommands:\n")) for (const sub of names(text)) out.push([name, sub]);
    else out.push([name]);
  }
  return out;
}

describe("README's temper table and the CLI's --help", () => {
  it("name the same commands and the same flags, both ways", () => {
    const rows = readmeRows();
    const documented = new Map<string, Row>();
    for (const row of rows) for (const c of row.commands) documented.set(c.join(" "), row);
    const cli = cliCommands().map((c) => c.join(" "));
    assert.deepEqual([...documented.keys()].sort(), [...cli].sort(), "commands: README vs temper --help");

    const problems: string[] = [];
    const argvOf = (command: string) => (command === "" ? [] : command.split(" "));
    for (const [command, row] of documented) {
      const text = help(argvOf(command));
      // the top-level help's command list is summaries; its flags are in the lines after it
      const usage = flagsIn(command === "" ? text.replace(/^ {2}[a-z].*$/gm, "") : text);
      for (const f of row.flags)
        if (!usage.has(f)) problems.push(`temper ${command}: README shows ${f}, --help does not`);
      for (const f of usage)
        if (!row.flags.has(f)) problems.push(`temper ${command}: --help shows ${f}, README's row does not`);
    }
    assert.deepEqual(problems, []);
  });

  it("generate: the engines in README and usage are the ones the command accepts", async () => {
    const message = await errorOf(["model", "generate", "--model", tmp, "--prompt", "x", "--engine", "?"]);
    const accepted = /--engine: expected one of (.*), got/.exec(message)?.[1].split(", ");
    assert.ok(accepted, message);
    const usage = help(["model", "generate"]);
    assert.deepEqual(/--engine ([a-z|]+)/.exec(usage)?.[1].split("|"), accepted);
    const row = readmeRows().find((r) => r.commands.some((c) => c.join(" ") === "model generate"))!;
    assert.deepEqual(/--engine ([a-z|]+)/.exec(row.text)?.[1].split("|"), accepted);
  });

  it("preset sizes: README's table is init --help's and parameterCount's", () => {
    const [, kinds, list] = /presets, parameters with --tokenizer ([a-z0-9 /]+): (.*)/.exec(
      help(["model", "init"]),
    )!;
    const tokenizers = kinds.split(" / ");
    const fromHelp = new Map(
      list.split(", ").map((entry) => {
        const [name, ...sizes] = entry.split(/ \/ | /);
        return [name, Object.fromEntries(tokenizers.map((t, i) => [t, sizes[i]]))];
      }),
    );
    const table = [...models.matchAll(/^\| `([a-z0-9.-]+)` \| ([\d.]+[KMB]) \| ([\d.]+[KMB]) \|$/gm)];
    assert.equal(table.length, fromHelp.size);
    const value = (s: string) => Number(s.slice(0, -1)) * { K: 1e3, M: 1e6, B: 1e9 }[s.at(-1) as "K"];
    for (const [, name, bytes, qwen3] of table) {
      assert.deepEqual({ bytes, qwen3 }, fromHelp.get(name), name);
      // (the qwen3 column is the help's, which counts with the same function; its tokenizer is slow to parse)
      const exact = parameterCount(presetConfig(name as "small", tokenizerIds("bytes")));
      assert.ok(Math.abs(value(bytes) - exact) / exact < 0.005, `${name} bytes: ${bytes} vs ${exact}`);
    }
    assert.match(models, /\| `small` \| 12\.71M \| 70\.84M \|/);
  });

  it("grads: the batch fields README names are the ones the command reads, needed when it says", () => {
    const row = readmeRows().find((r) => r.commands.some((c) => c.join(" ") === "model grads"))!;
    const named = new Set([...row.description.matchAll(/`([a-z]+_[a-z_]+|advantage)`/g)].map((m) => m[1]));
    assert.deepEqual([...named].sort(), Object.keys(BATCH_FIELDS).sort());
    assert.match(row.description, /`--loss grpo` also `advantage` and `old_logprobs`/);
    assert.match(row.description, /`--beta` > 0 `ref_logprobs`/);

    // what the command does with a line holding only the fields README says are always needed
    const file = join(tmp, "batch.jsonl");
    writeFileSync(file, `${JSON.stringify({ input_ids: [1, 2, 3], completion_mask: [0, 1, 1] })}\n`);
    const { batch } = parseBatchFile(file);
    const check = (grpo: boolean, needsRef: boolean) => () =>
      checkTrainBatch(batch, { vocabSize: 8, grpo, needsRef });
    assert.doesNotThrow(check(false, false), "sft needs input_ids and completion_mask only");
    assert.throws(check(true, false), /advantage/);
    batch[0].advantage = 1;
    assert.throws(check(true, false), /old_logprobs is required/);
    (batch[0] as { oldLogprobs?: number[] }).oldLogprobs = [0, -1, -1];
    assert.doesNotThrow(check(true, false));
    assert.throws(check(true, true), /ref_logprobs is required when beta > 0/);
  });
});
