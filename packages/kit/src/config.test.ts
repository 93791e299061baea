// Typed env config: parsing, defaults, docs, and a real process exiting 2 with one line naming
// the bad variable.
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { describe, test } from "node:test";
import { fileURLToPath } from "node:url";
import { ConfigError, describeConfig, env, loadConfig } from "./config.ts";

const schema = {
  PORT: env.int({ default: 15051, min: 0, max: 65535, doc: "gRPC port." }),
  RATIO: env.number({ default: 0.5, min: 0, max: 1, doc: "A ratio." }),
  MODE: env.enum(["skip", "fail"] as const, { default: "skip", doc: "Failure policy." }),
  VERBOSE: env.bool({ default: false, doc: "More output." }),
  TARGET: env.hostPort({ default: "127.0.0.1:15060", doc: "Scheduler address." }),
  NAME: env.string({ pattern: /^[a-z]+$/, doc: "Required name." }),
  EXTRA: env.optional(env.string({ doc: "Optional." })),
};

describe("loadConfig", () => {
  test("defaults fill unset and empty variables; values are typed", () => {
    const c = loadConfig(schema, { NAME: "abc", PORT: "" });
    assert.deepEqual(c, {
      PORT: 15051,
      RATIO: 0.5,
      MODE: "skip",
      VERBOSE: false,
      TARGET: "127.0.0.1:15060",
      NAME: "abc",
      EXTRA: undefined,
    });
    const d = loadConfig(schema, {
      NAME: "x",
      PORT: "0",
      RATIO: "1",
      MODE: "fail",
      VERBOSE: "TRUE",
      TARGET: "[::1]:9",
      EXTRA: "e",
    });
    assert.deepEqual(
      [d.PORT, d.RATIO, d.MODE, d.VERBOSE, d.TARGET, d.EXTRA],
      [0, 1, "fail", true, "[::1]:9", "e"],
    );
  });

  const bad: [Record<string, string>, string][] = [
    [{ NAME: "a", PORT: "70000" }, 'PORT="70000": expected an integer in [0, 65535]'],
    [{ NAME: "a", PORT: "12.5" }, 'PORT="12.5": expected an integer in [0, 65535]'],
    [{ NAME: "a", RATIO: "nan" }, 'RATIO="nan": expected a number in [0, 1]'],
    [{ NAME: "a", MODE: "maybe" }, 'MODE="maybe": expected one of skip, fail'],
    [{ NAME: "a", VERBOSE: "sure" }, 'VERBOSE="sure": expected true or false'],
    [{ NAME: "a", TARGET: "localhost" }, 'TARGET="localhost": expected host:port with a port in [1, 65535]'],
    [{ NAME: "A1" }, 'NAME="A1": expected a string matching /^[a-z]+$/'],
    [{}, "NAME is required (string matching /^[a-z]+$/): Required name."],
  ];
  for (const [source, message] of bad) {
    test(`rejects ${JSON.stringify(source)}`, () => {
      assert.throws(
        () => loadConfig(schema, source),
        (e: ConfigError) => e instanceof ConfigError && e.message === message,
      );
    });
  }

  test("describeConfig lists every variable with type and default", () => {
    const lines = describeConfig(schema).split("\n");
    assert.equal(lines.length, 2 + Object.keys(schema).length);
    assert.equal(lines[2], "| `PORT` | integer in [0, 65535] | `15051` | gRPC port. |");
    assert.match(lines[7], /^\| `NAME` .* \| required \|/);
    assert.match(lines[8], /^\| `EXTRA` .* \| unset \|/);
  });
});

describe("a service process with a bad variable", () => {
  const main = fileURLToPath(new URL("../test/fixture-main.ts", import.meta.url));
  const run = (vars: Record<string, string>) =>
    spawnSync(process.execPath, ["--import", "tsx", main], {
      env: { ...process.env, ...vars },
      encoding: "utf8",
      timeout: 20_000,
    });

  test("prints one line naming the variable and exits 2", () => {
    const r = run({ PORT: "http" });
    assert.equal(r.status, 2);
    assert.equal(r.stdout, "");
    assert.equal(
      r.stderr,
      'kit-fixture: invalid configuration: PORT="http": expected an integer in [0, 65535]\n',
    );
  });

  test("the same for common and service-specific variables", () => {
    const r = run({ LOG_LEVEL: "loud" });
    assert.equal(r.status, 2);
    assert.equal(r.stderr.trim().split("\n").length, 1);
    assert.match(r.stderr, /^kit-fixture: invalid configuration: LOG_LEVEL="loud": expected one of fatal, /);
  });
});
