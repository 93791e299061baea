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

export class SourcePool {
  private readonly clients = new Map<string, RewardClient>();
  private readonly infos = new Map<string, reward.InfoResponse>();

  constructor(private readonly maxMessageBytes: number) {}

  private client(endpoint: string): RewardClient {
    let c = this.clients.get(endpoint);
    if (!c) {
      c = createClient(reward.RewardServiceService, endpoint, {
        limits: { maxReceiveMessageBytes: this.maxMessageBytes, maxSendMessageBytes: this.maxMessageBytes },
      });
      this.clients.set(endpoint, c);
    }
    return c;
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
    return callUnary(this.client(endpoint).$client, scoreEncoded, request, {
      timeoutMs,
      parent,
      attempts: 3,
    });
  }

  /** Info of the service behind an endpoint; fetched once per endpoint while it answers. */
  async info(endpoint: string, timeoutMs: number, parent: CallContext): Promise<reward.InfoResponse> {
    const known = this.infos.get(endpoint);
    if (known) return known;
    const info = await this.client(endpoint).info({}, { timeoutMs, parent, attempts: 3 });
    this.infos.set(endpoint, info);
    return info;
  }

  /**
   * Forgets what is known of an endpoint (its service may have been replaced) and drops its
   * channel: a fresh channel connects at once, where a failed one waits out its reconnect backoff.
   */
  forget(endpoint: string): void {
    this.infos.delete(endpoint);
    this.clients.get(endpoint)?.$close();
    this.clients.delete(endpoint);
  }

  close(): void {
    for (const c of this.clients.values()) c.$close();
    this.clients.clear();
  }
}
