// Worker entry for TypeScript engine modules: module hooks (tsx's loader) do not carry over into
// worker threads, so each worker registers tsx before it imports its real entry.
import { workerData } from "node:worker_threads";
import { register } from "tsx/esm/api";

register();
await import(workerData.entry);
