export {
  type EvalRow,
  loadRun,
  type MetricRow,
  ReportError,
  type Run,
  type RunSpec,
  type SampleRow,
} from "./load.ts";
export {
  esc,
  PALETTE,
  type PlotSpec,
  pickSamples,
  type RenderOptions,
  type ReportData,
  renderReport,
} from "./render.ts";
export {
  aucGain,
  type Comparison,
  compareVariants,
  groupVariants,
  MDE_FACTOR,
  type PairedDifference,
  type ReportSummary,
  STABILITY_WINDOW,
  type Stat,
  seBoth,
  seedStderr,
  stepsToTarget,
  summarize,
  type Variant,
  type VariantSummary,
  wallTime,
} from "./summary.ts";
export { crc32c, eventBytes, maskedCrc32c, tfRecord, writeTensorboard } from "./tensorboard.ts";
