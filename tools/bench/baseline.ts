// Shared by the benches that compare a path with main as it was before a change, in one run: the
// MatMul rate that every ratio is measured against, medians, a check that files are unchanged since
// a commit, and a checkout of an old commit whose code a child process can run ("before" and "after"
// then share the machine and the moment; two versions of one package cannot share a process).
import { execFileSync, spawn } from "node:child_process";
import { mkdirSync, mkdtempSync, readdirSync, readlinkSync, rmSync, symlinkSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { GraphBuilder, Session, tensor } from "@temper/onnx";

/** The repository root (this file sits in tools/bench). */
export const REPO_ROOT = resolve(dirname(fileURLToPath(import.meta.url)), "..", "..");

export const median = (xs: readonly number[]): number => {
  const s = [...xs].sort((a, b) => a - b);
  return s.length % 2 ? s[s.length >> 1] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2;
};

/**
 * A 1024³ float32 MatMul with a constant B (a linear layer's shape): `measure` times 10 runs and
 * returns its GFLOP/s, of the median run (default) or of the fastest. Every "share of the MatMul
 * rate" divides by this.
 */
export async function matmulSession(threads: number): Promise<{
  measure: (stat?: "median" | "best") => Promise<number>;
  /**
   * Back-to-back runs for at least `seconds` (3 runs at least): the window's GFLOP/s (its mean) and
   * its fastest run's.
   */
  window: (seconds: number) => Promise<{ mean: number; best: number }>;
  release: () => Promise<void>;
}> {
  const n = 1024;
  const g = new GraphBuilder("matmul");
  const b = Float32Array.from({ length: n * n }, (_, i) => ((i * 7919) % 1000) / 1000 - 0.5);
  g.output(g.matmul(g.floatInput("a", [n, n]), g.weight("b", "float32", [n, n], b)), "c");
  const session = await Session.create(g.build(), { threads });
  const a = Float32Array.from({ length: n * n }, (_, i) => ((i * 31) % 1000) / 1000 - 0.5);
  const feeds = { a: tensor("float32", a, [n, n]) };
  await session.run(feeds);
  return {
    measure: async (stat = "median") => {
      const times: number[] = [];
      for (let i = 0; i < 10; i++) {
        const t = performance.now();
        await session.run(feeds);
        times.push((performance.now() - t) / 1000);
      }
      return (2 * n ** 3) / (stat === "best" ? Math.min(...times) : median(times)) / 1e9;
    },
    window: async (seconds) => {
      const t0 = performance.now();
      let runs = 0;
      let fastest = Number.POSITIVE_INFINITY;
      while (runs < 3 || performance.now() - t0 < seconds * 1000) {
        const t = performance.now();
        await session.run(feeds);
        fastest = Math.min(fastest, performance.now() - t);
        runs++;
      }
      const flop = 2 * n ** 3;
      return {
        mean: (runs * flop) / ((performance.now() - t0) / 1000) / 1e9,
        best: flop / (fastest / 1000) / 1e9,
      };
    },
    release: () => session.release(),
  };
}

/** Whether `files` (repository paths) are unchanged since `commit` (null: git could not tell). */
export function unchangedSince(commit: string, files: readonly string[]): boolean | null {
  try {
    execFileSync("git", ["diff", "--quiet", commit, "--", ...files], { cwd: REPO_ROOT, stdio: "ignore" });
    return true;
  } catch (err) {
    return (err as { status?: number }).status === 1 ? false : null;
  }
}

export interface Checkout {
  dir: string;
  /** The commit checked out (full hash). */
  commit: string;
  remove(): void;
}

/**
 * A detached git worktree of `commit` in a temporary directory. Its node_modules resolves third-party
 * packages from this checkout's and every @temper/* workspace to the old commit's own sources, so
 * `node --import tsx` runs the old code there.
 */
export function checkoutCommit(commit: string): Checkout {
  const git = (...args: string[]) =>
    execFileSync("git", args, { cwd: REPO_ROOT, encoding: "utf8", stdio: ["ignore", "pipe", "pipe"] }).trim();
  const full = git("rev-parse", "--verify", `${commit}^{commit}`);
  const dir = join(mkdtempSync(join(tmpdir(), "temper-baseline-")), "repo");
  git("worktree", "add", "--detach", dir, full);
  const remove = () => {
    try {
      git("worktree", "remove", "--force", dir);
    } catch {
      rmSync(dir, { recursive: true, force: true });
      git("worktree", "prune");
    }
    rmSync(dirname(dir), { recursive: true, force: true });
  };
  try {
    const ours = join(REPO_ROOT, "node_modules");
    const theirs = join(dir, "node_modules");
    mkdirSync(join(theirs, "@temper"), { recursive: true });
    for (const name of readdirSync(ours)) {
      if (name === "@temper") continue;
      symlinkSync(join(ours, name), join(theirs, name));
    }
    // workspace links are relative (../../packages/onnx): the same link inside the worktree points at
    // the worktree's packages
    for (const name of readdirSync(join(ours, "@temper")))
      symlinkSync(readlinkSync(join(ours, "@temper", name)), join(theirs, "@temper", name));
  } catch (err) {
    remove();
    throw err;
  }
  return { dir, commit: full, remove };
}

/**
 * Runs `node --import tsx script ...args` in `cwd` and returns the JSON object printed on its last
 * stdout line (stderr passes through). Rejects on a non-zero exit.
 */
export function runNodeJson<T>(cwd: string, script: string, args: readonly string[]): Promise<T> {
  return new Promise((done, fail) => {
    const child = spawn(process.execPath, ["--import", "tsx", script, ...args], {
      cwd,
      stdio: ["ignore", "pipe", "inherit"],
    });
    let out = "";
    child.stdout.on("data", (chunk: Buffer) => {
      out += chunk.toString();
    });
    child.on("error", fail);
    child.on("close", (code) => {
      if (code !== 0) return fail(new Error(`${script} ${args.join(" ")} (in ${cwd}) exited with ${code}`));
      const last = out.trim().split("\n").pop() ?? "";
      try {
        done(JSON.parse(last) as T);
      } catch {
        fail(
          new Error(`${script} ${args.join(" ")}: no JSON result on its last line (${last.slice(0, 200)})`),
        );
      }
    });
  });
}
