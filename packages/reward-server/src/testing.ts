// Test helpers for reward services (not part of the runtime API).
export { checkRewardServiceProcess } from "./check-process.ts";
