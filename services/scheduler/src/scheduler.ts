// The reward router: per-run settings and state, fan-out to the sources, the blend, idempotent
// steps, persistence and the reward.blended event.
import {
  type Bus,
  type CallContext,
  checkRunId,
  checkSameRequest,
  EVENT_WAIT_MS,
  failedPrecondition,
  GrpcError,
  invalidArgument,
  KeyedLock,
  type Logger,
  requestDigest,
  resourceExhausted,
  retryNatsOutage,
  Status,
  serviceMeter,
} from "@temper/kit";
import { events, reward, scheduler } from "@temper/proto";
import { componentFromProto, groupsFromProto, unknownEnumField } from "@temper/reward-server";
import {
  type BlendItem,
  blendBatch,
  SOURCE_COMPONENTS,
  scheduledAlpha,
  validateScoreRequest,
} from "@temper/rewards";
import { blendedEvent } from "./events.ts";
import { type RunSettings, resolveRunConfig, type SettingsDefaults } from "./settings.ts";
import type { SourcePool } from "./sources.ts";
import { INITIAL_RUN_STATE, type RunState, type RunStore, type StoredStep } from "./store.ts";

export interface SchedulerLimits {
  maxGroups: number;
  maxGroupSize: number;
  maxTextLength: number;
  rejectEmptyText: boolean;
  /** GRPC_MAX_MESSAGE_BYTES: a response larger than this could never be delivered, so it is not stored. */
  maxResponseBytes: number;
}

interface Run {
  settings: RunSettings;
  state: RunState;
  /** The KV revision of the run's stored config: it changes when (and only when) the config does. */
  configVersion: number;
}

/** JSON with object keys sorted at every level: equal values give equal strings. */
export function canonicalJson(value: unknown): string {
  return JSON.stringify(value, (_key, v) =>
    v && typeof v === "object" && !Array.isArray(v)
      ? Object.fromEntries(
          Object.keys(v as object)
            .sort()
            .map((k) => [k, (v as Record<string, unknown>)[k]]),
        )
      : v,
  );
}

/** A run's normalised config in canonical form (map fields in key order). */
export function canonicalConfig(config: scheduler.RunConfig): string {
  return canonicalJson(scheduler.RunConfig.toJSON(config));
}

/**
 * sha256 over the canonical form of a decoded Score request: its protobuf re-encoding (fields in
 * number order, no unknown fields, no maps in the message), so equal requests hash equal however
 * the client wrote them.
 */
export function scoreRequestHash(req: scheduler.ScoreRequest): string {
  return requestDigest(scheduler.ScoreRequest.encode(req).finish());
}

interface SourceOutcome {
  source: string;
  endpoint: string;
  results?: reward.CompletionScore[];
  /** What callers see: never socket details (see sourceError). */
  error?: string;
  /** The full error, for the scheduler's log only. */
  detail?: string;
  code?: Status;
  info?: reward.InfoResponse;
}

/** Transport-level outcomes: refused, filtered, reset, timed out, not gRPC, not a reward service. */
const TRANSPORT_CODES = new Set<Status>([
  Status.UNAVAILABLE,
  Status.DEADLINE_EXCEEDED,
  Status.CANCELLED,
  Status.UNKNOWN,
  Status.INTERNAL,
  Status.UNIMPLEMENTED,
]);

/**
 * A source's failure as callers see it. Whatever went wrong on the way (connection refused, no
 * answer from a filtered port, a reset, a server that does not speak gRPC or lacks the service)
 * reads the same, so Score cannot be used to tell open, closed and filtered ports apart; a status
 * the reward service itself chose (e.g. INVALID_ARGUMENT) keeps its message. The log has it all.
 */
export function sourceError(e: GrpcError): string {
  if (TRANSPORT_CODES.has(e.code))
    return "no usable answer (unreachable, timed out, or not a reward service)";
  const line = e.message.split("\n")[0];
  return `${Status[e.code]}: ${line.length > 200 ? `${line.slice(0, 200)}…` : line}`;
}

export class Scheduler {
  private readonly runs = new Map<string, Run>();
  /** Per-run promise chain: steps of one run are scored one at a time, in arrival order. */
  private readonly lock = new KeyedLock();
  private readonly meter = serviceMeter("temper-scheduler");
  /** Per source (its name, not its endpoint: no addresses in labels) and outcome. */
  private readonly sourceTime = this.meter.createHistogram("temper.scheduler.source.duration", {
    unit: "s",
    description: "a reward source's Score, by source and outcome (ok or the status)",
  });
  private readonly replays = this.meter.createCounter("temper.scheduler.replays", {
    description: "Score calls answered from a stored step",
  });

  constructor(
    private readonly store: RunStore,
    private readonly pool: SourcePool,
    private readonly bus: Bus | undefined,
    private readonly defaults: SettingsDefaults,
    private readonly limits: SchedulerLimits,
    private readonly logger: Logger,
  ) {}

  /** The run from memory, else from KV (after a restart); undefined when never configured. */
  private async load(runId: string): Promise<Run | undefined> {
    const cached = this.runs.get(runId);
    if (cached) return cached;
    const stored = await this.store.getConfig(runId);
    if (!stored) return undefined;
    const run: Run = {
      settings: resolveRunConfig(stored.config, this.defaults),
      state: await this.store.getState(runId),
      configVersion: stored.version,
    };
    this.runs.set(runId, run);
    return run;
  }

  async configure(req: scheduler.ConfigureRequest): Promise<scheduler.ConfigureResponse> {
    const settings = resolveRunConfig(req.config, this.defaults);
    const expected = req.expectedVersion ?? 0;
    if (!Number.isSafeInteger(expected) || expected < 0)
      throw invalidArgument("expected_version", "must be an integer ≥ 0");
    const runId = settings.runId;
    return this.lock.run(runId, async () => {
      const existing = await this.load(runId);
      // The identical configuration again is a no-op: no write, no new config version, so steps
      // scored under it still replay.
      if (existing && canonicalConfig(existing.settings.config) === canonicalConfig(settings.config))
        return { config: existing.settings.config, version: existing.configVersion };
      // Optimistic concurrency: replacing a configuration needs the version it replaces.
      if (!existing && expected !== 0)
        throw failedPrecondition(
          `expected_version: run "${runId}" does not exist, so there is no version ${expected} to replace; leave expected_version unset (or 0) to create it`,
        );
      if (existing && expected === 0)
        throw failedPrecondition(
          `expected_version: run "${runId}" exists with a different configuration (version ${existing.configVersion}); to reconfigure it send expected_version ${existing.configVersion}, or use a new run_id`,
        );
      const stale = (current: number | string) =>
        failedPrecondition(
          `expected_version: run "${runId}" is at config version ${current}, not ${expected}: it was reconfigured since that version was read; read it again (GetState) and resend`,
        );
      if (existing && expected !== existing.configVersion) throw stale(existing.configVersion);
      const configVersion = await this.store.putConfig(settings.config, expected);
      if (configVersion === undefined) {
        // Another scheduler sharing the bucket changed it: forget the cached copy.
        this.runs.delete(runId);
        const now = await this.store.getConfig(runId);
        throw stale(now?.version ?? "unknown");
      }
      for (const endpoint of Object.values(settings.sources)) this.pool.forget(endpoint);
      this.runs.set(runId, {
        settings,
        state: existing?.state ?? { ...INITIAL_RUN_STATE },
        configVersion,
      });
      this.logger.info(
        { run_id: runId, sources: settings.sources, config_version: configVersion },
        existing ? "run reconfigured" : "run configured",
      );
      return { config: settings.config, version: configVersion };
    });
  }

  async getState(req: scheduler.GetStateRequest): Promise<scheduler.GetStateResponse> {
    checkRunId(req.runId);
    const run = await this.load(req.runId);
    if (!run) throw new GrpcError(Status.NOT_FOUND, `run_id: run "${req.runId}" is not configured`);
    const nextStep = run.state.lastStep === null ? 0 : run.state.lastStep + 1;
    return {
      config: run.settings.config,
      configVersion: run.configVersion,
      state: {
        stepsScored: run.state.stepsScored,
        lastStep: run.state.lastStep ?? undefined,
        nextAlpha: scheduledAlpha(run.settings.structure, nextStep, { accuracyEma: run.state.accuracyEma }),
        accuracyEma: run.state.accuracyEma ?? undefined,
      },
    };
  }

  async score(req: scheduler.ScoreRequest, ctx: CallContext): Promise<scheduler.ScoreResponse> {
    checkRunId(req.runId);
    if (!Number.isSafeInteger(req.step) || req.step < 0)
      throw invalidArgument("step", "must be an integer ≥ 0");
    const unknown = unknownEnumField(req.groups);
    if (unknown) throw invalidArgument(unknown.field, unknown.message);
    const problem = validateScoreRequest(groupsFromProto(req.groups), {}, this.limits);
    if (problem) throw invalidArgument(problem.field, problem.message);
    const requestHash = scoreRequestHash(req);
    return this.lock.run(req.runId, async () => {
      const run = await this.load(req.runId);
      if (!run) throw failedPrecondition(`run "${req.runId}" is not configured: call Configure first`);
      const stored = await this.store.getStep(req.runId, req.step);
      if (stored) {
        this.checkReplay(req, stored, requestHash, run.configVersion);
        // A replay after a crash between the two writes below still leaves the state right.
        if (stored.stateAfter.stepsScored > run.state.stepsScored) {
          run.state = stored.stateAfter;
          await this.store.putState(req.runId, run.state);
        }
        // the first call may have stored the step and failed to publish: publish again
        if (stored.event) await this.publish(req.runId, req.step, stored.event, ctx);
        this.replays.add(1);
        return { ...stored.response, replayed: true };
      }
      this.checkCaller(ctx, "before scoring");
      const response = await this.scoreNew(run, req, ctx);
      // Never store what cannot be delivered: a retry would replay it forever.
      const size = scheduler.ScoreResponse.encode({ ...response.body, replayed: true }).finish().length;
      if (size > this.limits.maxResponseBytes)
        throw resourceExhausted(
          `response: ${size} bytes, over the ${this.limits.maxResponseBytes}-byte limit (GRPC_MAX_MESSAGE_BYTES); ` +
            `step ${req.step} was not stored: score fewer or shorter completions per call`,
        );
      // A result computed for a caller that has gone (deadline passed, cancelled) may be degraded
      // (sources cut short by that deadline): it is not stored, so a retry computes it afresh.
      this.checkCaller(ctx, "after scoring");
      const event = events.RewardBlended.encode(response.event).finish();
      await this.store.putStep(req.runId, req.step, {
        response: response.body,
        stateAfter: response.state,
        requestHash,
        configVersion: run.configVersion,
        event,
      });
      await this.store.putState(req.runId, response.state);
      run.state = response.state;
      await this.publish(req.runId, req.step, event, ctx);
      return response.body;
    });
  }

  /** A repeated step must be the same request under the same configuration. */
  private checkReplay(
    req: scheduler.ScoreRequest,
    stored: StoredStep,
    requestHash: string,
    configVersion: number,
  ): void {
    const at = `run "${req.runId}" step ${req.step}`;
    checkSameRequest(
      at,
      "scored",
      stored.requestHash,
      requestHash,
      "send the same groups to replay it, or score a new step",
    );
    if (stored.configVersion !== undefined && stored.configVersion !== configVersion)
      throw failedPrecondition(
        `${at} was scored under config version ${stored.configVersion}; the run has been reconfigured ` +
          `since (version ${configVersion}): score a new step, or use a new run for the new configuration`,
      );
  }

  /** Throws (and so stores nothing) when the caller has cancelled or its deadline has passed. */
  private checkCaller(ctx: CallContext, when: string): void {
    if (ctx.signal.aborted)
      throw new GrpcError(Status.CANCELLED, `the caller cancelled ${when}; the step was not stored`);
    if (ctx.remainingMs() <= 0)
      throw new GrpcError(
        Status.DEADLINE_EXCEEDED,
        `the caller's deadline passed ${when}; the step was not stored (a retry scores it afresh)`,
      );
  }

  private async callSources(
    run: Run,
    req: scheduler.ScoreRequest,
    ctx: CallContext,
  ): Promise<SourceOutcome[]> {
    const { sources, sourceTimeoutMs, params } = run.settings;
    const request = reward.ScoreRequest.encode({ groups: req.groups, params }).finish();
    return Promise.all(
      Object.entries(sources).map(async ([source, endpoint]): Promise<SourceOutcome> => {
        const t0 = performance.now();
        const [scored, info] = await Promise.allSettled([
          this.pool.score(endpoint, request, sourceTimeoutMs, ctx),
          this.pool.info(endpoint, sourceTimeoutMs, ctx),
        ]);
        this.sourceTime.record((performance.now() - t0) / 1000, {
          source,
          outcome: scored.status === "fulfilled" ? "ok" : GrpcError.from(scored.reason).codeName,
        });
        const out: SourceOutcome = {
          source,
          endpoint,
          info: info.status === "fulfilled" ? info.value : undefined,
        };
        if (scored.status === "rejected") {
          const e = GrpcError.from(scored.reason);
          this.pool.forget(endpoint);
          return { ...out, error: sourceError(e), detail: e.message, code: e.code };
        }
        const total = req.groups.reduce((n, g) => n + g.completions.length, 0);
        if (scored.value.results.length !== total) {
          return {
            ...out,
            error: `returned ${scored.value.results.length} results for ${total} completions`,
          };
        }
        return { ...out, results: scored.value.results };
      }),
    );
  }

  private async scoreNew(run: Run, req: scheduler.ScoreRequest, ctx: CallContext) {
    const outcomes = await this.callSources(run, req, ctx);
    const failedSources = outcomes.filter((o) => !o.results);
    for (const f of failedSources) {
      ctx.logger.warn(
        { source: f.source, endpoint: f.endpoint, error: f.detail ?? f.error, code: f.code },
        "reward source failed",
      );
      const required = f.source === "correctness";
      if (required || run.settings.failurePolicy === "fail") {
        const why = required ? "correctness_hard is required" : "failure_policy is fail";
        throw new GrpcError(
          Status.UNAVAILABLE,
          `source ${f.source} (${f.endpoint}) failed: ${f.error} (${why})`,
        );
      }
    }
    const missingComponents = failedSources.flatMap((f) =>
      (f.info?.components ?? SOURCE_COMPONENTS[f.source] ?? []).map((c) => `${f.source}.${c}`),
    );

    // Flatten completions in request order; every source answered in the same order.
    const flat = req.groups.flatMap((g) => g.completions.map((c) => ({ group: g, completion: c })));
    const protoComponents: Record<string, reward.ComponentValue>[] = flat.map(() => ({}));
    const blendItems: BlendItem[] = flat.map(({ group }) => ({
      groupId: group.id,
      correctnessHard: 0,
      components: {},
    }));
    const details: reward.ScoreDetails[] = flat.map(() => ({
      extractedAnswer: "",
      matchedRule: "",
      equations: [],
    }));
    const itemMissing: string[][] = flat.map(() => [...missingComponents]);
    for (const o of outcomes) {
      if (!o.results) continue;
      o.results.forEach((r, i) => {
        const blendComponents = blendItems[i].components as Record<string, number | null>;
        for (const [name, value] of Object.entries(r.components)) {
          const key = `${o.source}.${name}`;
          protoComponents[i][key] = value;
          blendComponents[key] = componentFromProto(value).value;
        }
        if (o.source === "correctness") {
          const hard = r.components.correctness_hard;
          const v = hard ? componentFromProto(hard).value : null;
          if (v === null) itemMissing[i].push("correctness.correctness_hard");
          blendItems[i].correctnessHard = v === 1 ? 1 : 0;
          details[i].extractedAnswer = r.details?.extractedAnswer ?? "";
          details[i].matchedRule = r.details?.matchedRule ?? "";
        }
        if (o.source === "reasoning" && r.details) details[i].equations = r.details.equations;
      });
    }
    const blend = blendBatch({
      items: blendItems,
      structure: run.settings.structure,
      step: req.step,
      state: { accuracyEma: run.state.accuracyEma },
      advantageScale: run.settings.advantageScale,
      control: run.settings.control,
    });
    const provenance: scheduler.Provenance[] = outcomes.map((o) => ({
      source: o.source,
      name: o.info?.name ?? "",
      version: o.info?.version ?? "",
      endpoint: o.endpoint,
    }));
    const body: scheduler.ScoreResponse = {
      runId: req.runId,
      step: req.step,
      alpha: blend.alpha,
      replayed: false,
      provenance,
      items: flat.map(({ group, completion }, i) => ({
        completionId: completion.id,
        groupId: group.id,
        reward: blend.items[i].reward,
        components: protoComponents[i],
        alphaUsed: blend.items[i].alphaUsed,
        advantage: blend.items[i].advantage,
        missing: itemMissing[i],
        details: details[i],
      })),
      groups: blend.groups.map((g) => ({
        groupId: g.groupId,
        zeroSignal: g.zeroSignal,
        fallbackApplied: g.fallbackApplied,
        meanReward: g.meanReward,
        stdReward: g.stdReward,
      })),
    };
    const state: RunState = {
      stepsScored: run.state.stepsScored + 1,
      lastStep: run.state.lastStep === null ? req.step : Math.max(run.state.lastStep, req.step),
      accuracyEma: blend.state.accuracyEma,
    };
    return { body, state, event: blendedEvent(body, blend.zeroSignalFraction, missingComponents) };
  }

  /**
   * The step's reward.blended event is part of the call: NATS away past the caller's deadline fails
   * it UNAVAILABLE, and the retry replays the stored step and publishes under the same msgId.
   */
  private async publish(runId: string, step: number, event: Uint8Array, ctx: CallContext): Promise<void> {
    const bus = this.bus;
    if (!bus) return;
    await retryNatsOutage(
      "reward.blended",
      () =>
        bus.publish(`temper.${runId}.reward.blended`, event, { msgId: `${runId}.${step}.reward.blended` }),
      {
        untilMs: Date.now() + Math.min(ctx.remainingMs(), EVENT_WAIT_MS),
        signal: ctx.signal,
        onRetry: (err) =>
          ctx.logger.warn(
            { err: (err as Error).message, run_id: runId, step },
            "NATS away; retrying reward.blended",
          ),
      },
    );
  }
}
