// For tests: a local Hub and what it serves.
export { gsm8kParquet, gsm8kRepoFiles, gsm8kRows, tinyModelFiles } from "./fixtures.ts";
export { LocalHub, type LocalRepoFiles } from "./local-hub.ts";
