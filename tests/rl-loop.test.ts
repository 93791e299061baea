// The RL loop end to end: a whole stack (nats-server and every service a process) runs a short
// GRPO run on a tiny model through the orchestrator, and the test checks what the loop promises:
// the learner sees exactly what rollout sampled (its recomputed logprobs equal the rollout's and
// nothing clips at the first mini-batch), the policy moves every applied step, every metric is
// there and finite, every event arrives, held-out evaluation runs, and the run directory holds one
// metrics line per step.
import assert from "node:assert/strict";
import { spawn, spawnSync } from "node:child_process";
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { connectBus, createClient, findNatsServer, type PromiseClient } from "@temper/kit";
import { orchestrator } from "@temper/proto";
import { ADAPTER_BUCKET, initModel, presetConfig, tokenizerIds } from "@temper/qwen3";
import type { Stack } from "@temper/stack";
import { chromium, chromiumPath, consoleLines, plotsInDom } from "../packages/report/src/chromium-testing.ts";
import { writeReport } from "../tools/src/runs-client.ts";
import { dashboardPanels } from "./src/deploy.ts";
import { additionProblems, freePort, startTestStack, testRunSpec, tinyPolicyModel } from "./src/index.ts";

const hasPrometheus = () => spawnSync("prometheus", ["--version"], { stdio: "ignore" }).status === 0;

const STEPS = 4;

function runSpec(
  root: string,
  modelDir: string,
  overrides: Partial<orchestrator.RunSpec> = {},
): orchestrator.RunSpec {
  return testRunSpec(
    {
      model: modelDir,
      trainData: join(root, "train.jsonl"),
      evalData: join(root, "eval.jsonl"),
      name: "continuous",
    },
    {
      steps: STEPS,
      eval: { every: 2, size: 6, baseline: true, maxNewTokens: 8, majK: 3 },
      samplesPerStep: 2,
      ...overrides,
    },
  );
}

describe("the RL loop through the orchestrator", {
  skip: !findNatsServer() && "nats-server not installed",
}, () => {
  const root = mkdtempSync(join(tmpdir(), "temper-rl-loop-"));
  const modelDir = join(root, "model");
  let stack: Stack;
  let client: PromiseClient<typeof orchestrator.OrchestratorServiceService>;

  let metricsPort = 0;
  const servicePorts = {
    rollout: 0,
    learner: 0,
    scheduler: 0,
    "reward-correctness": 0,
    "reward-perplexity": 0,
    "reward-reasoning": 0,
    "reward-consistency": 0,
  };
  before(async () => {
    metricsPort = await freePort();
    for (const k of Object.keys(servicePorts) as (keyof typeof servicePorts)[])
      servicePorts[k] = await freePort();
    tinyPolicyModel(modelDir);
    writeFileSync(join(root, "train.jsonl"), additionProblems(12, 1));
    writeFileSync(join(root, "eval.jsonl"), additionProblems(6, 40));
    stack = await startTestStack({
      dataDir: join(root, "stack"),
      model: modelDir,
      // Held-out sets larger than one Generate may hold go out in parts: 6 problems in calls of 4.
      env: {
        rollout: { MAX_PROMPTS: "4", METRICS_PORT: String(servicePorts.rollout) },
        orchestrator: { GENERATE_MAX_PROMPTS: "4", METRICS_PORT: String(metricsPort) },
        learner: { METRICS_PORT: String(servicePorts.learner) },
        scheduler: { METRICS_PORT: String(servicePorts.scheduler) },
        ...Object.fromEntries(
          (
            ["reward-correctness", "reward-perplexity", "reward-reasoning", "reward-consistency"] as const
          ).map((n) => [n, { METRICS_PORT: String(servicePorts[n]) }]),
        ),
      },
    });
    client = createClient(orchestrator.OrchestratorServiceService, stack.address("orchestrator"), {
      defaults: { timeoutMs: 60_000 },
    });
  });

  after(async () => {
    client?.$close();
    await stack?.stop();
    rmSync(root, { recursive: true, force: true });
  });

  it("runs GRPO steps end to end; metrics, events, evaluation and the run directory agree", {
    timeout: 300_000,
  }, async () => {
    const started = await client.startRun({ spec: runSpec(root, modelDir) });
    const runId = started.run!.runId;
    assert.match(runId, /^continuous-/);
    const seen: orchestrator.StepMetrics[] = [];
    const evals: orchestrator.EvalResult[] = [];
    let final = orchestrator.RunStatus.RUN_STATUS_UNSPECIFIED;
    let error = "";
    // a scrape of the orchestrator while the run is live: its gauges are some step's line
    let live: Promise<string> | undefined;
    for await (const ev of client.watchRun({ runId, fromStep: 0 }, { timeoutMs: 280_000 })) {
      if (ev.event?.$case === "metrics") seen.push(ev.event.value);
      if (ev.event?.$case === "metrics" && ev.event.value.step === 1)
        live ??= fetch(`http://127.0.0.1:${metricsPort}/metrics`).then((r) => r.text());
      if (ev.event?.$case === "eval") evals.push(ev.event.value);
      final = ev.status;
      error = ev.error;
    }
    assert.equal(final, orchestrator.RunStatus.RUN_STATUS_SUCCEEDED, error);
    assert.deepEqual(
      seen.map((m) => m.step),
      [0, 1, 2, 3],
    );

    const run = (await client.getRun({ runId })).run!;
    assert.equal(run.stepsDone, STEPS);
    const lines = readFileSync(join(run.directory, "metrics.jsonl"), "utf8")
      .trim()
      .split("\n")
      .map((l) => JSON.parse(l));
    // the live run's latest step as gauges on the orchestrator's /metrics, labelled by run, variant
    // and seed: every gauge is the line of the step `temper_step` names
    const scraped = await live!;
    const gauge = (text: string, key: string) => {
      const name = `temper_${key.replace(/[/.]/g, "_")}`;
      const m = new RegExp(`^${name}\\{[^}]*run_id="${runId}"[^}]*\\} (\\S+)$`, "m").exec(text);
      return m ? { value: Number(m[1]), labels: m[0] } : undefined;
    };
    const at = gauge(scraped, "step");
    assert.ok(at, `temper_step for ${runId} in\n${scraped.slice(0, 2000)}`);
    const line = lines.find((l) => l.step === at.value)!;
    const spec = runSpec(root, modelDir);
    for (const key of [
      "reward/mean",
      "accuracy/train",
      "train/kl",
      "time/step",
      "zero_signal_fraction",
      "alpha",
    ]) {
      const g = gauge(scraped, key);
      assert.ok(g, `${key} for ${runId}`);
      assert.ok(
        Math.abs(g.value - line[key]) <= 1e-9 * Math.max(1, Math.abs(line[key])),
        `${key}: ${g.value} vs ${line[key]}`,
      );
      assert.match(g.labels, new RegExp(`variant="${spec.name}"`));
      assert.match(g.labels, new RegExp(`seed="${spec.seed}"`));
    }
    const ended = await (await fetch(`http://127.0.0.1:${metricsPort}/metrics`)).text();
    // the SDK keeps a cumulative series once seen: an ended run's gauges hold its last step
    assert.equal(gauge(ended, "step")?.value, lines[lines.length - 1].step);
    assert.match(ended, /^temper_runs\{[^}]*status="SUCCEEDED"[^}]*\} [1-9]/m);
    // each service's own figures: the rollout's tokens (training and evaluation), the learner's,
    // the scheduler's calls to the correctness source
    const scrape = async (port: number) => (await fetch(`http://127.0.0.1:${port}/metrics`)).text();
    const value = (text: string, name: string, labels = "") => {
      const m = new RegExp(`^${name}(?:_total)?\\{[^}]*${labels}[^}]*\\} (\\S+)$`, "m").exec(text);
      assert.ok(m, `${name} ${labels} in\n${text.slice(0, 1500)}`);
      return Number(m[1]);
    };
    const trainTokens = lines.reduce((n, l) => n + l["tokens/generated"], 0);
    assert.ok(value(await scrape(servicePorts.rollout), "temper_rollout_tokens") >= trainTokens);
    const learnerText = await scrape(servicePorts.learner);
    assert.ok(value(learnerText, "temper_learner_tokens") > 0);
    assert.ok(value(learnerText, "temper_learner_checkpoint_size_count") >= 1);
    const rolloutText = await scrape(servicePorts.rollout);
    assert.ok(value(rolloutText, "temper_rollout_adapters_active") >= 0);
    assert.equal(value(rolloutText, "temper_rollout_kv_cache_usage"), 0, "no Generate runs now");
    // every service counted the RPCs it served, by method and status
    for (const [name, port] of Object.entries({ orchestrator: metricsPort, ...servicePorts })) {
      const text = await scrape(port);
      assert.ok(value(text, "rpc_server_call_duration_count", 'rpc_response_status_code="OK"') > 0, name);
      assert.ok(value(text, "process_memory_usage") > 0, name);
    }
    assert.ok(
      value(
        await scrape(servicePorts.scheduler),
        "temper_scheduler_source_duration_count",
        'source="correctness",outcome="ok"',
      ) >= STEPS,
    );
    assert.deepEqual(
      lines.map((l) => l.step),
      [0, 1, 2, 3],
    );
    const names = [
      "reward/mean",
      "reward/std",
      "reward/correctness.correctness_hard",
      "alpha",
      "accuracy/train",
      "zero_signal_fraction",
      "completions/mean_length",
      "completions/max_length",
      "completions/clipped_ratio",
      "train/loss",
      "train/clip_fraction",
      "train/kl",
      "train/entropy",
      "train/logprob_diff",
      "train/grad_norm",
      "train/learning_rate",
      "train/skipped",
      "tokens/generated",
      "time/rollout",
      "time/reward",
      "time/train",
      "time/eval",
      "time/other",
      "time/step",
      "time/elapsed",
    ];
    let applied = 0;
    for (const l of lines) {
      for (const n of names) assert.ok(Number.isFinite(l[n]), `step ${l.step}: ${n} = ${l[n]}`);
      // the learner recomputes the rollout's logprobs at the first mini-batch: same tokens, same numbers
      if (l["train/skipped"] === 0) {
        applied++;
        assert.ok(l["train/logprob_diff"] < 1e-4, `step ${l.step}: logprob_diff ${l["train/logprob_diff"]}`);
        assert.equal(l["train/clip_fraction"], 0, `step ${l.step}`);
        assert.equal(
          l.policy_version,
          `${runId}-${l.step}`,
          "the policy version advances on every applied step",
        );
      }
    }
    assert.ok(applied >= 2, `only ${applied} steps applied`);

    // held-out evaluation: the warm start, every 2 steps, the end
    assert.deepEqual(
      evals.map((e) => e.step),
      [0, 2, 4],
    );
    const evalLines = readFileSync(join(run.directory, "eval.jsonl"), "utf8")
      .trim()
      .split("\n")
      .map((l) => JSON.parse(l));
    assert.deepEqual(
      evalLines.map((e) => [e.step, e.n]),
      [
        [0, 6],
        [2, 6],
        [4, 6],
      ],
    );
    // each problem's answer, in eval-set order: as many solved as the count says
    for (const e of evalLines) {
      assert.match(e.solved, /^[01]{6}$/);
      assert.equal([...e.solved].filter((c) => c === "1").length, e.correct);
    }
    // maj@3 beside the greedy accuracy: a count of solved problems out of n, in the stream too
    for (const [i, e] of evalLines.entries()) {
      assert.equal(e.maj_k, 3);
      assert.ok(
        Number.isInteger(e.maj_accuracy * e.n) && e.maj_accuracy <= 1,
        `maj_accuracy ${e.maj_accuracy}`,
      );
      assert.equal(evals[i].majAccuracy, e.maj_accuracy);
      // pass@1: per problem, how many of the 3 samples were right; their mean fraction is pass1
      assert.equal(e.sampled_correct.length, e.n);
      for (const c of e.sampled_correct) assert.ok(Number.isInteger(c) && c >= 0 && c <= 3, `count ${c}`);
      const fractions = e.sampled_correct.map((c: number) => c / 3);
      const m = fractions.reduce((a: number, x: number) => a + x, 0) / e.n;
      assert.ok(Math.abs(e.pass1 - m) < 1e-12, `pass1 ${e.pass1} vs ${m}`);
      const sd = Math.sqrt(fractions.reduce((a: number, x: number) => a + (x - m) ** 2, 0) / (e.n - 1));
      assert.ok(Math.abs(e.pass1_stderr - sd / Math.sqrt(e.n)) < 1e-12);
    }
    assert.ok(readFileSync(join(run.directory, "samples.jsonl"), "utf8").trim().split("\n").length >= STEPS);
    assert.match(readFileSync(join(run.directory, "spec.yaml"), "utf8"), new RegExp(`run_id: ${runId}`));

    // the report renders: one series per plot for the one run, no page errors
    const report = writeReport([run.directory], join(root, "report.html"));
    assert.equal(report.table.length, 2, report.table.join("\n"));
    if (chromiumPath) {
      const { stdout: dom, stderr } = chromium([
        "--window-size=1400,3000",
        "--dump-dom",
        `file://${report.path}`,
      ]);
      assert.deepEqual(consoleLines(stderr), []);
      assert.match(dom, /data-errors=""/);
      const plots = plotsInDom(dom);
      assert.ok(plots.size >= 5, `${plots.size} plots`);
      for (const [id, series] of plots)
        assert.ok(series.length <= 1, `${id}: ${series.length} series for one run`);
      assert.ok(plots.get([...plots.keys()][0])!.length === 1);
    } else console.log("chromium not installed: the report was written but not rendered");

    // events of every step, and adapters that differ between versions
    const bus = await connectBus({ url: stack.natsUrl, name: "rl-loop-test" });
    try {
      for (const [subject, count] of [
        ["rollout.completed", STEPS + 2 * 2 * evals.length], // eval: greedy, then maj@k; 4 + 2 prompts each
        ["reward.blended", STEPS],
        ["policy.updated", STEPS],
        ["metrics.step", STEPS],
        ["metrics.eval", evals.length],
      ] as const) {
        const durable = `check-${subject.replace(".", "-")}`;
        await bus.jsm.consumers.add("TEMPER", {
          durable_name: durable,
          filter_subject: `temper.${runId}.${subject}`,
          ack_policy: "explicit" as never,
        });
        const consumer = await bus.js.consumers.get("TEMPER", durable);
        const ids: string[] = [];
        for await (const m of await consumer.fetch({ max_messages: 50, expires: 2000 }))
          ids.push(m.headers?.get("Nats-Msg-Id") ?? "");
        assert.equal(ids.length, count, `${subject}: ${ids.join(", ")}`);
        if (subject === "metrics.step") {
          assert.deepEqual(
            ids,
            [0, 1, 2, 3].map((s) => `${runId}.${s}.metrics.step`),
          );
        }
      }
      const store = await bus.objectStore(ADAPTER_BUCKET);
      const versions = lines.filter((l) => l["train/skipped"] === 0).map((l) => l.policy_version as string);
      const a = await store.getBlob(`${runId}/${versions[versions.length - 2]}`);
      const b = await store.getBlob(`${runId}/${versions[versions.length - 1]}`);
      assert.ok(a && b);
      assert.notDeepEqual(Buffer.from(a), Buffer.from(b), "the adapter changes from one version to the next");
    } finally {
      await bus.drain();
    }
  });

  it("every panel of the Grafana board returns data from a real Prometheus scraping this stack", {
    skip: !hasPrometheus() && "prometheus not installed (Debian: apt-get install prometheus)",
    timeout: 120_000,
  }, async () => {
    // an error, so that the errors panel has something to show
    await assert.rejects(client.getRun({ runId: "no-such-run" }, { attempts: 1 }), /NOT_FOUND|no run/);
    const port = await freePort();
    const dir = join(root, "prometheus");
    mkdirSync(dir, { recursive: true });
    const targets = [metricsPort, ...Object.values(servicePorts)].map((p) => `127.0.0.1:${p}`);
    writeFileSync(
      join(dir, "prometheus.yml"),
      `global: { scrape_interval: 1s }\nscrape_configs:\n  - job_name: temper\n    static_configs: [{ targets: ${JSON.stringify(targets)} }]\n`,
    );
    const prom = spawn(
      "prometheus",
      [
        `--config.file=${join(dir, "prometheus.yml")}`,
        `--storage.tsdb.path=${join(dir, "data")}`,
        `--web.listen-address=127.0.0.1:${port}`,
      ],
      { stdio: "ignore" },
    );
    try {
      const query = async (expr: string) => {
        const r = await fetch(`http://127.0.0.1:${port}/api/v1/query?query=${encodeURIComponent(expr)}`);
        return (await r.json()) as { status: string; data: { result: unknown[] } };
      };
      // rate() needs two scrapes of every target
      const until = Date.now() + 60_000;
      while (Date.now() < until) {
        const up = await query("count_over_time(up[1m]) >= 3").catch(() => undefined);
        if (up?.data?.result.length === targets.length) break;
        await new Promise((r) => setTimeout(r, 500));
      }
      const empty: string[] = [];
      for (const panel of dashboardPanels())
        for (const expr of panel.exprs) {
          const res = await query(expr);
          if (res.status !== "success" || res.data.result.length === 0)
            empty.push(`${panel.board} / ${panel.title}: ${expr}`);
        }
      assert.deepEqual(empty, [], "panels with no data");
    } finally {
      prom.kill();
    }
  });

  it("StartRun refuses a bad spec with the field, and a model the rollout does not serve", async () => {
    const bad: [Partial<orchestrator.RunSpec>, RegExp][] = [
      [{ steps: 0 }, /spec\.steps/],
      [{ trainData: join(root, "missing.jsonl") }, /spec\.train_data/],
      [{ promptsPerStep: 100 }, /spec\.train_data: .* fewer than one step's 100 prompts/],
      [{ runId: "bad id!" }, /spec\.run_id/],
      // the rollout's limits (GetModelInfo), at StartRun rather than at the first Generate
      [
        { completionsPerPrompt: 1_000_000 },
        /spec\.completions_per_prompt: must be at most \d+ \(the rollout's limit\)/,
      ],
    ];
    for (const [o, pattern] of bad)
      await assert.rejects(client.startRun({ spec: runSpec(root, modelDir, o) }), (err: Error) => {
        assert.match(err.message, pattern);
        return true;
      });
    const other = join(root, "other-model");
    initModel({
      config: presetConfig("tiny", tokenizerIds("bytes")),
      tokenizer: "bytes",
      out: other,
      seed: 4,
      dtype: "f32",
    });
    await assert.rejects(client.startRun({ spec: runSpec(root, other) }), /FAILED_PRECONDITION|spec\.model/);
    await assert.rejects(client.getRun({ runId: "nope" }), /NOT_FOUND|no run/);
  });
});
