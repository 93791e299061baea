import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { presetConfig } from "../model/config.ts";
import { tokenizerIds } from "../model/tokenizer.ts";
import { float64Adapter } from "../testing/train.ts";
import { decodeAdapterObject, encodeAdapterObject } from "./adapter-object.ts";
import { initLoraAdapter, type LoraConfig } from "./lora.ts";

const model = presetConfig("tiny", tokenizerIds("bytes"));
const lora: LoraConfig = { rank: 4, alpha: 8, useRslora: false, targetModules: ["q_proj", "down_proj"] };

describe("adapter objects", () => {
  it("round-trip a float32 adapter exactly and carry the PEFT config", () => {
    const adapter = initLoraAdapter(model, lora, { seed: 5, initB: "random" });
    const obj = encodeAdapterObject(adapter, { baseModel: "/models/tiny" });
    const config = JSON.parse(obj.config);
    assert.equal(config.peft_type, "LORA");
    assert.equal(config.base_model_name_or_path, "/models/tiny");
    const back = decodeAdapterObject(obj, model, "float32");
    assert.deepEqual(back.config, adapter.config);
    back.pairs.forEach((p, i) => {
      assert.deepEqual(p.a, adapter.pairs[i].a);
      assert.deepEqual(p.b, adapter.pairs[i].b);
    });
  });

  it("keeps float64 weights bitwise with dtype F64", () => {
    const adapter = float64Adapter(initLoraAdapter(model, lora, { seed: 6, initB: "random" }));
    adapter.pairs[0].a[0] = 1 / 3; // not representable in float32
    const back = decodeAdapterObject(
      encodeAdapterObject(adapter, { baseModel: null, dtype: "F64" }),
      model,
      "float64",
    );
    assert.equal(back.pairs[0].a[0], 1 / 3);
    assert.deepEqual(back.pairs[1].b, adapter.pairs[1].b);
  });

  it("rejects an object whose tensors do not fit the model", () => {
    const adapter = initLoraAdapter(model, lora, { seed: 5 });
    const obj = encodeAdapterObject(adapter, { baseModel: null });
    const other = { ...model, hiddenSize: model.hiddenSize * 2 };
    assert.throws(() => decodeAdapterObject(obj, other, "float32"), /shape/);
  });
});
