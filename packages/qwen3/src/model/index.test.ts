// The "@temper/qwen3/model" subpath must not load onnxruntime-node: a service that only hashes or
// describes a model (the orchestrator) then starts without the native runtime. Each import runs in
// a fresh process, which then lists the CommonJS modules it holds; "@temper/qwen3" is the control
// that shows the check sees the runtime when it is loaded.
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { describe, it } from "node:test";
import { fileURLToPath } from "node:url";

const packageDir = fileURLToPath(new URL("../..", import.meta.url));

/** The onnxruntime-node files loaded after importing `specifier`, and the types of `names` in it. */
function loadedBy(specifier: string, names: string[]): { ort: string[]; types: string[] } {
  const script = `
    import { createRequire } from "node:module";
    const mod = await import(${JSON.stringify(specifier)});
    const ort = Object.keys(createRequire(import.meta.url).cache).filter((k) => k.includes("onnxruntime-node"));
    console.log(JSON.stringify({ ort, types: ${JSON.stringify(names)}.map((n) => typeof mod[n]) }));
  `;
  const r = spawnSync(process.execPath, ["--import", "tsx", "--input-type=module", "-e", script], {
    cwd: packageDir,
    encoding: "utf8",
  });
  assert.equal(r.status, 0, r.stderr);
  return JSON.parse(r.stdout.trim().split("\n").at(-1)!);
}

describe("@temper/qwen3/model", () => {
  it("exports the content hash, config, PRNG and tokenizer without loading onnxruntime-node", () => {
    const names = ["modelContentHash", "readConfig", "Rng", "loadTokenizer", "openModelDir"];
    const { ort, types } = loadedBy("@temper/qwen3/model", names);
    assert.deepEqual(
      types,
      names.map(() => "function"),
    );
    assert.deepEqual(ort, [], `importing @temper/qwen3/model loaded ${ort.join(", ")}`);
  });

  it("control: the package root does load onnxruntime-node, and the check sees it", () => {
    const { ort, types } = loadedBy("@temper/qwen3", ["modelContentHash"]);
    assert.deepEqual(types, ["function"]);
    assert.ok(
      ort.some((f) => f.endsWith("onnxruntime-node/dist/index.js")),
      ort.join(", "),
    );
  });
});
