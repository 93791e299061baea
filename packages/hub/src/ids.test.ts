import assert from "node:assert/strict";
import { test } from "node:test";
import { looksLikeRepoId, parseHfUrl, parseRepoId } from "./ids.ts";

test("repo ids: ORG/NAME[@REVISION]", () => {
  assert.deepEqual(parseRepoId("Qwen/Qwen3-4B"), { type: "model", id: "Qwen/Qwen3-4B", revision: "main" });
  assert.deepEqual(parseRepoId("Qwen/Qwen3-0.6B@refs/pr/3").revision, "refs/pr/3");
  for (const bad of ["Qwen", "a/b/c", "../x", "Qwen/Qwen3@", "a/b@../main", "./model"])
    assert.throws(() => parseRepoId(bad), /HubError/, bad);
  assert.ok(looksLikeRepoId("Qwen/Qwen3-4B@v1"));
  assert.ok(!looksLikeRepoId("./models/x") && !looksLikeRepoId("/abs/path") && !looksLikeRepoId("model"));
});

test("hf:// URLs: the Hub's own form", () => {
  assert.deepEqual(parseHfUrl("hf://datasets/openai/gsm8k@abc123/main/train-00000-of-00001.parquet"), {
    type: "dataset",
    id: "openai/gsm8k",
    revision: "abc123",
    path: "main/train-00000-of-00001.parquet",
  });
  assert.equal(parseHfUrl("hf://datasets/openai/gsm8k/main/x.parquet").revision, "main");
  assert.equal(parseHfUrl("hf://Qwen/Qwen3-4B/config.json").type, "model");
  assert.equal(
    parseHfUrl("hf://datasets/o/n@refs%2Fconvert%2Fparquet/a.parquet").revision,
    "refs/convert/parquet",
  );
  for (const bad of ["hf://datasets/openai", "hf://datasets/openai/gsm8k/../x", "http://x/y/z"])
    assert.throws(() => parseHfUrl(bad), /HubError/, bad);
});
