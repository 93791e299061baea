// Secrets are readable by their owner only: another local user (uid 65534, "nobody") reads no key,
// token or password, whether through the 0700 directories or, were those opened, past the files'
// own 0600. `--owner` hands them to the services' user. Switching uid needs root (CI has it).
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { chmodSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, describe, it } from "node:test";
import { ensureSecrets, shareSecrets } from "./secrets.ts";

const NOBODY = 65534;
const isRoot = process.getuid?.() === 0;

/** Whether uid 65534 can read `file`. */
function nobodyReads(file: string): boolean {
  const r = spawnSync(process.execPath, ["-e", `require("node:fs").readFileSync(${JSON.stringify(file)})`], {
    uid: NOBODY,
    gid: NOBODY,
    stdio: "ignore",
  });
  return r.status === 0;
}

/** Every file under `dir`, recursively. */
function filesUnder(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((e) =>
    e.isDirectory() ? filesUnder(join(dir, e.name)) : [join(dir, e.name)],
  );
}

describe("temper secrets: file modes", { skip: !isRoot && "needs root to switch to another uid" }, () => {
  // a parent every user may pass through, as /var/lib or a home directory would be
  const root = mkdtempSync(join(tmpdir(), "temper-secrets-"));
  chmodSync(root, 0o755);
  after(() => rmSync(root, { recursive: true, force: true }));

  it("another uid reads none of them; files 0600, directories 0700", { timeout: 120_000 }, async () => {
    const dir = join(root, "secrets");
    await ensureSecrets({ dir, services: ["scheduler", "learner"], backend: "forge" });
    const files = filesUnder(dir);
    assert.ok(files.length >= 10, `only ${files.length} files`);
    for (const f of files) assert.equal(statSync(f).mode & 0o777, 0o600, f);
    for (const d of [dir, join(dir, "nats")]) assert.equal(statSync(d).mode & 0o777, 0o700, d);

    // the control: a world-readable file beside them is read, so a refusal below means something
    const control = join(root, "control");
    writeFileSync(control, "x", { mode: 0o644 });
    assert.ok(nobodyReads(control), "uid 65534 cannot read a 0644 file: the check itself is broken");

    const read = files.filter(nobodyReads);
    assert.deepEqual(read, [], "read through the directories");
    // the files' own modes hold even where a directory is opened
    chmodSync(dir, 0o755);
    chmodSync(join(dir, "nats"), 0o755);
    assert.deepEqual(files.filter(nobodyReads), [], "read past the files' modes");
  });

  it("--owner hands them to the services' user, and a second run keeps and re-protects them", async () => {
    const dir = join(root, "owned");
    await ensureSecrets({
      dir,
      services: ["scheduler"],
      backend: "forge",
      owner: { uid: NOBODY, gid: NOBODY },
    });
    const files = filesUnder(dir);
    for (const f of files) assert.equal(statSync(f).uid, NOBODY, f);
    assert.deepEqual(
      files.filter((f) => !nobodyReads(f)),
      [],
      "the owner reads every file",
    );
    // an older directory with open modes is tightened when kept
    chmodSync(files[0], 0o644);
    const again = await ensureSecrets({ dir, services: ["scheduler"], backend: "forge" });
    assert.equal(again.outcome, "kept");
    assert.equal(statSync(files[0]).mode & 0o777, 0o600);
  });
});

describe("temper secrets --share: each holder gets its own files only", () => {
  const root = mkdtempSync(join(tmpdir(), "temper-share-"));
  after(() => rmSync(root, { recursive: true, force: true }));
  const services = ["reward-correctness", "scheduler", "learner"];
  const rel = (dir: string) =>
    filesUnder(dir)
      .map((f) => f.slice(dir.length + 1))
      .sort();

  it("a service: the CA, the token digests, its key pair and its NATS password; never the operator's token", async () => {
    const dir = join(root, "all");
    await ensureSecrets({ dir, services, backend: "forge" });
    const to = join(root, "scheduler");
    shareSecrets(dir, "scheduler", to, services);
    assert.deepEqual(rel(to), [
      "ca.crt",
      "nats/scheduler.password",
      "scheduler.crt",
      "scheduler.key",
      "tokens",
    ]);
    for (const f of filesUnder(to)) {
      assert.equal(statSync(f).mode & 0o777, 0o600, f);
      assert.deepEqual(readFileSync(f), readFileSync(join(dir, f.slice(to.length + 1))), f);
    }
    for (const d of [to, join(to, "nats")]) assert.equal(statSync(d).mode & 0o777, 0o700, d);
    // a reward source has no NATS user; the server and the operator get theirs
    shareSecrets(dir, "reward-correctness", join(root, "rc"), services);
    assert.deepEqual(rel(join(root, "rc")), [
      "ca.crt",
      "reward-correctness.crt",
      "reward-correctness.key",
      "tokens",
    ]);
    shareSecrets(dir, "nats", join(root, "nats"), services);
    assert.deepEqual(rel(join(root, "nats")), ["nats/nats.conf"]);
    shareSecrets(dir, "operator", join(root, "op"), services);
    assert.deepEqual(rel(join(root, "op")), ["ca.crt", "operator.crt", "operator.key", "operator.token"]);
    // sharing another holder into the same directory leaves nothing of the first
    shareSecrets(dir, "learner", to, services);
    assert.deepEqual(rel(to), ["ca.crt", "learner.crt", "learner.key", "nats/learner.password", "tokens"]);
    assert.throws(() => shareSecrets(dir, "mallory", join(root, "m"), services), /no secrets for "mallory"/);
  });
});
