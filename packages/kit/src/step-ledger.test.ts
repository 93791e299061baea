import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import { describe, it } from "node:test";
import { GrpcError, Status } from "./errors.ts";
import { checkSameRequest, requestDigest } from "./step-ledger.ts";

describe("step ledger", () => {
  it("digests the parts in order as one byte string", () => {
    const whole = createHash("sha256").update("ab\ncd").digest("hex");
    assert.equal(requestDigest("ab", "\n", new TextEncoder().encode("cd")), whole);
    assert.notEqual(requestDigest("cd", "\n", "ab"), whole);
  });

  it("lets the same request replay, and an unrecorded digest through", () => {
    const d = requestDigest("x");
    checkSameRequest("run r step 1", "scored", d, d, "hint");
    checkSameRequest("run r step 1", "scored", undefined, d, "hint");
  });

  it("refuses another request for a step already done, FAILED_PRECONDITION with both digests", () => {
    const [a, b] = [requestDigest("a"), requestDigest("b")];
    assert.throws(
      () => checkSameRequest('run "r" step 3', "trained", a, b, "the next step is 4"),
      (err: unknown) =>
        err instanceof GrpcError &&
        err.code === Status.FAILED_PRECONDITION &&
        err.message ===
          `run "r" step 3 was already trained with a different request (content hash ${a.slice(0, 12)}…, this one ${b.slice(0, 12)}…): the next step is 4`,
    );
  });
});
