import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { availableMemory, formatBytes, memoryRefusal } from "./memory.ts";

describe("memory", () => {
  it("MEMORY_LIMIT stands in for what the machine says; a bad one is an error", () => {
    assert.deepEqual(availableMemory({ MEMORY_LIMIT: "4096" }), { bytes: 4096, source: "MEMORY_LIMIT" });
    assert.throws(
      () => availableMemory({ MEMORY_LIMIT: "lots" }),
      /MEMORY_LIMIT="lots": expected a number of bytes/,
    );
    const machine = availableMemory({});
    assert.ok(machine.bytes > 0, machine.source);
  });

  it("refuses what does not fit in one line with both figures; MEMORY_CHECK=off never refuses", () => {
    const env = { MEMORY_LIMIT: String(3 * 1024 ** 3) };
    assert.equal(memoryRefusal(2 * 1024 ** 3, "x", "y", env), null);
    assert.equal(
      memoryRefusal(32.5 * 1024 ** 3, "loading M in float32", "use a smaller model", env),
      "loading M in float32 needs about 32.5 GiB, and 3.0 GiB is available (MEMORY_LIMIT): use a smaller model; MEMORY_CHECK=off tries anyway",
    );
    assert.equal(memoryRefusal(32.5 * 1024 ** 3, "x", "y", { ...env, MEMORY_CHECK: "off" }), null);
    assert.equal(formatBytes(512), "512 B");
    assert.equal(formatBytes(1536), "1.5 KiB");
  });
});
