// PEFT adapter directories: exact file names, config keys, tensor names/shapes/dtypes, round trip and
// one-line errors on adapters that do not fit.
import assert from "node:assert/strict";
import { mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, describe, it } from "node:test";
import { presetConfig, type Qwen3Config } from "../model/config.ts";
import { SafetensorsFile, writeSafetensors } from "../model/safetensors.ts";
import { tokenizerIds } from "../model/tokenizer.ts";
import { initLoraAdapter, type LoraConfig, parseLoraTargets } from "./lora.ts";
import { ADAPTER_CONFIG_FILE, ADAPTER_WEIGHTS_FILE, loadAdapter, saveAdapter } from "./peft.ts";

const MODEL: Qwen3Config = presetConfig("tiny", tokenizerIds("bytes")); // hidden 64, q 128, kv 64, mlp 128
const CONFIG: LoraConfig = {
  rank: 4,
  alpha: 16,
  useRslora: true,
  targetModules: parseLoraTargets("q,v,o,down"),
};
const root = mkdtempSync(join(tmpdir(), "qwen3-peft-"));
after(() => rmSync(root, { recursive: true, force: true }));

describe("PEFT adapter files", () => {
  const dir = join(root, "adapter");
  const adapter = initLoraAdapter(MODEL, CONFIG, { seed: 11, initB: "random" });

  it("carry exactly PEFT's file names, config keys, tensor names, shapes and float32", () => {
    saveAdapter(dir, adapter, { baseModel: "models/tiny" });
    assert.deepEqual(readdirSync(dir).sort(), [ADAPTER_CONFIG_FILE, ADAPTER_WEIGHTS_FILE]);
    assert.deepEqual(JSON.parse(readFileSync(join(dir, "adapter_config.json"), "utf8")), {
      alpha_pattern: {},
      auto_mapping: null,
      base_model_name_or_path: "models/tiny",
      bias: "none",
      fan_in_fan_out: false,
      inference_mode: true,
      init_lora_weights: true,
      layers_pattern: null,
      layers_to_transform: null,
      lora_alpha: 16,
      lora_dropout: 0,
      modules_to_save: null,
      peft_type: "LORA",
      r: 4,
      rank_pattern: {},
      revision: null,
      target_modules: ["q_proj", "v_proj", "o_proj", "down_proj"],
      task_type: "CAUSAL_LM",
      use_dora: false,
      use_rslora: true,
    });
    const file = SafetensorsFile.open(join(dir, "adapter_model.safetensors"));
    const tensors = [...file.tensors.values()].map((t) => `${t.name} ${t.dtype} [${t.shape}]`).sort();
    file.close();
    const expected = [0, 1].flatMap((i) => [
      `base_model.model.model.layers.${i}.mlp.down_proj.lora_A.weight F32 [4,128]`,
      `base_model.model.model.layers.${i}.mlp.down_proj.lora_B.weight F32 [64,4]`,
      `base_model.model.model.layers.${i}.self_attn.o_proj.lora_A.weight F32 [4,128]`,
      `base_model.model.model.layers.${i}.self_attn.o_proj.lora_B.weight F32 [64,4]`,
      `base_model.model.model.layers.${i}.self_attn.q_proj.lora_A.weight F32 [4,64]`,
      `base_model.model.model.layers.${i}.self_attn.q_proj.lora_B.weight F32 [128,4]`,
      `base_model.model.model.layers.${i}.self_attn.v_proj.lora_A.weight F32 [4,64]`,
      `base_model.model.model.layers.${i}.self_attn.v_proj.lora_B.weight F32 [64,4]`,
    ]);
    assert.deepEqual(tensors, expected.sort());
  });

  it("round-trip bit for bit (float32) and widen exactly (float64)", () => {
    const loaded = loadAdapter(dir, MODEL);
    assert.deepEqual(loaded.config, CONFIG);
    assert.equal(loaded.baseModel, "models/tiny");
    assert.equal(loaded.pairs.length, adapter.pairs.length);
    loaded.pairs.forEach((p, i) => {
      const q = adapter.pairs[i];
      assert.deepEqual(
        [p.layer, p.module, p.inFeatures, p.outFeatures],
        [q.layer, q.module, q.inFeatures, q.outFeatures],
      );
      assert.ok(p.a instanceof Float32Array);
      assert.deepEqual(p.a, q.a);
      assert.deepEqual(p.b, q.b);
    });
    const wide = loadAdapter(dir, MODEL, "float64");
    assert.ok(wide.pairs[3].b instanceof Float64Array);
    assert.deepEqual(Array.from(wide.pairs[3].b), Array.from(adapter.pairs[3].b));
    // saving what was loaded gives the same bytes
    saveAdapter(join(root, "again"), loaded, { baseModel: "models/tiny" });
    for (const f of [ADAPTER_CONFIG_FILE, ADAPTER_WEIGHTS_FILE])
      assert.deepEqual(readFileSync(join(root, "again", f)), readFileSync(join(dir, f)));
  });
});

describe("loadAdapter errors", () => {
  const adapter = initLoraAdapter(MODEL, CONFIG, { seed: 1 });

  /** A saved adapter whose config JSON or tensors are then altered. */
  function variant(
    name: string,
    edit: { config?: (c: Record<string, unknown>) => void; drop?: string; extra?: boolean },
  ) {
    const dir = join(root, name);
    saveAdapter(dir, adapter, { baseModel: null });
    if (edit.config) {
      const c = JSON.parse(readFileSync(join(dir, ADAPTER_CONFIG_FILE), "utf8"));
      edit.config(c);
      writeFileSync(join(dir, ADAPTER_CONFIG_FILE), JSON.stringify(c));
    }
    if (edit.drop || edit.extra) {
      const path = join(dir, ADAPTER_WEIGHTS_FILE);
      const file = SafetensorsFile.open(path);
      const tensors = [...file.tensors.values()]
        .filter((t) => t.name !== edit.drop)
        .map((t) => ({ name: t.name, dtype: t.dtype, shape: t.shape, values: file.read(t.name) }));
      file.close();
      if (edit.extra)
        tensors.push({
          name: "base_model.model.lm_head.lora_A.weight",
          dtype: "F32",
          shape: [1],
          values: new Float32Array(1),
        });
      writeSafetensors(
        path,
        tensors.map((t) => ({ ...t, chunks: () => [t.values] })),
      );
    }
    return dir;
  }

  it("name the offending field or tensor in one line", () => {
    const cases: [string, RegExp][] = [
      [join(root, "nope"), /nope: not a directory/],
      [
        variant("peft-type", {
          config: (c) => {
            c.peft_type = "IA3";
          },
        }),
        /peft_type "IA3" is not supported \(expected "LORA"\)/,
      ],
      [
        variant("targets", {
          config: (c) => {
            c.target_modules = ["q_proj", "fc1"];
          },
        }),
        /unknown module "fc1"/,
      ],
      [
        variant("fan", {
          config: (c) => {
            c.fan_in_fan_out = true;
          },
        }),
        /fan_in_fan_out true is not supported/,
      ],
      [
        variant("rank", {
          config: (c) => {
            c.r = 8;
          },
        }),
        /q_proj\.lora_A\.weight has shape \[4, 64\], the model and r=8 imply \[8, 64\]/,
      ],
      [
        variant("drop", { drop: "base_model.model.model.layers.1.mlp.down_proj.lora_B.weight" }),
        /missing tensor base_model\.model\.model\.layers\.1\.mlp\.down_proj\.lora_B\.weight/,
      ],
      [variant("extra", { extra: true }), /unexpected tensor base_model\.model\.lm_head\.lora_A\.weight/],
      [
        variant("fewer", {
          config: (c) => {
            c.target_modules = ["q_proj", "v_proj", "o_proj"];
          },
        }),
        /unexpected tensor .*down_proj/,
      ],
    ];
    for (const [dir, message] of cases) {
      assert.throws(
        () => loadAdapter(dir, MODEL),
        (err: Error) => {
          assert.match(err.message, message);
          assert.equal(err.message.split("\n").length, 1);
          return true;
        },
      );
    }
  });

  it("an adapter for another model's shapes is rejected, naming the tensor", () => {
    const dir = variant("other-model", {});
    const wider = { ...MODEL, intermediateSize: 256 };
    assert.throws(
      () => loadAdapter(dir, wider),
      /layers\.0\.mlp\.down_proj\.lora_A\.weight has shape \[4, 128\], the model and r=4 imply \[4, 256\]/,
    );
    assert.throws(
      () => loadAdapter(dir, { ...MODEL, numHiddenLayers: 3 }),
      /missing tensor base_model\.model\.model\.layers\.2\./,
    );
  });
});
