// The local Hub (testing/local-hub.ts) checked against @huggingface/hub's own functions, so that
// what Temper's tests pull from it is what the real client expects of the real Hub.
//
// The subset of the Hub's HTTP protocol it speaks (and Temper uses):
// - GET  /api/{models|datasets}/ORG/NAME/revision/REV[?expand=...]: JSON {id, sha (the commit),
//        siblings: [{rfilename}], gated, private, ...}. REV is a branch or a 40-hex commit.
// - POST /api/{models|datasets}/ORG/NAME/paths-info/REV {paths, expand}: [{type, path, size, oid
//        (git sha1), lfs: {oid (sha256), size}, lastCommit: {id}}] (the client's downloadFileToCacheDir).
// - HEAD|GET /ORG/NAME/resolve/REV/PATH, /datasets/ORG/NAME/resolve/REV/PATH:
//        always X-Repo-Commit: the commit REV names;
//        a file in git: 200, ETag: "<git blob sha1>", the bytes (Range honoured: 206, Content-Range);
//        an LFS file: 302 to a second host path (/cdn/<sha256>/PATH, as the Hub sends to its CDN), with
//        X-Linked-Etag: "<sha256>" and X-Linked-Size: <bytes>; the CDN answers with its own ETag
//        and honours Range (206, Content-Range; 416 past the end).
// - errors: JSON {error} with X-Error-Code: 401 GatedRepo for a gated repo without an accepted
//        `Authorization: Bearer` token, 404 RepoNotFound, RevisionNotFound, EntryNotFound.
// Not spoken: Xet (the client takes its Xet path only when resolve answers Content-Type
// application/vnd.xet-fileinfo+json, which this Hub never does; Temper never asks for it), the tree
// API, uploads.
import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, test } from "node:test";
import { downloadFile, downloadFileToCacheDir, fileDownloadInfo, modelInfo } from "@huggingface/hub";
import { hubEnv } from "./env.ts";
import { parseRepoId } from "./ids.ts";
import { pullModel } from "./models.ts";
import { LocalHub, tinyModelFiles } from "./testing/index.ts";

let hub: LocalHub;
let model: Record<string, Uint8Array>;
let commit: string;
const root = mkdtempSync(join(tmpdir(), "temper-local-hub-"));
const repo = "temper-test/tiny";

before(async () => {
  hub = await LocalHub.start();
  model = tinyModelFiles();
  commit = hub.commit("model", repo, model);
});
after(async () => {
  await hub.close();
  rmSync(root, { recursive: true, force: true });
});

const sha256 = (b: Uint8Array) => createHash("sha256").update(b).digest("hex");

test("@huggingface/hub's modelInfo reads the revision API", async () => {
  const info = await modelInfo({ name: repo, hubUrl: hub.url, additionalFields: ["sha", "filePaths"] });
  assert.equal(info.sha, commit);
  assert.deepEqual([...info.filePaths].sort(), Object.keys(model).sort());
});

test("@huggingface/hub's downloadFile takes the plain (non-Xet) path and gets the same bytes", async () => {
  for (const path of ["config.json", "model.safetensors"]) {
    const info = await fileDownloadInfo({ repo, path, hubUrl: hub.url });
    assert.ok(info);
    assert.equal(info.xet, undefined, "no Xet: a plain resolve download");
    assert.equal(info.size, model[path].length);
    if (path === "model.safetensors")
      // the client follows the redirect and reports the CDN's ETag, not the sha256 the Hub linked:
      // Temper reads X-Linked-Etag on the redirect itself instead
      assert.notEqual(info.etag, `"${sha256(model[path])}"`);
    const blob = await downloadFile({ repo, path, hubUrl: hub.url, xet: false });
    assert.ok(blob);
    assert.deepEqual(Buffer.from(await blob.arrayBuffer()), Buffer.from(model[path]));
  }
});

test("a cache the client's downloadFileToCacheDir filled is reused by Temper, offline", async () => {
  const cacheDir = join(root, "client-cache");
  const debug = console.debug;
  console.debug = () => {}; // the client's "Downloading …" line
  try {
    for (const path of Object.keys(model))
      await downloadFileToCacheDir({ repo, path, hubUrl: hub.url, cacheDir, revision: commit });
  } finally {
    console.debug = debug;
  }
  const env = { ...hubEnv({ HF_HUB_CACHE: cacheDir, HF_ENDPOINT: hub.url }), offline: true };
  const r = await pullModel(parseRepoId(`${repo}@${commit}`), { env });
  assert.equal(r.dir, join(cacheDir, "models--temper-test--tiny", "snapshots", commit));
  for (const [path, bytes] of Object.entries(model))
    assert.deepEqual(readFileSync(join(r.dir, path)), Buffer.from(bytes));
  // and Temper, online, adds what is missing to that same cache without fetching what is there
  const served = hub.bytesServed;
  await pullModel(parseRepoId(`${repo}@${commit}`), { env: { ...env, offline: false } });
  assert.equal(hub.bytesServed, served);
});
