// How much memory this process may use: the machine's, or less where a cgroup (a container, a
// Kubernetes limit) caps it. Budgets that default to "a fraction of the machine" start from here.
import { readFileSync } from "node:fs";
import { totalmem } from "node:os";

/** A cgroup v2 limit in bytes from memory.max's text ("max": none). */
function cgroupLimit(path = "/sys/fs/cgroup/memory.max"): number | null {
  try {
    const text = readFileSync(path, "utf8").trim();
    const n = Number(text);
    return text !== "max" && Number.isSafeInteger(n) && n > 0 ? n : null;
  } catch {
    return null;
  }
}

/** Bytes this process's machine (or its cgroup) holds: the smaller of the two. */
export function machineMemory(): number {
  const limit = cgroupLimit();
  return limit === null ? totalmem() : Math.min(limit, totalmem());
}

/** Bytes in a human unit: "11.6 GiB". */
export function formatBytes(bytes: number): string {
  const units = ["B", "KiB", "MiB", "GiB", "TiB"];
  let v = bytes;
  let u = 0;
  while (v >= 1024 && u < units.length - 1) {
    v /= 1024;
    u++;
  }
  return `${u === 0 ? v : v.toFixed(1)} ${units[u]}`;
}
