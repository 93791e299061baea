// @temper/training: the pieces of a training loop that do not depend on the model or the service —
// AdamW (decoupled weight decay), learning-rate schedules with warm-up and a floor, clipping by
// global gradient norm, and atomic on-disk training checkpoints. Shared by the learner service and
// `temper sft`.
export * from "./adamw.ts";
export * from "./checkpoint.ts";
export * from "./clip.ts";
export * from "./optimizer-state.ts";
export * from "./schedule.ts";
