// Clients of the reward sources, one per endpoint, and their Info (cached per endpoint so that a
// swapped service shows in provenance as soon as its endpoint changes).
import type { MethodDefinition } from "@grpc/grpc-js";
import { type CallContext, callUnary, createClient, type PromiseClient } from "@temper/kit";
import { reward } from "@temper/proto";

type RewardClient = PromiseClient<typeof reward.RewardServiceService>;

/** Score with a request serialized once by the caller and sent as-is to every source. */
const scoreEncoded: MethodDefinition<Uint8Array, reward.ScoreResponse> = {
  ...reward.RewardServiceService.score,
  requestSerialize: (bytes: Uint8Array) => Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength),
  requestDeserialize: (bytes: Buffer) => bytes,
};

interface Channel {
  client: RewardClient;
  /** Calls in flight on this channel. */
  active: number;
  /** Replaced by a fresh channel: closed once its last call has finished. */
  retired: boolean;
}

/**
 * One channel per endpoint, shared by every run. A channel is never closed under calls in flight:
 * forget() gives new calls a fresh channel and retires the old one, which closes when idle, so one
 * run's failing call never aborts another run's call to the same endpoint.
 */
export class SourcePool {
  private readonly channels = new Map<string, Channel>();
  private readonly infos = new Map<string, reward.InfoResponse>();

  constructor(private readonly maxMessageBytes: number) {}

  /** Runs `call` on the endpoint's current channel, counted as in flight until it settles. */
  private async using<T>(endpoint: string, call: (client: RewardClient) => Promise<T>): Promise<T> {
    let ch = this.channels.get(endpoint);
    if (!ch) {
      ch = {
        // balanced: replicas behind one name (or a list of them) share the calls, not the channel
        client: createClient(reward.RewardServiceService, endpoint, {
          balance: true,
          limits: { maxReceiveMessageBytes: this.maxMessageBytes, maxSendMessageBytes: this.maxMessageBytes },
        }),
        active: 0,
        retired: false,
      };
      this.channels.set(endpoint, ch);
    }
    ch.active++;
    try {
      return await call(ch.client);
    } finally {
      ch.active--;
      if (ch.retired && ch.active === 0) ch.client.$close();
    }
  }

  /**
   * Score with the run's per-source deadline (capped by the caller's); UNAVAILABLE is retried up to
   * 3 attempts. `request` is an encoded temper.reward.v1.ScoreRequest, shared by every source.
   */
  score(
    endpoint: string,
    request: Uint8Array,
    timeoutMs: number,
    parent: CallContext,
  ): Promise<reward.ScoreResponse> {
    return this.using(endpoint, (c) =>
      callUnary(c.$client, scoreEncoded, request, { timeoutMs, parent, attempts: 3 }),
    );
  }

  /** Info of the service behind an endpoint; fetched once per endpoint while it answers. */
  async info(endpoint: string, timeoutMs: number, parent: CallContext): Promise<reward.InfoResponse> {
    const known = this.infos.get(endpoint);
    if (known) return known;
    const info = await this.using(endpoint, (c) => c.info({}, { timeoutMs, parent, attempts: 3 }));
    this.infos.set(endpoint, info);
    return info;
  }

  /**
   * Forgets what is known of an endpoint (its service may have been replaced) and gives later
   * calls a fresh channel, which connects at once where a failed one waits out its reconnect
   * backoff. Calls already in flight finish on the old channel.
   */
  forget(endpoint: string): void {
    this.infos.delete(endpoint);
    const ch = this.channels.get(endpoint);
    if (!ch) return;
    this.channels.delete(endpoint);
    ch.retired = true;
    if (ch.active === 0) ch.client.$close();
  }

  close(): void {
    for (const ch of this.channels.values()) ch.client.$close();
    this.channels.clear();
  }
}
