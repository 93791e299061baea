// Fails when the TypeScript sources import each other in a circle, type-only imports included (a
// reader follows those too). madge follows `@temper/*` across workspaces through paths built from
// each workspace's package.json "exports", so a circle between packages counts as well.
//   node scripts/check-circles.mjs
import { readdirSync, readFileSync } from "node:fs";
import { join } from "node:path";
import madge from "madge";

const root = join(import.meta.dirname, "..");
const SCANNED = ["packages", "services", "tools", "tests", "fixtures"];

const workspaces = JSON.parse(readFileSync(join(root, "package.json"), "utf8")).workspaces.flatMap((w) =>
  w.endsWith("/*") ? readdirSync(join(root, w.slice(0, -2))).map((d) => `${w.slice(0, -2)}/${d}`) : [w],
);
const paths = {};
for (const dir of workspaces) {
  let pkg;
  try {
    pkg = JSON.parse(readFileSync(join(root, dir, "package.json"), "utf8"));
  } catch {
    continue;
  }
  for (const [subpath, target] of Object.entries(pkg.exports ?? {}))
    paths[join(pkg.name, subpath)] = [join(dir, target)];
}

const result = await madge(
  SCANNED.map((d) => join(root, d)),
  {
    baseDir: root,
    fileExtensions: ["ts"],
    excludeRegExp: [/node_modules/],
    tsConfig: { compilerOptions: { baseUrl: root, paths, moduleResolution: "bundler" } },
  },
);
const circles = result.circular();
const unresolved = result.warnings().skipped.filter((name) => name.startsWith("@temper/"));
if (unresolved.length)
  process.stdout.write(`import circles: could not follow ${unresolved.join(", ")} (no "exports" entry)\n`);
for (const circle of circles) process.stdout.write(`import circle: ${[...circle, circle[0]].join(" -> ")}\n`);
process.stdout.write(
  `import circles: ${circles.length} in ${Object.keys(result.obj()).length} files of ${SCANNED.join(", ")}\n`,
);
process.exitCode = circles.length > 0 || unresolved.length > 0 ? 1 : 0;
