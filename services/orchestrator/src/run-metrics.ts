// Each run's latest step metrics as OpenTelemetry gauges, so a dashboard reads reward, accuracy, α,
// KL, entropy, clip fraction, zero-signal fraction and step times live. One rule maps a
// metrics.jsonl name to a metric name: "temper.run." + the name with "/" as "." ("reward/mean" →
// temper.run.reward.mean; Prometheus: temper_run_reward_mean), labelled by run, variant and seed.
import type { Attributes, Meter, ObservableResult } from "@opentelemetry/api";

export function runMetricName(key: string): string {
  return `temper.run.${key.replace(/\//g, ".").replace(/[^A-Za-z0-9_.]/g, "_")}`;
}

export class RunMetrics {
  /** metrics.jsonl name → (run id → [value, labels]). */
  private readonly latest = new Map<string, Map<string, [number, Attributes]>>();
  private readonly runs = new Map<string, { labels: Attributes; status: string }>();

  constructor(private readonly meter: Meter) {
    meter
      .createObservableGauge("temper.runs", { description: "runs this orchestrator knows, by status" })
      .addCallback((r) => {
        const counts = new Map<string, number>();
        for (const { status } of this.runs.values()) counts.set(status, (counts.get(status) ?? 0) + 1);
        for (const [status, n] of counts) r.observe(n, { status });
      });
  }

  /** A run's status changed (PENDING, RUNNING, SUCCEEDED, FAILED, STOPPED). */
  status(runId: string, labels: { variant: string; seed: number }, status: string): void {
    this.runs.set(runId, { labels: { run_id: runId, variant: labels.variant, seed: labels.seed }, status });
  }

  /** A step's metrics line (its numeric values). */
  step(runId: string, labels: { variant: string; seed: number }, values: Record<string, number>): void {
    const attrs: Attributes = { run_id: runId, variant: labels.variant, seed: labels.seed };
    for (const [key, value] of Object.entries(values)) {
      if (typeof value !== "number" || !Number.isFinite(value)) continue;
      let byRun = this.latest.get(key);
      if (!byRun) {
        byRun = new Map();
        this.latest.set(key, byRun);
        const series = byRun;
        this.meter
          .createObservableGauge(runMetricName(key), {
            description: `metrics.jsonl "${key}": the run's latest step`,
          })
          .addCallback((r: ObservableResult) => {
            for (const [v, a] of series.values()) r.observe(v, a);
          });
      }
      byRun.set(runId, [value, attrs]);
    }
  }
}
