// Load for reproducibility tests: a busy-loop process on every core, so that a computation's threads
// are preempted and scheduled differently from an idle run. Results that depend on which thread
// finishes first (unsynchronised accumulation, sums in completion order) then differ.
import { type ChildProcess, spawn } from "node:child_process";
import { availableParallelism } from "node:os";

/** Starts one busy-loop process per core; the returned function kills them. */
export function busyEveryCore(): () => void {
  const procs: ChildProcess[] = [];
  for (let i = 0; i < availableParallelism(); i++)
    procs.push(spawn(process.execPath, ["-e", "for (;;) {}"], { stdio: "ignore" }));
  return () => {
    for (const p of procs) p.kill("SIGKILL");
  };
}

/** Runs `work` with every core busy, stopping the load however it ends. */
export async function withBusyCores<T>(work: () => Promise<T>): Promise<T> {
  const stop = busyEveryCore();
  try {
    return await work();
  } finally {
    stop();
  }
}
