// One blob into the cache: GET with Range into blobs/<etag>.incomplete (resuming what an earlier,
// interrupted transfer left), hashing as it goes, then renamed to blobs/<etag> only when its size
// and hash match what the Hub announced: sha256 for LFS files (X-Linked-Etag), the git blob sha1
// ("blob <len>\0" + bytes) for the others (ETag).
import { createHash, type Hash } from "node:crypto";
import { createReadStream, createWriteStream, mkdirSync, renameSync, rmSync, statSync } from "node:fs";
import { dirname } from "node:path";
import { HubError } from "./errors.ts";

export type Checksum = { kind: "sha256" | "git-sha1"; hex: string };

/** What the Hub's ETag headers say a file's bytes hash to. */
export function checksumOf(etag: string, shown: string): Checksum {
  if (/^[0-9a-f]{64}$/.test(etag)) return { kind: "sha256", hex: etag };
  if (/^[0-9a-f]{40}$/.test(etag)) return { kind: "git-sha1", hex: etag };
  throw new HubError(
    `${shown}: the Hub's ETag "${etag}" is neither a sha256 nor a git sha1; cannot verify it`,
  );
}

function hasher(c: Checksum, size: number): Hash {
  if (c.kind === "sha256") return createHash("sha256");
  return createHash("sha1").update(`blob ${size}\0`);
}

/** Hashes a whole file and compares; returns the hex digest found. */
export async function fileChecksum(path: string, c: Checksum, size: number): Promise<string> {
  const h = hasher(c, size);
  for await (const chunk of createReadStream(path, { highWaterMark: 4 << 20 })) h.update(chunk as Buffer);
  return h.digest("hex");
}

export interface TransferOptions {
  url: string;
  headers: Record<string, string>;
  blob: string;
  size: number;
  checksum: Checksum;
  /** Names the file in errors ("Qwen/Qwen3-4B: model.safetensors"). */
  shown: string;
  /** Bytes newly received (called often). */
  onBytes?: (n: number) => void;
  /** Bytes already on disk from an earlier try, once, before the transfer. */
  onResume?: (n: number) => void;
}

function sizeOf(path: string): number {
  try {
    return statSync(path).size;
  } catch {
    return 0;
  }
}

function writeError(err: unknown, o: TransferOptions): Error {
  const code = (err as NodeJS.ErrnoException).code;
  if (code === "ENOSPC" || code === "EDQUOT")
    return new HubError(
      `${o.shown}: disk full writing ${o.blob}.incomplete (the file needs ${o.size} bytes; free space and run again to resume)`,
    );
  return err as Error;
}

/** Downloads into `blob` (no-op when it is there); throws HubError on a mismatch or a full disk. */
export async function transfer(o: TransferOptions): Promise<void> {
  const incomplete = `${o.blob}.incomplete`;
  mkdirSync(dirname(o.blob), { recursive: true });
  let have = sizeOf(incomplete);
  if (have > o.size) {
    rmSync(incomplete, { force: true });
    have = 0;
  }
  const h = hasher(o.checksum, o.size);
  if (have > 0) {
    for await (const chunk of createReadStream(incomplete, { end: have - 1 })) h.update(chunk as Buffer);
    o.onResume?.(have);
  }
  const flags = have > 0 ? "a" : "w";
  if (have < o.size) {
    const res = await fetch(o.url, {
      headers: {
        ...o.headers,
        "Accept-Encoding": "identity",
        ...(have > 0 ? { Range: `bytes=${have}-` } : {}),
      },
    });
    if (have > 0 && res.status === 200) {
      // the server ignored Range: start over from its first byte
      await res.body?.cancel();
      rmSync(incomplete, { force: true });
      return transfer(o);
    }
    if (!(res.status === 200 || res.status === 206))
      throw new HubError(`${o.shown}: download answered HTTP ${res.status}`);
    await writeBody(res, incomplete, flags, h, o);
  } else if (have === 0) {
    // a zero-byte file: nothing to fetch, but it is still checked and cached
    await writeBody(undefined, incomplete, "w", h, o);
  }
  const got = sizeOf(incomplete);
  if (got !== o.size)
    throw new HubError(`${o.shown}: received ${got} of ${o.size} bytes (run again to resume)`);
  const digest = h.digest("hex");
  if (digest !== o.checksum.hex) {
    rmSync(incomplete, { force: true });
    throw new HubError(
      `${o.shown}: checksum mismatch (${o.checksum.kind} ${digest}, the Hub says ${o.checksum.hex}); the partial file was removed, run again`,
    );
  }
  renameSync(incomplete, o.blob);
}

async function writeBody(
  res: Response | undefined,
  path: string,
  flags: string,
  h: Hash,
  o: TransferOptions,
): Promise<void> {
  const out = createWriteStream(path, { flags });
  const failed = new Promise<never>((_, reject) => out.on("error", (e) => reject(writeError(e, o))));
  failed.catch(() => {});
  try {
    if (res?.body) {
      const reader = res.body.getReader();
      for (;;) {
        const { done, value } = await Promise.race([reader.read(), failed]);
        if (done) break;
        h.update(value);
        if (!out.write(value))
          await Promise.race([new Promise<void>((r) => out.once("drain", () => r())), failed]);
        o.onBytes?.(value.length);
      }
    }
  } catch (err) {
    if (err instanceof HubError) {
      out.destroy();
      throw err;
    }
    // keep what arrived: the next try resumes after it
    await Promise.race([new Promise<void>((r) => out.end(r)), failed]);
    throw new HubError(
      `${o.shown}: connection lost after ${sizeOf(path)} of ${o.size} bytes (${(err as Error).cause ?? (err as Error).message}); run again to resume`,
    );
  }
  await Promise.race([new Promise<void>((r) => out.end(r)), failed]);
}
