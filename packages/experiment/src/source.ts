// YAML with source positions: the parsed value plus a way back from a field path to the line it
// sits on, so every error can name `file:line`.
import {
  type Document,
  isAlias,
  isMap,
  isScalar,
  isSeq,
  LineCounter,
  parseDocument,
  type Node as YamlNode,
} from "yaml";
import { ExperimentError, formatPath, type PathSegment } from "./errors.ts";

export interface SourceFile {
  /** The file as the caller named it (what errors print). */
  file: string;
  doc: Document.Parsed;
  lines: LineCounter;
  /** The document as plain data. */
  value: unknown;
}

/**
 * Where a configuration's values came from: a node of a file and that node's path in the file
 * (`["variants", 1]` for a comparison's variant, `[]` for a plain experiment).
 */
export interface Origin {
  src: SourceFile;
  node: unknown;
  prefix: PathSegment[];
}

/** Parses YAML; a syntax error, a duplicate key or an alias bomb is an ExperimentError. */
export function parseYaml(text: string, file: string): SourceFile {
  const lines = new LineCounter();
  const doc = parseDocument(text, { lineCounter: lines, prettyErrors: false, uniqueKeys: true });
  const err = doc.errors[0];
  if (err) {
    const line = err.linePos?.[0].line ?? lines.linePos(err.pos[0]).line;
    const msg = err.message.split("\n")[0].replace(/ at line \d+, column \d+:?$/, "");
    throw new ExperimentError(file, line, "(syntax)", msg);
  }
  let value: unknown;
  try {
    value = doc.toJS({ maxAliasCount: 1000 });
  } catch (e) {
    throw new ExperimentError(file, 1, "(syntax)", (e as Error).message.split("\n")[0]);
  }
  return { file, doc, lines, value };
}

/** The origin of a whole file. */
export function fileOrigin(src: SourceFile): Origin {
  return { src, node: src.doc.contents, prefix: [] };
}

/** The origin of the node at `path` in `src` (e.g. `["variants", 2]`). */
export function childOrigin(parent: Origin, path: PathSegment[]): Origin {
  let node = parent.node;
  for (const seg of path) node = child(parent.src, node, seg)?.node;
  return { src: parent.src, node, prefix: [...parent.prefix, ...path] };
}

function lineOf(src: SourceFile, node: unknown): number | undefined {
  const range = (node as YamlNode | null)?.range;
  return range ? src.lines.linePos(range[0]).line : undefined;
}

function child(
  src: SourceFile,
  node: unknown,
  seg: PathSegment,
): { node: unknown; line: number | undefined } | undefined {
  const n = isAlias(node) ? node.resolve(src.doc) : node;
  if (isMap(n)) {
    const pair = n.items.find((p) => String(isScalar(p.key) ? p.key.value : p.key) === String(seg));
    return pair ? { node: pair.value, line: lineOf(src, pair.key) } : undefined;
  }
  if (isSeq(n) && typeof seg === "number") {
    const item = n.items[seg];
    return item === undefined ? undefined : { node: item, line: lineOf(src, item) };
  }
  return undefined;
}

/** How far `path` reaches into an origin, and the line of the last node reached. */
function reach(o: Origin, path: readonly PathSegment[]): { depth: number; line: number } {
  let node = o.node;
  let line = lineOf(o.src, node) ?? 1;
  let depth = 0;
  for (const seg of path) {
    const c = child(o.src, node, seg);
    if (!c) break;
    node = c.node;
    line = c.line ?? line;
    depth++;
  }
  return { depth, line };
}

/**
 * The error for `path` (a path in the configuration the origins merged into): its line and field
 * are those of the origin that holds the most of the path (the first of equals), so a present
 * value names its own line and a missing one the line of its parent mapping.
 */
export function errorAt(
  origins: readonly Origin[],
  path: readonly PathSegment[],
  problem: string,
): ExperimentError {
  let best = origins[0];
  let found = reach(best, path);
  for (const o of origins.slice(1)) {
    const r = reach(o, path);
    if (r.depth > found.depth) {
      best = o;
      found = r;
    }
  }
  return new ExperimentError(best.src.file, found.line, formatPath([...best.prefix, ...path]), problem);
}
