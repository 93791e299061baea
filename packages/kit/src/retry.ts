// The one retry policy of the house: which errors are worth another attempt, exponential backoff,
// and when to give up (attempts, a time limit, a signal). Callers differ only in their options:
// a gRPC client retries UNAVAILABLE a few times within its deadline, the orchestrator retries four
// transient statuses for minutes and rotates endpoints by the attempt number, a store write waits
// out a NATS outage.
import { setTimeout as sleep } from "node:timers/promises";

export interface RetryPolicy {
  /** Whether `err` is worth another attempt; anything else is thrown at once. */
  retryable: (err: unknown) => boolean;
  /** Attempts in all, the first included; default unbounded. */
  attempts?: number;
  /** First wait, ms; doubles after each retry up to maxBackoffMs. Default 200. */
  backoffMs?: number;
  /** Longest wait, ms. Default 5000. */
  maxBackoffMs?: number;
  /**
   * Scale each wait by a random factor in [0.5, 1): retries of many callers spread out instead of
   * arriving together. Default false (a fixed schedule).
   */
  jitter?: boolean;
  /** Give up rather than wait past this time (ms since the epoch). */
  untilMs?: number;
  /** Stops the waiting (the signal's reason is thrown) and is handed to each attempt. */
  signal?: AbortSignal;
  /** Told of each retry before its wait (a log line, a span event). */
  onRetry?: (err: unknown, attempt: number) => void;
  /**
   * What to throw when the policy gives up on a retryable error (out of attempts or time); default
   * the error itself. `attempts` is how many were made.
   */
  giveUp?: (err: unknown, attempts: number) => unknown;
}

/**
 * `fn(attempt, signal)` until it succeeds, a non-retryable error, or the policy gives up. `attempt`
 * counts from 0, so a caller can rotate endpoints with it. What `fn` does must be safe to repeat.
 */
export async function retry<T>(
  policy: RetryPolicy,
  fn: (attempt: number, signal: AbortSignal | undefined) => Promise<T>,
): Promise<T> {
  const attempts = policy.attempts ?? Number.POSITIVE_INFINITY;
  const maxWait = policy.maxBackoffMs ?? 5000;
  let wait = policy.backoffMs ?? 200;
  for (let attempt = 0; ; attempt++) {
    policy.signal?.throwIfAborted();
    try {
      return await fn(attempt, policy.signal);
    } catch (err) {
      if (!policy.retryable(err)) throw err;
      const delay = policy.jitter ? wait * (0.5 + Math.random() / 2) : wait;
      const outOfTime = policy.untilMs !== undefined && Date.now() + delay > policy.untilMs;
      if (attempt + 1 >= attempts || outOfTime || policy.signal?.aborted)
        throw policy.giveUp ? policy.giveUp(err, attempt + 1) : err;
      policy.onRetry?.(err, attempt);
      await sleep(delay, undefined, policy.signal ? { signal: policy.signal } : undefined).catch(() =>
        policy.signal?.throwIfAborted(),
      );
      wait = Math.min(wait * 2, maxWait);
    }
  }
}
