// deploy/Dockerfile's steps without Docker (CI has no engine): the scripts its stages run, in the
// same order, each stage in a folder filled as the Dockerfile fills it (the build context is the
// checkout's files less .dockerignore). Build stage: install-build.sh from the manifests alone
// under NODE_ENV=production (the dev dependencies must still come: buf and ts-proto generate the
// protos), then build.sh over the sources. Runtime stage: install-production.sh from the manifests
// alone, then the tree build.sh assembled. Then the scheduler starts there as the image's CMD starts
// it, next to a nats-server on a free port, and the compose health check (`temper health`) finds it
// SERVING.
import assert from "node:assert/strict";
import { type ChildProcess, spawn, spawnSync } from "node:child_process";
import {
  copyFileSync,
  cpSync,
  existsSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  rmSync,
  statSync,
} from "node:fs";
import { tmpdir } from "node:os";
import { delimiter, dirname, join } from "node:path";
import { after, before, describe, test } from "node:test";
import { findNatsServer } from "@temper/kit";
import { checkHealth, repoRoot, startNats, type TestNats } from "./src/index.ts";

const gitFiles = spawnSync("git", ["ls-files", "-z", "--cached", "--others", "--exclude-standard"], {
  cwd: repoRoot,
  encoding: "utf8",
  maxBuffer: 1 << 26,
});
const skip = !findNatsServer()
  ? "nats-server not installed"
  : gitFiles.status !== 0
    ? `no git checkout to copy (git ls-files: ${gitFiles.error?.message ?? gitFiles.stderr.trim()})`
    : false;

// npm settings the scripts keep: where npm fetches from and caches (the repository's own install
// warmed that cache).
const KEEP_NPM =
  /^npm_config_(cache|cafile|registry|userconfig|globalconfig|proxy|https_proxy|noproxy|strict_ssl)$/i;

// What the scripts see: this environment without what `npm test` adds (npm_* settings, the
// repository's node_modules/.bin on PATH, which would hide a missing buf), under NODE_ENV=production
// as in the image.
function cleanEnv(extra: Record<string, string> = {}): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = {};
  for (const [k, v] of Object.entries(process.env)) {
    if (/^npm_/i.test(k) && !KEEP_NPM.test(k)) continue; // npm_config_local_prefix is the repository
    if (k === "INIT_CWD" || k === "NODE_OPTIONS" || k === "NODE_PATH") continue;
    env[k] = v;
  }
  env.PATH = (env.PATH ?? "")
    .split(delimiter)
    .filter((d) => d && !d.includes("node_modules"))
    .join(delimiter);
  return { ...env, NODE_ENV: "production", ...extra };
}

/** Runs a command to its end; rejects with its last output lines when it fails. */
function run(cmd: string, args: string[], cwd: string, env = cleanEnv()): Promise<string> {
  return new Promise((resolve, reject) => {
    const child = spawn(cmd, args, { cwd, env, stdio: ["ignore", "pipe", "pipe"] });
    let out = "";
    child.stdout.on("data", (c: Buffer) => {
      out += c.toString();
    });
    child.stderr.on("data", (c: Buffer) => {
      out += c.toString();
    });
    child.once("error", reject);
    child.once("exit", (code, signal) => {
      if (code === 0) resolve(out);
      else reject(new Error(`${cmd} ${args.join(" ")} exited ${signal ?? code}:\n${out.slice(-3000)}`));
    });
  });
}

/** Every file under dir, node_modules left out; paths relative to dir. */
function walk(dir: string, rel = ""): string[] {
  const files: string[] = [];
  for (const e of readdirSync(join(dir, rel), { withFileTypes: true })) {
    const p = rel ? `${rel}/${e.name}` : e.name;
    if (e.isDirectory()) {
      if (e.name !== "node_modules") files.push(`${p}/`, ...walk(dir, p));
    } else files.push(p);
  }
  return files;
}

/** .dockerignore's patterns as a predicate on relative paths ("name", "a/b", "**\/name"). */
function dockerIgnored(contextDir: string): (path: string) => boolean {
  const patterns = readFileSync(join(contextDir, ".dockerignore"), "utf8")
    .split("\n")
    .map((l) => l.trim())
    .filter((l) => l && !l.startsWith("#"));
  return (path) =>
    patterns.some((p) => {
      if (p.startsWith("**/")) {
        const tail = p.slice(3);
        if (tail.startsWith("*.")) return path.endsWith(tail.slice(1));
        return `/${path}/`.includes(`/${tail}/`);
      }
      return path === p || path.startsWith(`${p}/`);
    });
}

describe("the Docker image's steps, run without Docker (deploy/scripts)", { skip }, () => {
  // One folder per stage, filled as deploy/Dockerfile fills it.
  let work = "";
  let context = ""; // the build context: the checkout's files as git lists them, less .dockerignore
  let manifests = ""; // manifests stage: /manifests
  let build = ""; // build stage: /src
  let out = ""; // build stage: /out
  let app = ""; // runtime stage: /app
  let nats: TestNats | undefined;
  let service: ChildProcess | undefined;

  before(async () => {
    work = mkdtempSync(join(tmpdir(), "temper-image-"));
    [context, manifests, build, out, app] = ["context", "manifests", "build", "out", "app"].map((d) =>
      join(work, d),
    );
    for (const file of gitFiles.stdout.split("\0")) {
      if (!file || !existsSync(join(repoRoot, file))) continue; // deleted in the working tree
      mkdirSync(dirname(join(context, file)), { recursive: true });
      copyFileSync(join(repoRoot, file), join(context, file));
    }
    const ignored = dockerIgnored(context);
    for (const f of walk(context).filter((f) => !f.endsWith("/") && ignored(f))) rmSync(join(context, f));
    // manifests stage: COPY . . ; RUN manifests.sh /manifests
    await run("bash", ["deploy/scripts/manifests.sh", manifests], context);
  });

  after(async () => {
    if (service && service.exitCode === null && service.signalCode === null) service.kill("SIGKILL");
    await nats?.stop();
    if (work) rmSync(work, { recursive: true, force: true });
  });

  test("build stage: install-build.sh, from the manifests alone, installs buf and ts-proto under NODE_ENV=production and generates the protos", async (t) => {
    cpSync(join(manifests, "npm"), build, { recursive: true });
    cpSync(join(manifests, "proto"), build, { recursive: true });
    assert.equal(existsSync(join(build, "packages/proto/src")), false, "no sources yet");
    const t0 = Date.now();
    await run("bash", ["deploy/scripts/install-build.sh"], build);
    t.diagnostic(
      `install-build.sh (npm ci -w @temper/proto, buf generate): ${((Date.now() - t0) / 1000).toFixed(1)} s`,
    );
    assert.ok(existsSync(join(build, "packages/proto/gen/descriptor.binpb")));
    for (const dev of ["@bufbuild/buf", "ts-proto"])
      assert.ok(existsSync(join(build, "node_modules", dev)), `${dev} (a dev dependency) was installed`);
  });

  test("build stage: build.sh assembles the runtime tree: sources and generated protos, no tests", async () => {
    cpSync(context, build, { recursive: true }); // COPY . .
    await run("bash", ["deploy/scripts/build.sh", out], build);
    const files = walk(out);
    for (const f of [
      "package.json",
      "package-lock.json",
      ".npmrc",
      "packages/proto/gen/descriptor.binpb",
      "services/scheduler/src/main.ts",
      "tools/bin/temper.mjs",
      "tests/package.json",
      "deploy/scripts/install-production.sh",
    ])
      assert.ok(files.includes(f), `${f} is in the runtime tree`);
    assert.ok(
      files.some((f) => /^packages\/proto\/gen\/.*\.ts$/.test(f)),
      "generated TypeScript",
    );
    assert.deepEqual(
      files.filter(
        (f) =>
          f.endsWith(".test.ts") ||
          (f.startsWith("tests/") && f !== "tests/" && !/^tests\/[^/]+\.json$/.test(f)),
      ),
      [],
    );
    assert.equal(existsSync(join(out, "node_modules")), false);
    // The image's files belong to root and the service runs as `node`: all must be world-readable.
    const unreadable = files.filter((f) => {
      const mode = statSync(join(out, f)).mode;
      return f.endsWith("/") ? (mode & 0o005) !== 0o005 : (mode & 0o004) === 0;
    });
    assert.deepEqual(unreadable, [], "files another user could not read");
  });

  test("runtime stage: install-production.sh, from the manifests alone, installs production dependencies only", async (t) => {
    cpSync(join(manifests, "npm"), app, { recursive: true });
    const t0 = Date.now();
    await run("bash", ["deploy/scripts/install-production.sh"], app);
    t.diagnostic(`install-production.sh (npm ci --omit=dev): ${((Date.now() - t0) / 1000).toFixed(1)} s`);
    cpSync(out, app, { recursive: true }); // COPY --from=build /out/ ./
    const modules = join(app, "node_modules");
    for (const dev of ["typescript", "@bufbuild/buf", "ts-proto", "@biomejs/biome"])
      assert.equal(existsSync(join(modules, dev)), false, `${dev} (a dev dependency) is not installed`);
    assert.ok(existsSync(join(modules, "tsx")), "tsx: services run their TypeScript through it");
    // onnxruntime-node keeps this platform's binding only, and it loads.
    const ort = await run(
      process.execPath,
      [
        "--input-type=module",
        "-e",
        "console.log((await import('onnxruntime-node')).listSupportedBackends().map((b) => b.name).join())",
      ],
      app,
    );
    assert.match(ort, /cpu/);
    assert.deepEqual(readdirSync(join(modules, "onnxruntime-node/bin/napi-v6")), [process.platform]);
  });

  test("the scheduler starts from the runtime tree as the image's CMD starts it; `temper health` says SERVING", async (t) => {
    nats = await startNats();
    const t0 = Date.now();
    const env = cleanEnv({ SERVICE: "scheduler", HOST: "127.0.0.1", PORT: "0", NATS_URL: nats.url });
    // the Dockerfile's CMD, as it stands
    const cmdLine = /^CMD (\[.*\])$/m.exec(readFileSync(join(context, "deploy/Dockerfile"), "utf8"));
    assert.ok(cmdLine, "deploy/Dockerfile has an exec-form CMD");
    const [cmd, ...args] = JSON.parse(cmdLine[1]) as string[];
    const child = spawn(cmd, args, {
      cwd: app,
      env,
      stdio: ["ignore", "pipe", "pipe"],
    });
    service = child;
    let log = "";
    const port = await new Promise<number>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`no "listening" line after 60 s:\n${log}`)), 60_000);
      const onData = (c: Buffer) => {
        log += c.toString();
        const m = /"port":(\d+)[^\n]*"msg":"listening"/.exec(log);
        if (m) {
          clearTimeout(timer);
          resolve(Number(m[1]));
        }
      };
      child.stdout?.on("data", onData);
      child.stderr?.on("data", onData);
      child.once("exit", (code, signal) => {
        clearTimeout(timer);
        reject(new Error(`the scheduler exited (${signal ?? code}):\n${log}`));
      });
    });
    t.diagnostic(`scheduler listening after ${((Date.now() - t0) / 1000).toFixed(1)} s`);
    assert.match(log, /"msg":"connected to NATS"/);
    const address = `127.0.0.1:${port}`;
    // compose.yaml's health check, run from the runtime tree
    const health = await run(process.execPath, ["tools/bin/temper.mjs", "health", address], app, env);
    assert.match(health, /SERVING/);
    assert.equal(await checkHealth(address), "SERVING");

    const exited = new Promise<number | null>((resolve) => child.once("exit", (code) => resolve(code)));
    child.kill("SIGTERM");
    assert.equal(await exited, 0, `graceful stop:\n${log.slice(-2000)}`);
  });
});
