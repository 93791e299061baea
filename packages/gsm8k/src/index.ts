export * from "./arith.ts";
export * from "./data.ts";
export * from "./equations.ts";
export * from "./extract.ts";
export * from "./numbers.ts";
export * from "./prompt.ts";
export * from "./reference.ts";
export * from "./think.ts";
