// Each run's latest step metrics as OpenTelemetry gauges, so a dashboard reads reward, accuracy, α,
// KL, entropy, clip fraction, zero-signal fraction and step times live. One rule maps a
// metrics.jsonl name to a metric name: "temper." + the name with "/" as "." ("reward/mean" →
// temper.reward.mean; Prometheus: temper_reward_mean), labelled by run, variant and seed. An ended
// run's series keep its last step (the SDK keeps every cumulative series it has seen); temper.runs
// says which runs are running.
import type { Attributes, Gauge, Meter } from "@opentelemetry/api";

export function runMetricName(key: string): string {
  return `temper.${key.replace(/\//g, ".").replace(/[^A-Za-z0-9_.]/g, "_")}`;
}

export class RunMetrics {
  private readonly gauges = new Map<string, Gauge>();
  private readonly runs = new Map<string, string>();

  constructor(private readonly meter: Meter) {
    meter
      .createObservableGauge("temper.runs", { description: "runs this orchestrator has driven, by status" })
      .addCallback((r) => {
        const counts = new Map<string, number>();
        for (const status of this.runs.values()) counts.set(status, (counts.get(status) ?? 0) + 1);
        for (const [status, n] of counts) r.observe(n, { status });
      });
  }

  /** A run's status changed (PENDING, RUNNING, SUCCEEDED, FAILED, STOPPED). */
  status(runId: string, status: string): void {
    this.runs.set(runId, status);
  }

  /** A step's metrics line (its numeric values). */
  step(runId: string, labels: { variant: string; seed: number }, values: Record<string, number>): void {
    const attrs: Attributes = { run_id: runId, variant: labels.variant, seed: labels.seed };
    for (const [key, value] of Object.entries(values)) {
      if (typeof value !== "number" || !Number.isFinite(value)) continue;
      let gauge = this.gauges.get(key);
      if (!gauge) {
        gauge = this.meter.createGauge(runMetricName(key), {
          description: `metrics.jsonl "${key}": the run's latest step`,
        });
        this.gauges.set(key, gauge);
      }
      gauge.record(value, attrs);
    }
  }
}
