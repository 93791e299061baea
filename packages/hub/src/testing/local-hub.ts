// A local Hugging Face Hub for tests: the part of the Hub's HTTP protocol Temper and
// @huggingface/hub's download functions use (local-hub.test.ts lists it), over repositories held
// in memory, with faults to inject (a connection cut part-way, corrupted bytes).
import { createHash } from "node:crypto";
import { createServer, type IncomingMessage, type Server, type ServerResponse } from "node:http";
import type { AddressInfo } from "node:net";
import type { RepoType } from "../ids.ts";

export interface LocalRepoFiles {
  [path: string]: Uint8Array | string;
}

interface StoredFile {
  bytes: Buffer;
  /** LFS: stored by sha256 and served from the CDN path. */
  lfs: boolean;
  sha256: string;
  gitSha1: string;
}

interface Repo {
  type: RepoType;
  id: string;
  gated: boolean;
  branches: Map<string, string>;
  commits: Map<string, Map<string, StoredFile>>;
}

/** What LFS holds on the Hub: weights and parquet (a .gitattributes pattern), anything else in git. */
const isLfs = (path: string) => /\.(safetensors|parquet|bin)$/.test(path);

const gitSha1 = (b: Buffer) => createHash("sha1").update(`blob ${b.length}\0`).update(b).digest("hex");
const sha256 = (b: Buffer) => createHash("sha256").update(b).digest("hex");

export class LocalHub {
  /** The endpoint (HF_ENDPOINT). */
  url = "";
  /** The tokens a gated repository accepts (as `Authorization: Bearer <token>`). */
  readonly tokens = new Set<string>(["hf_local_test_token"]);
  /** Every request, as "METHOD /path" (the query left out), then " Range: ..." when it has one. */
  readonly requests: string[] = [];
  /** File bytes sent in bodies (resolve and CDN). */
  bytesServed = 0;
  private readonly repos = new Map<string, Repo>();
  private readonly cuts = new Map<string, number>();
  private readonly corrupt = new Set<string>();
  private readonly server: Server;

  private constructor() {
    this.server = createServer((req, res) => {
      this.handle(req, res).catch((err) => {
        res.statusCode = 500;
        res.end(String(err));
      });
    });
  }

  static async start(): Promise<LocalHub> {
    const hub = new LocalHub();
    await new Promise<void>((r) => hub.server.listen(0, "127.0.0.1", r));
    hub.url = `http://127.0.0.1:${(hub.server.address() as AddressInfo).port}`;
    return hub;
  }

  async close(): Promise<void> {
    this.server.closeAllConnections();
    await new Promise((r) => this.server.close(r));
  }

  /** Commits `files` as the new head of `branch` (default main); returns the commit. */
  commit(
    type: RepoType,
    id: string,
    files: LocalRepoFiles,
    o: { gated?: boolean; branch?: string } = {},
  ): string {
    const key = `${type}s/${id}`;
    let repo = this.repos.get(key);
    if (!repo) {
      repo = { type, id, gated: false, branches: new Map(), commits: new Map() };
      this.repos.set(key, repo);
    }
    if (o.gated !== undefined) repo.gated = o.gated;
    const stored = new Map<string, StoredFile>();
    const h = createHash("sha1").update(key);
    for (const [path, content] of Object.entries(files).sort(([a], [b]) => (a < b ? -1 : 1))) {
      const bytes = Buffer.from(content);
      const file = { bytes, lfs: isLfs(path), sha256: sha256(bytes), gitSha1: gitSha1(bytes) };
      stored.set(path, file);
      h.update(`${path}\0${file.sha256}\0`);
    }
    const commit = h.update(String(repo.commits.size)).digest("hex");
    repo.commits.set(commit, stored);
    repo.branches.set(o.branch ?? "main", commit);
    return commit;
  }

  /** The next download of `path` (any repo) stops after `bytes` bytes, its connection cut. */
  cutOnce(path: string, bytes: number): void {
    this.cuts.set(path, bytes);
  }

  /** Downloads of `path` (any repo) get one byte changed, while the headers still name the true hash. */
  corruptBytes(path: string, on = true): void {
    if (on) this.corrupt.add(path);
    else this.corrupt.delete(path);
  }

  /** The sha256 (LFS) or git sha1 a file is cached under. */
  etagOf(type: RepoType, id: string, commit: string, path: string): string {
    const f = this.repos.get(`${type}s/${id}`)?.commits.get(commit)?.get(path);
    if (!f) throw new Error(`no ${path} in ${id}@${commit}`);
    return f.lfs ? f.sha256 : f.gitSha1;
  }

  private find(type: RepoType, id: string): Repo | undefined {
    return this.repos.get(`${type}s/${id}`);
  }

  private async handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const url = new URL(req.url ?? "/", this.url);
    const path = decodeURIComponent(url.pathname);
    this.requests.push(
      `${req.method} ${url.pathname}${req.headers.range ? ` Range: ${req.headers.range}` : ""}`,
    );
    const kind = (plural: string): RepoType => (plural === "models" ? "model" : "dataset");
    const revision = /^\/api\/(models|datasets)\/([^/]+\/[^/]+)\/revision\/(.+)$/.exec(path);
    if (revision && req.method === "GET")
      return this.revision(req, res, kind(revision[1]), revision[2], revision[3]);
    const info = /^\/api\/(models|datasets)\/([^/]+\/[^/]+)\/paths-info\/(.+)$/.exec(path);
    if (info && req.method === "POST") return this.pathsInfo(req, res, kind(info[1]), info[2], info[3]);
    const file = /^\/(datasets\/)?([^/]+\/[^/]+)\/resolve\/([^/]+)\/(.+)$/.exec(url.pathname);
    if (file)
      return this.resolve(
        req,
        res,
        file[1] ? "dataset" : "model",
        file[2],
        decodeURIComponent(file[3]),
        decodeURIComponent(file[4]),
      );
    const cdn = /^\/cdn\/([0-9a-f]{64})\/(.+)$/.exec(path);
    if (cdn) return this.cdn(req, res, cdn[1], cdn[2]);
    return error(res, 404, "NotFound", "not a route of the local Hub");
  }

  /** The repository and commit of a request, or an error answered (401 gated, 404). */
  private lookup(
    req: IncomingMessage,
    res: ServerResponse,
    type: RepoType,
    id: string,
    revision: string,
  ): { repo: Repo; commit: string } | undefined {
    const repo = this.find(type, id);
    if (!repo) return void error(res, 404, "RepoNotFound", `Repository not found: ${id}`);
    if (repo.gated) {
      const token = /^Bearer (.+)$/.exec(req.headers.authorization ?? "")?.[1];
      if (!token || !this.tokens.has(token))
        return void error(
          res,
          401,
          "GatedRepo",
          `Access to ${type} ${id} is restricted. You must have access to it and be authenticated to access it.`,
        );
    }
    const commit = repo.branches.get(revision) ?? (repo.commits.has(revision) ? revision : undefined);
    if (!commit) return void error(res, 404, "RevisionNotFound", `Invalid rev id: ${revision}`);
    return { repo, commit };
  }

  private revision(
    req: IncomingMessage,
    res: ServerResponse,
    type: RepoType,
    id: string,
    revision: string,
  ): void {
    const found = this.lookup(req, res, type, id, revision === "HEAD" ? "main" : revision);
    if (!found) return;
    const files = found.repo.commits.get(found.commit)!;
    json(res, 200, {
      _id: createHash("sha1").update(id).digest("hex").slice(0, 24),
      id,
      sha: found.commit,
      private: false,
      gated: found.repo.gated ? "auto" : false,
      downloads: 0,
      likes: 0,
      lastModified: "2026-01-01T00:00:00.000Z",
      siblings: [...files.keys()].map((rfilename) => ({ rfilename })),
    });
  }

  private async pathsInfo(
    req: IncomingMessage,
    res: ServerResponse,
    type: RepoType,
    id: string,
    revision: string,
  ) {
    const found = this.lookup(req, res, type, id, revision);
    if (!found) return;
    const body = JSON.parse((await readBody(req)).toString("utf8")) as { paths: string[] };
    const files = found.repo.commits.get(found.commit)!;
    json(
      res,
      200,
      body.paths.flatMap((p) => {
        const f = files.get(p);
        if (!f) return [];
        const pointer = Buffer.from(
          `version https://git-lfs.github.com/spec/v1\noid sha256:${f.sha256}\nsize ${f.bytes.length}\n`,
        );
        return [
          {
            type: "file",
            path: p,
            size: f.bytes.length,
            oid: f.lfs ? gitSha1(pointer) : f.gitSha1,
            ...(f.lfs ? { lfs: { oid: f.sha256, size: f.bytes.length, pointerSize: pointer.length } } : {}),
            lastCommit: { id: found.commit, title: "local", date: "2026-01-01T00:00:00.000Z" },
          },
        ];
      }),
    );
  }

  private resolve(
    req: IncomingMessage,
    res: ServerResponse,
    type: RepoType,
    id: string,
    revision: string,
    path: string,
  ) {
    const found = this.lookup(req, res, type, id, revision);
    if (!found) return;
    const f = found.repo.commits.get(found.commit)!.get(path);
    if (!f) return error(res, 404, "EntryNotFound", `${path} does not exist on "${revision}"`);
    res.setHeader("X-Repo-Commit", found.commit);
    if (f.lfs) {
      // as the Hub does: a redirect to the CDN, the file's identity in X-Linked-* headers
      res.setHeader("X-Linked-Etag", `"${f.sha256}"`);
      res.setHeader("X-Linked-Size", String(f.bytes.length));
      res.setHeader("ETag", `"${f.sha256}"`);
      res.setHeader("Location", `${this.url}/cdn/${f.sha256}/${encodeURIComponent(path)}`);
      res.statusCode = 302;
      return void res.end();
    }
    res.setHeader("ETag", `"${f.gitSha1}"`);
    this.send(req, res, f, path);
  }

  private cdn(req: IncomingMessage, res: ServerResponse, hash: string, path: string): void {
    for (const repo of this.repos.values())
      for (const files of repo.commits.values())
        for (const f of files.values())
          if (f.sha256 === hash) {
            // a CDN's own ETag, not the sha256: what a client following the redirect sees
            res.setHeader("ETag", `"cdn-${hash.slice(0, 32)}"`);
            this.send(req, res, f, path);
            return;
          }
    error(res, 404, "NotFound", "no such object");
  }

  /** The bytes of a file, whole or a Range of them, with the injected faults. */
  private send(req: IncomingMessage, res: ServerResponse, f: StoredFile, path: string): void {
    const size = f.bytes.length;
    res.setHeader("Accept-Ranges", "bytes");
    let start = 0;
    let end = size - 1;
    const range = req.headers.range;
    if (range) {
      const m = /^bytes=(\d+)-(\d*)$/.exec(range);
      if (!m || Number(m[1]) >= size) {
        res.setHeader("Content-Range", `bytes */${size}`);
        res.statusCode = 416;
        return void res.end();
      }
      start = Number(m[1]);
      end = m[2] ? Math.min(Number(m[2]), size - 1) : size - 1;
      res.statusCode = 206;
      res.setHeader("Content-Range", `bytes ${start}-${end}/${size}`);
    }
    res.setHeader("Content-Length", String(end - start + 1));
    res.setHeader("Content-Type", "application/octet-stream");
    if (req.method === "HEAD") return void res.end();
    let body = f.bytes.subarray(start, end + 1);
    if (this.corrupt.has(path) && body.length > 0) {
      body = Buffer.from(body);
      body[body.length >> 1] ^= 0xff;
    }
    const cut = this.cuts.get(path);
    if (cut !== undefined && cut < body.length) {
      this.cuts.delete(path);
      res.flushHeaders();
      res.write(body.subarray(0, cut), () => {
        this.bytesServed += cut;
        setTimeout(() => res.socket?.destroy(), 20);
      });
      return;
    }
    this.bytesServed += body.length;
    res.end(body);
  }
}

function json(res: ServerResponse, status: number, value: unknown): void {
  res.statusCode = status;
  res.setHeader("Content-Type", "application/json");
  res.end(JSON.stringify(value));
}

function error(res: ServerResponse, status: number, code: string, message: string): void {
  res.setHeader("X-Error-Code", code);
  res.setHeader("X-Error-Message", message);
  json(res, status, { error: message });
}

async function readBody(req: IncomingMessage): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const c of req) chunks.push(c as Buffer);
  return Buffer.concat(chunks);
}
