// @temper/training: the pieces of a training loop that do not depend on the service — AdamW
// (decoupled weight decay), learning-rate schedules with warm-up and a floor, clipping by global
// gradient norm, atomic on-disk training checkpoints, writing trained weights as a model directory
// — and the supervised warm start behind `temper sft` (sft.ts). Shared by the learner service and
// the CLI.
export * from "./adamw.ts";
export * from "./checkpoint.ts";
export * from "./clip.ts";
export * from "./model-out.ts";
export * from "./optimizer-state.ts";
export * from "./schedule.ts";
export * from "./sft.ts";
