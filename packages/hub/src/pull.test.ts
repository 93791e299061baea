// temper's Hub pulls against the local Hub (testing/local-hub.ts): the standard cache layout, a
// second pull that fetches nothing, resuming a cut transfer, checksums, offline mode, errors, and a
// cache laid out by hand the way the Python client lays it out.
import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import {
  existsSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  readlinkSync,
  rmSync,
  statSync,
  symlinkSync,
  writeFileSync,
} from "node:fs";
import { createServer } from "node:http";
import type { AddressInfo } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, test } from "node:test";
import { hubEnv } from "./env.ts";
import { HubError } from "./errors.ts";
import { parseRepoId } from "./ids.ts";
import { cachedModelDir, pullModel, resolveModel } from "./models.ts";
import { pull } from "./pull.ts";
import { LocalHub, tinyModelFiles } from "./testing/index.ts";

let hub: LocalHub;
let model: Record<string, Uint8Array>;
let commit: string;
const root = mkdtempSync(join(tmpdir(), "temper-hub-pull-"));
let n = 0;

/** A fresh, empty cache and the environment that points at it and the local Hub. */
function freshEnv(extra: Record<string, string> = {}) {
  const home = join(root, `home-${n++}`);
  return hubEnv({ HF_HOME: home, HF_ENDPOINT: hub.url, ...extra });
}

before(async () => {
  hub = await LocalHub.start();
  model = tinyModelFiles();
  commit = hub.commit("model", "temper-test/tiny", {
    ...model,
    "README.md": "# tiny\n",
    "empty.txt": "",
    "pytorch_model.bin": "not fetched",
  });
  hub.commit("model", "temper-test/gated", model, { gated: true });
});
after(async () => {
  await hub.close();
  rmSync(root, { recursive: true, force: true });
});

const sha256 = (b: Uint8Array) => createHash("sha256").update(b).digest("hex");
const gitSha1 = (b: Uint8Array) => createHash("sha1").update(`blob ${b.length}\0`).update(b).digest("hex");

describe("temper model pull against the local Hub", () => {
  test("an empty cache fills in the Hub layout; a second pull fetches nothing", async () => {
    const env = freshEnv();
    const ref = parseRepoId("temper-test/tiny");
    const first = await pullModel(ref, { env });
    assert.equal(first.commit, commit);
    const repoDir = join(env.cacheDir, "models--temper-test--tiny");
    assert.equal(first.dir, join(repoDir, "snapshots", commit));
    assert.equal(readFileSync(join(repoDir, "refs", "main"), "utf8"), commit);
    // only what Temper reads: no README, no .bin
    assert.deepEqual(readdirSync(first.dir).sort(), Object.keys(model).sort());
    for (const [name, bytes] of Object.entries(model)) {
      const etag = name.endsWith(".safetensors") ? sha256(bytes) : gitSha1(bytes);
      assert.equal(readlinkSync(join(first.dir, name)), `../../blobs/${etag}`, name);
      assert.deepEqual(readFileSync(join(first.dir, name)), Buffer.from(bytes), name);
    }
    assert.ok(first.files.every((f) => f.fetched === f.size));

    const served = hub.bytesServed;
    const again = await pullModel(ref, { env });
    assert.equal(again.dir, first.dir);
    assert.equal(hub.bytesServed, served, "a second pull moves no file bytes");
    assert.ok(again.files.every((f) => f.fetched === 0));
  });

  test("a connection cut half-way resumes with a Range request where it stopped", async () => {
    const env = freshEnv();
    const weights = model["model.safetensors"];
    const half = weights.length >> 1;
    hub.cutOnce("model.safetensors", half);
    const ref = parseRepoId("temper-test/tiny");
    await assert.rejects(pullModel(ref, { env }), (err: Error) => {
      assert.ok(err instanceof HubError, String(err));
      assert.match(
        err.message,
        /model\.safetensors: connection lost after \d+ of \d+ bytes.*run again to resume/,
      );
      return true;
    });
    const blob = join(env.cacheDir, "models--temper-test--tiny", "blobs", sha256(weights));
    assert.equal(statSync(`${blob}.incomplete`).size, half);
    assert.ok(
      !existsSync(join(env.cacheDir, "models--temper-test--tiny", "snapshots", commit, "model.safetensors")),
    );

    const served = hub.bytesServed;
    const requests = hub.requests.length;
    const r = await pullModel(ref, { env });
    const weightsFile = r.files.find((f) => f.path === "model.safetensors")!;
    assert.equal(weightsFile.fetched, weights.length - half, "only the missing half is fetched");
    const rest = ["tokenizer.json", "tokenizer_config.json"].reduce((s, f) => s + model[f].length, 0);
    assert.equal(hub.bytesServed - served, weights.length - half + rest);
    assert.ok(
      hub.requests
        .slice(requests)
        .some((q) => /^GET \/cdn\/.* Range: bytes=(\d+)-$/.test(q) && q.endsWith(`=${half}-`)),
    );
    assert.deepEqual(readFileSync(join(r.dir, "model.safetensors")), Buffer.from(weights));
    assert.ok(!existsSync(`${blob}.incomplete`));
  });

  test("corrupted bytes are caught by the sha256 (LFS) and the git sha1 (others); nothing is linked", async () => {
    for (const file of ["model.safetensors", "config.json"]) {
      const env = freshEnv();
      hub.corruptBytes(file);
      try {
        await assert.rejects(pullModel(parseRepoId("temper-test/tiny"), { env }), (err: Error) => {
          assert.ok(err instanceof HubError);
          assert.match(
            err.message,
            new RegExp(`${file.replace(".", "\\.")}: checksum mismatch \\((sha256|git-sha1) `),
          );
          return true;
        });
      } finally {
        hub.corruptBytes(file, false);
      }
      const snap = join(env.cacheDir, "models--temper-test--tiny", "snapshots", commit);
      assert.ok(!existsSync(join(snap, file)), `${file} not in the snapshot`);
      const blobs = join(env.cacheDir, "models--temper-test--tiny", "blobs");
      assert.ok(
        !readdirSync(blobs).some((b) => b.endsWith(".incomplete")),
        "the bad partial file is removed",
      );
    }
  });

  test("a blob corrupted on disk is found by --verify", async () => {
    const env = freshEnv();
    const r = await pullModel(parseRepoId("temper-test/tiny"), { env });
    const blob = join(r.dir, readlinkSync(join(r.dir, "model.safetensors")));
    const bytes = readFileSync(blob);
    bytes[10] ^= 1;
    writeFileSync(blob, bytes);
    await pullModel(parseRepoId("temper-test/tiny"), { env }); // sizes match: trusted without --verify
    await assert.rejects(
      pullModel(parseRepoId("temper-test/tiny"), { env, verify: true }),
      /model\.safetensors: cached blob .* is corrupt/,
    );
  });

  test("a zero-byte file is fetched, checked and linked", async () => {
    const env = freshEnv();
    const r = await pull(parseRepoId("temper-test/tiny"), { env, select: (p) => p === "empty.txt" });
    assert.equal(readFileSync(join(r.dir, "empty.txt")).length, 0);
    assert.equal(
      readlinkSync(join(r.dir, "empty.txt")),
      "../../blobs/e69de29bb2d1d6434b8b29ae775ad8c2e48c5391",
    );
  });

  test("HF_HUB_OFFLINE=1 answers from the cache and says clearly what is missing", async () => {
    const env = freshEnv();
    const offline = { ...env, offline: true };
    await assert.rejects(
      pullModel(parseRepoId("temper-test/tiny"), { env: offline }),
      /temper-test\/tiny is not in the Hub cache \(.*\) and HF_HUB_OFFLINE=1/,
    );
    const requests = hub.requests.length;
    await pullModel(parseRepoId("temper-test/tiny"), { env });
    const r = await pullModel(parseRepoId("temper-test/tiny"), { env: offline });
    assert.equal(r.commit, commit);
    assert.equal(await resolveModel("temper-test/tiny", { env: offline }), r.dir);
    rmSync(join(r.dir, "model.safetensors"));
    const after = hub.requests.length;
    await assert.rejects(
      pullModel(parseRepoId("temper-test/tiny"), { env: offline }),
      /model\.safetensors is not in the Hub cache .* and HF_HUB_OFFLINE=1/,
    );
    assert.equal(hub.requests.length, after, "offline: no request at all");
    assert.ok(after > requests);
  });

  test("a gated repo: 401 names HF_TOKEN; with the token it pulls", async () => {
    const env = freshEnv();
    await assert.rejects(pullModel(parseRepoId("temper-test/gated"), { env }), (err: Error) => {
      assert.ok(err instanceof HubError);
      assert.match(err.message, /^temper-test\/gated needs a login \(401.*set HF_TOKEN/);
      assert.ok(!err.message.includes("\n"));
      return true;
    });
    await assert.rejects(
      pullModel(parseRepoId("temper-test/gated"), { env: { ...env, token: "hf_wrong" } }),
      /HF_TOKEN was refused \(401\)/,
    );
    const r = await pullModel(parseRepoId("temper-test/gated"), {
      env: { ...env, token: "hf_local_test_token" },
    });
    assert.ok(existsSync(join(r.dir, "config.json")));
  });

  test("404s name the repo, the revision or the file", async () => {
    const env = freshEnv();
    await assert.rejects(
      pullModel(parseRepoId("temper-test/nowhere"), { env }),
      /^HubError: model temper-test\/nowhere not found on http/,
    );
    await assert.rejects(
      pullModel(parseRepoId("temper-test/tiny@v9"), { env }),
      /temper-test\/tiny@v9: revision "v9" not found/,
    );
    await assert.rejects(
      pull(parseRepoId("temper-test/tiny"), { env, require: ["missing.json"] }),
      /temper-test\/tiny: file missing\.json not found/,
    );
    const closed = createServer();
    await new Promise<void>((r) => closed.listen(0, "127.0.0.1", r));
    const endpoint = `http://127.0.0.1:${(closed.address() as AddressInfo).port}`;
    await new Promise((r) => closed.close(r));
    await assert.rejects(
      pullModel(parseRepoId("temper-test/tiny"), { env: { ...env, endpoint } }),
      /cannot reach http:\/\/127\.0\.0\.1:\d+ \(ECONNREFUSED\)/,
    );
  });

  test("a full disk is one line, and the partial file stays to resume", {
    skip: !existsSync("/dev/full"),
  }, async () => {
    const env = freshEnv();
    const weights = model["model.safetensors"];
    const blobs = join(env.cacheDir, "models--temper-test--tiny", "blobs");
    mkdirSync(blobs, { recursive: true });
    // every write to /dev/full fails with ENOSPC
    symlinkSync("/dev/full", join(blobs, `${sha256(weights)}.incomplete`));
    await assert.rejects(
      pullModel(parseRepoId("temper-test/tiny"), { env }),
      /model\.safetensors: disk full writing .*\.incomplete/,
    );
    assert.ok(
      !existsSync(join(env.cacheDir, "models--temper-test--tiny", "snapshots", commit, "model.safetensors")),
    );
  });

  test("a cache laid out by hand as the Python client lays it out is reused, online and offline", async () => {
    const env = freshEnv();
    const repo = join(env.cacheDir, "models--temper-test--tiny");
    const snap = join(repo, "snapshots", commit);
    mkdirSync(join(repo, "blobs"), { recursive: true });
    mkdirSync(snap, { recursive: true });
    mkdirSync(join(repo, "refs"));
    writeFileSync(join(repo, "refs", "main"), commit); // no newline, as huggingface_hub writes it
    for (const [name, bytes] of Object.entries(model)) {
      const etag = name.endsWith(".safetensors") ? sha256(bytes) : gitSha1(bytes);
      writeFileSync(join(repo, "blobs", etag), bytes);
      symlinkSync(`../../blobs/${etag}`, join(snap, name));
    }
    assert.equal(cachedModelDir("temper-test/tiny", env), snap);
    assert.equal(
      (await pullModel(parseRepoId("temper-test/tiny"), { env: { ...env, offline: true } })).dir,
      snap,
    );
    const served = hub.bytesServed;
    const r = await pullModel(parseRepoId("temper-test/tiny"), { env });
    assert.equal(r.dir, snap);
    assert.equal(hub.bytesServed, served, "nothing fetched");
  });

  test("the client's 'Downloading …' line never reaches stdout", async () => {
    const writes: string[] = [];
    const original = process.stdout.write.bind(process.stdout);
    process.stdout.write = ((chunk: string | Uint8Array, ...rest: never[]) => {
      writes.push(String(chunk));
      return original(chunk, ...rest);
    }) as typeof process.stdout.write;
    const debug = console.debug;
    try {
      await pullModel(parseRepoId("temper-test/tiny"), { env: freshEnv() });
    } finally {
      process.stdout.write = original;
      console.debug = debug;
    }
    assert.ok(!writes.some((w) => /Downloading/.test(w)), writes.join(""));
  });
});
