import assert from "node:assert/strict";
import { test } from "node:test";
import { EndpointPolicy, isLoopback } from "./endpoint-policy.ts";
import { resolveRunConfig } from "./settings.ts";

test("rules: loopback, HOST:PORT, HOST:*, *:PORT, *", () => {
  const p = new EndpointPolicy("loopback, reward-perplexity:15052, scorer:*, *:7000");
  for (const ok of [
    "127.0.0.1:1",
    "127.9.9.9:15051",
    "localhost:80",
    "[::1]:5",
    "reward-perplexity:15052",
    "SCORER:1",
    "anything:7000",
  ])
    assert.equal(p.problem(ok), undefined, ok);
  for (const no of ["reward-perplexity:15053", "10.0.0.1:22", "127.1:80", "evil.example:443", "[::2]:1"])
    assert.match(
      p.problem(no) ?? "",
      /is not admitted by SOURCE_ENDPOINT_ALLOW = loopback, reward-perplexity:15052, scorer:\*, \*:7000$/,
      no,
    );
  assert.equal(new EndpointPolicy("*").problem("a:1"), undefined);
  // replicas: a list is admitted when every entry is
  assert.equal(p.problem("127.0.0.1:5,127.0.0.2:6"), undefined);
  assert.match(p.problem("127.0.0.1:5,10.0.0.9:5") ?? "", /endpoint "10\.0\.0\.9:5" is not admitted/);
  assert.throws(() => new EndpointPolicy("host"), /rule "host": expected loopback, HOST:PORT/);
  assert.throws(() => new EndpointPolicy(" , "), /at least one rule/);
  assert.ok(isLoopback("127.0.0.1") && !isLoopback("128.0.0.1"));
});

test("Configure refuses a source outside the list, naming the field and the rule", () => {
  const policy = new EndpointPolicy("loopback");
  const defaults = { sources: { correctness: "127.0.0.1:1" }, sourceTimeoutMs: 5000, policy };
  const cfg = {
    runId: "r",
    structure: { kind: { $case: "hard" as const, value: {} } },
    sources: { perplexity: "10.1.2.3:22" },
    advantageScale: 0,
    failurePolicy: 0,
    control: 0,
    controlSeed: 0,
    sourceTimeoutMs: 0,
  };
  assert.throws(
    () => resolveRunConfig(cfg, defaults),
    /^GrpcError: config\.sources\["perplexity"\]: endpoint "10\.1\.2\.3:22" is not admitted by SOURCE_ENDPOINT_ALLOW = loopback$/,
  );
  assert.equal(
    resolveRunConfig({ ...cfg, sources: { perplexity: "127.0.0.1:9" } }, defaults).sources.perplexity,
    "127.0.0.1:9",
  );
});
