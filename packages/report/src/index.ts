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
  groupVariants,
  type ReportSummary,
  STABILITY_WINDOW,
  type Stat,
  summarize,
  type Variant,
  type VariantSummary,
  wallTime,
} from "./summary.ts";
