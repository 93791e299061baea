// How much memory this process may use: the machine's, or less where a cgroup (a container, a
// Kubernetes limit) caps it. Budgets that default to "a fraction of the machine" start from here.
import { readFileSync } from "node:fs";
import { freemem, totalmem } from "node:os";

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

/** What a process may still take, and where the figure comes from. */
export interface AvailableMemory {
  bytes: number;
  source: string;
}

/**
 * Memory this process may still use: MEMORY_LIMIT (bytes) where set, else what its cgroup allows
 * beyond what the cgroup already uses, else the kernel's MemAvailable (page cache it can drop
 * counts as available).
 */
export function availableMemory(env: NodeJS.ProcessEnv = process.env): AvailableMemory {
  const set = env.MEMORY_LIMIT;
  if (set !== undefined && set !== "") {
    const n = Number(set);
    if (!Number.isSafeInteger(n) || n <= 0)
      throw new Error(`MEMORY_LIMIT=${JSON.stringify(set)}: expected a number of bytes ≥ 1`);
    return { bytes: n, source: "MEMORY_LIMIT" };
  }
  const limit = cgroupLimit();
  if (limit !== null) {
    let used = 0;
    try {
      used = Number(readFileSync("/sys/fs/cgroup/memory.current", "utf8").trim()) || 0;
    } catch {}
    return { bytes: Math.max(0, limit - used), source: "the cgroup's memory.max less memory.current" };
  }
  try {
    const m = /^MemAvailable:\s+(\d+) kB$/m.exec(readFileSync("/proc/meminfo", "utf8"));
    if (m) return { bytes: Number(m[1]) * 1024, source: "MemAvailable" };
  } catch {}
  return { bytes: freemem(), source: "free memory" };
}

/**
 * The one-line refusal when `needBytes` (what `what` will take) exceeds availableMemory(), or null
 * when it fits or MEMORY_CHECK=off. `change` says which setting would make it fit.
 */
export function memoryRefusal(
  needBytes: number,
  what: string,
  change: string,
  env: NodeJS.ProcessEnv = process.env,
): string | null {
  if (env.MEMORY_CHECK === "off") return null;
  const have = availableMemory(env);
  if (needBytes <= have.bytes) return null;
  return `${what} needs about ${formatBytes(needBytes)}, and ${formatBytes(have.bytes)} is available (${have.source}): ${change}; MEMORY_CHECK=off tries anyway`;
}
