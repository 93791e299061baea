// The facts a run's numbers depend on besides its inputs: the same graph gives the same bits only on
// the same CPU features (MLAS picks its kernels by instruction set), the same intra-op thread count
// (work is split by it) and the same ONNX Runtime. spec.yaml and the report record them.
import { readFileSync } from "node:fs";
import { availableParallelism, cpus } from "node:os";
import * as ort from "onnxruntime-node";

/** The instruction-set flags (as /proc/cpuinfo names them) that choose MLAS's kernels. */
export const KERNEL_FLAGS = [
  "avx2",
  "avx512f",
  "avx512_vnni",
  "avx512_bf16",
  "amx_tile",
  "amx_bf16",
  "amx_int8",
];

export interface MachineInfo {
  cpuModel: string;
  /** The KERNEL_FLAGS this CPU has. */
  cpuFlags: string[];
  /** The intra-op threads ORT runs with: the configured number, else its default (physical cores). */
  intraOpThreads: number;
  onnxruntimeVersion: string;
}

/** Physical cores: distinct (package, core) pairs in /proc/cpuinfo; logical CPUs where it cannot tell. */
function physicalCores(cpuinfo: string): number {
  const cores = new Set<string>();
  for (const block of cpuinfo.split(/\n\s*\n/)) {
    const pkg = /^physical id\s*:\s*(\d+)/m.exec(block)?.[1];
    const core = /^core id\s*:\s*(\d+)/m.exec(block)?.[1];
    if (pkg !== undefined && core !== undefined) cores.add(`${pkg}/${core}`);
  }
  return cores.size || availableParallelism();
}

/** This machine, for a session with `threads` intra-op threads (undefined: ORT's default). */
export function machineInfo(threads?: number, cpuinfo = readCpuinfo()): MachineInfo {
  const flags = new Set((/^flags\s*:(.*)$/m.exec(cpuinfo)?.[1] ?? "").trim().split(/\s+/));
  return {
    cpuModel: /^model name\s*:\s*(.*)$/m.exec(cpuinfo)?.[1]?.trim() ?? cpus()[0]?.model ?? "unknown",
    cpuFlags: KERNEL_FLAGS.filter((f) => flags.has(f)),
    intraOpThreads: threads ?? physicalCores(cpuinfo),
    onnxruntimeVersion: ort.env.versions.node ?? ort.env.versions.common ?? "unknown",
  };
}

function readCpuinfo(): string {
  try {
    return readFileSync("/proc/cpuinfo", "utf8");
  } catch {
    return ""; // not Linux: the model from os.cpus(), no flags
  }
}
