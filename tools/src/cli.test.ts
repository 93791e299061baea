// The CLI plumbing every command shares: negative numbers as flag values, --out into missing
// directories, `temper --version`, and progress on stderr (live on a terminal, plain lines otherwise).
import assert from "node:assert/strict";
import { spawn, spawnSync } from "node:child_process";
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join, resolve } from "node:path";
import { after, describe, it } from "node:test";
import { fileURLToPath } from "node:url";
import { CliError, outputDir, outputFile, parseFlags } from "./cli.ts";
import { errorOf } from "./cli-testing.ts";
import { dispatch } from "./dispatch.ts";
import { duration, Progress } from "./progress.ts";

const bin = resolve(dirname(fileURLToPath(import.meta.url)), "../bin/temper.mjs");
const dir = mkdtempSync(join(tmpdir(), "temper-cli-"));
after(() => rmSync(dir, { recursive: true, force: true }));

interface Result {
  code: number | null;
  stdout: string;
  stderr: string;
}

/** `temper <args...>` as a user runs it, in a child process (asynchronous, so several can overlap). */
function temper(...args: string[]): Promise<Result> {
  return new Promise((done, fail) => {
    const child = spawn(process.execPath, [bin, ...args], { stdio: ["ignore", "pipe", "pipe"] });
    let stdout = "";
    let stderr = "";
    child.stdout.setEncoding("utf8").on("data", (s) => (stdout += s));
    child.stderr.setEncoding("utf8").on("data", (s) => (stderr += s));
    child.on("error", fail);
    child.on("close", (code) => done({ code, stdout, stderr }));
  });
}

/** An assert.throws check: a CliError whose message matches. */
const cliError = (message: RegExp) => (e: Error) => e instanceof CliError && message.test(e.message);

function oneLineError(r: Result, message: RegExp): void {
  assert.equal(r.code, 2, r.stderr);
  assert.equal(r.stderr.split("\n").length, 2, r.stderr);
  assert.match(r.stderr, /^temper: /);
  assert.match(r.stderr, message);
}

// The child processes start at once and overlap with the in-process tests.
const runs = {
  version: temper("--version"),
  temperature: temper("model", "generate", "--model", dir, "--prompt", "hi", "--temperature", "-1"),
  init: temper(
    "model",
    "init",
    "--config",
    "tiny",
    "--tokenizer",
    "bytes",
    "--out",
    join(dir, "a", "b", "tiny"),
  ),
};

describe("negative numbers are flag values", () => {
  const options = {
    temperature: { type: "string" },
    n: { type: "string", short: "n" },
    json: { type: "boolean" },
  } as const;

  it("--flag -1 and -n -1 parse as values; other dashed values get a one-line hint", () => {
    assert.deepEqual(
      { ...parseFlags(["--temperature", "-1", "-n", "-2.5"], options).values },
      { temperature: "-1", n: "-2.5" },
    );
    assert.equal(parseFlags(["--temperature", "-.5"], options).values.temperature, "-.5");
    assert.equal(parseFlags(["--temperature=-3"], options).values.temperature, "-3");
    // a boolean flag takes no value; after -- everything is positional
    assert.deepEqual(parseFlags(["--json", "--", "--temperature", "-1"], options, true).positionals, [
      "--temperature",
      "-1",
    ]);
    assert.throws(
      () => parseFlags(["--temperature", "-x"], options),
      (e: Error) =>
        e instanceof CliError &&
        e.message ===
          '--temperature: missing value (a value that starts with "-" is written --temperature=VALUE)',
    );
    assert.throws(
      () => parseFlags(["-n", "--json"], options),
      cliError(/^-n: missing value .* --n=VALUE\)$/),
    );
  });

  it("temper model generate --temperature -1: the range check's one line, exit 2", async () => {
    oneLineError(
      await runs.temperature,
      /^temper: --temperature: expected a number ≥ 0 \(0 = greedy\), got "-1"\n$/,
    );
  });

  it("other commands range-check a negative value with a one-line message", async () => {
    const cases: [string[], RegExp][] = [
      [["health", "127.0.0.1:1", "--timeout-ms", "-1"], /^--timeout-ms: expected a number > 0, got "-1"$/],
      [["stack", "--port-offset", "-1"], /^--port-offset: expected an integer in \[0, 10000\], got -1$/],
      [
        [
          "model",
          "grads",
          ...["--model", "m", "--adapter", "a", "--batch", "b", "--out", "o"],
          "--temperature",
          "-1",
        ],
        /^--temperature: expected a positive number, got "-1"$/,
      ],
      [
        ["model", "logprobs", "--model", "m", "--ids", "1,2", "--temperature", "-1"],
        /^--temperature: expected a positive number, got "-1"$/,
      ],
      [
        ["model", "init-adapter", "--model", "m", "--rank", "-4", "--alpha", "8", "--out", "o"],
        /^--rank: expected an integer ≥ 1, got "-4"$/,
      ],
    ];
    for (const [argv, message] of cases) assert.match(await errorOf(argv), message, argv.join(" "));
  });
});

describe("durations", () => {
  it("round before splitting minutes and seconds (239.6 s is 4m00s, not 3m60s)", () => {
    assert.deepEqual([0.4, 59.6, 239.6, 75, 3599.6, 3700].map(duration), [
      "0s",
      "1m00s",
      "4m00s",
      "1m15s",
      "1h00m",
      "1h01m",
    ]);
  });
});

describe("--out", () => {
  it("creates missing parent directories; an unusable path is one line naming the flag", () => {
    const file = join(dir, "x", "y", "out.jsonl");
    assert.equal(outputFile("out", file), file);
    assert.ok(existsSync(dirname(file)));
    assert.equal(outputDir("out", join(dir, "d1", "d2")), join(dir, "d1", "d2"));
    assert.ok(existsSync(join(dir, "d1", "d2")));
    const plain = join(dir, "plain");
    writeFileSync(plain, "");
    assert.throws(
      () => outputFile("out", join(plain, "sub", "f.txt")),
      (e: Error) =>
        e instanceof CliError &&
        e.message === `--out: cannot create ${join(plain, "sub")} (a parent is a file, not a directory)`,
    );
    assert.throws(() => outputFile("out", dir), cliError(/^--out: .* is a directory; expected a file path$/));
  });

  it("temper score and temper model grads write into (or refuse) a missing directory before their work", async () => {
    const input = join(dir, "in.jsonl");
    writeFileSync(input, `${JSON.stringify({ question: "q", reference: 3, completion: "#### 3" })}\n`);
    const out = join(dir, "scores", "deep", "out.jsonl");
    const stderr = process.stderr.write;
    process.stderr.write = (() => true) as typeof process.stderr.write; // score's summary table
    try {
      await dispatch(["score", "--data", input, "--out", out]);
    } finally {
      process.stderr.write = stderr;
    }
    assert.equal(JSON.parse(readFileSync(out, "utf8")).rewards.reward, 1);

    const batch = join(dir, "batch.jsonl");
    writeFileSync(batch, `${JSON.stringify({ input_ids: [1, 2], completion_mask: [0, 1] })}\n`);
    writeFileSync(join(dir, "file"), "");
    const argv = ["model", "grads", "--model", dir, "--adapter", dir, "--batch", batch, "--loss", "sft"];
    assert.match(
      await errorOf([...argv, "--out", join(dir, "file", "g.safetensors")]),
      /^--out: cannot create .*file \(a file of that name exists\)$/,
    );
  });

  it("temper model init: a missing --out is created, with progress on stderr as plain lines", async () => {
    const r = await runs.init;
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, /^wrote .*tiny: 139\.7K parameters/);
    assert.ok(readdirSync(join(dir, "a", "b", "tiny")).includes("model.safetensors"));
    const lines = r.stderr.trimEnd().split("\n");
    assert.ok(!r.stderr.includes("\r"), "no carriage returns when stderr is not a terminal");
    assert.match(lines[0], /^init tiny: 0\/139\.7K parameters written \(0%\)/);
    assert.match(
      lines.at(-1)!,
      /^init tiny: 139\.7K\/139\.7K parameters written \(100%\), elapsed \d+s, ETA 0s$/,
    );
    assert.ok(lines.length <= 22, `${lines.length} lines`);
  });
});

describe("temper --version", () => {
  it("prints the tools package's version and the git commit, exit 0", async () => {
    const r = await runs.version;
    assert.equal(r.code, 0, r.stderr);
    const { version } = JSON.parse(readFileSync(new URL("../package.json", import.meta.url), "utf8"));
    const head = spawnSync("git", ["rev-parse", "HEAD"], { cwd: dirname(bin), encoding: "utf8" });
    const commit = head.status === 0 ? head.stdout.trim() : undefined;
    if (commit)
      assert.match(r.stdout, new RegExp(`^temper ${version} \\(commit ${commit}(, modified)?\\)\\n$`));
    else assert.equal(r.stdout, `temper ${version}\n`);
  });
});

describe("Progress", () => {
  class Sink {
    text = "";
    write(s: string) {
      this.text += s;
      return true;
    }
  }

  it("a terminal gets one live line redrawn at most every redrawMs, and the end", () => {
    const out = new Sink();
    let now = 0;
    const p = new Progress({ out: out as never, tty: true, redrawMs: 100, now: () => now });
    for (let i = 0; i <= 10; i++) {
      now = i * 30;
      p.update(i, 10, (live) => `${live ? "live" : "plain"} ${i}`);
    }
    p.line("kept");
    p.end();
    assert.equal(out.text, "\r\x1b[Klive 0\r\x1b[Klive 4\r\x1b[Klive 8\r\x1b[Klive 10\r\x1b[Kkept\n");
  });

  it("a log gets a plain line per 1/plainLines of the total, the last at 100%", () => {
    const out = new Sink();
    const p = new Progress({ out: out as never, tty: false, plainLines: 4 });
    for (let i = 0; i <= 1000; i++) p.update(i, 1000, (live) => `${live ? "live" : "plain"} ${i}`);
    p.update(1000, 1000, () => "again");
    p.end();
    assert.equal(out.text, "plain 0\nplain 250\nplain 500\nplain 750\nplain 1000\n");
  });
});
