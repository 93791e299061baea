// Every document a reader is sent to exists: each relative link in the Markdown files resolves to a
// file (and, into a Markdown file, to one of its headings), and each `.md` name the code cites is
// in the repository.
import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { existsSync, readFileSync } from "node:fs";
import { dirname, join, resolve } from "node:path";
import { describe, it } from "node:test";
import { SERVICES } from "@temper/stack";

const root = resolve(import.meta.dirname, "..", "..");
const tracked = execFileSync("git", ["ls-files", "--cached", "--others", "--exclude-standard"], {
  cwd: root,
  encoding: "utf8",
})
  .split("\n")
  .filter((f) => f && existsSync(join(root, f)));

/** GitHub's anchor for a heading: lower case, punctuation dropped, spaces to hyphens. */
function slug(heading: string): string {
  return heading
    .trim()
    .toLowerCase()
    .replace(/[^\p{L}\p{N}\s_-]/gu, "")
    .replace(/\s/g, "-");
}

function anchors(file: string): Set<string> {
  const text = readFileSync(file, "utf8").replace(/```[\s\S]*?```/g, "");
  return new Set([...text.matchAll(/^#{1,6} (.+)$/gm)].map((m) => slug(m[1])));
}

describe("documents", () => {
  const docs = tracked.filter((f) => f.endsWith(".md"));

  it("every relative link in the Markdown files reaches a file, and a heading where it names one", () => {
    assert.ok(docs.length >= 8, `only ${docs.length} Markdown files`);
    const problems: string[] = [];
    for (const doc of docs) {
      const text = readFileSync(join(root, doc), "utf8").replace(/```[\s\S]*?```/g, "");
      for (const [, target] of text.matchAll(/\]\(([^)\s]+)\)/g)) {
        if (/^[a-z][a-z0-9+.-]*:/i.test(target)) continue; // https:, mailto:
        const [path, fragment] = target.split("#");
        const file = path ? resolve(root, dirname(doc), path) : join(root, doc);
        if (!existsSync(file)) {
          problems.push(`${doc}: ${target}: no such file`);
          continue;
        }
        if (fragment && file.endsWith(".md") && !anchors(file).has(fragment))
          problems.push(`${doc}: ${target}: no heading #${fragment}`);
      }
    }
    assert.deepEqual(problems, []);
  });

  it("every .md name the code cites exists (from the repository root or the citing file)", () => {
    const problems: string[] = [];
    const code = tracked.filter((f) => /\.(ts|mjs|yaml|sh)$/.test(f) || f.startsWith(".ci/"));
    for (const f of code) {
      const text = readFileSync(join(root, f), "utf8");
      for (const [name] of text.matchAll(/[A-Za-z0-9_./-]*[A-Za-z0-9_-]\.md\b/g)) {
        if (name.startsWith("forge.md")) continue; // node-forge's message-digest namespace
        // a bare name (`"operations.md"` in a path join) must be some file's name
        const bare = !name.includes("/") && tracked.some((t) => t.endsWith(`/${name}`) || t === name);
        if (!bare && !existsSync(join(root, name)) && !existsSync(resolve(root, dirname(f), name)))
          problems.push(`${f}: ${name}`);
      }
    }
    assert.deepEqual(problems, []);
  });

  it("the README stays a front page: at most 200 lines", () => {
    const lines = readFileSync(join(root, "README.md"), "utf8").split("\n").length;
    assert.ok(lines <= 200, `README.md has ${lines} lines`);
  });

  it("a service's README lists every variable its declaration has, and no other", async () => {
    const problems: string[] = [];
    for (const s of SERVICES) {
      const readme = join(root, "services", s.name, "README.md");
      if (!existsSync(readme)) continue;
      const { declaration } = await import(join(root, "services", s.name, "src", "declaration.ts"));
      const table =
        readFileSync(readme, "utf8")
          .split(/^## Configuration$/m)[1]
          ?.split(/^## /m)[0] ?? "";
      const listed = new Set([...table.matchAll(/^\| `([A-Z][A-Z0-9_]*)`/gm)].map((m) => m[1]));
      const declared = new Set(Object.keys(declaration.config as object));
      for (const v of declared) if (!listed.has(v)) problems.push(`${s.name}: ${v} is not in its README`);
      for (const v of listed)
        if (!declared.has(v)) problems.push(`${s.name}: ${v} is not a variable it reads`);
    }
    assert.deepEqual(problems, []);
  });
});
